-- Reference data every installation starts with: the departments named in the
-- design, the city org unit, and the shared data sets the bundled plugins use.

INSERT INTO departments (code, name) VALUES
    ('command-center', '城市运行管理中心'),
    ('chengguan', '城市管理局'),
    ('yingji', '应急管理局'),
    ('zongzhi', '社会治安综合治理中心'),
    ('hotline12345', '12345 政务服务便民热线'),
    ('police', '公安局'),
    ('environment', '生态环境局'),
    ('housing', '住房和城乡建设局'),
    ('transport', '交通运输局'),
    ('water', '水务局');

INSERT INTO org_units (code, name, level, parent) VALUES
    ('320100', '市', 'city', NULL);

INSERT INTO datasets (name, title, owner_department, sharing, shared_with, schema) VALUES
    ('components', '城市部件', 'chengguan', 'public', '[]',
     '{"type":"object","required":["code","class","location"]}'),
    ('hazmat-routes', '危化品运输核准路线', 'yingji', 'shared', '["yingji","police","transport"]',
     '{"type":"object","required":["vehicle","corridor"]}'),
    ('vulnerable-residents', '重点关爱人员', 'zongzhi', 'private', '[]',
     '{"type":"object","required":["name","address"]}');

-- Kinds of IoT sensors the data foundation accepts, with their units.
CREATE TABLE sensor_kinds (
    kind TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    title TEXT NOT NULL
);

INSERT INTO sensor_kinds (kind, unit, title) VALUES
    ('water-level', 'm', '河道与积水水位'),
    ('gas', '%LEL', '可燃气体浓度'),
    ('vehicle-gps', 'deg', '危化品车辆定位'),
    ('bin-fill', '%', '垃圾桶满溢度'),
    ('rainfall', 'mm/h', '雨量');
