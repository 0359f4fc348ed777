-- Exports: packages of a project's files with their run records and a manifest, in the
-- project's exports/ folder.
CREATE TABLE exports (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- protocol::export::Selection as JSON.
    selection_json TEXT NOT NULL,
    -- tar_gz or folder.
    format         TEXT NOT NULL,
    -- Relative to the project root.
    rel_path       TEXT NOT NULL,
    files          INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;

CREATE INDEX exports_by_project ON exports (project_id, created_at);
