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

-- Neither table belongs to a tenant (sign-in happens before one is known): no row-level
-- security. The portal links identities but never changes or removes a link.
GRANT SELECT, INSERT ON user_identity TO portico_app;
GRANT SELECT, INSERT, DELETE ON sso_login TO portico_app;

-- The pending invitations for an email, across tenants: single sign-on with a verified email
-- accepts one before any tenant is known.
CREATE FUNCTION portico_invitations_for_email(p_email TEXT, p_now BIGINT)
RETURNS TABLE (tenant_id TEXT, invitation_id TEXT, created_at BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT i.tenant_id, i.invitation_id, i.created_at FROM invitation i
    WHERE i.email = p_email AND i.accepted_at IS NULL AND i.expires_at > p_now
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION portico_invitations_for_email(text, bigint) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION portico_invitations_for_email(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portico_invitations_for_email(text, bigint) TO portico_app;
