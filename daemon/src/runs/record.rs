//! The run record file, `<project root>/runs/<run id>.json`: everything needed to see and
//! reproduce a run (the plan with its settings, prompts, input hashes, provider and model; every
//! candidate's outcome and cost), in types of its own so the wire can change without changing
//! the files people keep. No secret is in it: the provider is named, its key is not.
//!
//! Format 1 (`"record_format": 1`), documented in the README ("Run records"):
//! `{record_format, kroma_version, written_at, run: {id, project, stage, status, model, jobs,
//! candidates, succeeded, failed, max_cost_usd, confirmed_cost_usd?, spent_usd, created_at,
//! started_at?, finished_at?, record}, plan: <the stored plan, format 1>, jobs: [{key, status,
//! candidates: [{index, status, attempts, asset?, output?, cost_usd?, request_id?, error?,
//! postprocess?, final_asset?, final_output?, postprocess_error?, qa?}], ranking?, winner?, why?,
//! baseline?, approved?}]}`; an error is `{kind, code, message, hint?}`; `qa` is `{verdict,
//! checked, chroma_delta?, hard_fail_reasons?, soft_warnings?, rank: {hard_failures,
//! soft_warnings, avg_chroma_exceed}, drift?: {structure, palette, drifted, baseline_asset},
//! archived?}`; a baseline is `{scene_asset, asset, path, run, job, candidate, stage,
//! approved_at}`. (Records written before the QA guard lack the optional fields.)

use serde::Serialize;

use kroma_protocol as protocol;
use protocol::run::{CandidateDetail, JobStatus, RunDetail, RunSummary};

use super::stored::StoredPlan;

/// The record format this kromad writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Record {
    record_format: u32,
    kroma_version: &'static str,
    written_at: String,
    run: Run,
    plan: StoredPlan,
    jobs: Vec<Job>,
}

#[derive(Debug, Serialize)]
struct Run {
    id: String,
    project: String,
    stage: &'static str,
    status: &'static str,
    model: String,
    jobs: u32,
    candidates: u32,
    succeeded: u32,
    failed: u32,
    max_cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_cost_usd: Option<f64>,
    spent_usd: f64,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    record: String,
}

#[derive(Debug, Serialize)]
struct Job {
    key: String,
    status: &'static str,
    candidates: Vec<Candidate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ranking: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<Baseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Baseline {
    scene_asset: String,
    asset: String,
    path: String,
    run: String,
    job: String,
    candidate: u32,
    stage: &'static str,
    approved_at: String,
}

#[derive(Debug, Serialize)]
struct Qa {
    verdict: &'static str,
    checked: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    chroma_delta: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hard_fail_reasons: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    soft_warnings: Vec<&'static str>,
    rank: Rank,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<String>,
}

#[derive(Debug, Serialize)]
struct Rank {
    hard_failures: u32,
    soft_warnings: u32,
    avg_chroma_exceed: f64,
}

#[derive(Debug, Serialize)]
struct Drift {
    structure: f64,
    palette: f64,
    drifted: bool,
    baseline_asset: String,
}

#[derive(Debug, Serialize)]
struct Candidate {
    index: u32,
    status: &'static str,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Error>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postprocess: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postprocess_error: Option<Error>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qa: Option<Qa>,
}

#[derive(Debug, Serialize)]
struct Error {
    kind: &'static str,
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl Record {
    /// The record of `detail`, written at `written_at`.
    pub fn of(detail: &RunDetail, written_at: String) -> Record {
        Record {
            record_format: FORMAT,
            kroma_version: crate::VERSION,
            written_at,
            run: Run::of(&detail.run),
            plan: StoredPlan::from(&detail.plan),
            jobs: detail
                .jobs
                .iter()
                .map(|job| Job {
                    key: job.key.clone(),
                    status: job_status(job.status),
                    candidates: job.candidates.iter().map(Candidate::of).collect(),
                    ranking: job.ranking.clone(),
                    winner: job.winner,
                    why: job.why.clone(),
                    baseline: job.baseline.as_ref().map(Baseline::of),
                    approved: job.approved,
                })
                .collect(),
        }
    }
}

impl Run {
    fn of(run: &RunSummary) -> Run {
        Run {
            id: run.id.clone(),
            project: run.project.clone(),
            stage: run.stage.as_str(),
            status: run.status.as_str(),
            model: run.model.clone(),
            jobs: run.jobs,
            candidates: run.candidates,
            succeeded: run.succeeded,
            failed: run.failed,
            max_cost_usd: run.max_cost_usd,
            confirmed_cost_usd: run.confirmed_cost_usd,
            spent_usd: run.spent_usd,
            created_at: run.created_at.clone(),
            started_at: run.started_at.clone(),
            finished_at: run.finished_at.clone(),
            record: run.record.clone(),
        }
    }
}

impl Candidate {
    fn of(candidate: &CandidateDetail) -> Candidate {
        Candidate {
            index: candidate.index,
            status: candidate.status.as_str(),
            attempts: candidate.attempts,
            asset: candidate.asset.clone(),
            output: candidate.output.clone(),
            cost_usd: candidate.cost_usd,
            request_id: candidate.request_id.clone(),
            error: candidate.error.as_ref().map(Error::of),
            postprocess: candidate.postprocess.clone(),
            final_asset: candidate.final_asset.clone(),
            final_output: candidate.final_output.clone(),
            postprocess_error: candidate.postprocess_error.as_ref().map(Error::of),
            qa: candidate.qa.as_ref().map(Qa::of),
        }
    }
}

impl Baseline {
    fn of(baseline: &protocol::run::Baseline) -> Baseline {
        Baseline {
            scene_asset: baseline.scene_asset.clone(),
            asset: baseline.asset.clone(),
            path: baseline.path.clone(),
            run: baseline.run.clone(),
            job: baseline.job.clone(),
            candidate: baseline.candidate,
            stage: baseline.stage.as_str(),
            approved_at: baseline.approved_at.clone(),
        }
    }
}

impl Qa {
    fn of(qa: &protocol::run::CandidateQa) -> Qa {
        Qa {
            verdict: qa.verdict.as_str(),
            checked: qa.checked.clone(),
            chroma_delta: qa.chroma_delta,
            hard_fail_reasons: qa.hard_fail_reasons.iter().map(|r| r.as_str()).collect(),
            soft_warnings: qa.soft_warnings.iter().map(|r| r.as_str()).collect(),
            rank: Rank {
                hard_failures: qa.rank.hard_failures,
                soft_warnings: qa.rank.soft_warnings,
                avg_chroma_exceed: qa.rank.avg_chroma_exceed,
            },
            drift: qa.drift.as_ref().map(|drift| Drift {
                structure: drift.structure,
                palette: drift.palette,
                drifted: drift.drifted,
                baseline_asset: drift.baseline_asset.clone(),
            }),
            archived: qa.archived.clone(),
        }
    }
}

impl Error {
    fn of(data: &protocol::ErrorData) -> Error {
        Error {
            kind: data.kind.as_str(),
            code: data.code.clone(),
            message: data.message.clone(),
            hint: data.hint.clone(),
        }
    }
}

fn job_status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Planned => "planned",
        JobStatus::Running => "running",
        JobStatus::Done => "done",
        JobStatus::Failed => "failed",
        JobStatus::FailedOutputGuard => "failed_output_guard",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::run::{CandidateStatus, JobDetail, RunStatus, Stage};

