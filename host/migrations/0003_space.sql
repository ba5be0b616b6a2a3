-- Space: the city's areas, city → district → street → community → grid cell,
-- one row each. Codes: district 6 digits (GB/T 2260), street 9, community 12,
-- grid 14, each extending its parent's; the city has its own 6-digit code.
-- The geometry is a GeoJSON Polygon or MultiPolygon (WGS 84, [lon, lat]) as
-- TEXT; the bounding box beside it lets plain SQL narrow a search by area.
-- Independent of org_units: a command level and a piece of ground are
-- different things, even where they share a code.

CREATE TABLE areas (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('city', 'district', 'street', 'community', 'grid')),
    parent TEXT REFERENCES areas (code),
    geometry TEXT NOT NULL,
    min_lon DOUBLE PRECISION NOT NULL,
    min_lat DOUBLE PRECISION NOT NULL,
    max_lon DOUBLE PRECISION NOT NULL,
    max_lat DOUBLE PRECISION NOT NULL
);

CREATE INDEX areas_parent ON areas (parent);
CREATE INDEX areas_level ON areas (level);
