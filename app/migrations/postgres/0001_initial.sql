-- Timestamps are Unix milliseconds (UTC); ids are opaque text.
CREATE TABLE tenant (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    plan_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE app_user (
    user_id        TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE membership (
    tenant_id   TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX membership_user_idx ON membership (user_id);

-- session_id is the SHA-256 of the cookie's token: a stolen database does not yield live cookies.
CREATE TABLE session (
    session_id    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    origin        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX session_user_idx ON session (user_id);

CREATE TABLE instance (
    instance_id       TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    plan_id           TEXT NOT NULL,
    environment       TEXT NOT NULL,
    region            TEXT NOT NULL,
    status            TEXT NOT NULL,
    status_reason     TEXT,
    replicas          BIGINT NOT NULL,
    cpu_millicores    BIGINT NOT NULL,
    memory_mib        BIGINT NOT NULL,
    storage_gib       BIGINT NOT NULL,
    parameters        TEXT NOT NULL,
    endpoints         TEXT NOT NULL,
    delete_protected  BOOLEAN NOT NULL DEFAULT FALSE,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE operation (
    operation_id      TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    instance_id       TEXT NOT NULL REFERENCES instance (instance_id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    -- The request as JSON: what the worker executes and what an idempotent retry must match.
    request           TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    requested_by      TEXT NOT NULL,
    requested_role    TEXT NOT NULL,
    request_id        TEXT,
    idempotency_key   TEXT,
    -- The instance's status when the operation was requested; a failure returns to it.
    previous_status   TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    not_before        BIGINT NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX operation_instance_idx ON operation (instance_id);
CREATE INDEX operation_claim_idx ON operation (state, not_before, created_at);

-- audit_seq orders events written within the same millisecond.
CREATE TABLE audit_event (
    audit_seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_event_id  TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL REFERENCES tenant (tenant_id) ON DELETE CASCADE,
    user_id         TEXT,
    actor_email     TEXT,
    role            TEXT,
    instance_id     TEXT,
    instance_name   TEXT,
    operation_id    TEXT,
    operation       TEXT,
    parameters      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    reason          TEXT,
    request_id      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_event_tenant_idx ON audit_event (tenant_id, created_at);
