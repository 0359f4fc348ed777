//! Reviewing a run's outputs: `run approve` (a candidate becomes its scene's baseline),
//! `run baselines`, `run sheet` (the contact sheet, written to a file), and the words `run show`
//! and plans use for QA verdicts, drift, winners and baselines.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::run as wire;

use crate::Global;
use crate::output::{self, Failure, print};
use crate::qa::{chroma_text, reasons_text};

#[derive(Debug, Args)]
pub struct SheetArgs {
    /// The run's id
    pub run: String,
    /// The PNG to write [default: run-<first 8 characters of RUN>-sheet.png here]; a folder holds it
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Thumbnail side in pixels, 64 to 512 [default: 192]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(64..=512))]
    pub thumb: Option<u32>,
    /// Replace the file if it exists
    #[arg(long)]
    pub force: bool,
}

pub async fn approve(
    global: &Global,
    socket: &Path,
    params: wire::ApproveParams,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let baseline = client.call::<wire::Approve>(&params).await?;
    print(global, &baseline, || approved_text(&baseline));
    Ok(())
}

pub async fn baselines(global: &Global, socket: &Path, project: String) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let list = client
        .call::<wire::Baselines>(&wire::BaselinesParams {
            project: project.clone(),
        })
        .await?;
    print(global, &list, || baselines_text(&project, &list));
    Ok(())
}

/// `run sheet`: the sheet kromad renders, written atomically to a new file (or over one with
/// `--force`). `--json` prints `{path, width, height}`, not the PNG's base64.
pub async fn sheet(global: &Global, socket: &Path, args: SheetArgs) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let sheet = client
        .call::<wire::RenderSheet>(&wire::SheetParams {
            run: args.run.clone(),
            thumb: args.thumb,
        })
        .await?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&sheet.png_base64)
        .map_err(|err| Failure::other(format!("kromad's sheet is not base64: {err}"), None))?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(Failure::other("kromad's sheet is not a PNG", None));
    }
    let path = sheet_path(&args.run, args.output.as_deref())?;
    write_new_file(&path, &png, args.force)?;
    let written = serde_json::json!({
        "path": path.display().to_string(),
        "width": sheet.width,
        "height": sheet.height,
    });
    print(global, &written, || {
        format!(
            "wrote {} ({}×{}, {} bytes)",
            path.display(),
            sheet.width,
            sheet.height,
            png.len()
        )
    });
    Ok(())
}

/// Where the sheet goes: `output` (a folder holds the default name), else the default name in
/// the current folder; absolute, so the message names the file wherever it was asked from.
fn sheet_path(run: &str, output: Option<&Path>) -> Result<PathBuf, Failure> {
    let name = default_sheet_name(run);
    let path = match output {
        Some(output) if output.is_dir() => output.join(name),
        Some(output) => output.to_owned(),
        None => PathBuf::from(name),
    };
    std::path::absolute(&path)
        .map_err(|err| Failure::other(format!("making {} absolute: {err}", path.display()), None))
}

/// `run-0b7e5a9c-sheet.png`: the run id's first 8 characters, kept to letters, digits, `-` and
/// `_` so no id names another folder.
fn default_sheet_name(run: &str) -> String {
    let short: String = run
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(8)
        .collect();
    format!("run-{short}-sheet.png")
}

/// Writes `bytes` to a temporary file in `path`'s folder, synced, then renames it into place:
/// readers never see half a file. An existing file is an error unless `force` (then it is
/// replaced at once); the check and the rename are one step, so no file made meanwhile is lost.
fn write_new_file(path: &Path, bytes: &[u8], force: bool) -> Result<(), Failure> {
    let folder = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        Failure::other(format!("{what} {}: {err}", path.display()), None)
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".kroma-sheet-").suffix(".tmp");
    #[cfg(unix)]
    {
        // As any new file: readable as the umask allows, not tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder
        .tempfile_in(folder)
        .map_err(|err| failed("writing", &err))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|err| failed("writing", &err))?;
    let placed = if force {
        temp.persist(path).map(drop)
    } else {
        temp.persist_noclobber(path).map(drop)
    };
    match placed {
        Ok(()) => Ok(()),
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => Err(Failure::other(
            format!("{} exists", path.display()),
            Some("pass --force to replace it, or -o FILE to write another"),
        )),
        Err(err) => Err(failed("writing", &err.error)),
    }
}

/// What `run approve` approved, and what it means for later stages.
pub(crate) fn approved_text(baseline: &wire::Baseline) -> String {
    format!(
        "approved run {} job {} #{} as the baseline of scene {}: {}\n\
         later stages of this scene now start from it",
        baseline.run, baseline.job, baseline.candidate, baseline.scene_asset, baseline.path
    )
}

pub(crate) fn baselines_text(project: &str, list: &wire::BaselineList) -> String {
    if list.baselines.is_empty() {
        return format!(
            "no approved baselines in {project}; approve a candidate with \
             `kromactl run approve RUN JOB CANDIDATE`"
        );
    }
    let mut table = output::table(&[
        "scene asset",
        "run",
        "job",
        "#",
        "stage",
        "approved at",
        "path",
    ]);
    for baseline in &list.baselines {
        table.add_row(vec![
            baseline.scene_asset.clone(),
            baseline.run.clone(),
            baseline.job.clone(),
            baseline.candidate.to_string(),
            baseline.stage.as_str().to_owned(),
            baseline.approved_at.clone(),
            baseline.path.clone(),
        ]);
    }
    table.to_string()
}

/// A job's status as events and `run show` spell it.
pub(crate) fn job_status(status: wire::JobStatus) -> &'static str {
    match status {
        wire::JobStatus::Planned => "planned",
        wire::JobStatus::Running => "running",
        wire::JobStatus::Done => "done",
        wire::JobStatus::Failed => "failed",
        wire::JobStatus::FailedOutputGuard => "failed_output_guard",
    }
}

