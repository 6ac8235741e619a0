-- Webhooks: a tenant's endpoints, the messages its changes produced for them, one delivery per
-- message and endpoint (a durable queue, claimed under a lease like operations), and every
-- attempt of each delivery (the delivery log).
CREATE TABLE webhook_endpoint (
    webhook_endpoint_id    TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    -- Subscribed event types, separated by spaces.
    event_types            TEXT NOT NULL,
    enabled                BOOLEAN NOT NULL,
    -- whsec_…; while rotating, the previous one signs too until previous_secret_until.
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    -- Since when every attempt has failed (NULL after a success).
    failing_since          BIGINT,
    -- Why Portico disabled it (410, five days of failures); NULL when a person did.
    disabled_reason        TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX webhook_endpoint_tenant_idx ON webhook_endpoint (tenant_id, created_at);

CREATE TABLE webhook_message (
    webhook_message_id  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    event_type          TEXT NOT NULL,
    -- The body as sent: {"type", "timestamp", "data"}.
    payload             TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX webhook_message_age_idx ON webhook_message (created_at);

CREATE TABLE webhook_delivery (
    webhook_delivery_id  TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    webhook_endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoint (webhook_endpoint_id)
                           ON DELETE CASCADE,
    webhook_message_id   TEXT NOT NULL REFERENCES webhook_message (webhook_message_id)
                           ON DELETE CASCADE,
    state                TEXT NOT NULL
                           CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts             BIGINT NOT NULL DEFAULT 0,
    next_attempt_at      BIGINT NOT NULL,
    lease_owner          TEXT,
    lease_expires_at     BIGINT,
    last_status          BIGINT,
    last_error           TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (state, next_attempt_at);
CREATE INDEX webhook_delivery_endpoint_idx ON webhook_delivery (webhook_endpoint_id, created_at);

CREATE TABLE webhook_attempt (
    webhook_attempt_id   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    webhook_delivery_id  TEXT NOT NULL REFERENCES webhook_delivery (webhook_delivery_id)
                           ON DELETE CASCADE,
    webhook_endpoint_id  TEXT NOT NULL,
    webhook_message_id   TEXT NOT NULL,
    attempted_at         BIGINT NOT NULL,
    -- The HTTP status; NULL when no answer came (refused address, timeout, connection error).
    status               BIGINT,
    latency_ms           BIGINT NOT NULL,
    -- The first bytes of the answer, or why there was none.
    response             TEXT NOT NULL
);
CREATE INDEX webhook_attempt_endpoint_idx ON webhook_attempt (webhook_endpoint_id, attempted_at);
CREATE INDEX webhook_attempt_tenant_idx ON webhook_attempt (tenant_id, attempted_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoint TO portico_app;
GRANT SELECT, INSERT, DELETE ON webhook_message TO portico_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_delivery TO portico_app;
GRANT SELECT, INSERT, DELETE ON webhook_attempt TO portico_app;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoint', 'webhook_message', 'webhook_delivery',
                             'webhook_attempt'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant_id = current_setting(''portico.tenant_id'', true))', t);
        -- The claim and the retention sweep (below) cross tenants.
        EXECUTE format('CREATE POLICY definer_all ON %I TO CURRENT_USER USING (true) '
                       'WITH CHECK (true)', t);
    END LOOP;
END
$$;

-- Claims the oldest due delivery of any tenant: pending and due, or sending under an expired
-- lease; to an enabled endpoint; of a tenant that has made fewer than p_limit attempts since
-- p_since. The only write that looks across tenants.
CREATE FUNCTION portico_claim_webhook_delivery(
    p_worker TEXT, p_lease_until BIGINT, p_now BIGINT, p_since BIGINT, p_limit BIGINT)
RETURNS SETOF webhook_delivery
LANGUAGE sql SECURITY DEFINER AS $$
    UPDATE webhook_delivery d
    SET state = 'sending', lease_owner = p_worker, lease_expires_at = p_lease_until,
        attempts = d.attempts + 1, updated_at = p_now
    WHERE d.webhook_delivery_id = (
        SELECT c.webhook_delivery_id FROM webhook_delivery c
        JOIN webhook_endpoint e ON e.webhook_endpoint_id = c.webhook_endpoint_id
        WHERE ((c.state = 'pending' AND c.next_attempt_at <= p_now)
            OR (c.state = 'sending' AND c.lease_expires_at < p_now))
          AND e.enabled
          AND (SELECT COUNT(*) FROM webhook_attempt a
               WHERE a.tenant_id = c.tenant_id AND a.attempted_at > p_since) < p_limit
        ORDER BY c.next_attempt_at, c.webhook_delivery_id
        LIMIT 1
        FOR UPDATE OF c SKIP LOCKED)
    RETURNING d.*
$$;

-- Removes messages (with their deliveries and attempts) written before p_before.
CREATE FUNCTION portico_prune_webhooks(p_before BIGINT) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER AS $$
    WITH gone AS (DELETE FROM webhook_message m WHERE m.created_at < p_before
                    AND NOT EXISTS (SELECT 1 FROM webhook_delivery d
                                    WHERE d.webhook_message_id = m.webhook_message_id
                                      AND d.state IN ('pending', 'sending'))
                  RETURNING 1)
    SELECT count(*) FROM gone
$$;

DO $$
DECLARE
    f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'portico_claim_webhook_delivery(text, bigint, bigint, bigint, bigint)',
        'portico_prune_webhooks(bigint)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO portico_app', f);
    END LOOP;
END
$$;