    #[test]
    fn the_record_has_its_format_and_the_same_fields_the_wire_detail_has() {
        let plan: protocol::run::Plan = serde_json::from_value(serde_json::json!({
            "project": "noir", "stage": "style", "provider": "fake", "base_url": "http://x/v1",
            "model": "gpt-image-2", "size": "1024x1536", "quality": "low", "candidates": 1,
            "jobs": [], "settings": {},
            "cost": {"calls": 1, "per_call_max_usd": 0.1, "max_usd": 0.1, "price_source": "builtin:x"},
        }))
        .expect("plan");
        let detail = RunDetail {
            run: RunSummary {
                id: "r-1".into(),
                project: "noir".into(),
                stage: Stage::Style,
                status: RunStatus::Done,
                model: "gpt-image-2".into(),
                jobs: 1,
                candidates: 1,
                succeeded: 1,
                failed: 0,
                max_cost_usd: 0.1,
                confirmed_cost_usd: Some(0.1),
                spent_usd: 0.05,
                created_at: "2026-12-06T00:00:00.000Z".into(),
                started_at: None,
                finished_at: None,
                record: "/p/runs/r-1.json".into(),
            },
            plan,
            jobs: vec![JobDetail {
                key: "style_1_a".into(),
                status: JobStatus::Done,
                candidates: vec![CandidateDetail {
                    index: 1,
                    status: CandidateStatus::Succeeded,
                    attempts: 1,
                    asset: Some("a-1".into()),
                    output: Some("outputs/a.png".into()),
                    cost_usd: Some(0.05),
                    request_id: None,
                    error: None,
                    postprocess: None,
                    final_asset: None,
                    final_output: None,
                    postprocess_error: None,
                    qa: Some(protocol::run::CandidateQa {
                        verdict: protocol::qa::Verdict::Warn,
                        checked: "/p/outputs/a.png".into(),
                        chroma_delta: Some(3.5),
                        hard_fail_reasons: vec![],
                        soft_warnings: vec![protocol::qa::Reason::ChromaExceedsThreshold],
                        rank: protocol::qa::Rank {
                            hard_failures: 0,
                            soft_warnings: 1,
                            avg_chroma_exceed: 1.5,
                        },
                        drift: Some(protocol::run::DriftScore {
                            structure: 0.1,
                            palette: 0.5,
                            drifted: true,
                            baseline_asset: "b-1".into(),
                        }),
                        archived: None,
                    }),
                }],
                ranking: vec![1],
                winner: Some(1),
                why: Some("the only candidate that passed".into()),
                baseline: Some(protocol::run::Baseline {
                    scene_asset: "s-1".into(),
                    asset: "b-1".into(),
                    path: "/p/outputs/b.png".into(),
                    run: "r-0".into(),
                    job: "style_1_a".into(),
                    candidate: 2,
                    stage: Stage::Style,
                    approved_at: "2026-12-05T00:00:00.000Z".into(),
                }),
                approved: Some(1),
            }],
        };
        let record = serde_json::to_value(Record::of(&detail, "2026-12-06T00:00:01.000Z".into()))
            .expect("json");
        assert_eq!(record["record_format"], 1);
        let mut wire = serde_json::to_value(&detail).expect("json");
        wire["record_format"] = 1.into();
        wire["kroma_version"] = crate::VERSION.into();
        wire["written_at"] = "2026-12-06T00:00:01.000Z".into();
        assert_eq!(record, wire, "format 1 says what the run detail says");
    }
}