/// A candidate's QA verdict and chroma delta, `-` before it is checked.
pub(crate) fn qa_cells(candidate: &wire::CandidateDetail) -> [String; 2] {
    match &candidate.qa {
        Some(qa) => [qa.verdict.as_str().to_owned(), chroma_text(qa.chroma_delta)],
        None => ["-".to_owned(), "-".to_owned()],
    }
}

/// `s0.1234 p0.5678`, with ` DRIFTED` past the settings' limits; `-` without a baseline.
pub(crate) fn drift_text(candidate: &wire::CandidateDetail) -> String {
    match candidate.qa.as_ref().and_then(|qa| qa.drift.as_ref()) {
        Some(drift) => format!(
            "s{:.4} p{:.4}{}",
            drift.structure,
            drift.palette,
            if drift.drifted { " DRIFTED" } else { "" }
        ),
        None => "-".to_owned(),
    }
}

/// Whether the QA guard moved the candidate's output to the archive, and where.
pub(crate) fn archived(candidate: &wire::CandidateDetail) -> Option<&str> {
    candidate.qa.as_ref()?.archived.as_deref()
}

/// Whether the candidate drifted from its baseline (`run retry --only-drifted` calls it again).
pub(crate) fn drifted(candidate: &wire::CandidateDetail) -> bool {
    candidate
        .qa
        .as_ref()
        .and_then(|qa| qa.drift.as_ref())
        .is_some_and(|drift| drift.drifted)
}

/// `job style_1_harbor: done; winner #2: <why>; ranking 2,1,3; approved #2`, then its baseline
/// and why each candidate that did not pass was warned about or failed.
pub(crate) fn job_lines(job: &wire::JobDetail) -> Vec<String> {
    let mut head = format!("job {}: {}", job.key, job_status(job.status));
    if let Some(winner) = job.winner {
        head.push_str(&format!("; winner #{winner}"));
        if let Some(why) = &job.why {
            head.push_str(&format!(": {why}"));
        }
    }
    if !job.ranking.is_empty() {
        let ranking: Vec<String> = job.ranking.iter().map(u32::to_string).collect();
        head.push_str(&format!("; ranking {}", ranking.join(",")));
    }
    if let Some(approved) = job.approved {
        head.push_str(&format!("; approved #{approved}"));
    }
    let mut lines = vec![head];
    if let Some(baseline) = &job.baseline {
        lines.push(format!(
            "  baseline: run {} job {} #{}",
            baseline.run, baseline.job, baseline.candidate
        ));
    }
    for candidate in &job.candidates {
        if let Some(qa) = &candidate.qa
            && qa.verdict != protocol::qa::Verdict::Pass
        {
            lines.push(format!(
                "  #{} {}: {}",
                candidate.index,
                qa.verdict.as_str(),
                reasons_text(&qa.hard_fail_reasons, &qa.soft_warnings, None)
            ));
        }
    }
    lines
}

/// What a planned job starts from, in the stages after style: its approved baseline, or the
/// scene itself when the scene has none yet. `None` in the style stage.
pub(crate) fn planned_baseline(stage: wire::Stage, job: &wire::PlannedJob) -> Option<String> {
    match &job.baseline {
        Some(baseline) => Some(format!("baseline: {}", baseline.path)),
        None if stage != wire::Stage::Style => {
            Some("no approved baseline (starts from the scene)".to_owned())
        }
        None => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn baseline(run: &str, job: &str, candidate: u32) -> wire::Baseline {
        wire::Baseline {
            scene_asset: "scene-1".to_owned(),
            asset: "asset-9".to_owned(),
            path: format!("/p/outputs/{job}_{candidate}.png"),
            run: run.to_owned(),
            job: job.to_owned(),
            candidate,
            stage: wire::Stage::Style,
            approved_at: "2026-12-06T14:30:00.000Z".to_owned(),
        }
    }

    #[test]
    fn approving_and_listing_baselines() {
        let approved = baseline("run-1", "style_1_harbor", 2);
        let list = wire::BaselineList {
            baselines: vec![approved.clone(), baseline("run-0", "style_2_docks", 1)],
        };
        let empty = wire::BaselineList {
            baselines: Vec::new(),
        };
        insta::assert_snapshot!(
            [
                approved_text(&approved),
                baselines_text("harbor", &list),
                baselines_text("harbor", &empty),
            ]
            .join("\n\n----\n\n")
        );
    }

    #[test]
    fn the_default_sheet_name_keeps_to_the_run_ids_first_characters() {
        let check = |run: &str, expected: &str| assert_eq!(default_sheet_name(run), expected);
        check(
            "0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
            "run-0b7e5a9c-sheet.png",
        );
        check("ab12", "run-ab12-sheet.png");
        check("../../etc/passwd", "run-etcpassw-sheet.png");
    }

    #[test]
    fn a_sheet_never_replaces_a_file_unless_forced() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("sheet.png");
        write_new_file(&path, b"first", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let refused = write_new_file(&path, b"second", false).unwrap_err();
        assert!(
            format!("{refused:?}").contains("exists") && format!("{refused:?}").contains("--force"),
            "{refused:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_new_file(&path, b"third", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        // No temporary file is left behind, either way.
        let names: Vec<_> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["sheet.png"]);
        // A folder holds the default name.
        let into_folder = sheet_path("0b7e5a9c-3f64", Some(temp.path())).unwrap();
        assert_eq!(into_folder, temp.path().join("run-0b7e5a9c-sheet.png"));
        let missing_folder = temp.path().join("no/such/folder/sheet.png");
        assert!(write_new_file(&missing_folder, b"x", false).is_err());
    }
}
