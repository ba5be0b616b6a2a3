-- CAP senders the operator trusts (an official warning service): their alerts
-- are imported by the command centre alone (a dispatcher, leader or operator
-- role held at city level), so no one else may speak, update or cancel in
-- their name. Replaced whole by `PUT /api/cap/trusted-senders`.
CREATE TABLE cap_trusted_senders (
    sender TEXT PRIMARY KEY,
    note TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added BIGINT NOT NULL
);
