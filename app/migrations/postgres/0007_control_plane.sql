-- The provider's control plane over HTTP (control-plane API v1).

-- An operation the control plane accepted (202) stays 'running' with no lease owner and a
-- lease that expires when it is next to be polled; dispatched_at tells a poll from a send.
-- Callbacks apply only with a seq above last_seq; progress is what the page shows meanwhile.
ALTER TABLE operation ADD COLUMN dispatched_at BIGINT;
ALTER TABLE operation ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE operation ADD COLUMN progress_message TEXT;
ALTER TABLE operation ADD COLUMN progress_percent INTEGER;

-- The control plane's own id of an instance, and when it last confirmed the instance's state.
ALTER TABLE instance ADD COLUMN external_id TEXT;
ALTER TABLE instance ADD COLUMN observed_at BIGINT;
ALTER TABLE instance ADD COLUMN last_event_seq BIGINT NOT NULL DEFAULT 0;
-- Since when reconciliation has not found an instance the control plane once reported.
ALTER TABLE instance ADD COLUMN missing_since BIGINT;

-- The webhook-id of every signed callback accepted in the last minutes: a replay is refused.
-- Nothing in it belongs to a tenant, so it needs no row-level security.
CREATE TABLE control_plane_message (
    message_id   TEXT PRIMARY KEY,
    received_at  BIGINT NOT NULL
);
CREATE INDEX control_plane_message_age_idx ON control_plane_message (received_at);
GRANT SELECT, INSERT, DELETE ON control_plane_message TO portico_app;

-- A callback names an operation or an instance, not its tenant: these find the tenant, as
-- resolving a session does, before any tenant is known. The callback is verified first.
CREATE POLICY definer_read ON instance FOR SELECT TO CURRENT_USER USING (true);
CREATE FUNCTION portico_operation_tenant(p_operation_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT o.tenant_id FROM operation o WHERE o.operation_id = p_operation_id
$$;
CREATE FUNCTION portico_instance_tenant(p_instance_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT i.tenant_id FROM instance i WHERE i.instance_id = p_instance_id
$$;
-- Reconciliation visits every tenant, one at a time.
CREATE FUNCTION portico_tenant_ids() RETURNS SETOF TEXT
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT t.tenant_id FROM tenant t ORDER BY t.tenant_id
$$;
DO $$
DECLARE
    f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'portico_operation_tenant(text)',
        'portico_instance_tenant(text)',
        'portico_tenant_ids()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO portico_app', f);
    END LOOP;
END
$$;
