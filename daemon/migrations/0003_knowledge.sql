-- What a project knows about its world. name_key is the name folded to lower case, so names are
-- unique per project regardless of case.
CREATE TABLE style_guides (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    instructions TEXT NOT NULL,
    palette      TEXT NOT NULL DEFAULT '',
    line         TEXT NOT NULL DEFAULT '',
    lighting     TEXT NOT NULL DEFAULT '',
    notes        TEXT NOT NULL DEFAULT '',
    is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (project_id, name_key)
) STRICT;

-- At most one default guide per project.
CREATE UNIQUE INDEX style_guides_one_default ON style_guides (project_id) WHERE is_default = 1;

CREATE TABLE characters (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    prompt_text    TEXT NOT NULL DEFAULT '',
    identity_notes TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (project_id, name_key)
) STRICT;

CREATE TABLE reference_sets (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (project_id, name_key)
) STRICT;

CREATE TABLE prompt_templates (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    body       TEXT NOT NULL,
    variables  TEXT NOT NULL, -- JSON array of names
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project_id, name_key)
) STRICT;

-- Reference images of style guides and characters, in order, and the items of reference sets.
CREATE TABLE style_guide_references (
    style_guide_id TEXT NOT NULL REFERENCES style_guides(id) ON DELETE CASCADE,
    asset_id       TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    PRIMARY KEY (style_guide_id, asset_id)
) STRICT;

CREATE TABLE character_references (
    character_id TEXT NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
    asset_id     TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    PRIMARY KEY (character_id, asset_id)
) STRICT;

CREATE TABLE reference_items (
    reference_set_id TEXT NOT NULL REFERENCES reference_sets(id) ON DELETE CASCADE,
    asset_id         TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    role             TEXT NOT NULL DEFAULT '',
    weight           REAL NOT NULL CHECK (weight > 0 AND weight <= 10),
    notes            TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (reference_set_id, asset_id)
) STRICT;
