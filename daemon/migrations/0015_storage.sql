-- S3 sync: the rest of a project's S3 settings, and the journal of multipart uploads so an
-- interrupted sync resumes them (or aborts them) instead of leaving them on the bucket.
ALTER TABLE project_storage ADD COLUMN s3_path_style INTEGER;
ALTER TABLE project_storage ADD COLUMN s3_checksum_mode TEXT;
ALTER TABLE project_storage ADD COLUMN s3_access_key_secret TEXT;
ALTER TABLE project_storage ADD COLUMN s3_secret_key_secret TEXT;

CREATE TABLE storage_uploads (
    upload_id   TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- Where the upload lives: the endpoint ('' for AWS), bucket and key it was created at.
    endpoint    TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- The file it uploads, as it was when the upload began.
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    part_size   INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX storage_uploads_by_project ON storage_uploads (project_id);

-- Parts the store acknowledged.
CREATE TABLE storage_upload_parts (
    upload_id   TEXT NOT NULL REFERENCES storage_uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    -- base64 of the part's SHA-256, as the store wants it back on completion.
    sha256_b64  TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) STRICT;
