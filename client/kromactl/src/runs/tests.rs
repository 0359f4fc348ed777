//! `kromactl run …`: what a retry calls again, the watch messages, and what `run show` and plans
//! print.

use super::*;

fn detail(statuses: &[&[wire::CandidateStatus]], per_call_max_usd: f64) -> wire::RunDetail {
    let jobs: Vec<wire::JobDetail> = statuses
        .iter()
        .enumerate()
        .map(|(job_idx, candidates)| wire::JobDetail {
            key: format!("style_{}_scene", job_idx + 1),
            status: wire::JobStatus::Done,
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(candidate_idx, status)| wire::CandidateDetail {
                    index: candidate_idx as u32 + 1,
                    status: *status,
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
                })
                .collect(),
            ranking: Vec::new(),
            winner: None,
            why: None,
            baseline: None,
            approved: None,
        })
        .collect();
    let n_candidates = statuses.iter().map(|job| job.len()).sum::<usize>() as u32;
    wire::RunDetail {
        run: wire::RunSummary {
            id: "run-1".to_owned(),
            project: "harbor".to_owned(),
            stage: wire::Stage::Style,
            status: wire::RunStatus::Partial,
            model: "gpt-image-2".to_owned(),
            jobs: jobs.len() as u32,
            candidates: n_candidates,
            succeeded: 0,
            failed: 0,
            max_cost_usd: per_call_max_usd * f64::from(n_candidates),
            confirmed_cost_usd: None,
            spent_usd: 0.0,
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
            jobs: Vec::new(),
            postprocess: Vec::new(),
            cost: wire::CostEstimate {
                calls: n_candidates,
                per_call_max_usd,
                max_usd: per_call_max_usd * f64::from(n_candidates),
                price_source: "builtin:gpt-image-2".to_owned(),
            },
            settings: serde_json::Value::Null,
            warnings: Vec::new(),
        },
        jobs,
    }
}

#[test]
fn retry_counts_what_did_not_succeed() {
    use wire::CandidateStatus::{Canceled, Failed, Planned, Succeeded, Unknown};
    let run = detail(
        &[
            &[Succeeded, Failed, Unknown],
            &[Canceled, Failed, Succeeded],
            &[Planned],
        ],
        0.25,
    );
    let check = |retrying, calls, max_usd| {
        let scope = retry_scope(&run, retrying);
        assert_eq!(
            (scope.calls, scope.max_usd),
            (calls, max_usd),
            "{retrying:?}"
        );
        assert_eq!((scope.failed, scope.unknown, scope.canceled), (2, 1, 1));
    };
    check(Retrying::Failed, 2, 0.5);
    check(Retrying::NotSucceeded, 4, 1.0);
    check(Retrying::Drifted, 0, 0.0);
    let done = detail(&[&[Succeeded, Succeeded]], 0.25);
    assert_eq!(retry_scope(&done, Retrying::NotSucceeded).calls, 0);
}

/// A candidate's QA: `verdict` with a chroma delta, and drift `(structure, palette, drifted)`.
fn qa(
    verdict: protocol::qa::Verdict,
    chroma_delta: Option<f64>,
    drift: Option<(f64, f64, bool)>,
) -> wire::CandidateQa {
    use protocol::qa::{Reason, Verdict};
    wire::CandidateQa {
        verdict,
        checked: "/p/outputs/checked.png".to_owned(),
        chroma_delta,
        hard_fail_reasons: match verdict {
            Verdict::Fail => vec![Reason::NotGrayscaleLike],
            _ => Vec::new(),
        },
        soft_warnings: match verdict {
            Verdict::Pass => Vec::new(),
            _ => vec![Reason::ChromaExceedsThreshold],
        },
        rank: protocol::qa::Rank::default(),
        drift: drift.map(|(structure, palette, drifted)| wire::DriftScore {
            structure,
            palette,
            drifted,
            baseline_asset: "asset-9".to_owned(),
        }),
        archived: None,
    }
}

#[test]
fn only_drifted_retries_the_succeeded_candidates_that_drifted() {
    use protocol::qa::Verdict::Pass;
    use wire::CandidateStatus::{Failed, Succeeded};
    let mut run = detail(&[&[Succeeded, Succeeded, Failed], &[Succeeded]], 0.25);
    run.jobs[0].candidates[0].qa = Some(qa(Pass, Some(0.5), Some((0.61, 0.2, true))));
    run.jobs[0].candidates[1].qa = Some(qa(Pass, Some(0.5), Some((0.1, 0.1, false))));
    run.jobs[1].candidates[0].qa = Some(qa(Pass, Some(0.5), Some((0.2, 0.7, true))));
    let scope = retry_scope(&run, Retrying::Drifted);
    assert_eq!((scope.drifted, scope.calls, scope.max_usd), (2, 2, 0.5));
    assert_eq!(retry_scope(&run, Retrying::NotSucceeded).calls, 1);
    let nothing = |run: &wire::RunDetail| {
        let scope = retry_scope(run, Retrying::Drifted);
        format!("{:?}", nothing_to_retry("run-1", &scope, Retrying::Drifted))
    };
    let calm = detail(&[&[Succeeded, Failed]], 0.25);
    assert!(
        nothing(&calm).contains("1 did not succeed; retry without --only-drifted to call it"),
        "{}",
        nothing(&calm)
    );
    let done = detail(&[&[Succeeded]], 0.25);
    assert!(nothing(&done).contains("qa.max_structure_drift"));
}

