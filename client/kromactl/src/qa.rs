//! `kromactl qa|archive-bad|inspect`: the QA guard on files, folders, an asset or a run's
//! outputs (`qa.check`), moving bad files to an archive (`qa.archive_bad`), and what Kroma knows
//! about one file (`file.inspect`).
//!
//! `qa` exits 1 when a file fails hard, also with `--json` (the report is printed first): the old
//! system's `qa` exited 0 on failures, so scripts could not stop on them.

use std::path::{Path, PathBuf};

use clap::Args;
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::qa as wire;

use crate::Global;
use crate::common::absolute;
use crate::output::{self, Failure, print};

/// What `qa` prints after its flags in `--help`: its exit codes, which differ from the others'.
pub const QA_EXIT_CODES: &str = "Exit codes: 0 every file passed or only warned, 1 a file failed hard \
     (or another error), 2 usage error, 3 kromad not running, 4 socket not yours (another user's, \
     or permission denied)";

/// The same for `archive-bad`.
pub const ARCHIVE_EXIT_CODES: &str = "Exit codes: 0 every file moved, 1 a file was not moved (or \
     another error), 2 usage error, 3 kromad not running, 4 socket not yours (another user's, or \
     permission denied)";

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("what")
        .required(true)
        .args(["paths", "run", "asset"])
))]
pub struct QaArgs {
    /// Image files or folders (folders: every PNG, JPEG and WebP below, recursively)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Check a run's outputs instead: each succeeded candidate's final image, with the run's settings
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Check one asset of --project instead
    #[arg(long, value_name = "ID", requires = "project")]
    pub asset: Option<String>,
    /// The project whose [qa] settings apply (and that holds --asset) [default: your settings]
    #[arg(long)]
    pub project: Option<String>,
    /// The largest chroma delta of a grayscale-like image, 0 or more [default: qa.max_chroma_delta]
    #[arg(long, value_name = "DELTA", value_parser = parse_delta, allow_negative_numbers = true)]
    pub max_chroma_delta: Option<f64>,
    /// An image that is not grayscale-like fails hard [default: qa.enforce_grayscale]
    #[arg(long)]
    pub enforce_grayscale: bool,
    /// A chroma delta above the threshold fails hard instead of warning [default: qa.fail_on_chroma_exceed]
    #[arg(long)]
    pub fail_on_chroma_exceed: bool,
}

#[derive(Debug, Args)]
pub struct ArchiveBadArgs {
    /// Image files or folders (folders: every PNG, JPEG and WebP below, recursively)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Folder to move them into [default: archive/bad/ of the project whose folder holds each file]
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The project whose [qa] settings apply [default: the project holding the file, else yours]
    #[arg(long)]
    pub project: Option<String>,
}

pub async fn check(global: &Global, socket: &Path, args: QaArgs) -> Result<(), Failure> {
    let params = check_params(args)?;
    let client = Client::connect_unbounded(socket).await?;
    let report = client.call::<wire::Check>(&params).await?;
    print(global, &report, || report_text(&report));
    let summary = &report.summary;
    if summary.hard_failures > 0 {
        return Err(Failure::other(
            format!(
                "{} of {} failed the QA guard",
                summary.hard_failures,
                files(summary.total_files)
            ),
            Some("move them out of the way with `kromactl archive-bad FILE…`"),
        ));
    }
    Ok(())
}

pub async fn archive_bad(
    global: &Global,
    socket: &Path,
    args: ArchiveBadArgs,
) -> Result<(), Failure> {
    let params = wire::ArchiveBadParams {
        paths: args
            .paths
            .iter()
            .map(|path| absolute(path))
            .collect::<Result<_, _>>()?,
        into: args.into.as_deref().map(absolute).transpose()?,
    };
    let client = Client::connect_unbounded(socket).await?;
    let report = client.call::<wire::ArchiveBad>(&params).await?;
    print(global, &report, || archive_text(&report));
    if report.failed > 0 {
        return Err(Failure::other(
            format!(
                "{} of {} were not moved",
                report.failed,
                files(report.files.len() as u32)
            ),
            Some("each file says why above; the others were moved"),
        ));
    }
    Ok(())
}

