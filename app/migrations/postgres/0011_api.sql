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
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_token_tenant_idx ON api_token (tenant_id, created_at);

GRANT SELECT, INSERT, UPDATE ON api_token TO portico_app;

ALTER TABLE api_token ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_token FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_token
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY definer_read ON api_token FOR SELECT TO CURRENT_USER USING (true);

-- Resolving a token happens before any tenant is known, like resolving a session: this answers
-- only which tenant a hash belongs to; the token itself is then read under that tenant.
CREATE FUNCTION portico_api_token_tenant(p_token_hash TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT t.tenant_id FROM api_token t WHERE t.token_hash = p_token_hash
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION portico_api_token_tenant(text) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION portico_api_token_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portico_api_token_tenant(text) TO portico_app;

-- The provider's API keys (`/provider/v1`), made with `portico provider-key create`. key_hash
-- is the SHA-256 of the secret, printed once. Not tenant data: a key acts for the provider,
-- whose every request then names its tenant under row-level security like any other.
CREATE TABLE provider_key (
    provider_key_id  TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    key_hash         TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT,
    revoked_at       BIGINT
);
GRANT SELECT, INSERT, UPDATE ON provider_key TO portico_app;

-- A suspended tenant's people can sign in and see, but change nothing.
ALTER TABLE tenant ADD COLUMN suspended_at BIGINT;
