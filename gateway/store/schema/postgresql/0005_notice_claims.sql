-- A sender claims a notice before it sends it, so that several `serve` processes on one
-- database send each notice once. The claim is a lease: `claimed_until` is when another sender
-- may take the notice over (its first sender crashed or hung); both are NULL when nobody
-- holds it. Sending clears them.

ALTER TABLE notices ADD COLUMN claimed_by TEXT;
ALTER TABLE notices ADD COLUMN claimed_until TEXT;
