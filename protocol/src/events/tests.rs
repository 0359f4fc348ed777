//! Tests of `events.rs`.

use serde_json::{Value, json};

use super::*;

fn event(kind: &str, data: Value) -> Event {
    Event {
        id: 7,
        at: "2026-05-01T10:00:00.000Z".to_owned(),
        kind: kind.to_owned(),
        project: Some("night-harbor".to_owned()),
        data,
    }
}

/// `data` as the daemon writes it today reads back as `T` and is written again unchanged,
/// byte for byte once stored (`data` is a JSON value, so its keys are sorted either way).
fn check<T: EventData + PartialEq + std::fmt::Debug>(data: Value) -> T {
    let payload = event(T::KIND, data.clone())
        .payload::<T>()
        .expect("the kind is T's")
        .unwrap_or_else(|err| panic!("{}: {err}", T::KIND));
    let written = payload.to_data();
    assert_eq!(written, data, "{}", T::KIND);
    assert_eq!(written.to_string(), data.to_string(), "{}", T::KIND);
    payload
}

const RUN: &str = "6f1c2a9e-3f64-4a43-9d1e-0c4f3b8a7e21";
const JOB: &str = "style_1_harbor";

#[test]
fn daemon_project_and_asset_events() {
    check::<DaemonStarted>(json!({"version": "0.4.0", "pid": 4242}));
    check::<DaemonStopping>(json!({"pid": 4242}));
    check::<ProjectCreated>(json!({
        "id": "0e4e3c55-5d7b-4a4c-8c1e-9a1d2b3c4d5e",
        "name": "Night Harbor",
        "root": "/home/ada/kroma/night-harbor",
    }));
    let updated = check::<ProjectUpdated>(json!({"changed": ["name", "description", "s3"]}));
    assert_eq!(
        updated.changed,
        [
            ProjectField::Name,
            ProjectField::Description,
            ProjectField::S3
        ]
    );
    check::<ProjectUpdated>(json!({"changed": []}));
    check::<ProjectDeleted>(json!({
        "id": "0e4e3c55-5d7b-4a4c-8c1e-9a1d2b3c4d5e",
        "root": "/home/ada/kroma/night-harbor",
        "purged_files": false,
    }));
    check::<AssetImported>(json!({
        "id": "a1", "path": "inputs/3f9a0c.png", "kind": "input",
    }));
    check::<AssetDeleted>(json!({"id": "a1", "path": "inputs/3f9a0c.png"}));
    check::<AssetLinked>(json!({"from": "a2", "to": "a1", "relation": "derived_from"}));
}

#[test]
fn knowledge_secret_and_provider_events() {
    check::<StyleGuideChanged>(json!({"action": "created", "id": "s1", "name": "Ink"}));
    check::<CharacterChanged>(json!({"action": "updated", "id": "c1", "name": "Mara"}));
    check::<ReferenceSetChanged>(json!({"action": "updated", "id": "r1", "name": "Docks"}));
    check::<PromptTemplateChanged>(json!({"action": "deleted", "id": "t1", "name": "Rain"}));
    let counts = |created: u32| json!({"created": created, "updated": 0, "deleted": 0});
    check::<BootstrapImported>(json!({
        "mode": "replace",
        "style_guides": counts(1),
        "characters": counts(2),
        "prompt_templates": counts(0),
    }));
    check::<SecretChanged>(json!({"name": "openai", "action": "set"}));
    check::<SecretChanged>(json!({"name": "openai", "action": "deleted"}));
    check::<ProviderChanged>(json!({"name": "openai", "action": "created"}));
}

#[test]
fn run_and_job_events() {
    check::<RunCreated>(json!({"run": RUN, "status": "planned", "jobs": 3, "max_cost_usd": 0.75}));
    check::<RunCreated>(json!({"run": RUN, "status": "dry_run", "jobs": 3, "max_cost_usd": 0.75}));
    let started = check::<RunStarted>(json!({
        "run": RUN, "confirmed_cost_usd": 1.0, "max_cost_usd": 0.75, "candidates": 6,
    }));
    assert!(!started.retry);
    let retried = check::<RunStarted>(json!({
        "run": RUN, "retry": true, "candidates": 2, "chains": 0,
        "confirmed_cost_usd": 0.25, "max_cost_usd": 0.25,
    }));
    assert_eq!((retried.retry, retried.chains), (true, Some(0)));
    check::<RunProgress>(json!({
        "run": RUN, "jobs": 3, "jobs_done": 1, "candidates": 6, "succeeded": 2,
        "failed": 1, "spent_usd": 0.08,
    }));
    check::<RunProgress>(json!({
        "run": RUN, "jobs": 3, "jobs_done": 1, "candidates": 6, "succeeded": 2,
        "failed": 1, "spent_usd": 0.08, "eta_secs": 80,
    }));
    check::<RunFinished>(json!({"run": RUN, "status": "partial", "spent_usd": 0.5}));
    check::<JobStarted>(json!({"run": RUN, "job": JOB, "status": "running"}));
    check::<JobFinished>(json!({"run": RUN, "job": JOB, "status": "failed"}));
}

