-- Interlibrary loan over ISO 18626 (issue 14), both roles: requests with their local state and
-- ISO 18626 status, the message history, the outgoing messages (an outbox claimed with a lease,
-- kept in order per request), the readers confirmed for ILL, and the request-number counter
-- (one row, taken with UPDATE ... RETURNING, so two processes never get one number).

CREATE TABLE ill_requests (
    id INTEGER PRIMARY KEY,
    number TEXT UNIQUE,                 -- ours (I3: prefix + 8 digits); NULL for a refused lender request
    role TEXT NOT NULL CHECK (role IN ('lender', 'borrower')),
    state TEXT NOT NULL,                -- the local state (gateway/circulation/ill_states.py)
    status TEXT NOT NULL DEFAULT '',    -- the ISO 18626 status last sent (lender) or received (borrower)
    partner TEXT NOT NULL,              -- the other agency (TYPE:VALUE): requester, or the current lender
    partner_url TEXT NOT NULL DEFAULT '',
    our_agency TEXT NOT NULL,           -- our agency id when the request was made
    requesting_agency_request_id TEXT NOT NULL DEFAULT '',
    supplying_agency_request_id TEXT NOT NULL DEFAULT '',
    record_pk INTEGER REFERENCES bib_records(id),   -- the title lent (lender) or the temporary record (borrower)
    item_pk INTEGER REFERENCES items(id),            -- the copy set aside (lender) or the temporary copy (borrower)
    barcode TEXT NOT NULL DEFAULT '',
    loan_id INTEGER REFERENCES loans(id),            -- lender: the loan to the partner's pseudo-reader
    patron_pk INTEGER REFERENCES patrons(id),        -- borrower: our reader
    reader_barcode TEXT NOT NULL DEFAULT '',
    reader_name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL DEFAULT '',
    publisher TEXT NOT NULL DEFAULT '',
    year TEXT NOT NULL DEFAULT '',
    isbn TEXT NOT NULL DEFAULT '',
    issn TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    material_type TEXT NOT NULL DEFAULT '',
    supplier_record_id TEXT NOT NULL DEFAULT '',
    recipient TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    delivery TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',    -- reasonUnfilled / reasonRetry of the last refusal
    due_at TEXT,                        -- the partner's loan (lender) or the lender's due date (borrower)
    renewals_used INTEGER NOT NULL DEFAULT 0,
    rota TEXT NOT NULL DEFAULT '[]',    -- borrower: lenders in order (JSON list of agency ids)
    rota_index INTEGER NOT NULL DEFAULT 0,  -- borrower: the lender being asked now
    fee INTEGER NOT NULL DEFAULT 0,     -- borrower: service fee charged, minor units
    retry_first_seconds INTEGER NOT NULL DEFAULT 30,  -- [ill] retry settings it was filed under
    retry_max_attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- A requester's id is unique per requester: a second request with it is a duplicate.
CREATE UNIQUE INDEX ill_requests_lender_once ON ill_requests (partner, requesting_agency_request_id)
    WHERE role = 'lender';
CREATE INDEX ill_requests_by_item ON ill_requests (item_pk);
CREATE INDEX ill_requests_by_state ON ill_requests (role, state, due_at);

CREATE TABLE ill_messages (
    id INTEGER PRIMARY KEY,
    request_pk INTEGER NOT NULL REFERENCES ill_requests(id),
    at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind TEXT NOT NULL,                 -- Request | SupplyingAgencyMessage | RequestingAgencyMessage | Confirmation
    status TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL DEFAULT '',
    reason_for_message TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '',    -- Y | N | ''
    note TEXT NOT NULL DEFAULT '',
    outbox_pk INTEGER,
    raw_xml TEXT                        -- as received or sent, kept by the front-end when it has it
);
CREATE INDEX ill_messages_by_request ON ill_messages (request_pk, id);

CREATE TABLE ill_outbox (
    id INTEGER PRIMARY KEY,
    request_pk INTEGER NOT NULL REFERENCES ill_requests(id),
    url TEXT NOT NULL,
    message TEXT NOT NULL,              -- the ill_types message as JSON (gateway/circulation/ill_json.py)
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    first_retry_seconds INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,      -- 0: until delivered
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    claimed_by TEXT,
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    confirmation TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ill_outbox_due ON ill_outbox (state, next_attempt_at, id);
CREATE INDEX ill_outbox_by_request ON ill_outbox (request_pk, url, state, id);

CREATE TABLE ill_readers (
    patron_pk INTEGER PRIMARY KEY REFERENCES patrons(id),
    state TEXT NOT NULL CHECK (state IN ('confirmed', 'revoked')),
    changed_at TEXT NOT NULL
);

CREATE TABLE ill_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO ill_counters (name, value) VALUES ('request', 0);
