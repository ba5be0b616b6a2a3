-- The version history of every plugin: each load, upgrade, hold, approval,
-- refusal, rollback, enabling and disabling, in order. A version rolled back
-- is remembered by its digest, so that the same package is not loaded again
-- by itself (after a restart, or when the watcher sees its folder again).
CREATE TABLE plugin_history (
    id TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    -- loaded, upgraded, held, approved, refused, rolled-back, disabled, enabled, removed
    event TEXT NOT NULL,
    at BIGINT NOT NULL,
    -- Who: `host` for the watcher and automatic rollback, `user:<id>` for an operator.
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX plugin_history_plugin ON plugin_history (plugin, at);
