-- Attempts counted per key in a window: failed sign-ins per account and client network, and
-- single sign-ons started per client. A key is a hash (it never holds an email address or an IP).
CREATE TABLE attempt_window (
    key       TEXT PRIMARY KEY,
    attempts  INTEGER NOT NULL,
    ends_at   INTEGER NOT NULL
);
CREATE INDEX attempt_window_ends_idx ON attempt_window (ends_at);
