-- Placeholder on the PIN branch only (issue 11): version 5 belongs to another part of the
-- issue. Delete this file when that part's 0005 is merged (versions must be 1..n).
SELECT 1;
