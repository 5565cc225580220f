-- Batches (issue 17): every load and every deletion is a batch with its per-record outcomes,
-- and keeps what it replaced or removed, so `libgate batches undo N` can put it back. The
-- load runs recorded before this version become batches without per-record outcomes
-- (`detailed` = 0): they are listed, and cannot be undone.

ALTER TABLE load_runs RENAME TO batches;
-- load | delete
ALTER TABLE batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'load';
-- running | done | interrupted | undone
ALTER TABLE batches ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
-- OS user, or --by NAME
ALTER TABLE batches ADD COLUMN run_by TEXT NOT NULL DEFAULT '';
-- where it ran (with pid: is it still running?)
ALTER TABLE batches ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE batches ADD COLUMN pid INTEGER;
-- JSON: the files loaded, in order
ALTER TABLE batches ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
-- JSON: match, on_match, profile, ...
ALTER TABLE batches ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
-- JSON: outcome -> records
ALTER TABLE batches ADD COLUMN counts TEXT NOT NULL DEFAULT '{}';
-- 0: recorded before batches kept outcomes
ALTER TABLE batches ADD COLUMN detailed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE batches ADD COLUMN undone_at TEXT;
ALTER TABLE batches ADD COLUMN undone_by TEXT;
-- JSON: what the undo did and kept
ALTER TABLE batches ADD COLUMN undo_report TEXT;
UPDATE batches SET detailed = 0, state = CASE WHEN finished_at IS NULL THEN 'interrupted' ELSE 'done' END;

-- One row per record read (a load) or named (a delete), in order.
CREATE TABLE batch_records (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    position INTEGER NOT NULL,          -- 1, 2, ... over the batch's files in order
    file_no INTEGER NOT NULL,           -- index into batches.files (0 for a delete)
    record_no INTEGER,                  -- the record's number in its file
    record_offset INTEGER,              -- its byte offset (ISO 2709; NULL for XML and deletes)
    database TEXT NOT NULL,
    record_id TEXT,                     -- the record's 001 (or stable id); NULL if unreadable
    outcome TEXT NOT NULL,              -- new | overlay | merged | unchanged | ignored | reject | duplicate | deleted | kept
    matched_by TEXT NOT NULL DEFAULT '',  -- the match point that found the stored record
    matched_id TEXT,                    -- the stored record it matched (its id may differ: isbn)
    copies_created INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',    -- reject, duplicate, ignored, kept: why
    replaced_by INTEGER,                -- --on-duplicate last: the later record (number) that replaced it
    changes TEXT,                       -- overlay: JSON list of field changes against the version before the batch
    PRIMARY KEY (batch_id, position)
) WITHOUT ROWID;
CREATE INDEX batch_records_by_id ON batch_records (batch_id, record_id);

-- A record as it was before the batch first touched it: for an overlay or a delete the whole
-- stored row; for a record the batch added (or only added copies to) just that fact. One row
-- per batch and record (the first touch), so undo restores the version before the batch.
CREATE TABLE record_versions (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    record_pk INTEGER NOT NULL,         -- its id then (restored under it when free)
    database TEXT NOT NULL,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,               -- added | changed | deleted
    format TEXT,
    marc BLOB,
    bib TEXT,
    title TEXT,
    author TEXT,
    year INTEGER,
    digest TEXT,
    sort_title TEXT,
    sort_author TEXT,
    PRIMARY KEY (batch_id, record_pk)
) WITHOUT ROWID;
CREATE INDEX record_versions_by_id ON record_versions (database, record_id, batch_id);

-- The identifiers and browse entries of those versions (overlaid, deleted).
CREATE TABLE version_identifiers (
    batch_id INTEGER NOT NULL,
    record_pk INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (batch_id, record_pk, kind, value)
) WITHOUT ROWID;
CREATE TABLE version_headings (
    batch_id INTEGER NOT NULL,
    record_pk INTEGER NOT NULL,
    field TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    heading TEXT NOT NULL,
    PRIMARY KEY (batch_id, record_pk, field, sort_key)
) WITHOUT ROWID;

-- Copies a batch created, re-described (a MARC overlay) or deleted; for the last two, the
-- copy as it was before.
CREATE TABLE batch_items (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    barcode TEXT NOT NULL,
    action TEXT NOT NULL,               -- created | updated | deleted
    item_pk INTEGER,
    record_pk INTEGER NOT NULL,         -- the record it was on
    library TEXT,
    location TEXT,
    call_number TEXT,
    item_type TEXT,
    status TEXT,
    source TEXT,
    properties TEXT,
    PRIMARY KEY (batch_id, barcode)
) WITHOUT ROWID;
CREATE INDEX batch_items_by_barcode ON batch_items (barcode, batch_id);

-- The circulation rows a deletion took with its copies and records (closed loans and holds:
-- the circulation engine ended or cancelled the open ones first), so undo restores them too.
-- The audit log (circulation_events) keeps every event regardless.
CREATE TABLE batch_loans (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    id INTEGER NOT NULL,
    item_pk INTEGER NOT NULL,
    patron_pk INTEGER NOT NULL,
    record_pk INTEGER NOT NULL,
    checked_out_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    renewals INTEGER NOT NULL,
    returned_at TEXT,
    channel TEXT NOT NULL,
    PRIMARY KEY (batch_id, id)
);
CREATE TABLE batch_holds (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    id INTEGER NOT NULL,
    patron_pk INTEGER NOT NULL,
    record_pk INTEGER NOT NULL,
    state TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    item_pk INTEGER,
    ready_at TEXT,
    pickup_deadline TEXT,
    pickup_desk TEXT,
    closed_at TEXT,
    channel TEXT NOT NULL,
    PRIMARY KEY (batch_id, id)
);
