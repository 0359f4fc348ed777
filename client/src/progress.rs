//! Pure: a run's progress folded from `run.show` and then its events, as `kromactl run watch`
//! shows it. Event data is read leniently: a missing field leaves what is known.

use kroma_protocol as protocol;
use protocol::run as wire;

/// What a watcher knows about one run: `run.show` first, then the run's events.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// The run the progress is about; events of other runs are passed over.
    pub run_id: String,
    pub jobs: Vec<JobProgress>,
    pub spent_usd: f64,
    /// Seconds until the run is expected to finish, from its last `run.progress` event.
    pub eta_secs: Option<u64>,
    /// The status from `run.finished`, once it arrived.
    pub finished: Option<String>,
}

/// One job of a run as far as its events tell.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub key: String,
    pub status: String,
    /// Candidate statuses by index - 1.
    pub candidates: Vec<String>,
    /// The post-process step under way on one of its candidates, e.g. `#2 upscale 3/24`.
    pub chain: Option<String>,
}

/// A candidate index above this in an event is not believed: the slots are not made.
const MAX_CANDIDATE_SLOTS: usize = 1000;

/// The name of a job status, as events spell it.
fn job_status_name(status: wire::JobStatus) -> &'static str {
    match status {
        wire::JobStatus::Planned => "planned",
        wire::JobStatus::Running => "running",
        wire::JobStatus::Done => "done",
        wire::JobStatus::Failed => "failed",
    }
}

impl RunProgress {
    pub fn from_detail(detail: &wire::RunDetail) -> RunProgress {
        let mut jobs: Vec<JobProgress> = detail
            .jobs
            .iter()
            .map(|job| JobProgress {
                key: job.key.clone(),
                status: job_status_name(job.status).to_owned(),
                candidates: job
                    .candidates
                    .iter()
                    .map(|candidate| candidate.status.as_str().to_owned())
                    .collect(),
                chain: None,
            })
            .collect();
        // A job the daemon has no rows for yet still shows, with the plan's candidates.
        for planned in &detail.plan.jobs {
            if !jobs.iter().any(|job| job.key == planned.key) {
                jobs.push(JobProgress {
                    key: planned.key.clone(),
                    status: "planned".to_owned(),
                    candidates: vec!["planned".to_owned(); planned.candidates as usize],
                    chain: None,
                });
            }
        }
        RunProgress {
            run_id: detail.run.id.clone(),
            jobs,
            spent_usd: detail.run.spent_usd,
            eta_secs: None,
            finished: None,
        }
    }

    /// Takes in one event; returns whether it was about this run (an event of another run
    /// changes nothing).
    pub fn apply(&mut self, event: &protocol::events::Event) -> bool {
        use protocol::events::kind;
        let data = &event.data;
        let text = |field: &str| data.get(field).and_then(|value| value.as_str());
        if text("run") != Some(self.run_id.as_str()) {
            return false;
        }
        match event.kind.as_str() {
            kind::RUN_PROGRESS => {
                if let Some(spent) = data.get("spent_usd").and_then(|value| value.as_f64()) {
                    self.spent_usd = spent;
                }
                self.eta_secs = data
                    .get("eta_secs")
                    .and_then(|value| value.as_f64())
                    .map(|secs| secs.max(0.0).round() as u64);
            }
            kind::RUN_FINISHED => {
                if let Some(spent) = data.get("spent_usd").and_then(|value| value.as_f64()) {
                    self.spent_usd = spent;
                }
                self.eta_secs = None;
                self.finished = Some(text("status").unwrap_or("finished").to_owned());
            }
            kind::JOB_STARTED | kind::JOB_FINISHED => {
                let fallback = if event.kind == kind::JOB_STARTED {
                    "running"
                } else {
                    "finished"
                };
                if let Some(job) = self.job_mut(text("job")) {
                    job.status = text("status").unwrap_or(fallback).to_owned();
                }
            }
            kind::POSTPROCESS_PROGRESS => {
                let tiles = |field: &str| data.get(field).and_then(|value| value.as_u64());
                let index = data.get("index").and_then(|value| value.as_u64());
                let step = text("step").unwrap_or("post-process").to_owned();
                if let Some(job) = self.job_mut(text("job")) {
                    job.chain = match (tiles("tiles_done"), tiles("tiles"), index) {
                        (Some(done), Some(total), Some(index)) if done < total => {
                            Some(format!("#{index} {step} {done}/{total}"))
                        }
                        _ => None,
                    };
                }
            }
            kind::CANDIDATE_STARTED | kind::CANDIDATE_FINISHED | kind::CANDIDATE_FAILED => {
                let fallback = match event.kind.as_str() {
                    kind::CANDIDATE_STARTED => "calling",
                    kind::CANDIDATE_FINISHED => "succeeded",
                    _ => "failed",
                };
                let status = text("status").unwrap_or(fallback).to_owned();
                let index = data.get("index").and_then(|value| value.as_u64());
                if let (Some(job), Some(index @ 1..)) = (self.job_mut(text("job")), index) {
                    let slot = usize::try_from(index - 1).unwrap_or(usize::MAX);
                    if slot < MAX_CANDIDATE_SLOTS {
                        if job.candidates.len() <= slot {
                            job.candidates.resize(slot + 1, "planned".to_owned());
                        }
                        job.candidates[slot] = status;
                    }
                }
            }
            _ => {}
        }
        true
    }

