-- A tenant's API tokens: a name, the role the token acts with (no higher than its creator's),
-- an optional expiry. token_hash is the SHA-256 of the secret, which is shown once and never
-- stored. A revoked token keeps its row (revoked_at set) so the audit log's actor stays named.
CREATE TABLE api_token (
    api_token_id  TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash    TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_token_tenant_idx ON api_token (tenant_id, created_at);

-- The provider's API keys (`/provider/v1`), made with `portico provider-key create`. key_hash
-- is the SHA-256 of the secret, printed once. Not tenant data: a key acts for the provider.
CREATE TABLE provider_key (
    provider_key_id  TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    key_hash         TEXT NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    revoked_at       INTEGER
);

-- A suspended tenant's people can sign in and see, but change nothing.
ALTER TABLE tenant ADD COLUMN suspended_at INTEGER;
