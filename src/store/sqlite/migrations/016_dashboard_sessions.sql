-- The dashboard's sign-in sessions: the SHA-256 of the cookie's random token (the token itself is
-- never stored), the key it was opened with, and until when it lasts: `idle_until` moves on with
-- use, never past `expires_at`.
CREATE TABLE dashboard_sessions (
  token_hash  TEXT    PRIMARY KEY,
  key_id      TEXT    NOT NULL,
  tenant_id   TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  idle_until  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_idle ON dashboard_sessions (idle_until);
