-- Route suggestions: a plugin (granted `route` in its `cases` grant) suggests
-- the department and command level for an open case. A dispatcher accepts one
-- by dispatching with it, or overrides it by dispatching elsewhere; either way
-- the dispatch settles every suggestion still pending, in its transaction.

CREATE TABLE route_suggestions (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    -- The suggesting plugin's name.
    plugin TEXT NOT NULL,
    department TEXT NOT NULL REFERENCES departments (code),
    level TEXT NOT NULL CHECK (level IN ('community', 'street', 'district', 'city')),
    -- How sure the plugin is, 0 to 1.
    score DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 1),
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'accepted', 'overridden')),
    -- Who settled it, and when (the dispatch's actor and time).
    decided_by TEXT,
    decided_at BIGINT
);
CREATE INDEX route_suggestions_case ON route_suggestions (case_id, at);
-- A plugin has at most one pending suggestion per case.
CREATE UNIQUE INDEX route_suggestions_pending ON route_suggestions (case_id, plugin) WHERE outcome = 'pending';
