-- Step deadlines and the citizen loop.
--
-- A case's clock runs per step: accept (reported), register (accepted),
-- dispatch (registered), dispose (dispatched and in progress), send-to-check
-- (disposed), check (checking) and close (checked). Each step has a limit per
-- category (the longest matching code prefix wins; '' matches all) in working
-- hours or working days, on the working calendar of the case's jurisdiction
-- (the longest org unit code prefixing its area; a built-in UTC+8 office
-- calendar otherwise). Suspension stops the clock; an approved extension adds
-- to the limit.

CREATE TABLE step_limits (
    category_prefix TEXT NOT NULL,
    step TEXT NOT NULL CHECK (step IN ('accept', 'register', 'dispatch', 'dispose', 'send-to-check', 'check', 'close')),
    unit TEXT NOT NULL CHECK (unit IN ('hours', 'days')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (category_prefix, step)
);

INSERT INTO step_limits (category_prefix, step, unit, amount) VALUES
    ('', 'accept', 'hours', 1),
    ('', 'register', 'hours', 2),
    ('', 'dispatch', 'hours', 2),
    ('', 'dispose', 'days', 3),
    ('', 'send-to-check', 'hours', 4),
    ('', 'check', 'days', 1),
    ('', 'close', 'hours', 4),
    -- 部件 problems: two working days to repair or replace.
    ('01', 'dispose', 'days', 2),
    -- Emergencies: dispatched within the hour, handled within four working hours.
    ('0204', 'dispatch', 'hours', 1),
    ('0204', 'dispose', 'hours', 4),
    -- Street order: one working day.
    ('0205', 'dispose', 'days', 1);

-- A jurisdiction's working calendar (JSON: utc_offset_minutes, periods,
-- weekend, holidays, workdays).
CREATE TABLE calendars (
    org_unit TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

ALTER TABLE cases ADD COLUMN step TEXT;
ALTER TABLE cases ADD COLUMN step_since BIGINT;
-- Suspended spans of the current step: a JSON array of [from, to].
ALTER TABLE cases ADD COLUMN step_paused TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cases ADD COLUMN suspended_since BIGINT;
-- Working time added to the current step's limit by approved extensions.
ALTER TABLE cases ADD COLUMN step_extra_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN pending_extension_ms BIGINT NOT NULL DEFAULT 0;
-- The step last reported overdue, so each overdue step is announced once.
ALTER TABLE cases ADD COLUMN overdue_step TEXT;

-- The step a transition was taken in, whether it ended that step, its
-- deadline, and the department the case was with during it, so that the
-- evaluation can be recomputed from the transitions alone.
ALTER TABLE case_transitions ADD COLUMN step TEXT;
ALTER TABLE case_transitions ADD COLUMN due BIGINT;
ALTER TABLE case_transitions ADD COLUMN step_ended BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_transitions ADD COLUMN step_department TEXT;
CREATE INDEX case_transitions_step ON case_transitions (step, at);

-- Citizens' ratings of a closed case; an unsatisfied one reopens it.
CREATE TABLE case_ratings (
    case_id TEXT NOT NULL REFERENCES cases (id),
    at BIGINT NOT NULL,
    satisfied BIGINT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    rated_by TEXT NOT NULL
);
CREATE INDEX case_ratings_case ON case_ratings (case_id);
