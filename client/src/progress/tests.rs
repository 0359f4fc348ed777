//! Run progress folded from the daemon's event shapes.

use protocol::events::kind;
use serde_json::json;
use wire::CandidateStatus::{Calling, Failed, Planned, Succeeded};

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
            ranking: Vec::new(),
            winner: None,
            why: None,
            baseline: None,
            approved: None,
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
        qa: None,
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
        baseline: None,
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

const JOB: &str = "style_1_scene";

/// `candidate.failed` of `run-1` as the daemon writes it.
fn candidate_failed(job: &str, index: serde_json::Value) -> (&'static str, serde_json::Value) {
    (
        kind::CANDIDATE_FAILED,
        json!({
            "run": "run-1", "job": job, "index": index, "status": "failed",
            "error": {"kind": "provider", "code": "provider_rejected", "message": "bad size"},
        }),
    )
}

fn run_progress(spent_usd: f64, eta_secs: Option<u64>) -> (&'static str, serde_json::Value) {
    let mut data = json!({
        "run": "run-1", "jobs": 1, "jobs_done": 0, "candidates": 2, "succeeded": 1,
        "failed": 1, "spent_usd": spent_usd,
    });
    if let Some(eta_secs) = eta_secs {
        data["eta_secs"] = json!(eta_secs);
    }
    (kind::RUN_PROGRESS, data)
}

fn chain_tiles(index: u32, done: u32) -> (&'static str, serde_json::Value) {
    (
        kind::POSTPROCESS_PROGRESS,
        json!({
            "run": "run-1", "job": JOB, "index": index, "status": "postprocessing",
            "step": "upscale", "candidate": "c-2", "tiles_done": done, "tiles": 24,
        }),
    )
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
        .map(|job| (job.key.as_str(), job.status_name(), job.candidates.len()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("style_1_scene", "running", 2),
            ("style_2_pier", "planned", 3)
        ]
    );
    assert_eq!(progress.jobs[0].candidates, [Succeeded, Calling]);
    assert_eq!(
        (progress.total(), progress.done(), progress.failed()),
        (5, 1, 0)
    );
    assert_eq!(progress.spent_usd, 0.1);
    assert_eq!(progress.run_id, "run-1");
}

#[test]
fn follows_candidate_events() {
    let progress = check(
        &detail(&[&[Planned, Planned, Planned]], &[]),
        &[
            (
                kind::CANDIDATE_STARTED,
                json!({"run": "run-1", "job": JOB, "index": 3, "status": "calling"}),
            ),
            (
                kind::CANDIDATE_FINISHED,
                json!({
                    "run": "run-1", "job": JOB, "index": 1, "status": "succeeded",
                    "cost_usd": 0.04, "output": "/p/outputs/style_1_scene_1.png",
                }),
            ),
            candidate_failed(JOB, json!(2)),
            candidate_failed("no such job", json!(1)),
            run_progress(0.42, Some(80)),
        ],
    );
    assert_eq!(progress.jobs[0].candidates, [Succeeded, Failed, Calling]);
    assert_eq!((progress.done(), progress.failed()), (2, 1));
    assert_eq!((progress.spent_usd, progress.eta_secs), (0.42, Some(80)));
    assert_eq!(progress.finished, None);
}

#[test]
fn an_event_whose_payload_does_not_parse_is_passed_over() {
    let start = detail(&[&[Planned, Planned]], &[]);
    let mut progress = RunProgress::from_detail(&start);
    for (kind, data) in [
        // No status and no error: not what the daemon writes.
        (
            kind::CANDIDATE_FAILED,
            json!({"run": "run-1", "job": JOB, "index": 2}),
        ),
        (
            kind::RUN_PROGRESS,
            json!({"run": "run-1", "spent_usd": 0.42}),
        ),
        (
            kind::RUN_FINISHED,
            json!({"run": "run-1", "status": "partial"}),
        ),
        (kind::JOB_STARTED, json!({"run": "run-1", "job": JOB})),
        (
            kind::CANDIDATE_STARTED,
            json!({"run": "run-1", "job": JOB, "index": 1, "status": "no such status"}),
        ),
    ] {
        assert!(!progress.apply(&event(kind, data.clone())), "{kind} {data}");
    }
    assert_eq!(progress, RunProgress::from_detail(&start));
}

