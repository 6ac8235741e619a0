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
    previous_secret_until  INTEGER,
    -- Since when every attempt has failed (NULL after a success).
    failing_since          INTEGER,
    -- Why Portico disabled it (410, five days of failures); NULL when a person did.
    disabled_reason        TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhook_endpoint_tenant_idx ON webhook_endpoint (tenant_id, created_at);

CREATE TABLE webhook_message (
    webhook_message_id  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    event_type          TEXT NOT NULL,
    -- The body as sent: {"type", "timestamp", "data"}.
    payload             TEXT NOT NULL,
    created_at          INTEGER NOT NULL
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
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER NOT NULL,
    lease_owner          TEXT,
    lease_expires_at     INTEGER,
    last_status          INTEGER,
    last_error           TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
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
    attempted_at         INTEGER NOT NULL,
    -- The HTTP status; NULL when no answer came (refused address, timeout, connection error).
    status               INTEGER,
    latency_ms           INTEGER NOT NULL,
    -- The first bytes of the answer, or why there was none.
    response             TEXT NOT NULL
);
CREATE INDEX webhook_attempt_endpoint_idx ON webhook_attempt (webhook_endpoint_id, attempted_at);
CREATE INDEX webhook_attempt_tenant_idx ON webhook_attempt (tenant_id, attempted_at);
