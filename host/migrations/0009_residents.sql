-- Residents' real-name identity (实名认证), kept apart from the account itself:
-- the real name, a masked copy of the resident identity card number for display,
-- and a hash of the number salted with the user id for checking a card shown
-- later. The number itself is never stored. `verified` (0004) turns 1 when staff
-- confirm the card; anonymous reporters have no account at all.

ALTER TABLE users ADD COLUMN real_name TEXT;
ALTER TABLE users ADD COLUMN id_number_masked TEXT;
ALTER TABLE users ADD COLUMN id_number_hash TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN verified_by TEXT;
ALTER TABLE users ADD COLUMN created BIGINT NOT NULL DEFAULT 0;