#[test]
fn candidate_indexes_grow_a_job_within_reason() {
    let progress = check(
        &detail(&[&[Planned]], &[]),
        &[
            candidate_failed(JOB, json!(3)),
            candidate_failed(JOB, json!(0)),
            candidate_failed(JOB, json!(-1)),
            candidate_failed(JOB, json!("2")),
            candidate_failed(JOB, json!(1001)),
            candidate_failed(JOB, json!(u64::MAX)),
        ],
    );
    assert_eq!(progress.jobs[0].candidates, [Planned, Planned, Failed]);
    let progress = check(
        &detail(&[&[Planned]], &[]),
        &[candidate_failed(JOB, json!(1000))],
    );
    assert_eq!(progress.jobs[0].candidates.len(), 1000);
}

#[test]
fn jobs_and_post_processing_steps() {
    let started = (
        kind::JOB_STARTED,
        json!({"run": "run-1", "job": JOB, "status": "running"}),
    );
    let mut start = detail(&[&[Planned]], &[]);
    start.jobs[0].status = wire::JobStatus::Planned;
    let progress = check(&start, &[started.clone(), chain_tiles(2, 3)]);
    assert_eq!(progress.jobs[0].status_name(), "running");
    assert_eq!(progress.jobs[0].chain.as_deref(), Some("#2 upscale 3/24"));
    let progress = check(&start, &[chain_tiles(2, 3), chain_tiles(2, 24)]);
    assert_eq!(progress.jobs[0].chain, None);
    // The tiles of a one-off step belong to no run.
    let one_off = (
        kind::POSTPROCESS_PROGRESS,
        json!({"step": "upscale", "input": "/tmp/a.png", "tiles_done": 3, "tiles": 24}),
    );
    let mut progress = RunProgress::from_detail(&start);
    assert!(!progress.apply(&event(one_off.0, one_off.1)));
    let progress = check(
        &start,
        &[
            started,
            (
                kind::JOB_FINISHED,
                json!({"run": "run-1", "job": JOB, "status": "done"}),
            ),
        ],
    );
    assert_eq!(progress.jobs[0].status_name(), "done");
}

#[test]
fn the_run_finishes_with_its_status() {
    let progress = check(
        &detail(&[&[Planned]], &[]),
        &[
            run_progress(0.2, Some(30)),
            (
                kind::RUN_FINISHED,
                json!({"run": "run-1", "status": "partial", "spent_usd": 0.25}),
            ),
        ],
    );
    assert_eq!(progress.finished, Some(wire::RunStatus::Partial));
    assert_eq!((progress.spent_usd, progress.eta_secs), (0.25, None));
    let progress = check(&detail(&[&[Planned]], &[]), &[run_progress(0.2, None)]);
    assert_eq!((progress.spent_usd, progress.eta_secs), (0.2, None));
}

#[test]
fn events_of_other_runs_change_nothing() {
    let start = detail(&[&[Planned]], &[]);
    let mut progress = RunProgress::from_detail(&start);
    let other_run = |data: serde_json::Value| {
        let mut data = data;
        data["run"] = json!("run-2");
        data
    };
    let (failed, data) = candidate_failed(JOB, json!(1));
    assert!(!progress.apply(&event(failed, other_run(data))));
    assert!(!progress.apply(&event(
        kind::RUN_FINISHED,
        json!({"run": "run-2", "status": "done", "spent_usd": 1.0}),
    )));
    assert!(!progress.apply(&event(
        kind::PROJECT_CREATED,
        json!({"id": "p1", "name": "Harbor", "root": "/p"}),
    )));
    assert_eq!(progress, RunProgress::from_detail(&start));
    // Events of the run that change nothing shown are still about it.
    assert!(progress.apply(&event(
        kind::RUN_STARTED,
        json!({"run": "run-1", "candidates": 1, "confirmed_cost_usd": 0.25, "max_cost_usd": 0.25}),
    )));
    assert!(progress.apply(&event(
        kind::CANDIDATE_POSTPROCESSED,
        json!({"run": "run-1", "job": JOB, "index": 1, "status": "done", "final_output": "/p/a.png"}),
    )));
    assert_eq!(progress, RunProgress::from_detail(&start));
}
