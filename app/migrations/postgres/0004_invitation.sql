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

GRANT SELECT, INSERT, UPDATE, DELETE ON invitation TO portico_app;
-- Removing a member is a tenant admin's right now.
GRANT DELETE ON membership TO portico_app;

ALTER TABLE invitation ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitation FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitation
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY definer_read ON invitation FOR SELECT TO CURRENT_USER USING (true);

-- Opening an invitation link happens before any tenant is known, like resolving a session.
CREATE FUNCTION portico_invitation_tenant(p_invitation_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT i.tenant_id FROM invitation i WHERE i.invitation_id = p_invitation_id
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION portico_invitation_tenant(text) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION portico_invitation_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portico_invitation_tenant(text) TO portico_app;
