-- The provider's control plane over HTTP (control-plane API v1).

-- An operation the control plane accepted (202) stays 'running' with no lease owner and a
-- lease that expires when it is next to be polled; dispatched_at tells a poll from a send.
-- Callbacks apply only with a seq above last_seq; progress is what the page shows meanwhile.
ALTER TABLE operation ADD COLUMN dispatched_at INTEGER;
ALTER TABLE operation ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operation ADD COLUMN progress_message TEXT;
ALTER TABLE operation ADD COLUMN progress_percent INTEGER;

-- The control plane's own id of an instance, and when it last confirmed the instance's state.
ALTER TABLE instance ADD COLUMN external_id TEXT;
ALTER TABLE instance ADD COLUMN observed_at INTEGER;
ALTER TABLE instance ADD COLUMN last_event_seq INTEGER NOT NULL DEFAULT 0;
-- Since when reconciliation has not found an instance the control plane once reported.
ALTER TABLE instance ADD COLUMN missing_since INTEGER;

-- The webhook-id of every signed callback accepted in the last minutes: a replay is refused.
CREATE TABLE control_plane_message (
    message_id   TEXT PRIMARY KEY,
    received_at  INTEGER NOT NULL
);
CREATE INDEX control_plane_message_age_idx ON control_plane_message (received_at);