pub async fn inspect(global: &Global, socket: &Path, args: InspectArgs) -> Result<(), Failure> {
    let params = wire::InspectParams {
        path: absolute(&args.file)?,
        project: args.project,
    };
    let client = Client::connect(socket).await?;
    let inspection = client.call::<wire::Inspect>(&params).await?;
    print(global, &inspection, || inspection_text(&inspection));
    Ok(())
}

/// `--max-chroma-delta`: a finite number, 0 or more.
fn parse_delta(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(delta) if delta.is_finite() && delta >= 0.0 => Ok(delta),
        _ => Err(format!(
            "`{text}` is not a chroma delta, 0 or more, e.g. 2.0"
        )),
    }
}

/// `qa.check`'s params: the paths absolute (kromad does not share our working directory); a
/// switch left off sends nothing, so the settings decide.
fn check_params(args: QaArgs) -> Result<wire::CheckParams, Failure> {
    Ok(wire::CheckParams {
        paths: args
            .paths
            .iter()
            .map(|path| absolute(path))
            .collect::<Result<_, _>>()?,
        asset: args.asset,
        run: args.run,
        project: args.project,
        max_chroma_delta: args.max_chroma_delta,
        enforce_grayscale: args.enforce_grayscale.then_some(true),
        fail_on_chroma_exceed: args.fail_on_chroma_exceed.then_some(true),
    })
}

/// `1 file`, `3 files`.
fn files(n: u32) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// A file's verdict, its chroma delta (4 decimals, `-` when unread) and why.
pub(crate) fn verdict_cells(file: &wire::FileVerdict) -> [String; 3] {
    [
        file.verdict().as_str().to_owned(),
        chroma_text(file.chroma_delta),
        reasons_text(
            &file.hard_fail_reasons,
            &file.soft_warnings,
            file.error.as_ref(),
        ),
    ]
}

/// `3.1416`, or `-` when there is none.
pub(crate) fn chroma_text(chroma_delta: Option<f64>) -> String {
    chroma_delta.map_or_else(|| "-".to_owned(), |delta| format!("{delta:.4}"))
}

/// `not_grayscale_like, chroma_exceeds_threshold (soft): <error message>`: the hard reasons,
/// then the soft ones, then the error's message.
pub(crate) fn reasons_text(
    hard: &[wire::Reason],
    soft: &[wire::Reason],
    error: Option<&protocol::ErrorData>,
) -> String {
    let reasons: Vec<String> = hard
        .iter()
        .map(|reason| reason.as_str().to_owned())
        .chain(
            soft.iter()
                .map(|reason| format!("{} (soft)", reason.as_str())),
        )
        .collect();
    let mut text = reasons.join(", ");
    if let Some(error) = error {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&error.message);
    }
    text
}

/// `max chroma delta 2, grayscale enforced, chroma excess fails`.
fn settings_text(settings: &wire::QaSettings) -> String {
    let mut text = format!("max chroma delta {}", settings.max_chroma_delta);
    if settings.enforce_grayscale {
        text.push_str(", grayscale enforced");
    }
    if settings.fail_on_chroma_exceed {
        text.push_str(", chroma excess fails");
    }
    text
}

/// A line per file, then `N files: X failed, Y warned (settings)`.
pub(crate) fn report_text(report: &wire::Report) -> String {
    let mut table = output::table(&["verdict", "chroma", "file", "reasons"]);
    for file in &report.files {
        let [verdict, chroma, reasons] = verdict_cells(file);
        table.add_row(vec![verdict, chroma, file.file.clone(), reasons]);
    }
    let summary = &report.summary;
    let totals = format!(
        "{}: {} failed, {} warned ({})",
        files(summary.total_files),
        summary.hard_failures,
        summary.soft_warnings,
        settings_text(&report.settings)
    );
    if report.files.is_empty() {
        totals
    } else {
        format!("{table}\n{totals}")
    }
}

/// `from → to` per file moved, `from: error` per file not moved, then the counts.
pub(crate) fn archive_text(report: &wire::ArchiveReport) -> String {
    let mut lines: Vec<String> = report
        .files
        .iter()
        .map(|moved| match (&moved.to, &moved.error) {
            (Some(to), _) => format!("{} → {to}", moved.from),
            (None, Some(error)) => match &error.hint {
                Some(hint) => format!("{}: {} ({hint})", moved.from, error.message),
                None => format!("{}: {}", moved.from, error.message),
            },
            (None, None) => format!("{}: not moved", moved.from),
        })
        .collect();
    lines.push(format!("{} moved, {} failed", report.moved, report.failed));
    lines.join("\n")
}

