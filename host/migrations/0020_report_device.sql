-- The device an Open311 report was sent from (GeoReport v2 `device_id`): it
-- names the phone, not the request, so it is kept with every report it sent
-- and never deduplicates them. Indexed for a device's own list of reports.
ALTER TABLE reports ADD COLUMN device_id TEXT;
CREATE INDEX reports_device ON reports (device_id);
