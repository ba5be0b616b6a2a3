-- Imported CAP 1.2 alerts. An Alert becomes a warning and a case for each grid
-- cell its area covers; an Update or a Cancel names an earlier alert in
-- `references` and acts on the cases of the first alert of that chain (`root`).

CREATE TABLE cap_alerts (
    sender TEXT NOT NULL,
    identifier TEXT NOT NULL,
    sent BIGINT NOT NULL,
    msg_type TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The first alert of the chain, as `sender/identifier`.
    root TEXT NOT NULL,
    warning_id TEXT,
    xml TEXT NOT NULL,
    received BIGINT NOT NULL,
    cancelled BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, identifier)
);

-- The case opened for each grid cell an alert chain covers.
CREATE TABLE cap_alert_cases (
    root TEXT NOT NULL,
    grid TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    PRIMARY KEY (root, grid)
);
