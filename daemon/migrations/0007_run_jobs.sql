-- The jobs of each run as rows (they are also in runs.plan_json), so SQL can reach them: one per
-- scene, with its composed prompt and its input images.
CREATE TABLE run_jobs (
    run_id         TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job_index      INTEGER NOT NULL,
    job_key        TEXT NOT NULL,
    scene          TEXT NOT NULL,
    scene_asset_id TEXT REFERENCES assets(id) ON DELETE SET NULL,
    prompt         TEXT NOT NULL,
    prompt_sha256  TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    candidates     INTEGER NOT NULL,
    max_cost_usd   REAL NOT NULL,
    -- [{role, asset, path, sha256}], scene first.
    input_images   TEXT NOT NULL,
    PRIMARY KEY (run_id, job_index),
    UNIQUE (run_id, job_key)
) STRICT;
