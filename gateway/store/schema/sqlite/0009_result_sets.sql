-- Result sets kept for later requests (issue 12): SRU's `resultSetId` must work whichever
-- worker process, or whichever gateway on one PostgreSQL, takes the next request. A set keeps
-- its query and the record keys of its first hits, so pages are read, not searched again, and
-- stay the pages of the search that made them however the catalogue or the copies change.
-- See gateway/retrieval/kept.py.
CREATE TABLE result_sets (
    set_id TEXT PRIMARY KEY,         -- unguessable (secrets.token_urlsafe)
    database_name TEXT NOT NULL,
    query TEXT NOT NULL,             -- the query model as JSON, for pages past the kept hits
    total INTEGER NOT NULL,
    record_pks BLOB NOT NULL,        -- the first hits, 64-bit little-endian integers
    available_only INTEGER NOT NULL, -- searched with the availability limit
    ttl INTEGER NOT NULL,            -- seconds of idle time granted
    expires_at REAL NOT NULL         -- seconds since the epoch
);
CREATE INDEX result_sets_by_expiry ON result_sets (expires_at);
