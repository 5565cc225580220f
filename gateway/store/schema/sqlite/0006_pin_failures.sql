-- Wrong reader PINs, shared by every gateway process (issue 11): the back-off is decided from
-- these rows, so two processes see the same failures and a restart forgets nothing.
-- One row per (reader, source address); reader '' is one address's failures over all readers,
-- source '' is one reader's failures from every address. A failure older than the forgiveness
-- window ([circulation] pin_forgiveness_seconds) no longer counts.
CREATE TABLE pin_failures (
    reader TEXT NOT NULL,          -- the reader's barcode; '' = any reader
    source TEXT NOT NULL,          -- the address the PIN came from; '' = any address
    failures INTEGER NOT NULL CHECK (failures >= 0),
    window_start TEXT NOT NULL,    -- the first failure still counted
    last_failure TEXT NOT NULL,    -- the back-off runs from here
    last_terminal TEXT NOT NULL DEFAULT '',  -- login@address of the last failure, for staff
    PRIMARY KEY (reader, source)
);
CREATE INDEX pin_failures_by_last ON pin_failures (last_failure);
