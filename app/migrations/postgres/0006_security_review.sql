-- A password set by whoever held an invitation link proves nothing about the email: when the
-- email's owner first signs in through an identity provider that verified it, that password
-- is cleared (and the sessions it opened end).
ALTER TABLE app_user ADD COLUMN password_from_invitation BOOLEAN NOT NULL DEFAULT FALSE;

-- Denied requests are audited at most a few per user and minute; this finds the recent ones.
CREATE INDEX audit_event_denied_idx ON audit_event (tenant_id, user_id, created_at)
    WHERE outcome = 'denied';