    /// Candidates of the whole run.
    pub fn total(&self) -> usize {
        self.jobs.iter().map(|job| job.candidates.len()).sum()
    }

    /// Candidates that ended, whichever way.
    pub fn done(&self) -> usize {
        self.jobs.iter().map(JobProgress::done).sum()
    }

    /// Candidates that failed or may have been billed without an answer (`unknown`).
    pub fn failed(&self) -> usize {
        self.jobs.iter().map(JobProgress::failed).sum()
    }

    fn job_mut(&mut self, key: Option<&str>) -> Option<&mut JobProgress> {
        let key = key?;
        self.jobs.iter_mut().find(|job| job.key == key)
    }
}

impl JobProgress {
    /// Candidates of this job that ended, whichever way.
    pub fn done(&self) -> usize {
        self.candidates
            .iter()
            .filter(|status| candidate_done(status))
            .count()
    }

    /// Candidates of this job that failed or whose outcome is unknown.
    pub fn failed(&self) -> usize {
        self.candidates
            .iter()
            .filter(|status| matches!(status.as_str(), "failed" | "unknown"))
            .count()
    }
}

fn candidate_done(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "unknown" | "canceled")
}

#[cfg(test)]
mod tests {
    use protocol::events::kind;
    use serde_json::json;
    use wire::CandidateStatus::{Calling, Planned, Succeeded};

    use super::*;

    /// A run `run-1` with one job per entry of `statuses` (`style_1_scene`, …) and, beyond those,
    /// the planned jobs of `planned` that have no rows yet.
    fn detail(statuses: &[&[wire::CandidateStatus]], planned: &[(&str, u32)]) -> wire::RunDetail {
        let jobs: Vec<wire::JobDetail> = statuses
            .iter()
            .enumerate()
            .map(|(job_idx, candidates)| wire::JobDetail {
                key: format!("style_{}_scene", job_idx + 1),
                status: wire::JobStatus::Running,
                candidates: candidates
                    .iter()
                    .enumerate()
                    .map(|(candidate_idx, status)| candidate(candidate_idx as u32 + 1, *status))
                    .collect(),
            })
            .collect();
        wire::RunDetail {
            run: wire::RunSummary {
                id: "run-1".to_owned(),
                project: "harbor".to_owned(),
                stage: wire::Stage::Style,
                status: wire::RunStatus::Running,
                model: "gpt-image-2".to_owned(),
                jobs: jobs.len() as u32,
                candidates: 0,
                succeeded: 0,
                failed: 0,
                max_cost_usd: 1.0,
                confirmed_cost_usd: None,
                spent_usd: 0.1,
                created_at: String::new(),
                started_at: None,
                finished_at: None,
                record: String::new(),
            },
            plan: wire::Plan {
                project: "harbor".to_owned(),
                stage: wire::Stage::Style,
                time: None,
                weather: None,
                provider: "openai".to_owned(),
                base_url: String::new(),
                model: "gpt-image-2".to_owned(),
                size: "1024x1024".to_owned(),
                quality: "high".to_owned(),
                candidates: 2,
                style_guide: None,
                characters: Vec::new(),
                jobs: planned
                    .iter()
                    .map(|(key, candidates)| planned_job(key, *candidates))
                    .collect(),
                postprocess: Vec::new(),
                cost: wire::CostEstimate {
                    calls: 0,
                    per_call_max_usd: 0.25,
                    max_usd: 1.0,
                    price_source: "builtin:gpt-image-2".to_owned(),
                },
                settings: serde_json::Value::Null,
                warnings: Vec::new(),
            },
            jobs,
        }
    }

