-- Invitations a tenant admin sends: whoever opens the link joins the tenant with `role` (as the
-- invited email). invitation_id is the SHA-256 of the link's token, like session ids.
CREATE TABLE invitation (
    invitation_id  TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    invited_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    accepted_at    BIGINT
);
CREATE INDEX invitation_tenant_idx ON invitation (tenant_id, created_at);
