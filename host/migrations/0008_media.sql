-- Unstructured media (photos, audio, video clips, documents) in a
-- content-addressed blob store. The bytes live in files named by their sha256
-- under <data-dir>/media; a row is inserted only once its file is durable, so a
-- row never lacks its blob (a blob may lack its row after a failed insert, and
-- gets it when the same bytes are uploaded again).

CREATE TABLE media (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('photo', 'audio', 'video', 'document')),
    -- The file name as its first uploader gave it, if any; never used as a path.
    filename TEXT,
    -- The first uploader's user id.
    uploaded_by TEXT NOT NULL,
    created BIGINT NOT NULL
);

-- Everyone who uploaded the bytes: identical content is stored once, and each
-- of its uploaders may read it back.
CREATE TABLE media_uploads (
    sha256 TEXT NOT NULL REFERENCES media (sha256),
    user_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (sha256, user_id)
);

-- Media a case holds as evidence, listed per case in the order added.
CREATE TABLE case_evidence (
    case_id TEXT NOT NULL REFERENCES cases (id),
    sha256 TEXT NOT NULL REFERENCES media (sha256),
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (case_id, sha256)
);
