-- Projects, their storage settings, the event log and the audit log.
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    root        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE project_storage (
    project_id  TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    s3_bucket   TEXT,
    s3_prefix   TEXT NOT NULL DEFAULT '',
    s3_region   TEXT,
    s3_endpoint TEXT
) STRICT;

-- Events outlive the projects they mention, so project_slug is not a foreign key.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    project_slug TEXT,
    data         TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    peer_uid      INTEGER,
    client        TEXT NOT NULL,
    method        TEXT NOT NULL,
    params_digest TEXT NOT NULL,
    outcome       TEXT NOT NULL
) STRICT;
