-- Structured records grow up: each data set declares a JSON Schema (already in
-- `datasets.schema`), the field that keys its records, the host-side checks it
-- runs beyond the schema, and how often its owner is expected to update it;
-- each record knows the area (org unit / grid code) it belongs to and who last
-- wrote it, which is what level-scoped reads and sharing accountability use.

ALTER TABLE datasets ADD COLUMN key_field TEXT;
-- A JSON array of built-in check names, e.g. ["component-code"].
ALTER TABLE datasets ADD COLUMN checks TEXT NOT NULL DEFAULT '[]';
-- Expected update interval in hours; NULL when none is promised.
ALTER TABLE datasets ADD COLUMN update_interval_hours BIGINT;
ALTER TABLE datasets ADD COLUMN created BIGINT NOT NULL DEFAULT 0;

-- The org unit (area code: district 6, street 9, community 12, grid 14 digits)
-- the record belongs to; NULL for records that belong to no one place.
ALTER TABLE records ADD COLUMN area TEXT;
ALTER TABLE records ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
CREATE INDEX records_area ON records (dataset, area);
CREATE INDEX records_updated ON records (dataset, updated);

-- Classes of 部件 (city components), after GB/T 30428.2: a 2-digit major class
-- and a 2-digit minor class within it. A component's 16-digit code is the
-- 6-digit district code, the major and minor class, and a 6-digit serial.
CREATE TABLE component_classes (
    major TEXT NOT NULL,
    minor TEXT NOT NULL,
    major_name TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The department that usually maintains this class.
    department TEXT REFERENCES departments (code),
    PRIMARY KEY (major, minor)
);

INSERT INTO component_classes (major, minor, major_name, name, department) VALUES
    ('01', '01', '公用设施', '上水井盖', 'water'),
    ('01', '02', '公用设施', '污水井盖', 'water'),
    ('01', '03', '公用设施', '雨水井盖', 'water'),
    ('01', '04', '公用设施', '雨水箅子', 'water'),
    ('01', '05', '公用设施', '电力井盖', 'housing'),
    ('01', '06', '公用设施', '路灯井盖', 'chengguan'),
    ('01', '07', '公用设施', '通信井盖', 'housing'),
    ('01', '08', '公用设施', '燃气井盖', 'housing'),
    ('01', '09', '公用设施', '热力井盖', 'housing'),
    ('01', '10', '公用设施', '无主井盖', 'chengguan'),
    ('01', '11', '公用设施', '消火栓', 'yingji'),
    ('01', '12', '公用设施', '路灯', 'chengguan'),
    ('01', '13', '公用设施', '变电箱', 'housing'),
    ('01', '14', '公用设施', '通信交接箱', 'housing'),
    ('02', '01', '道路交通', '停车场', 'transport'),
    ('02', '02', '道路交通', '公交站亭', 'transport'),
    ('02', '03', '道路交通', '过街天桥', 'transport'),
    ('02', '04', '道路交通', '地下通道', 'transport'),
    ('02', '05', '道路交通', '交通标志牌', 'police'),
    ('02', '06', '道路交通', '交通信号灯', 'police'),
    ('02', '07', '道路交通', '道路护栏', 'transport'),
    ('02', '08', '道路交通', '路名牌', 'chengguan'),
    ('02', '09', '道路交通', '非机动车停放架', 'chengguan'),
    ('03', '01', '市容环境', '公共厕所', 'chengguan'),
    ('03', '02', '市容环境', '垃圾箱', 'chengguan'),
    ('03', '03', '市容环境', '垃圾房', 'chengguan'),
    ('03', '04', '市容环境', '广告牌匾', 'chengguan'),
    ('03', '05', '市容环境', '灯箱霓虹灯', 'chengguan'),
    ('03', '06', '市容环境', '公共座椅', 'chengguan'),
    ('03', '07', '市容环境', '报刊亭', 'chengguan'),
    ('03', '08', '市容环境', '信息亭', 'chengguan'),
    ('04', '01', '园林绿化', '古树名木', 'chengguan'),
    ('04', '02', '园林绿化', '行道树', 'chengguan'),
    ('04', '03', '园林绿化', '护树设施', 'chengguan'),
    ('04', '04', '园林绿化', '绿地', 'chengguan'),
    ('04', '05', '园林绿化', '雕塑', 'chengguan'),
    ('05', '01', '房屋土地', '宣传栏', 'chengguan'),
    ('05', '02', '房屋土地', '人防设施', 'yingji'),
    ('05', '03', '房屋土地', '危房', 'housing'),
    ('06', '01', '其他设施', '重大危险源', 'yingji'),
    ('06', '02', '其他设施', '工地', 'housing'),
    ('06', '03', '其他设施', '河堤', 'water'),
    ('06', '04', '其他设施', '防汛设施', 'yingji'),
    ('06', '05', '其他设施', '监控电子眼', 'police');

