-- The search index moves to Tantivy (gateway/catalogue/textindex.py), derived from the store.
-- A change sequence lets every process catch its index up: each write of catalogue records
-- takes the next `last_seq` (the row stays locked until commit, so values commit in order)
-- and stamps it on the records it wrote; a deleted record leaves a tombstone. `store_id` tells
-- an index which store it was built from.

CREATE TABLE catalogue_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    store_id TEXT NOT NULL
);
INSERT INTO catalogue_changes (id, last_seq, store_id)
    VALUES (1, 1, md5(random()::text || clock_timestamp()::text));

ALTER TABLE bib_records ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 1;
CREATE INDEX bib_records_change_seq ON bib_records (change_seq, id);

CREATE TABLE search_tombstones (
    record_pk BIGINT PRIMARY KEY,
    change_seq BIGINT NOT NULL
);
CREATE INDEX search_tombstones_seq ON search_tombstones (change_seq);

CREATE FUNCTION bib_records_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE catalogue_changes SET last_seq = last_seq + 1 WHERE id = 1; INSERT INTO search_tombstones (record_pk, change_seq) SELECT OLD.id, last_seq FROM catalogue_changes WHERE id = 1 ON CONFLICT (record_pk) DO UPDATE SET change_seq = EXCLUDED.change_seq; RETURN OLD; END $$;
CREATE TRIGGER bib_records_tombstone AFTER DELETE ON bib_records FOR EACH ROW EXECUTE FUNCTION bib_records_tombstone();

DROP TABLE search_docs;
DROP TABLE search_exact;
