-- Live updates: every change a page shows is also an event, numbered per tenant, so a browser
-- that reconnects reads what it missed. Events carry ids, never data: a page re-reads what an
-- event names through the same checks as any other read. The transaction that writes an event
-- also sends NOTIFY portico_events '<tenant>:<seq>' (delivered on commit), which every
-- replica's listener turns into a read of the tenant's new events.
CREATE TABLE event_sequence (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    last_seq   BIGINT NOT NULL
);

CREATE TABLE event (
    tenant_id     TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    instance_id   TEXT,
    operation_id  TEXT,
    user_id       TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX event_age_idx ON event (created_at);

GRANT SELECT, INSERT, UPDATE ON event_sequence TO portico_app;
-- Events are append-only for the portal; only the retention sweep (below) removes them.
GRANT SELECT, INSERT ON event TO portico_app;

ALTER TABLE event_sequence ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_sequence FORCE ROW LEVEL SECURITY;
ALTER TABLE event ENABLE ROW LEVEL SECURITY;
ALTER TABLE event FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_sequence
    USING (tenant_id = current_setting('portico.tenant_id', true));
CREATE POLICY tenant_isolation ON event
    USING (tenant_id = current_setting('portico.tenant_id', true));

-- The retention sweep and a listener catching up after a reconnect cross tenants.
CREATE POLICY definer_all ON event TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY definer_read ON event_sequence FOR SELECT TO CURRENT_USER USING (true);
CREATE FUNCTION portico_prune_events(p_before BIGINT) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER AS $$
    WITH gone AS (DELETE FROM event e WHERE e.created_at < p_before RETURNING 1)
    SELECT count(*) FROM gone
$$;
CREATE FUNCTION portico_event_heads() RETURNS TABLE (tenant_id TEXT, last_seq BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT s.tenant_id, s.last_seq FROM event_sequence s ORDER BY s.tenant_id
$$;
DO $$
DECLARE
    f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY['portico_prune_events(bigint)', 'portico_event_heads()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO portico_app', f);
    END LOOP;
END
$$;
