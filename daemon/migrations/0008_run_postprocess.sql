-- The post-process chain of each succeeded candidate: none (the run has no chain), pending, done
-- or failed; its last output; why it failed.
ALTER TABLE run_candidates ADD COLUMN postprocess TEXT NOT NULL DEFAULT 'none';
ALTER TABLE run_candidates ADD COLUMN final_asset_id TEXT REFERENCES assets(id) ON DELETE SET NULL;
ALTER TABLE run_candidates ADD COLUMN final_path TEXT;
ALTER TABLE run_candidates ADD COLUMN postprocess_error_json TEXT;
