-- Live updates: every change a page shows is also an event, numbered per tenant, so a browser
-- that reconnects reads what it missed. Events carry ids, never data: a page re-reads what an
-- event names through the same checks as any other read.
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
