-- Attempts counted per key in a window: failed sign-ins per account and client network, and
-- single sign-ons started per client. In the database so that every replica counts against the
-- same numbers. A key is a hash (it never holds an email address or an IP); nothing in it
-- belongs to a tenant, so it needs no row-level security.
CREATE TABLE attempt_window (
    key       TEXT PRIMARY KEY,
    attempts  BIGINT NOT NULL,
    ends_at   BIGINT NOT NULL
);
CREATE INDEX attempt_window_ends_idx ON attempt_window (ends_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON attempt_window TO portico_app;
