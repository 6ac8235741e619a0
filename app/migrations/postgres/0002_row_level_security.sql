-- Row-level security: a second barrier behind the tenant-scoped store.
--
-- The portal connects as a member of `portico_app`, which owns nothing and cannot bypass RLS.
-- Each of its transactions names one tenant with `set_config('portico.tenant_id', $1, true)`
-- (SET LOCAL: it ends with the transaction, so a pooled connection carries nothing over).
-- Without it, every tenant-owned table looks empty and refuses writes.
--
-- The few paths that must cross tenants (resolving a session token, listing a user's tenants at
-- sign-in, ending a user's sessions, sweeping stale sessions, a worker claiming the next
-- operation, the demo's "is the database empty?") are the SECURITY DEFINER functions below.
-- They run as the migration role (the owner), whose access is an explicit policy because FORCE
-- makes the owner subject to RLS too.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_app') THEN
        BEGIN
            CREATE ROLE portico_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by another database's migration
        END;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE ON tenant, app_user, membership, instance, operation TO portico_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON session TO portico_app;
-- The audit log is append-only for the portal.
GRANT SELECT, INSERT ON audit_event TO portico_app;
-- `serve` checks that every migration is applied without being able to apply one.
GRANT SELECT ON _sqlx_migrations TO portico_app;

ALTER TABLE tenant ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant FORCE ROW LEVEL SECURITY;
ALTER TABLE membership ENABLE ROW LEVEL SECURITY;
ALTER TABLE membership FORCE ROW LEVEL SECURITY;
ALTER TABLE session ENABLE ROW LEVEL SECURITY;
ALTER TABLE session FORCE ROW LEVEL SECURITY;
ALTER TABLE instance ENABLE ROW LEVEL SECURITY;
ALTER TABLE instance FORCE ROW LEVEL SECURITY;
ALTER TABLE operation ENABLE ROW LEVEL SECURITY;
ALTER TABLE operation FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_event FORCE ROW LEVEL SECURITY;

-- USING limits what is read, updated and deleted; the same expression as WITH CHECK limits what
-- is written, so a row cannot be inserted into, or moved to, another tenant.
CREATE POLICY tenant_isolation ON tenant
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON membership
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON session
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON instance
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON operation
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON audit_event
    USING (tenant_id = current_setting('portico.tenant_id', true));

-- What the SECURITY DEFINER functions need, granted to the role running this migration only.
CREATE POLICY definer_read ON tenant FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY definer_read ON membership FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY definer_all ON session TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY definer_all ON operation TO CURRENT_USER USING (true) WITH CHECK (true);

CREATE FUNCTION portico_session_tenant(p_session_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT s.tenant_id FROM session s WHERE s.session_id = p_session_id
$$;

CREATE FUNCTION portico_user_memberships(p_user_id TEXT)
RETURNS TABLE (tenant_id TEXT, role TEXT, created_at BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT m.tenant_id, m.role, m.created_at FROM membership m WHERE m.user_id = p_user_id
$$;

CREATE FUNCTION portico_end_user_sessions(p_user_id TEXT) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER AS $$
    WITH ended AS (DELETE FROM session s WHERE s.user_id = p_user_id RETURNING 1)
    SELECT COUNT(*) FROM ended
$$;

CREATE FUNCTION portico_delete_stale_sessions(p_now BIGINT, p_idle_cutoff BIGINT) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER AS $$
    WITH ended AS (
        DELETE FROM session s WHERE s.expires_at <= p_now OR s.last_seen_at <= p_idle_cutoff
        RETURNING 1
    )
    SELECT COUNT(*) FROM ended
$$;

-- The oldest runnable operation of any tenant: queued and due, or running under an expired
-- lease. Workers skip rows another worker holds.
CREATE FUNCTION portico_claim_operation(p_worker TEXT, p_lease_until BIGINT, p_now BIGINT)
RETURNS SETOF operation
LANGUAGE sql SECURITY DEFINER AS $$
    UPDATE operation o
    SET state = 'running', lease_owner = p_worker, lease_expires_at = p_lease_until,
        attempts = o.attempts + 1, updated_at = p_now
    WHERE o.operation_id = (
        SELECT c.operation_id FROM operation c
        WHERE (c.state = 'queued' AND c.not_before <= p_now)
           OR (c.state = 'running' AND c.lease_expires_at < p_now)
        ORDER BY c.created_at, c.operation_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING o.*
$$;

CREATE FUNCTION portico_tenant_count() RETURNS BIGINT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT COUNT(*) FROM tenant
$$;

-- Pin each function's search path to this schema (then pg_temp, last), so no object a caller
-- creates can stand in for a table; only the portal may call them.
DO $$
DECLARE
    f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'portico_session_tenant(text)',
        'portico_user_memberships(text)',
        'portico_end_user_sessions(text)',
        'portico_delete_stale_sessions(bigint, bigint)',
        'portico_claim_operation(text, bigint, bigint)',
        'portico_tenant_count()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO portico_app', f);
    END LOOP;
END
$$;
