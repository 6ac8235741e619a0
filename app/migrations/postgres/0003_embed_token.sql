-- The ids (`jti`) of embed tokens already used, kept until the token would have expired anyway:
-- a token is accepted once, across restarts and replicas. Nothing in it belongs to a tenant,
-- so it needs no row-level security; the portal may only add and expire entries.
CREATE TABLE embed_token (
    jti         TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT NOT NULL
);
CREATE INDEX embed_token_expiry_idx ON embed_token (expires_at);
GRANT SELECT, INSERT, DELETE ON embed_token TO portico_app;