    fn candidate(index: u32, status: wire::CandidateStatus) -> wire::CandidateDetail {
        wire::CandidateDetail {
            index,
            status,
            attempts: 1,
            asset: None,
            output: None,
            cost_usd: None,
            request_id: None,
            error: None,
            postprocess: None,
            final_asset: None,
            final_output: None,
            postprocess_error: None,
        }
    }

    fn planned_job(key: &str, candidates: u32) -> wire::PlannedJob {
        wire::PlannedJob {
            key: key.to_owned(),
            scene: "scene.png".to_owned(),
            prompt: String::new(),
            prompt_sha256: String::new(),
            input_images: Vec::new(),
            endpoint: wire::Endpoint::Edits,
            candidates,
            max_cost_usd: 0.25 * f64::from(candidates),
        }
    }

    fn event(kind: &str, data: serde_json::Value) -> protocol::events::Event {
        protocol::events::Event {
            id: 1,
            at: String::new(),
            kind: kind.to_owned(),
            project: None,
            data,
        }
    }

    /// Folds `events` into the progress of `start` and returns what is known at the end.
    fn check(start: &wire::RunDetail, events: &[(&str, serde_json::Value)]) -> RunProgress {
        let mut progress = RunProgress::from_detail(start);
        for (kind, data) in events {
            progress.apply(&event(kind, data.clone()));
        }
        progress
    }

    #[test]
    fn starts_from_the_runs_rows_and_then_the_plan() {
        let progress = RunProgress::from_detail(&detail(
            &[&[Succeeded, Calling]],
            &[("style_1_scene", 2), ("style_2_pier", 3)],
        ));
        let jobs: Vec<(&str, &str, usize)> = progress
            .jobs
            .iter()
            .map(|job| (job.key.as_str(), job.status.as_str(), job.candidates.len()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("style_1_scene", "running", 2),
                ("style_2_pier", "planned", 3)
            ]
        );
        assert_eq!(progress.jobs[0].candidates, ["succeeded", "calling"]);
        assert_eq!(
            (progress.total(), progress.done(), progress.failed()),
            (5, 1, 0)
        );
        assert_eq!(progress.spent_usd, 0.1);
        assert_eq!(progress.run_id, "run-1");
    }

    #[test]
    fn follows_candidate_events_and_tolerates_missing_fields() {
        let job = "style_1_scene";
        let progress = check(
            &detail(&[&[Planned, Planned]], &[]),
            &[
                (
                    kind::CANDIDATE_FINISHED,
                    json!({"run": "run-1", "job": job, "index": 1, "status": "succeeded"}),
                ),
                (
                    kind::CANDIDATE_FAILED,
                    json!({"run": "run-1", "job": job, "index": 2}),
                ),
                (
                    kind::CANDIDATE_FAILED,
                    json!({"run": "run-1", "job": "no such job", "index": 1}),
                ),
                (
                    kind::RUN_PROGRESS,
                    json!({"run": "run-1", "spent_usd": 0.42, "eta_secs": 79.6}),
                ),
            ],
        );
        assert_eq!(progress.jobs[0].candidates, ["succeeded", "failed"]);
        assert_eq!((progress.done(), progress.failed()), (2, 1));
        assert_eq!((progress.spent_usd, progress.eta_secs), (0.42, Some(80)));
        assert_eq!(progress.finished, None);
    }

