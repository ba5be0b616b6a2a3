-- The case engine: one intake for every report, case categories, and the
-- lifecycle of GB/T 30428 with every transition recorded.

-- Case categories: 6 digits = 2 type (01 部件 component, 02 事件 incident)
-- + 2 major class + 2 minor class. The family (first 4 digits) groups
-- categories for deduplication; `department` is the usual responsible one.
CREATE TABLE categories (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('component', 'incident')),
    major_name TEXT NOT NULL,
    department TEXT REFERENCES departments (code)
);

-- 部件 problems (a damaged or missing component), one per component class.
INSERT INTO categories (code, name, kind, major_name, department)
SELECT '01' || major || minor, name, 'component', major_name, department FROM component_classes;

-- 事件 (incidents), after the major classes of GB/T 30428: city appearance and
-- environment, advertising, construction management, emergencies, street order, other.
INSERT INTO categories (code, name, kind, major_name, department) VALUES
    ('020101', '暴露垃圾', 'incident', '市容环境', 'chengguan'),
    ('020102', '积存垃圾渣土', 'incident', '市容环境', 'chengguan'),
    ('020103', '道路不洁', 'incident', '市容环境', 'chengguan'),
    ('020104', '水域不洁', 'incident', '市容环境', 'water'),
    ('020105', '焚烧垃圾树叶', 'incident', '市容环境', 'environment'),
    ('020106', '油烟污染', 'incident', '市容环境', 'environment'),
    ('020107', '噪声扰民', 'incident', '市容环境', 'environment'),
    ('020201', '非法小广告', 'incident', '宣传广告', 'chengguan'),
    ('020202', '违章张贴悬挂广告', 'incident', '宣传广告', 'chengguan'),
    ('020301', '施工扰民', 'incident', '施工管理', 'housing'),
    ('020302', '违法建设', 'incident', '施工管理', 'chengguan'),
    ('020303', '道路破损', 'incident', '施工管理', 'transport'),
    ('020401', '路面积水内涝', 'incident', '突发事件', 'yingji'),
    ('020402', '燃气泄漏', 'incident', '突发事件', 'yingji'),
    ('020403', '危化品运输异常', 'incident', '突发事件', 'yingji'),
    ('020404', '火灾隐患', 'incident', '突发事件', 'yingji'),
    ('020405', '井盖缺失致险', 'incident', '突发事件', 'chengguan'),
    ('020501', '占道经营', 'incident', '街面秩序', 'chengguan'),
    ('020502', '无照经营游商', 'incident', '街面秩序', 'chengguan'),
    ('020503', '机动车乱停放', 'incident', '街面秩序', 'police'),
    ('020504', '非机动车乱停放', 'incident', '街面秩序', 'chengguan'),
    ('020601', '邻里纠纷', 'incident', '其他事件', 'zongzhi'),
    ('020602', '安全隐患', 'incident', '其他事件', 'zongzhi'),
    ('020603', '重点人员走访逾期', 'incident', '其他事件', 'zongzhi'),
    ('020604', '其他', 'incident', '其他事件', 'command-center');

-- Cases: `status` holds the lifecycle stage; beside it the two conditions, the
-- public ticket number, the area (grid code) and when the stage began.
ALTER TABLE cases ADD COLUMN ticket TEXT;
ALTER TABLE cases ADD COLUMN area TEXT;
ALTER TABLE cases ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN extension_pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN stage_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN updated BIGINT NOT NULL DEFAULT 0;
-- Incremented by every transition: a transition applies only to the version it read.
ALTER TABLE cases ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX cases_ticket ON cases (ticket);
CREATE INDEX cases_status ON cases (status);

-- Every report as it came in, whatever its channel; several reports may end
-- in one case. The caller's name and phone (hotline) are personal data and
-- never leave the staff views.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    idempotency_key TEXT,
    reporter TEXT,
    caller_name TEXT,
    caller_phone TEXT,
    category_code TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    address TEXT,
    evidence TEXT NOT NULL DEFAULT '[]',
    received BIGINT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id)
);
-- A resubmission with the same key on the same channel is the same report.
CREATE UNIQUE INDEX reports_idempotency ON reports (channel, idempotency_key);
CREATE INDEX reports_case ON reports (case_id);

-- Every transition, in order per case: who, when, why, and where it sent the case.
CREATE TABLE case_transitions (
    case_id TEXT NOT NULL REFERENCES cases (id),
    seq BIGINT NOT NULL,
    action TEXT NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    department TEXT,
    PRIMARY KEY (case_id, seq)
);
CREATE INDEX case_transitions_at ON case_transitions (at);
