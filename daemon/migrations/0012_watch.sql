-- Drop folders: rules that map a folder to an action, and the journal of the files each rule
-- took. A file's content hash is taken once per rule (the partial unique index), also across
-- restarts; a removed rule is kept (removed_at) so the files it had in flight still settle.

CREATE TABLE watch_rules (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    -- As the person gave it, and with its links resolved (what overlap checks compare).
    folder          TEXT NOT NULL,
    real_folder     TEXT NOT NULL,
    action_json     TEXT NOT NULL,
    -- A pipeline rule's project.
    project_id      TEXT REFERENCES projects(id) ON DELETE CASCADE,
    patterns_json   TEXT NOT NULL,
    budget_usd      REAL NOT NULL,
    poll            INTEGER NOT NULL,
    settle_ms       INTEGER NOT NULL,
    inputs          TEXT NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    -- Set when a paid file did not fit the budget; cleared when one fits or the budget changes.
    budget_spent    INTEGER NOT NULL DEFAULT 0,
    -- Set while the folder cannot be watched; last_error says why.
    failing         INTEGER NOT NULL DEFAULT 0,
    last_error_json TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    removed_at      TEXT
) STRICT;

CREATE UNIQUE INDEX watch_rules_by_name ON watch_rules(name) WHERE removed_at IS NULL;

CREATE TABLE watch_files (
    id             TEXT PRIMARY KEY,
    rule_id        TEXT NOT NULL REFERENCES watch_rules(id) ON DELETE CASCADE,
    -- The name it landed under, its size and modification time then, and its content's hash.
    name           TEXT NOT NULL,
    size           INTEGER NOT NULL,
    mtime_ns       INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    -- Where the file is, and where it was before its last move: a move is written here first,
    -- then made on disk, so a crash between the two is finished at the next start.
    path           TEXT NOT NULL,
    moved_from     TEXT,
    state          TEXT NOT NULL,
    instruction_id TEXT REFERENCES instructions(id) ON DELETE SET NULL,
    -- A chain's result, chosen before the chain runs.
    output         TEXT,
    duplicate_of   TEXT,
    reason         TEXT,
    seen_at        TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX watch_files_once ON watch_files(rule_id, sha256) WHERE state != 'duplicate';
CREATE INDEX watch_files_by_rule ON watch_files(rule_id, seen_at);
CREATE INDEX watch_files_by_name ON watch_files(rule_id, name);
CREATE INDEX watch_files_open ON watch_files(state) WHERE state IN ('processing', 'waiting');
CREATE INDEX watch_files_moving ON watch_files(rule_id) WHERE moved_from IS NOT NULL;

ALTER TABLE instructions ADD COLUMN watch_rule_id TEXT REFERENCES watch_rules(id) ON DELETE SET NULL;
CREATE INDEX instructions_on_budget ON instructions(watch_rule_id) WHERE approval = 'budget';
