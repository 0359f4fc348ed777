-- Runs: a stored plan, its jobs and candidates, and the cost of every provider call.

ALTER TABLE providers ADD COLUMN honors_idempotency_key INTEGER NOT NULL DEFAULT 0;

-- Shutdown dates a provider reported through GET /models.
CREATE TABLE provider_models (
    provider      TEXT NOT NULL REFERENCES providers(name) ON DELETE CASCADE,
    model         TEXT NOT NULL,
    shutdown_date TEXT,
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (provider, model)
) STRICT;

CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    stage              TEXT NOT NULL,
    model              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    plan_json          TEXT NOT NULL,
    max_cost_usd       REAL NOT NULL,
    -- The part of max_cost_usd still held against the budgets while the run is active.
    confirmed_cost_usd REAL,
    record_path        TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    started_at         TEXT,
    finished_at        TEXT
) STRICT;

CREATE INDEX runs_by_project ON runs (project_id, created_at);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE run_candidates (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job_index       INTEGER NOT NULL,
    job_key         TEXT NOT NULL,
    candidate_index INTEGER NOT NULL,
    status          TEXT NOT NULL,
    -- Sent as Idempotency-Key; a new one for every retry the user confirms.
    idempotency_key TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- The most this candidate's next call can cost; held against the budgets until it is done.
    reserved_usd    REAL NOT NULL DEFAULT 0,
    asset_id        TEXT REFERENCES assets(id) ON DELETE SET NULL,
    output_path     TEXT,
    request_id      TEXT,
    error_json      TEXT,
    started_at      TEXT,
    finished_at     TEXT,
    UNIQUE (run_id, job_index, candidate_index)
) STRICT;

CREATE INDEX run_candidates_by_status ON run_candidates (status);

CREATE TABLE cost_events (
    id           INTEGER PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    run_id       TEXT REFERENCES runs(id) ON DELETE SET NULL,
    candidate_id TEXT REFERENCES run_candidates(id) ON DELETE SET NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    operation    TEXT NOT NULL,
    usd          REAL NOT NULL,
    -- usage: from the response's token counts; price_table: estimated.
    source       TEXT NOT NULL,
    usage_json   TEXT,
    day          TEXT NOT NULL,
    at           TEXT NOT NULL
) STRICT;

CREATE INDEX cost_events_by_project_day ON cost_events (project_id, day);
