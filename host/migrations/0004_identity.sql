-- Unified identity: log-in names, password hashes (argon2id PHC strings), the kind
-- of account, real-name verification for residents, and bearer tokens.

ALTER TABLE users ADD COLUMN username TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
-- 'staff', 'resident' or 'service' (a plugin's identity).
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'staff';
-- Residents: 1 once their real name was verified; anonymous reporters have no account.
ALTER TABLE users ADD COLUMN verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_username ON users (username);

-- Only the sha256 of a token is stored; the token itself is shown once, at log-in.
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    revoked BIGINT
);
CREATE INDEX tokens_user ON tokens (user_id);
