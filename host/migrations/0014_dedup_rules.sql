-- Deduplication as data, and what a dispatcher decided about it.
--
-- A report repeats an open case of its category family (a code prefix) when
-- the two lie within `radius_m` metres and `window_ms` milliseconds of each
-- other and their score (text similarity, nearness, recency, same code; see
-- host/src/cases/dedup.rs) reaches `threshold`. The longest matching prefix
-- wins; the row with family '' is the fallback, for a code no other row
-- matches, whose family is then its first 4 digits (type + major class).
CREATE TABLE dedup_rules (
    family TEXT PRIMARY KEY,
    radius_m DOUBLE PRECISION NOT NULL CHECK (radius_m > 0 AND radius_m <= 10000),
    window_ms BIGINT NOT NULL CHECK (window_ms > 0 AND window_ms <= 31622400000),
    threshold DOUBLE PRECISION NOT NULL CHECK (threshold >= 0 AND threshold <= 1)
);

-- 部件 (01 + major): a broken asset stays broken where it is until repaired,
-- so a report weeks later still repeats the open case, from close by. 事件
-- (02 + major) come back: garbage piled up today or a stall set up tonight is
-- a new occurrence, so their windows are short; an emergency (0204) is called
-- in by many people at once from a wider area within hours.
INSERT INTO dedup_rules (family, radius_m, window_ms, threshold) VALUES
    ('', 200, 259200000, 0.6),          -- fallback: 3 days
    ('0101', 100, 2592000000, 0.6),     -- 公用设施 (井盖, 路灯, 消防栓): 30 days
    ('0102', 150, 2592000000, 0.6),     -- 道路交通 (标志, 护栏, 公交站): 30 days
    ('0103', 200, 172800000, 0.6),      -- 市容环境 (垃圾箱, 公厕): 2 days
    ('0104', 150, 1209600000, 0.6),     -- 园林绿化: 14 days
    ('0105', 100, 2592000000, 0.6),     -- 房屋土地: 30 days
    ('0106', 100, 1209600000, 0.6),     -- 其他设施: 14 days
    ('0201', 200, 86400000, 0.6),       -- 市容环境 (暴露垃圾, 道路不洁): 1 day
    ('0202', 100, 259200000, 0.6),      -- 宣传广告: 3 days
    ('0203', 300, 604800000, 0.6),      -- 施工管理 (施工扰民, 违法建设): 7 days
    ('0204', 500, 21600000, 0.55),      -- 突发事件 (积水, 燃气泄漏): 6 hours
    ('0205', 150, 43200000, 0.6),       -- 街面秩序 (占道经营, 乱停放): 12 hours
    ('0206', 200, 259200000, 0.6);      -- 其他事件: 3 days

-- A joined report a dispatcher confirmed belongs to its case: who and when.
ALTER TABLE reports ADD COLUMN confirmed_by TEXT;
ALTER TABLE reports ADD COLUMN confirmed_at BIGINT;

-- The case a merged (voided) case went into, so that its ticket leads to the
-- surviving case.
ALTER TABLE cases ADD COLUMN merged_into TEXT REFERENCES cases (id);
