-- Image assets of a project, addressed by content, and the links between them.
CREATE TABLE assets (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    rel_path      TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    format        TEXT NOT NULL,
    mime          TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    original_name TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (project_id, sha256),
    UNIQUE (project_id, rel_path)
) STRICT;

-- child_id relates to parent_id: "child derived_from parent".
CREATE TABLE asset_links (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    child_id   TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    parent_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    relation   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (child_id, parent_id, relation),
    CHECK (child_id <> parent_id)
) STRICT;

CREATE INDEX asset_links_by_parent ON asset_links (parent_id);
