-- What the bundled department plugins keep between events, each in a private
-- data set of its own department, and the positions of moving sensors.

INSERT INTO datasets (name, title, owner_department, sharing, shared_with, schema) VALUES
    ('hotline-cases', '12345 来电案件记录（重复来电、假性整改）', 'hotline12345', 'private', '[]', '{"type":"object"}'),
    ('chengguan-hotspots', '城管投诉热点（网格·周）与满溢状态', 'chengguan', 'private', '[]', '{"type":"object"}'),
    ('yingji-tracks', '危化品车辆轨迹状态', 'yingji', 'private', '[]', '{"type":"object"}'),
    ('zongzhi-events', '综治网格事件与走访记录', 'zongzhi', 'private', '[]', '{"type":"object"}');

-- A reading of a moving sensor (a vehicle's GPS) carries where it was taken;
-- fixed sensors have no row here and are where the registry says.
CREATE TABLE reading_positions (
    sensor TEXT NOT NULL,
    time BIGINT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sensor, time)
);

-- The last calendar tick (`time.day`, `time.week`) published, so that a
-- restart neither repeats nor skips one.
CREATE TABLE clock_ticks (
    name TEXT PRIMARY KEY,
    last_end BIGINT NOT NULL
);