-- The shipped data sets get full schemas.
UPDATE datasets SET key_field = 'code', checks = '["component-code"]', update_interval_hours = 720,
    schema = '{"type":"object","required":["code","major","minor","name","location","status"],"properties":{"code":{"type":"string","pattern":"^[0-9]{16}$","description":"16 位部件编码：6 位区县代码 + 2 位大类 + 2 位小类 + 6 位流水号"},"major":{"type":"string","enum":["01","02","03","04","05","06"],"description":"大类：01 公用设施 02 道路交通 03 市容环境 04 园林绿化 05 房屋土地 06 其他设施"},"minor":{"type":"string","pattern":"^[0-9]{2}$"},"name":{"type":"string","minLength":1,"maxLength":100},"location":{"type":"object","required":["lat","lon"],"properties":{"lat":{"type":"number","minimum":-90,"maximum":90},"lon":{"type":"number","minimum":-180,"maximum":180}},"additionalProperties":false},"status":{"type":"string","enum":["intact","damaged","missing","removed"]},"address":{"type":"string","maxLength":200},"owner":{"type":"string","maxLength":100,"description":"权属单位"},"maintainer":{"type":"string","maxLength":100,"description":"养护单位"},"installed":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},"area":{"type":"string","pattern":"^[0-9]{6,14}$"}},"additionalProperties":false,"x-expected":["address","owner","maintainer"]}'
WHERE name = 'components';

UPDATE datasets SET key_field = 'vehicle', update_interval_hours = 168,
    schema = '{"type":"object","required":["vehicle","corridor"],"properties":{"vehicle":{"type":"string","minLength":1,"maxLength":32,"description":"车牌号"},"carrier":{"type":"string"},"cargo":{"type":"string","description":"危化品类别"},"corridor":{"type":"array","minItems":2,"items":{"type":"array","prefixItems":[{"type":"number","minimum":-180,"maximum":180},{"type":"number","minimum":-90,"maximum":90}],"minItems":2,"maxItems":2},"description":"核准路线中心线，[lon, lat] 点列"},"width_m":{"type":"number","exclusiveMinimum":0},"restricted":{"type":"array","items":{"type":"string"}}},"x-expected":["carrier","cargo","width_m"]}'
WHERE name = 'hazmat-routes';

UPDATE datasets SET update_interval_hours = 720,
    schema = '{"type":"object","required":["name","address"],"properties":{"name":{"type":"string","minLength":1},"address":{"type":"string","minLength":1},"category":{"type":"string","enum":["elderly-alone","disabled","left-behind-child","special-care","other"]},"location":{"type":"object","required":["lat","lon"],"properties":{"lat":{"type":"number","minimum":-90,"maximum":90},"lon":{"type":"number","minimum":-180,"maximum":180}}},"visit_every_days":{"type":"integer","minimum":1},"last_visit":{"type":"string"},"area":{"type":"string","pattern":"^[0-9]{6,14}$"}},"x-expected":["category","location","visit_every_days","last_visit"]}'
WHERE name = 'vulnerable-residents';

-- Org units are the administrative areas: every area already loaded becomes the
-- org unit of the same code (later loads keep the two in step).
INSERT INTO org_units (code, name, level, parent)
SELECT code, name, level, parent FROM areas WHERE code NOT IN (SELECT code FROM org_units);