#[test]
fn candidate_events() {
    check::<CandidateStarted>(json!({"run": RUN, "job": JOB, "index": 1, "status": "calling"}));
    check::<CandidateFinished>(json!({
        "run": RUN, "job": JOB, "index": 1, "status": "succeeded", "cost_usd": 0.04,
        "output": "/home/ada/kroma/night-harbor/outputs/style_1_harbor_1.png",
    }));
    let canceled = check::<CandidateFinished>(json!({
        "run": RUN, "job": JOB, "index": 2, "status": "canceled",
        "error": {"kind": "policy", "code": "canceled", "message": "the run was canceled"},
    }));
    let error = canceled.error.expect("a canceled candidate says why");
    assert_eq!(error.code(), Some(crate::ErrorCode::Canceled));
    check::<CandidateFailed>(json!({
        "run": RUN, "job": JOB, "index": 1, "status": "failed",
        "error": {
            "kind": "provider", "code": "provider_rejected",
            "message": "https://api.openai.com/v1 answered 400 Bad Request: bad size",
            "hint": "the provider refused the request; fix what it names, then retry the run",
        },
    }));
    check::<CandidateFailed>(json!({
        "run": RUN, "job": JOB, "index": 3, "status": "unknown", "cost_usd": 0.04,
        "error": {
            "kind": "provider", "code": "call_lost",
            "message": "kromad stopped during this call; the provider may have billed it and the result is lost",
        },
    }));
    check::<CandidatePostprocessed>(json!({
        "run": RUN, "job": JOB, "index": 1, "status": "done",
        "final_output": "/home/ada/kroma/night-harbor/color_corrected/style_1_harbor_1_neutral.png",
    }));
    check::<CandidatePostprocessed>(json!({
        "run": RUN, "job": JOB, "index": 1, "status": "failed",
        "error": {"kind": "infra", "code": "models_missing", "message": "no manifest.json"},
    }));
}

#[test]
fn export_events() {
    check::<crate::export::ExportProgress>(json!({
        "project": "noir", "target": "/p/exports/noir-project-1a2b3c4d.tar.gz",
        "phase": "packing", "done": 2, "total": 5, "bytes_done": 2048, "bytes_total": 9000,
    }));
}

#[test]
fn postprocess_events() {
    // `output` and `error` are written as null, not left out.
    check::<PostprocessFile>(json!({
        "step": "upscale", "input": "/tmp/a.png", "output": "/tmp/a_x4.png", "error": null,
        "done": 1, "total": 3,
    }));
    check::<PostprocessFile>(json!({
        "step": "color", "input": "/tmp/b.png", "output": null,
        "error": {"kind": "validation", "code": "not_an_image", "message": "/tmp/b.png: not an image"},
        "done": 2, "total": 3,
    }));
    let one_off = check::<PostprocessProgress>(json!({
        "step": "upscale", "input": "/tmp/a.png", "tiles_done": 3, "tiles": 24,
    }));
    assert!(matches!(one_off, PostprocessProgress::File(_)));
    let chain = check::<PostprocessProgress>(json!({
        "run": RUN, "job": JOB, "index": 1, "status": "postprocessing", "step": "bg_remove",
        "candidate": "9b2f0d4e-1c3a-4e5f-8a7b-6c5d4e3f2a1b", "tiles_done": 1, "tiles": 4,
    }));
    assert!(matches!(chain, PostprocessProgress::Chain(_)));
    for step in [Step::Color, Step::BgRemove, Step::Upscale] {
        assert_eq!(serde_json::to_value(step).unwrap(), step.as_str());
    }
}

#[test]
fn every_kind_has_one_payload_type() {
    macro_rules! kinds {
        ($($data:ty),* $(,)?) => { vec![$(<$data as EventData>::KIND),*] };
    }
    let mut typed: Vec<&str> = for_each_event_data!(kinds);
    typed.sort_unstable();
    let mut listed = kind::ALL.to_vec();
    listed.sort_unstable();
    assert_eq!(typed, listed);
    let count = listed.len();
    listed.dedup();
    assert_eq!(listed.len(), count, "a kind is listed twice");
}

#[test]
fn unknown_kinds_and_fields_are_tolerated() {
    let later: Event = serde_json::from_value(json!({
        "id": 9, "at": "2026-05-01T10:00:00.000Z", "kind": "run.paused",
        "data": {"run": RUN, "why": "a kind added later"},
    }))
    .unwrap();
    assert!(later.payload::<RunFinished>().is_none());
    let grown = event(
        kind::RUN_FINISHED,
        json!({"run": RUN, "status": "done", "spent_usd": 0.1, "reason": "a field added later"}),
    );
    let finished = grown.payload::<RunFinished>().unwrap().unwrap();
    assert_eq!(finished.status, RunStatus::Done);
}

#[test]
fn another_kind_or_a_short_payload_is_not_taken_for_t() {
    let progress = event(kind::RUN_PROGRESS, json!({"run": RUN, "spent_usd": 0.42}));
    assert!(progress.payload::<RunFinished>().is_none());
    assert!(progress.payload::<RunProgress>().unwrap().is_err());
}
