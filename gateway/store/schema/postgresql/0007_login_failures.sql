-- Failed logins (SIP2 terminal passwords; the portal's next), shared by every gateway process
-- (issue 11): the login throttle is decided from these rows, so two processes see the same
-- failures and a restart forgets nothing. One row per (service, counter, key): kind 'address'
-- counts one address's failures over all accounts, kind 'account' one account's failures from
-- every untrusted address. See gateway/login_failures.py.
CREATE TABLE login_failures (
    service TEXT NOT NULL,         -- 'sip2'
    kind TEXT NOT NULL CHECK (kind IN ('address', 'account')),
    login_key TEXT NOT NULL,       -- the address, or the account's login
    failures INTEGER NOT NULL CHECK (failures >= 0),
    last_failure DOUBLE PRECISION NOT NULL,  -- seconds since the epoch; the delay runs from here
    PRIMARY KEY (service, kind, login_key)
);
CREATE INDEX login_failures_by_last ON login_failures (service, last_failure);
