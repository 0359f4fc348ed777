//! Reviewing results end to end against the real kromad: `qa.check` on files and folders, the
//! QA guard on every candidate of a run (ranking, the winner, `failed_output_guard`, bad outputs
//! moved to `archive/bad/` with their rows), approving a baseline and a later stage that starts
//! from it, and `qa.archive_bad`.

use std::path::Path;
use std::time::Duration;

use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::qa::{Reason, Verdict};
use protocol::run::{JobStatus, RunStatus, Stage};

use crate::runs::{World, create, error_of, fake, finished, params, setup, start, write_png};

const FAST: &str = "[generation]\nretry_base_ms = 10\ntimeout_secs = 5\nmax_attempts = 2\n";

async fn check(client: &Client, params: protocol::qa::CheckParams) -> protocol::qa::Report {
    client
        .call::<protocol::qa::Check>(&params)
        .await
        .expect("qa.check")
}

fn name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qa_check_reports_every_file_of_a_folder_and_checks_the_rest_after_a_bad_one() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let folder = tempfile::tempdir().expect("temp");
    let nested = folder.path().join("pages/ch1");
    std::fs::create_dir_all(&nested).expect("folders");
    write_png(&folder.path().join("a_gray.png"), [90, 90, 90]);
    write_png(&nested.join("b_tinted.png"), [140, 120, 100]);
    std::fs::write(
        folder.path().join("c_broken.png"),
        b"\x89PNG\r\n\x1a\nbroken",
    )
    .expect("bad");
    std::fs::write(folder.path().join("notes.txt"), b"not an image").expect("text");
    let empty = tempfile::tempdir().expect("temp");
    let missing = folder.path().join("missing.png");

    let report = check(
        &client,
        protocol::qa::CheckParams {
            paths: vec![
                folder.path().display().to_string(),
                empty.path().display().to_string(),
                missing.display().to_string(),
            ],
            ..Default::default()
        },
    )
    .await;
    let seen: Vec<(String, Verdict, Vec<Reason>, Vec<Reason>)> = report
        .files
        .iter()
        .map(|file| {
            (
                name_of(&file.file),
                file.verdict(),
                file.hard_fail_reasons.clone(),
                file.soft_warnings.clone(),
            )
        })
        .collect();
    let empty_name = name_of(&empty.path().display().to_string());
    assert_eq!(
        seen,
        vec![
            ("a_gray.png".into(), Verdict::Pass, vec![], vec![]),
            (
                "c_broken.png".into(),
                Verdict::Fail,
                vec![Reason::ImageReadFailed],
                vec![]
            ),
            (
                "b_tinted.png".into(),
                Verdict::Warn,
                vec![],
                vec![Reason::ChromaExceedsThreshold]
            ),
            (
                empty_name,
                Verdict::Fail,
                vec![Reason::NoImagesFound],
                vec![]
            ),
            (
                "missing.png".into(),
                Verdict::Fail,
                vec![Reason::InputNotFound],
                vec![]
            ),
        ],
        "sorted within the folder (pages/ sorts after c_), the bad file reported, the rest checked"
    );
    assert_eq!(report.files[2].chroma_delta, Some(26.6667));
    assert_eq!(report.summary.total_files, 5);
    assert_eq!(report.summary.hard_failures, 3);
    assert_eq!(report.summary.soft_warnings, 1);
    assert_eq!(report.settings.max_chroma_delta, 2.0);

    // The call's own settings: a grayscale rule makes the tinted file fail hard.
    let strict = check(
        &client,
        protocol::qa::CheckParams {
            paths: vec![nested.join("b_tinted.png").display().to_string()],
            enforce_grayscale: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        strict.files[0].hard_fail_reasons,
        vec![Reason::NotGrayscaleLike]
    );
    let refused = client
        .call::<protocol::qa::Check>(&protocol::qa::CheckParams::default())
        .await;
    assert_eq!(error_of(refused).code, "invalid_paths");
}