    #[test]
    fn candidate_indexes_grow_a_job_within_reason() {
        let job = "style_1_scene";
        let failed = |index: serde_json::Value| {
            (
                kind::CANDIDATE_FAILED,
                json!({"run": "run-1", "job": job, "index": index}),
            )
        };
        let progress = check(
            &detail(&[&[Planned]], &[]),
            &[
                failed(json!(3)),
                failed(json!(0)),
                failed(json!(-1)),
                failed(json!("2")),
                failed(json!(1001)),
                failed(json!(u64::MAX)),
            ],
        );
        assert_eq!(
            progress.jobs[0].candidates,
            ["planned", "planned", "failed"]
        );
        let progress = check(&detail(&[&[Planned]], &[]), &[failed(json!(1000))]);
        assert_eq!(progress.jobs[0].candidates.len(), 1000);
    }

    #[test]
    fn jobs_and_post_processing_steps() {
        let job = "style_1_scene";
        let tiles = |done: u64| {
            (
                kind::POSTPROCESS_PROGRESS,
                json!({"run": "run-1", "job": job, "index": 2, "step": "upscale", "tiles_done": done, "tiles": 24}),
            )
        };
        let started = (kind::JOB_STARTED, json!({"run": "run-1", "job": job}));
        let progress = check(&detail(&[&[Planned]], &[]), &[started.clone(), tiles(3)]);
        assert_eq!(progress.jobs[0].status, "running");
        assert_eq!(progress.jobs[0].chain.as_deref(), Some("#2 upscale 3/24"));
        let progress = check(&detail(&[&[Planned]], &[]), &[tiles(3), tiles(24)]);
        assert_eq!(progress.jobs[0].chain, None);
        let progress = check(
            &detail(&[&[Planned]], &[]),
            &[
                started,
                (
                    kind::JOB_FINISHED,
                    json!({"run": "run-1", "job": job, "status": "done"}),
                ),
            ],
        );
        assert_eq!(progress.jobs[0].status, "done");
    }

    #[test]
    fn the_run_finishes_with_its_status() {
        let progress = check(
            &detail(&[&[Planned]], &[]),
            &[
                (
                    kind::RUN_PROGRESS,
                    json!({"run": "run-1", "spent_usd": 0.2, "eta_secs": 30}),
                ),
                (
                    kind::RUN_FINISHED,
                    json!({"run": "run-1", "status": "partial", "spent_usd": 0.25}),
                ),
            ],
        );
        assert_eq!(progress.finished.as_deref(), Some("partial"));
        assert_eq!((progress.spent_usd, progress.eta_secs), (0.25, None));
        let progress = check(
            &detail(&[&[Planned]], &[]),
            &[(kind::RUN_FINISHED, json!({"run": "run-1"}))],
        );
        assert_eq!(progress.finished.as_deref(), Some("finished"));
        assert_eq!(progress.spent_usd, 0.1, "kept when the event has none");
    }

    #[test]
    fn events_of_other_runs_change_nothing() {
        let start = detail(&[&[Planned]], &[]);
        let mut progress = RunProgress::from_detail(&start);
        let job = "style_1_scene";
        for data in [
            json!({"run": "run-2", "job": job, "index": 1}),
            json!({"job": job, "index": 1}),
            json!({"run": 1, "job": job, "index": 1}),
        ] {
            assert!(!progress.apply(&event(kind::CANDIDATE_FAILED, data)));
        }
        assert!(!progress.apply(&event(kind::RUN_FINISHED, json!({"run": "run-2"}))));
        assert_eq!(progress, RunProgress::from_detail(&start));
        assert!(progress.apply(&event(kind::PROJECT_CREATED, json!({"run": "run-1"}))));
    }
}