/// The file, its asset, each provenance chunk (`kroma:<key>`, sorted) and the QA verdict.
pub(crate) fn inspection_text(inspection: &wire::Inspection) -> String {
    let format = match (&inspection.format, inspection.width, inspection.height) {
        (Some(format), Some(width), Some(height)) => format!("{format} {width}×{height}"),
        (Some(format), _, _) => format.clone(),
        (None, _, _) => "not an image Kroma reads".to_owned(),
    };
    let mut rows = vec![
        ("path", inspection.path.clone()),
        ("bytes", inspection.bytes.to_string()),
        ("format", format),
        ("sha256", inspection.sha256.clone()),
    ];
    if let Some(asset) = &inspection.asset {
        rows.push((
            "asset",
            format!("{}/{} ({})", asset.project, asset.id, asset.kind),
        ));
    }
    let provenance: Vec<(String, String)> = inspection
        .provenance
        .iter()
        .map(|(key, value)| (format!("kroma:{key}"), value.clone()))
        .collect();
    if provenance.is_empty() {
        rows.push((
            "provenance",
            "none (Kroma did not write this file)".to_owned(),
        ));
    }
    let [verdict, chroma, reasons] = verdict_cells(&inspection.qa);
    let mut qa = verdict;
    if inspection.qa.chroma_delta.is_some() {
        qa.push_str(&format!(", chroma {chroma}"));
    }
    if !reasons.is_empty() {
        qa.push_str(&format!(": {reasons}"));
    }
    let mut table = output::details(&rows);
    for (key, value) in &provenance {
        table.add_row(vec![format!("{key}:"), value.clone()]);
    }
    table.add_row(vec!["qa:".to_owned(), qa]);
    table.add_row(vec![
        "qa settings:".to_owned(),
        settings_text(&inspection.settings),
    ]);
    table.to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::*;

    fn verdict(
        file: &str,
        chroma_delta: Option<f64>,
        hard: &[wire::Reason],
        soft: &[wire::Reason],
    ) -> wire::FileVerdict {
        wire::FileVerdict {
            file: file.to_owned(),
            chroma_delta,
            grayscale_like: chroma_delta.map(|delta| delta <= 2.0),
            hard_fail_reasons: hard.to_vec(),
            soft_warnings: soft.to_vec(),
            error: None,
        }
    }

    fn settings(enforce_grayscale: bool, fail_on_chroma_exceed: bool) -> wire::QaSettings {
        wire::QaSettings {
            max_chroma_delta: 2.0,
            enforce_grayscale,
            fail_on_chroma_exceed,
        }
    }

    #[test]
    fn a_report_reads_as_a_line_per_file_and_the_counts() {
        use wire::Reason::{ChromaExceedsThreshold, ImageReadFailed, NotGrayscaleLike};
        let mut unread = verdict("/p/broken.png", None, &[ImageReadFailed], &[]);
        unread.error = Some(protocol::ErrorData::new(
            protocol::ErrorKind::Validation,
            protocol::ErrorCode::ImageDamaged,
            "the image is damaged",
        ));
        let report = wire::Report {
            inputs: vec!["/p".to_owned()],
            settings: settings(true, false),
            summary: wire::Summary {
                total_files: 4,
                hard_failures: 2,
                soft_warnings: 2,
            },
            files: vec![
                verdict("/p/gray.png", Some(0.0), &[], &[]),
                verdict("/p/warm.png", Some(2.0001), &[], &[ChromaExceedsThreshold]),
                verdict(
                    "/p/tinted.png",
                    Some(33.3333),
                    &[NotGrayscaleLike],
                    &[ChromaExceedsThreshold],
                ),
                unread,
            ],
        };
        let empty = wire::Report {
            inputs: vec!["/empty".to_owned()],
            settings: settings(false, true),
            summary: wire::Summary::default(),
            files: Vec::new(),
        };
        insta::assert_snapshot!([report_text(&report), report_text(&empty)].join("\n\n----\n\n"));
    }

    #[test]
    fn archived_files_read_from_to() {
        let mut error = protocol::ErrorData::new(
            protocol::ErrorKind::Validation,
            protocol::ErrorCode::NoArchive,
            "/tmp/x.png lies outside every project's folder",
        );
        error.hint = Some("name a folder with --into DIR".to_owned());
        let report = wire::ArchiveReport {
            files: vec![
                wire::Moved {
                    from: "/p/outputs/a.png".to_owned(),
                    to: Some("/p/archive/bad/a_bad_20261206T143000Z.png".to_owned()),
                    error: None,
                },
                wire::Moved {
                    from: "/tmp/x.png".to_owned(),
                    to: None,
                    error: Some(error),
                },
            ],
            moved: 1,
            failed: 1,
        };
        insta::assert_snapshot!(archive_text(&report));
    }

    #[test]
    fn an_inspection_shows_the_file_its_asset_provenance_and_verdict() {
        let provenance: BTreeMap<String, String> = [
            ("run", "0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21"),
            ("job", "style_1_harbor"),
            ("candidate", "2"),
            ("model", "gpt-image-2"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let generated = wire::Inspection {
            path: "/p/outputs/style_1_harbor_2.png".to_owned(),
            sha256: "ab".repeat(32),
            bytes: 1_234_567,
            format: Some("png".to_owned()),
            width: Some(1024),
            height: Some(1536),
            provenance,
            asset: Some(wire::InspectedAsset {
                project: "harbor".to_owned(),
                id: "a-1".to_owned(),
                kind: "generated".to_owned(),
            }),
            qa: verdict(
                "/p/outputs/style_1_harbor_2.png",
                Some(3.5),
                &[],
                &[wire::Reason::ChromaExceedsThreshold],
            ),
            settings: settings(false, false),
        };
        let foreign = wire::Inspection {
            path: "/tmp/notes.txt".to_owned(),
            sha256: "cd".repeat(32),
            bytes: 12,
            format: None,
            width: None,
            height: None,
            provenance: BTreeMap::new(),
            asset: None,
            qa: verdict(
                "/tmp/notes.txt",
                None,
                &[wire::Reason::ImageReadFailed],
                &[],
            ),
            settings: settings(true, true),
        };
        insta::assert_snapshot!(
            [inspection_text(&generated), inspection_text(&foreign)].join("\n\n----\n\n")
        );
    }

    fn parse(args: &[&str]) -> Result<wire::CheckParams, String> {
        let cli = crate::Cli::try_parse_from(["kromactl", "qa"].iter().chain(args))
            .map_err(|err| err.kind().to_string())?;
        let crate::Command::Qa(qa) = cli.command else {
            panic!("not qa: {args:?}");
        };
        check_params(qa).map_err(|err| format!("{err:?}"))
    }

    #[test]
    fn qa_checks_exactly_one_thing_and_sends_only_the_switches_given() {
        let here = std::env::current_dir().unwrap();
        let params = parse(&["out", "/abs/b.png", "--max-chroma-delta", "1.5"]).unwrap();
        assert_eq!(
            params.paths,
            [
                here.join("out").display().to_string(),
                "/abs/b.png".to_owned()
            ]
        );
        assert_eq!(params.max_chroma_delta, Some(1.5));
        assert_eq!(
            (params.enforce_grayscale, params.fail_on_chroma_exceed),
            (None, None)
        );
        let params = parse(&[
            "--run",
            "r1",
            "--enforce-grayscale",
            "--fail-on-chroma-exceed",
        ]);
        let params = params.unwrap();
        assert_eq!(params.run.as_deref(), Some("r1"));
        assert!(params.paths.is_empty());
        assert_eq!(
            (params.enforce_grayscale, params.fail_on_chroma_exceed),
            (Some(true), Some(true))
        );
        let params = parse(&["--asset", "a1", "--project", "harbor"]).unwrap();
        assert_eq!(
            (params.asset.as_deref(), params.project.as_deref()),
            (Some("a1"), Some("harbor"))
        );
        let refused = [
            &[][..],
            &["a.png", "--run", "r1"],
            &["--run", "r1", "--asset", "a1", "--project", "p"],
            &["--asset", "a1"],
            &["a.png", "--max-chroma-delta", "-1"],
            &["a.png", "--max-chroma-delta", "nan"],
        ];
        for args in refused {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
