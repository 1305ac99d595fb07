-- Reelay PostgreSQL schema, version 14: the dashboard's sign-in sessions, shared by every API
-- process. The SHA-256 of the cookie's random token (never the token), the key it was opened
-- with, and until when it lasts: `idle_until` moves on with use, never past `expires_at`.
CREATE TABLE dashboard_sessions (
  token_hash  text   PRIMARY KEY,
  key_id      text   NOT NULL,
  tenant_id   text   NOT NULL,
  created_at  bigint NOT NULL,
  idle_until  bigint NOT NULL,
  expires_at  bigint NOT NULL
);
CREATE INDEX dashboard_sessions_idle ON dashboard_sessions (idle_until);
