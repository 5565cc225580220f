-- Readers' web sessions (issue 15), kept in the store so every worker process, and every
-- gateway on one PostgreSQL, knows a reader who logged in through another. The cookie's token
-- is never stored: only its SHA-256 (hex), so a copy of the table lets nobody in. A session
-- ends at logout, when it has been idle too long, or with its reader.
-- See gateway/circulation/web_sessions.py.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,        -- sha256 hex of the cookie token
    patron_pk INTEGER NOT NULL REFERENCES patrons(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,           -- carried by every form that changes state
    created_at TEXT NOT NULL,           -- ISO 8601 UTC, as every engine stamp
    last_seen_at TEXT NOT NULL,         -- the idle timeout runs from here
    address TEXT NOT NULL DEFAULT ''    -- where the login came from
);
CREATE INDEX web_sessions_by_last_seen ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_by_patron ON web_sessions (patron_pk);
