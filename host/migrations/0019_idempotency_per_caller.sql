-- An idempotency key belongs to the caller who sent it: the same key from
-- another caller is another report. `idempotency_scope` is the reporter as the
-- intake names it (a user id, `user:<id>` for an importer, `plugin.<name>`),
-- '' for an anonymous report; `request_hash` is the sha256 of the report as
-- first sent, so that the key reused with another body is refused rather than
-- answered with the original.
ALTER TABLE reports ADD COLUMN idempotency_scope TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN request_hash TEXT;
UPDATE reports SET idempotency_scope = COALESCE(reporter, '') WHERE idempotency_key IS NOT NULL;
DROP INDEX reports_idempotency;
CREATE UNIQUE INDEX reports_idempotency_per_caller ON reports (channel, idempotency_scope, idempotency_key);
