-- Identities at OpenID Connect issuers: `iss` + `sub` name a person for good (an email may
-- change hands), linked to a Portico user at their first single sign-on.
CREATE TABLE user_identity (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject),
    UNIQUE (user_id, issuer)
);

-- Single sign-ons in progress, each used once by its callback and kept ten minutes at most.
-- state_hash is the SHA-256 of the `state` sent to the issuer; browser_hash that of the cookie
-- that ties the sign-in to the browser that started it.
CREATE TABLE sso_login (
    state_hash     TEXT PRIMARY KEY,
    browser_hash   TEXT NOT NULL,
    issuer_id      TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sso_login_expiry_idx ON sso_login (expires_at);
