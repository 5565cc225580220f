-- Circulation: patrons, loans, holds, the audit log and the notice outbox. The rules that must
-- never break are constraints: one open loan per copy, one ready (trapped) hold per copy, one
-- open hold per patron and title.

CREATE TABLE patrons (
    id INTEGER PRIMARY KEY,
    barcode TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    pin_hash TEXT NOT NULL DEFAULT '',          -- scrypt, salted (gateway.circulation.pins)
    category TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    no_show_count INTEGER NOT NULL DEFAULT 0,    -- R11, since the last suspension
    hold_suspended_until TEXT                    -- R11/R15, ISO 8601 UTC
);

CREATE TABLE loans (
    id INTEGER PRIMARY KEY,
    item_pk INTEGER NOT NULL REFERENCES items(id),
    patron_pk INTEGER NOT NULL REFERENCES patrons(id),
    record_pk INTEGER NOT NULL REFERENCES bib_records(id),
    checked_out_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    renewals INTEGER NOT NULL DEFAULT 0,
    returned_at TEXT,
    channel TEXT NOT NULL
);
CREATE UNIQUE INDEX loans_one_open_per_item ON loans (item_pk) WHERE returned_at IS NULL;
CREATE INDEX loans_open_by_patron ON loans (patron_pk) WHERE returned_at IS NULL;
CREATE INDEX loans_open_by_record ON loans (record_pk) WHERE returned_at IS NULL;

CREATE TABLE holds (
    id INTEGER PRIMARY KEY,
    patron_pk INTEGER NOT NULL REFERENCES patrons(id),
    record_pk INTEGER NOT NULL REFERENCES bib_records(id),
    state TEXT NOT NULL CHECK (state IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired', 'no_show')),
    placed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,                    -- R8
    item_pk INTEGER REFERENCES items(id),        -- the trapped copy while ready (R6, R14)
    ready_at TEXT,
    pickup_deadline TEXT,                        -- R9
    pickup_desk TEXT,                            -- R10
    closed_at TEXT,
    channel TEXT NOT NULL,
    CHECK ((state = 'ready') = (item_pk IS NOT NULL AND pickup_deadline IS NOT NULL))
);
CREATE UNIQUE INDEX holds_one_open_per_patron_title ON holds (patron_pk, record_pk)
    WHERE state IN ('waiting', 'ready');
CREATE UNIQUE INDEX holds_one_ready_per_item ON holds (item_pk) WHERE state = 'ready';
CREATE INDEX holds_queue ON holds (record_pk, state, placed_at, id);
CREATE INDEX holds_by_patron ON holds (patron_pk, state);

CREATE TABLE circulation_events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    patron_pk INTEGER,
    item_pk INTEGER,
    record_pk INTEGER,
    hold_id INTEGER,
    loan_id INTEGER,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX circulation_events_at ON circulation_events (at);

CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    patron_pk INTEGER NOT NULL REFERENCES patrons(id),
    kind TEXT NOT NULL,
    language TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    sent_at TEXT
);
CREATE INDEX notices_due ON notices (state, next_attempt_at);

-- The audit log is append-only: a change to a past event is refused by the database itself.
CREATE TRIGGER circulation_events_no_update BEFORE UPDATE ON circulation_events BEGIN SELECT RAISE(ABORT, 'circulation_events is append-only'); END;
CREATE TRIGGER circulation_events_no_delete BEFORE DELETE ON circulation_events BEGIN SELECT RAISE(ABORT, 'circulation_events is append-only'); END;
