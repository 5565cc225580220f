-- Search: keyword token streams (FTS5, positions kept for phrases), exact values, browse
-- headings, and sort keys. Token streams are built by gateway.catalogue.indexes; FTS5 only
-- splits them on spaces (every token is letters, digits and marks).

CREATE VIRTUAL TABLE search_fts USING fts5(
    db, title, author, subject, series, publisher,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"
);

CREATE TABLE search_exact (
    database TEXT NOT NULL,
    field TEXT NOT NULL,                 -- clc | language
    value TEXT NOT NULL,                 -- normalised
    record_pk INTEGER NOT NULL REFERENCES bib_records(id) ON DELETE CASCADE,
    PRIMARY KEY (database, field, value, record_pk)
) WITHOUT ROWID;
CREATE INDEX search_exact_record ON search_exact (record_pk);

CREATE TABLE browse_headings (
    id INTEGER PRIMARY KEY,
    database TEXT NOT NULL,
    field TEXT NOT NULL,                 -- title | author | subject | series
    sort_key TEXT NOT NULL,              -- pinyin / alphabetic filing key (normalise.sort_key)
    heading TEXT NOT NULL,               -- as first seen, for display
    UNIQUE (database, field, sort_key)
);

CREATE TABLE browse_entries (
    heading_id INTEGER NOT NULL REFERENCES browse_headings(id) ON DELETE CASCADE,
    record_pk INTEGER NOT NULL REFERENCES bib_records(id) ON DELETE CASCADE,
    PRIMARY KEY (heading_id, record_pk)
) WITHOUT ROWID;
CREATE INDEX browse_entries_record ON browse_entries (record_pk);

ALTER TABLE bib_records ADD COLUMN sort_title TEXT NOT NULL DEFAULT '';
ALTER TABLE bib_records ADD COLUMN sort_author TEXT NOT NULL DEFAULT '';
CREATE INDEX bib_records_sort_title ON bib_records (database, sort_title);
CREATE INDEX bib_records_sort_author ON bib_records (database, sort_author);
CREATE INDEX bib_records_year ON bib_records (database, year);
