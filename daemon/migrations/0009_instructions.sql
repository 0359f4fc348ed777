-- Instructions: work an agent proposed, planned at creation, with how it was approved and what
-- it produced; and the allowance a person set for what agents may spend without asking.

CREATE TABLE instructions (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    objective        TEXT NOT NULL,
    source_text      TEXT,
    payload_json     TEXT NOT NULL,
    -- The run plan of a pipeline_run, as planned at creation.
    plan_json        TEXT,
    max_cost_usd     REAL NOT NULL,
    -- free, allowance, terminal, code or page; the cost approved and its UTC day.
    approval         TEXT,
    approved_max_usd REAL,
    approved_day     TEXT,
    waiting_for      TEXT,
    channel          TEXT NOT NULL,
    program          TEXT NOT NULL,
    client_name      TEXT,
    peer_uid         INTEGER,
    -- Set before the run is started, so a restart never starts a second run.
    run_id           TEXT REFERENCES runs(id) ON DELETE SET NULL,
    spent_usd        REAL,
    outcome_json     TEXT,
    error_json       TEXT,
    -- The current one-time code: SHA-256 of id and code, the cost it approves, its expiry, and
    -- the wrong tries so far (the code is locked at 5).
    code_hash        TEXT,
    code_max_usd     REAL,
    code_expires_at  TEXT,
    code_tries       INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

CREATE INDEX instructions_by_project ON instructions(project_id, created_at);
CREATE INDEX instructions_by_state ON instructions(state);
CREATE INDEX instructions_by_run ON instructions(run_id) WHERE run_id IS NOT NULL;
CREATE INDEX instructions_on_allowance ON instructions(approved_day) WHERE approval = 'allowance';

CREATE TABLE agent_allowance (
    id                    INTEGER PRIMARY KEY CHECK (id = 1),
    per_instruction_usd   REAL NOT NULL,
    per_project_daily_usd REAL NOT NULL,
    daily_usd             REAL NOT NULL,
    set_at                TEXT NOT NULL,
    set_by_uid            INTEGER
) STRICT;
