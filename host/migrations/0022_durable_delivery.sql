-- Durable delivery to plugins. Every event that some plugin subscribes to is
-- appended to this log before it is handed to the plugins, and kept until
-- every plugin that wants it has finished with it: a plugin that is
-- quarantined, disabled, being upgraded, behind, or stopped with the server
-- gets its events later, in order, each once.
CREATE TABLE bus_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    source TEXT NOT NULL,
    time BIGINT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    payload TEXT NOT NULL,
    -- When it was appended (ms since the epoch, the server's own clock): how
    -- long an event has waited for a plugin.
    appended BIGINT NOT NULL
);

-- One row per durable subscriber (a plugin): the topics it subscribes to,
-- space-separated, and the last event it has finished with.
CREATE TABLE bus_cursors (
    subscriber TEXT PRIMARY KEY,
    patterns TEXT NOT NULL,
    seq BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

-- Events a plugin failed on again and again (traps, CPU, memory, timeouts),
-- set aside so that the plugin goes on with the next one. An operator lists,
-- retries or drops them (`/api/plugins/{name}/dead-letters`, `yiwang plugin
-- dead-letters`). `state` is `dead`, or `retry` while a retry is asked for.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    source TEXT NOT NULL,
    time BIGINT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_at BIGINT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX dead_letters_by_plugin ON dead_letters (plugin, seq);