#[test]
fn run_show_reads_each_candidates_verdict_and_each_jobs_winner() {
    use protocol::qa::Verdict::{Fail, Pass, Warn};
    use wire::CandidateStatus::{Failed, Planned, Succeeded};
    // Before the guard has checked anything: the table of old.
    let unchecked = detail(&[&[Succeeded, Planned]], 0.04);
    // A time-stage run from a baseline: verdicts, drift, an archived failure, the winner.
    let mut checked = detail(
        &[&[Succeeded, Succeeded, Succeeded], &[Succeeded, Failed]],
        0.04,
    );
    checked.run.status = wire::RunStatus::Done;
    checked.run.stage = wire::Stage::Time;
    let from = crate::run_review::tests::baseline("run-0", "style_1_scene", 2);
    for (job_idx, job) in checked.jobs.iter_mut().enumerate() {
        job.key = format!("time_{}_scene", job_idx + 1);
        job.baseline = Some(from.clone());
        for candidate in &mut job.candidates {
            if candidate.status == Succeeded {
                candidate.output = Some(format!("/p/outputs/{}_{}.png", job.key, candidate.index));
                candidate.cost_usd = Some(0.04);
            }
        }
    }
    let job = &mut checked.jobs[0];
    job.candidates[0].qa = Some(qa(Warn, Some(2.5), Some((0.1234, 0.5678, false))));
    job.candidates[1].qa = Some(qa(Pass, Some(0.75), Some((0.05, 0.1, false))));
    let mut failed = qa(Fail, Some(31.0), Some((0.4, 0.9, true)));
    failed.archived = Some("/p/archive/bad/time_1_scene_3_bad_20261206T143000Z.png".to_owned());
    job.candidates[2].qa = Some(failed);
    job.ranking = vec![2, 1];
    job.winner = Some(2);
    job.why = Some("no warnings, least chroma excess".to_owned());
    job.approved = Some(2);
    let job = &mut checked.jobs[1];
    job.status = wire::JobStatus::FailedOutputGuard;
    job.candidates[0].qa = Some(qa(Fail, Some(12.0), Some((0.7, 0.2, true))));
    job.candidates[1].error = Some(protocol::ErrorData::new(
        protocol::ErrorKind::Provider,
        protocol::ErrorCode::ProviderRejected,
        "the provider refused the prompt",
    ));
    insta::assert_snapshot!([detail_text(&unchecked), detail_text(&checked)].join("\n\n----\n\n"));
}

