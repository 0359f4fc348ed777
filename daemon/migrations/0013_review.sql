-- The QA guard's verdict on each succeeded candidate's final output (the wire's CandidateQa as
-- JSON): NULL until it is checked. A run is not finished while a verdict is missing.
ALTER TABLE run_candidates ADD COLUMN qa_json TEXT;

-- A scene's approved baseline: the image a person chose, which later stages of the scene start
-- from. One per scene of a project; approving another candidate replaces it (the audit log keeps
-- every approval).
CREATE TABLE baselines (
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    scene_asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    asset_id        TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job_key         TEXT NOT NULL,
    candidate_index INTEGER NOT NULL,
    stage           TEXT NOT NULL,
    approved_at     TEXT NOT NULL,
    PRIMARY KEY (project_id, scene_asset_id)
) STRICT;
