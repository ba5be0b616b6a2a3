-- The command level a step ran at, kept with the transition that ended it,
-- so the KPIs can be given per level as well as per department.
ALTER TABLE case_transitions ADD COLUMN step_level TEXT;
