-- The sensor registry is listed by kind and by owning department. Readings
-- need nothing beyond their primary key (sensor, time), which serves the
-- latest value, time windows and bucketed aggregates of one sensor.
CREATE INDEX sensors_by_kind ON sensors (kind, id);
CREATE INDEX sensors_by_department ON sensors (department, id);