fn project_root(detail: &protocol::run::RunDetail) -> std::path::PathBuf {
    Path::new(&detail.run.record)
        .parent()
        .and_then(Path::parent)
        .expect("root")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_check_every_candidate_rank_them_and_archive_what_fails_hard() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;

    // The fake provider paints coloured tiles: with the default settings every candidate only
    // warns, and the least chroma above the threshold wins.
    let detail = create(&client, params(vec![scene.clone()], 3)).await;
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    let job = &done.jobs[0];
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.ranking.len(), 3);
    for candidate in &job.candidates {
        let qa = candidate.qa.as_ref().expect("checked");
        assert_eq!(qa.verdict, Verdict::Warn);
        assert_eq!(qa.rank.soft_warnings, 1);
        assert_eq!(Some(qa.checked.as_str()), candidate.output.as_deref());
    }
    let excess = |index: u32| {
        job.candidates[index as usize - 1]
            .qa
            .as_ref()
            .expect("qa")
            .rank
            .avg_chroma_exceed
    };
    let winner = job.winner.expect("a winner");
    assert!(job.ranking.windows(2).all(|w| excess(w[0]) <= excess(w[1])));
    assert_eq!(winner, job.ranking[0]);
    // The fake paints the same picture for the same request, so the candidates tie and the
    // lowest index wins; the reason says so.
    assert!(job.why.is_some(), "{job:#?}");
    // The record is rewritten just after the run's end is committed: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&done.run.record).expect("record"))
                .expect("json");
        if record["jobs"][0]["winner"] == winner {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{record:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A grayscale project: every coloured candidate fails hard, is moved to archive/bad/ and
    // the job ends failed_output_guard.
    let root = project_root(&done);
    std::fs::write(
        root.join(".kroma/settings.toml"),
        "[qa]\nenforce_grayscale = true\n",
    )
    .expect("project settings");
    let strict = create(&client, params(vec![scene.clone()], 2)).await;
    start(&client, &strict).await.expect("start");
    let failed = finished(&client, &strict.run.id).await;
    assert_eq!(failed.run.status, RunStatus::Failed, "{failed:#?}");
    let job = &failed.jobs[0];
    assert_eq!(job.status, JobStatus::FailedOutputGuard);
    assert!(job.winner.is_none() && job.ranking.is_empty());
    for candidate in &job.candidates {
        let qa = candidate.qa.as_ref().expect("checked");
        assert_eq!(qa.verdict, Verdict::Fail);
        assert_eq!(qa.hard_fail_reasons, vec![Reason::NotGrayscaleLike]);
        let archived = qa.archived.as_deref().expect("archived");
        assert!(archived.contains("/archive/bad/") && archived.contains("_bad_"));
        assert!(Path::new(archived).is_file());
        assert_eq!(
            candidate.output.as_deref(),
            Some(archived),
            "the row follows the file"
        );
        let asset = client
            .call::<protocol::asset::Get>(&protocol::asset::AssetRef {
                project: "noir".into(),
                id: candidate.asset.clone().expect("asset"),
            })
            .await
            .expect("asset");
        assert!(
            archived.ends_with(&asset.path),
            "the asset row follows the file: {asset:#?}"
        );
    }
    let outputs: Vec<String> = std::fs::read_dir(root.join("outputs"))
        .expect("outputs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        outputs
            .iter()
            .all(|name| !name.contains(&strict.run.id[..8])),
        "nothing of the failed run is left in outputs/: {outputs:?}"
    );
    let rechecked = check(
        &client,
        protocol::qa::CheckParams {
            run: Some(strict.run.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(rechecked.summary.hard_failures, 2);
    assert!(
        rechecked.settings.enforce_grayscale,
        "the run's own settings"
    );

    // A failed candidate cannot be a baseline; any other may, not only the winner.
    let refused = client
        .call::<protocol::run::Approve>(&protocol::run::ApproveParams {
            run: strict.run.id.clone(),
            job: job.key.clone(),
            candidate: 1,
        })
        .await;
    assert_eq!(error_of(refused).code, "not_approvable");
    let missing = client
        .call::<protocol::run::Approve>(&protocol::run::ApproveParams {
            run: done.run.id.clone(),
            job: "style_9_nothing".into(),
            candidate: 1,
        })
        .await;
    assert_eq!(error_of(missing).code, "candidate_not_found");
    std::fs::remove_file(root.join(".kroma/settings.toml")).expect("back to defaults");
    let chosen = done.jobs[0].ranking[1];
    let baseline = client
        .call::<protocol::run::Approve>(&protocol::run::ApproveParams {
            run: done.run.id.clone(),
            job: done.jobs[0].key.clone(),
            candidate: chosen,
        })
        .await
        .expect("approve");
    assert_eq!(baseline.scene_asset, scene);
    assert_eq!(baseline.candidate, chosen);
    assert_eq!(
        Some(baseline.path.as_str()),
        done.jobs[0].candidates[chosen as usize - 1]
            .output
            .as_deref()
    );
    let shown = crate::runs::show(&client, &done.run.id).await;
    assert_eq!(shown.jobs[0].approved, Some(chosen));
    let listed = client
        .call::<protocol::run::Baselines>(&protocol::run::BaselinesParams {
            project: "noir".into(),
        })
        .await
        .expect("baselines");
    assert_eq!(listed.baselines, vec![baseline.clone()]);

    // A time-of-day stage of that scene starts from the approved image; a scene without one
    // starts from itself, and the plan says so.
    let other = tempfile::tempdir().expect("temp").keep().join("pier.png");
    write_png(&other, [10, 10, 10]);
    let mut night = params(vec![scene.clone(), other.display().to_string()], 1);
    night.stage = Stage::Time;
    night.time = Some("night".into());
    let plan = client
        .call::<protocol::run::PlanRun>(&night)
        .await
        .expect("plan");
    assert_eq!(plan.jobs[0].baseline.as_ref(), Some(&baseline));
    assert_eq!(plan.jobs[0].input_images[0].path, baseline.path);
    assert_eq!(
        plan.jobs[0].input_images[0].asset.as_deref(),
        Some(baseline.asset.as_str())
    );
    assert!(plan.jobs[1].baseline.is_none());
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("pier.png") && w.contains("no approved baseline")),
        "{:?}",
        plan.warnings
    );

    // The time stage runs from the baseline; with zero drift allowed every candidate drifts,
    // and a retry of the drifted ones pays again and archives what they replace.
    std::fs::write(
        root.join(".kroma/settings.toml"),
        "[qa]\nmax_structure_drift = 0.0\nmax_palette_drift = 0.0\n",
    )
    .expect("project settings");
    let mut one = params(vec![scene.clone()], 2);
    one.stage = Stage::Time;
    one.time = Some("night".into());
    let timed = create(&client, one).await;
    start(&client, &timed).await.expect("start");
    let night_done = finished(&client, &timed.run.id).await;
    let job = &night_done.jobs[0];
    assert_eq!(job.baseline.as_ref(), Some(&baseline));
    for candidate in &job.candidates {
        let drift = candidate
            .qa
            .as_ref()
            .and_then(|qa| qa.drift.as_ref())
            .expect("drift measured against the baseline");
        assert!(drift.drifted, "{drift:?}");
        assert_eq!(drift.baseline_asset, baseline.asset);
        assert!((0.0..=1.0).contains(&drift.structure) && (0.0..=1.0).contains(&drift.palette));
        assert!(drift.palette > 0.0 || drift.structure > 0.0);
    }
    assert!(
        job.winner.is_some(),
        "drifted candidates still rank when all drifted"
    );
    let before = world.fake.stats().billed;
    let old_outputs: Vec<String> = job
        .candidates
        .iter()
        .filter_map(|c| c.output.clone())
        .collect();
    client
        .call::<protocol::run::Retry>(&protocol::run::RetryParams {
            run: timed.run.id.clone(),
            only_failed: false,
            only_drifted: true,
            confirm_cost_usd: timed.plan.cost.max_usd,
        })
        .await
        .expect("retry the drifted");
    let again = finished(&client, &timed.run.id).await;
    assert_eq!(
        world.fake.stats().billed,
        before + 2,
        "each drifted candidate called once more"
    );
    assert!(again.jobs[0].candidates.iter().all(|c| c.qa.is_some()));
    let replaced = std::fs::read_dir(root.join("archive/replaced"))
        .expect("archive/replaced")
        .count();
    assert_eq!(
        replaced,
        old_outputs.len(),
        "the earlier outputs were archived, not overwritten"
    );

    // The contact sheet of the first run: a PNG of the size it says.
    let sheet = client
        .call::<protocol::run::RenderSheet>(&protocol::run::SheetParams {
            run: done.run.id.clone(),
            thumb: Some(64),
        })
        .await
        .expect("sheet");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&sheet.png_base64)
        .expect("base64");
    let image = image::load_from_memory(&png).expect("a PNG");
    assert_eq!((image.width(), image.height()), (sheet.width, sheet.height));
    assert!(sheet.width >= 3 * 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_bad_moves_files_with_their_rows_and_never_overwrites() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let asset = client
        .call::<protocol::asset::Get>(&protocol::asset::AssetRef {
            project: "noir".into(),
            id: scene.clone(),
        })
        .await
        .expect("asset");
    let root = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project")
        .root;
    let original = Path::new(&root).join(&asset.path);
    let outside = tempfile::tempdir().expect("temp");
    let loose = outside.path().join("loose.png");
    write_png(&loose, [1, 2, 3]);

    let report = client
        .call::<protocol::qa::ArchiveBad>(&protocol::qa::ArchiveBadParams {
            paths: vec![original.display().to_string(), loose.display().to_string()],
            into: None,
        })
        .await
        .expect("archive");
    assert_eq!((report.moved, report.failed), (1, 1), "{report:#?}");
    let moved_to = report.files[0].to.clone().expect("moved");
    assert!(moved_to.contains("/archive/bad/") && moved_to.contains("_bad_"));
    assert!(Path::new(&moved_to).is_file() && !original.exists());
    let after = client
        .call::<protocol::asset::Get>(&protocol::asset::AssetRef {
            project: "noir".into(),
            id: scene,
        })
        .await
        .expect("asset");
    assert_eq!(
        Path::new(&root).join(&after.path),
        Path::new(&moved_to),
        "the asset row follows the file"
    );
    assert_eq!(
        report.files[1].error.as_ref().expect("refused").code,
        "no_archive",
        "a file outside every project needs a folder to go to"
    );
    assert!(loose.is_file(), "a refused file stays where it was");
    let database = world.database();
    let refused = client
        .call::<protocol::qa::ArchiveBad>(&protocol::qa::ArchiveBadParams {
            paths: vec![database.display().to_string()],
            into: Some(outside.path().display().to_string()),
        })
        .await
        .expect("a report");
    assert_eq!(
        refused.files[0].error.as_ref().expect("refused").code,
        "path_escape",
        "kromad's own files are never moved"
    );
    assert!(database.is_file());

    // Into a named folder, twice the same name: the second gets a name of its own.
    let into = outside.path().join("rejects");
    for _ in 0..2 {
        write_png(&loose, [1, 2, 3]);
        let report = client
            .call::<protocol::qa::ArchiveBad>(&protocol::qa::ArchiveBadParams {
                paths: vec![loose.display().to_string()],
                into: Some(into.display().to_string()),
            })
            .await
            .expect("archive");
        assert_eq!(report.moved, 1);
    }
    let mut names: Vec<String> = std::fs::read_dir(&into)
        .expect("rejects")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("loose_bad_")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kromactl_qa_exits_1_on_a_hard_failure_and_sheets_and_inspects_a_run() {
    use crate::runs::kromactl;
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let socket = world.socket();
    let folder = tempfile::tempdir().expect("temp");
    write_png(&folder.path().join("gray.png"), [80, 80, 80]);
    let gray = folder.path().join("gray.png").display().to_string();

    let passed = kromactl(&socket, &["qa", &gray]).await;
    assert_eq!(passed.status.code(), Some(0), "{passed:?}");
    assert!(String::from_utf8_lossy(&passed.stdout).contains("pass"));
    std::fs::write(folder.path().join("broken.png"), b"\x89PNG\r\n\x1a\nbroken").expect("bad");
    let failed = kromactl(
        &socket,
        &["--json", "qa", &folder.path().display().to_string()],
    )
    .await;
    assert_eq!(failed.status.code(), Some(1), "a hard failure exits 1");
    let report: serde_json::Value = serde_json::from_slice(&failed.stdout).expect("json");
    assert_eq!(report["summary"]["hard_failures"], 1);
    assert_eq!(report["summary"]["total_files"], 2);

    let detail = create(&client, params(vec![scene], 2)).await;
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    let job = &done.jobs[0];
    let winner = job.winner.expect("winner").to_string();
    let shown = kromactl(&socket, &["run", "show", &done.run.id]).await;
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("warn") && text.contains("winner"), "{text}");

    let approved = kromactl(
        &socket,
        &["run", "approve", &done.run.id, &job.key, &winner],
    )
    .await;
    assert!(approved.status.success(), "{approved:?}");
    let listed = kromactl(&socket, &["--json", "run", "baselines", "noir"]).await;
    let baselines: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(baselines["baselines"][0]["job"], job.key.as_str());

    let sheet = folder.path().join("sheet.png");
    let sheet_arg = sheet.display().to_string();
    let written = kromactl(
        &socket,
        &[
            "run",
            "sheet",
            &done.run.id,
            "-o",
            &sheet_arg,
            "--thumb",
            "64",
        ],
    )
    .await;
    assert!(written.status.success(), "{written:?}");
    let image = image::open(&sheet).expect("a PNG sheet");
    assert!(image.width() >= 2 * 64);
    let again = kromactl(&socket, &["run", "sheet", &done.run.id, "-o", &sheet_arg]).await;
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never overwritten"
    );

    let output = job.candidates[0].output.clone().expect("output");
    let inspected = kromactl(&socket, &["--json", "inspect", &output]).await;
    assert!(inspected.status.success(), "{inspected:?}");
    let inspection: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(inspection["provenance"]["run"], done.run.id.as_str());
    assert_eq!(inspection["asset"]["project"], "noir");
    assert_eq!(
        inspection["qa"]["soft_warnings"][0],
        "chroma_exceeds_threshold"
    );
}

/// `kromactl bench qa` runs end to end on a small load; timings are reported, not asserted.
#[test]
fn the_qa_bench_measures_kromad() {
    let temp = tempfile::tempdir().expect("temp");
    let output = kroma_tests::kromactl(
        &temp.path().join("unused.sock"),
        &[
            "--json",
            "bench",
            "qa",
            "--files",
            "3",
            "--side",
            "16",
            "--kromad",
            kroma_tests::bin("kromad").to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(
        report["kromad"]["files_per_sec"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0),
        "{report}"
    );
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
}

/// An agent may ask for the QA guard on the project's own files and runs (free, at once), never
/// on anything outside the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_check_the_projects_files_and_runs_and_nothing_else() {
    use protocol::instruction::{
        self as wire, Approval, InstructionOutcome, InstructionPayload, InstructionState,
    };
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let detail = create(&person, params(vec![scene], 1)).await;
    start(&person, &detail).await.expect("start");
    let done = finished(&person, &detail.run.id).await;
    let root = project_root(&done);
    let page = root.join("inputs/page.png");
    write_png(&page, [70, 70, 70]);
    let agent = crate::instructions::agent(&world, "qa-agent").await;
    let ask = |payload: protocol::qa::CheckParams| {
        let agent = &agent;
        async move {
            agent
                .call::<wire::Create>(&wire::CreateParams {
                    project: "noir".into(),
                    objective: "check the pages are grayscale".into(),
                    source_text: None,
                    message: None,
                    payload: InstructionPayload::QaCheck(payload),
                })
                .await
        }
    };

    let files = ask(protocol::qa::CheckParams {
        paths: vec![page.display().to_string()],
        enforce_grayscale: Some(true),
        ..Default::default()
    })
    .await
    .expect("qa on the project's file");
    assert_eq!(files.approval, Some(Approval::Free));
    let checked = crate::instructions::settled(&agent, &files.id).await;
    assert_eq!(checked.state, InstructionState::Done, "{checked:#?}");
    let Some(InstructionOutcome::QaCheck { report }) = checked.outcome else {
        panic!("no report: {checked:#?}");
    };
    assert_eq!(report.summary.total_files, 1);
    assert_eq!(report.files[0].verdict(), Verdict::Pass);

    let run = ask(protocol::qa::CheckParams {
        run: Some(done.run.id.clone()),
        ..Default::default()
    })
    .await
    .expect("qa on the project's run");
    let checked = crate::instructions::settled(&agent, &run.id).await;
    let Some(InstructionOutcome::QaCheck { report }) = checked.outcome else {
        panic!("no report: {checked:#?}");
    };
    assert_eq!(report.summary.total_files, 1);

    let outside = tempfile::tempdir().expect("temp");
    write_png(&outside.path().join("secret.png"), [1, 2, 3]);
    let refused = ask(protocol::qa::CheckParams {
        paths: vec![outside.path().display().to_string()],
        ..Default::default()
    })
    .await;
    assert_eq!(error_of(refused).code, "path_outside_project");
    let direct = agent
        .call::<protocol::qa::Check>(&protocol::qa::CheckParams {
            paths: vec![outside.path().display().to_string()],
            ..Default::default()
        })
        .await;
    assert_eq!(
        error_of(direct).code,
        "not_for_agents",
        "qa.check itself names any path: a person's method"
    );
}
