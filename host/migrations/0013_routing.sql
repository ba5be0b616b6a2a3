-- Routing: category + area → the responsible department and the command level
-- that handles the case. The rule with the longest category prefix wins, then
-- the longest area prefix ('' matches everything). A case no rule matches
-- waits in the command centre's manual queue.

CREATE TABLE routing_rules (
    category_prefix TEXT NOT NULL,
    area_prefix TEXT NOT NULL,
    department TEXT NOT NULL REFERENCES departments (code),
    level TEXT NOT NULL CHECK (level IN ('community', 'street', 'district', 'city')),
    PRIMARY KEY (category_prefix, area_prefix)
);

-- 部件 problems go to the department maintaining the class, handled by the street.
INSERT INTO routing_rules (category_prefix, area_prefix, department, level)
SELECT code, '', department, 'street' FROM categories WHERE kind = 'component' AND department IS NOT NULL;

INSERT INTO routing_rules (category_prefix, area_prefix, department, level) VALUES
    ('0201', '', 'chengguan', 'street'),
    ('020104', '', 'water', 'district'),
    ('020105', '', 'environment', 'district'),
    ('020106', '', 'environment', 'district'),
    ('020107', '', 'environment', 'district'),
    ('0202', '', 'chengguan', 'street'),
    ('0204', '', 'yingji', 'district'),
    ('020405', '', 'chengguan', 'street'),
    ('0205', '', 'chengguan', 'street'),
    ('020503', '', 'police', 'district'),
    ('020601', '', 'zongzhi', 'community'),
    ('020602', '', 'zongzhi', 'community'),
    ('020603', '', 'zongzhi', 'community');

-- The command level handling a case, set at dispatch and raised by escalation.
ALTER TABLE cases ADD COLUMN level TEXT;

-- 吹哨报到: departments a street or district called in to join a case.
CREATE TABLE case_call_ins (
    case_id TEXT NOT NULL REFERENCES cases (id),
    department TEXT NOT NULL REFERENCES departments (code),
    called_by TEXT NOT NULL,
    at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (case_id, department)
);
