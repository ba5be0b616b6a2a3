-- Foundation tables. The SQL is kept portable: the same file runs on SQLite and
-- PostgreSQL. Times are milliseconds since the Unix epoch (BIGINT), JSON is TEXT.

CREATE TABLE departments (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

-- Four command levels: city, district, street, community; grid cells below.
CREATE TABLE org_units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    parent TEXT REFERENCES org_units (code)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    department TEXT REFERENCES departments (code),
    org_unit TEXT NOT NULL REFERENCES org_units (code)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    org_unit TEXT NOT NULL REFERENCES org_units (code),
    PRIMARY KEY (user_id, role, org_unit)
);

-- Structured data sets with an owner and a sharing level:
-- 'public', 'shared' (with the departments in shared_with, a JSON array) or 'private'.
CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    owner_department TEXT NOT NULL REFERENCES departments (code),
    sharing TEXT NOT NULL,
    shared_with TEXT NOT NULL DEFAULT '[]',
    schema TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE records (
    dataset TEXT NOT NULL REFERENCES datasets (name),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (dataset, key)
);

CREATE TABLE sensors (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    department TEXT NOT NULL REFERENCES departments (code)
);

CREATE TABLE readings (
    sensor TEXT NOT NULL REFERENCES sensors (id),
    time BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sensor, time)
);

CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    category_code TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    department TEXT REFERENCES departments (code),
    created BIGINT NOT NULL
);

CREATE TABLE case_notes (
    case_id TEXT NOT NULL REFERENCES cases (id),
    at BIGINT NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE warnings (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    category TEXT NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    urgency TEXT NOT NULL,
    certainty TEXT NOT NULL,
    headline TEXT NOT NULL,
    body TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created BIGINT NOT NULL
);

-- Append-only, hash-chained: hash = sha256(prev_hash | seq | at | actor | action | subject | outcome | detail).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
