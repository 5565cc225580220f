-- Fees a reader owes and the payments against them (SIP2 fee amount, 37 Fee Paid), and a
-- copy's free-text properties (SIP2 19 Item Status Update). Amounts are whole minor units
-- (fen), never floats. A payment spread over several fees is one row per fee, numbered by
-- `part`; the first part of a payment with a transaction id is unique per reader, so the same
-- payment is never applied twice, even if the engine's own check were bypassed.

CREATE TABLE fees (
    id INTEGER PRIMARY KEY,
    patron_pk INTEGER NOT NULL REFERENCES patrons(id),
    kind TEXT NOT NULL CHECK (kind IN ('overdue', 'damage', 'replacement', 'administrative', 'processing', 'other')),
    amount INTEGER NOT NULL CHECK (amount > 0),  -- minor units (fen)
    currency TEXT NOT NULL DEFAULT 'CNY',         -- ISO 4217
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    closed_at TEXT                                -- when its payments reached the amount
);
CREATE INDEX fees_open_by_patron ON fees (patron_pk, created_at, id) WHERE closed_at IS NULL;
CREATE INDEX fees_by_patron ON fees (patron_pk);

CREATE TABLE fee_payments (
    id INTEGER PRIMARY KEY,
    fee_pk INTEGER NOT NULL REFERENCES fees(id),
    patron_pk INTEGER NOT NULL REFERENCES patrons(id),
    amount INTEGER NOT NULL CHECK (amount > 0),  -- minor units (fen)
    paid_at TEXT NOT NULL,
    payment_type TEXT NOT NULL DEFAULT '',
    transaction_id TEXT NOT NULL DEFAULT '',      -- the payer's id (SIP2 BK); '' = none given
    part INTEGER NOT NULL DEFAULT 0,             -- 0, 1, ...: fees one payment was spread over
    channel TEXT NOT NULL
);
CREATE UNIQUE INDEX fee_payments_once ON fee_payments (patron_pk, transaction_id, part)
    WHERE transaction_id <> '';
CREATE INDEX fee_payments_by_fee ON fee_payments (fee_pk);

ALTER TABLE items ADD COLUMN properties TEXT NOT NULL DEFAULT '';
