-- Catalogue: bibliographic records per database, their identifiers, and their copies.

CREATE TABLE bib_records (
    id INTEGER PRIMARY KEY,
    database TEXT NOT NULL,
    record_id TEXT NOT NULL,            -- 001, or a content hash when the record has none
    format TEXT NOT NULL CHECK (format IN ('unimarc', 'marc21')),
    marc BLOB NOT NULL,                 -- UTF-8 ISO 2709 as stored and exported
    bib TEXT NOT NULL,                  -- mapped fields (gateway.catalogue.model.BibRecord)
    title TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    year INTEGER,
    digest TEXT NOT NULL,               -- sha256 of marc + mapped items: "unchanged" on reload
    UNIQUE (database, record_id)
);

CREATE TABLE bib_identifiers (
    record_pk INTEGER NOT NULL REFERENCES bib_records(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('isbn', 'issn', 'isrc')),
    value TEXT NOT NULL,                -- normalised: ISBN-13 digits, ISSN with X, ISRC upper
    PRIMARY KEY (record_pk, kind, value)
);
CREATE INDEX bib_identifiers_value ON bib_identifiers (kind, value);

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    barcode TEXT NOT NULL UNIQUE,       -- unique across the library, all databases
    record_pk INTEGER NOT NULL REFERENCES bib_records(id) ON DELETE RESTRICT,
    library TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    call_number TEXT NOT NULL DEFAULT '',
    item_type TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    source TEXT NOT NULL                -- 'marc' or 'csv': where the copy was last described
);
CREATE INDEX items_record ON items (record_pk);

CREATE TABLE load_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    database TEXT NOT NULL,
    command TEXT NOT NULL,
    report TEXT                          -- the JSON report, once finished
);