#[test]
fn plans_after_the_style_stage_say_what_each_job_starts_from() {
    let planned = |key: &str, baseline: Option<wire::Baseline>| wire::PlannedJob {
        key: key.to_owned(),
        scene: format!("{key}.png"),
        prompt: "the harbor at night, rain on the quay".to_owned(),
        prompt_sha256: "ab".repeat(32),
        input_images: Vec::new(),
        baseline,
        endpoint: wire::Endpoint::Edits,
        candidates: 2,
        max_cost_usd: 0.5,
    };
    let mut plan = detail(&[], 0.25).plan;
    plan.stage = wire::Stage::Time;
    plan.time = Some("night".to_owned());
    plan.jobs = vec![
        planned(
            "time_1_harbor",
            Some(crate::run_review::tests::baseline(
                "run-0",
                "style_1_harbor",
                2,
            )),
        ),
        planned("time_2_docks", None),
    ];
    plan.warnings =
        vec!["scene docks.png has no approved baseline; it starts from the scene".to_owned()];
    let mut style = plan.clone();
    style.stage = wire::Stage::Style;
    style.time = None;
    style.warnings.clear();
    style.jobs = vec![planned("style_1_harbor", None)];
    insta::assert_snapshot!(
        [
            plan_text(&plan, PromptDetail::Full),
            plan_text(&plan, PromptDetail::None),
            plan_text(&style, PromptDetail::None),
        ]
        .join("\n\n----\n\n")
    );
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

#[test]
fn watch_messages_follow_the_runs_events() {
    use protocol::events::kind;
    use serde_json::json;
    use wire::CandidateStatus::Planned;
    let mut progress = RunProgress::from_detail(&detail(&[&[Planned, Planned]], 0.25));
    let job = "style_1_scene";
    let failed = |job: &str| {
        event(
            kind::CANDIDATE_FAILED,
            json!({
                "run": "run-1", "job": job, "index": 2, "status": "failed",
                "error": {"kind": "provider", "code": "provider_rejected", "message": "bad size"},
            }),
        )
    };
    progress.apply(&event(
        kind::CANDIDATE_FINISHED,
        json!({
            "run": "run-1", "job": job, "index": 1, "status": "succeeded", "cost_usd": 0.04,
            "output": "/p/outputs/style_1_scene_1.png",
        }),
    ));
    progress.apply(&failed(job));
    progress.apply(&failed("no such job"));
    progress.apply(&event(
        kind::RUN_PROGRESS,
        json!({
            "run": "run-1", "jobs": 1, "jobs_done": 1, "candidates": 2, "succeeded": 1,
            "failed": 1, "spent_usd": 0.42, "eta_secs": 80,
        }),
    ));
    assert_eq!((progress.done(), progress.failed()), (2, 1));
    assert_eq!(
        total_message(&progress),
        "$0.42 spent, 1 failed, ETA 1m 20s"
    );
    assert_eq!(progress.finished, None);
    let tiles = |done: u32| {
        event(
            kind::POSTPROCESS_PROGRESS,
            json!({
                "run": "run-1", "job": job, "index": 1, "status": "postprocessing",
                "step": "upscale", "candidate": "c-1", "tiles_done": done, "tiles": 24,
            }),
        )
    };
    progress.apply(&tiles(3));
    assert_eq!(
        job_message(&progress.jobs[0]),
        "done, 1 failed, #1 upscale 3/24"
    );
    progress.apply(&tiles(24));
    assert_eq!(job_message(&progress.jobs[0]), "done, 1 failed");
    progress.apply(&event(
        kind::RUN_FINISHED,
        json!({"run": "run-1", "status": "partial", "spent_usd": 0.42}),
    ));
    assert_eq!(progress.finished, Some(wire::RunStatus::Partial));
    assert_eq!(progress.spent_usd, 0.42);
}

#[test]
fn a_line_per_finished_candidate() {
    use protocol::events::kind;
    use serde_json::json;
    let check = |kind: &str, data: serde_json::Value, expected: Option<&str>| {
        assert_eq!(
            candidate_line(&event(kind, data.clone())).as_deref(),
            expected,
            "{kind} {data}"
        );
    };
    check(
        kind::CANDIDATE_FINISHED,
        json!({
            "run": "r", "job": "style_1_harbor", "index": 1, "status": "succeeded",
            "cost_usd": 0.04, "output": "/p/outputs/style_1_harbor_1.png",
        }),
        Some("style_1_harbor #1 succeeded $0.04"),
    );
    check(
        kind::CANDIDATE_FINISHED,
        json!({
            "run": "r", "job": "style_1_harbor", "index": 2, "status": "canceled",
            "error": {"kind": "policy", "code": "canceled", "message": "the run was canceled"},
        }),
        Some("style_1_harbor #2 canceled: the run was canceled"),
    );
    check(
        kind::CANDIDATE_FAILED,
        json!({
            "run": "r", "job": "style_1_harbor", "index": 2, "status": "failed",
            "error": {
                "kind": "provider", "code": "provider_rejected",
                "message": "the provider refused the prompt", "hint": "change the prompt",
            },
        }),
        Some("style_1_harbor #2 failed: the provider refused the prompt"),
    );
    check(
        kind::CANDIDATE_FAILED,
        json!({
            "run": "r", "job": "style_1_harbor", "index": 3, "status": "unknown",
            "cost_usd": 0.25,
            "error": {"kind": "provider", "code": "call_lost", "message": "the answer was lost"},
        }),
        Some("style_1_harbor #3 unknown $0.25: the answer was lost"),
    );
    // Other kinds, and a payload that does not parse, make no line.
    check(
        kind::CANDIDATE_STARTED,
        json!({"run": "r", "job": "style_1_harbor", "index": 1, "status": "calling"}),
        None,
    );
    check(
        kind::CANDIDATE_FAILED,
        json!({"run": "r", "job": "style_1_harbor", "index": 2}),
        None,
    );
}

#[test]
fn durations_and_wrapping() {
    assert_eq!(duration_text(45), "45s");
    assert_eq!(duration_text(185), "3m 05s");
    assert_eq!(duration_text(7620), "2h 07m");
    assert_eq!(
        wrap("a harbor at night, rain on the\n\nquay averylongword", 10),
        [
            "a harbor",
            "at night,",
            "rain on",
            "the",
            "",
            "quay",
            "averylongword"
        ]
    );
}
