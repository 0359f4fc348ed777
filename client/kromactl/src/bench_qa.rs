//! `kromactl bench qa`: the QA guard (`qa.check` on a folder, through a real kromad of the
//! bench's own) against the old system's `qa` mode on the same folder
//! (`packaging/bench/old_qa.py`: Pillow and numpy, one Python process over the whole folder, as
//! the old mode ran, its start-up included), in files/s and MB/s of PNG read. Both sides must
//! agree on every file's chroma delta to 4 decimals and on its verdict; a file they disagree on
//! is reported and makes the bench exit 1.
//!
//! The folder holds square PNGs of four kinds in turn: gray (R = G = B), near-gray with noise of
//! ±2 (chroma about 1.6: passes) and ±3 (about 2.3: warned), and tinted RGBA (alpha dropped by
//! both). The old side needs a Python with Pillow and numpy, `--rembg-python` or
//! `KROMA_REMBG_PYTHON` (`packaging/bench/rembg-venv.sh` makes one); without one it is skipped and
//! the report says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use kroma_client::Client;
use kroma_protocol as protocol;
use serde::{Deserialize, Serialize};

use crate::Global;
use crate::bench_kromad::BenchKromad;
use crate::bench_post::median;
use crate::output::{self, Failure};

#[derive(Debug, Args)]
pub struct QaArgs {
    /// PNGs in the folder, 1 to 1000
    #[arg(long, default_value_t = 32)]
    files: usize,
    /// Their side in pixels, 8 to 4096
    #[arg(long, default_value_t = 2048)]
    side: u32,
    /// A Python with Pillow and numpy for the old qa (packaging/bench/rembg-venv.sh makes one)
    #[arg(
        long,
        env = "KROMA_REMBG_PYTHON",
        hide_env_values = true,
        value_name = "PATH"
    )]
    rembg_python: Option<PathBuf>,
    /// The kromad binary [default: next to kromactl, else on PATH]
    #[arg(long, value_name = "PATH")]
    kromad: Option<PathBuf>,
}

/// Timed runs of each side after one untimed warm-up; the median is reported.
const ROUNDS: usize = 3;
/// The old system's default threshold, sent to both sides.
const MAX_CHROMA_DELTA: f64 = 2.0;
const OLD_SCRIPT: &str = include_str!("../../../packaging/bench/old_qa.py");

#[derive(Debug, Serialize)]
struct Report {
    files: usize,
    side: u32,
    /// The PNGs' size on disk, together.
    bytes: u64,
    rounds: usize,
    kromad: Throughput,
    /// `None` when the old side was skipped.
    old: Option<Throughput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_skipped: Option<String>,
    /// kromad's files/s over the old script's: above 1, kromad is faster.
    ratio: Option<f64>,
    /// Files both sides give the same chroma delta (4 decimals) and verdict.
    agreeing: Option<usize>,
    mismatches: Vec<Mismatch>,
}

#[derive(Debug, Serialize)]
struct Throughput {
    /// The median run.
    seconds: f64,
    files_per_sec: f64,
    mb_per_sec: f64,
}

#[derive(Debug, PartialEq, Serialize)]
struct Mismatch {
    /// The file's name in the folder.
    file: String,
    kromad_chroma: Option<f64>,
    old_chroma: Option<f64>,
    /// `pass`, `warn`, `fail`, or `missing` when that side did not report the file.
    kromad_verdict: String,
    old_verdict: String,
}

/// What `old_qa.py` reports per file (the reference's report, §4.2).
#[derive(Debug, Deserialize)]
struct OldVerdict {
    file: String,
    chroma_delta: Option<f64>,
    hard_fail_reasons: Vec<String>,
    soft_warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OldReport {
    files: Vec<OldVerdict>,
}

/// The old side's measurement, or why there is none.
enum OldSide {
    /// The median run's seconds and the first report's files.
    Timed {
        seconds: f64,
        files: Vec<OldVerdict>,
    },
    Skipped(String),
}

pub async fn qa(global: &Global, args: QaArgs) -> Result<(), Failure> {
    if !(1..=1000).contains(&args.files) || !(8..=4096).contains(&args.side) {
        return Err(Failure::Usage(
            "--files must be 1 to 1000 and --side 8 to 4096".into(),
        ));
    }
    let kromad = crate::common::kromad_binary(args.kromad.clone())?;
    let temp = tempfile::tempdir().map_err(|err| failure("creating a temp dir", err))?;
    let images = temp.path().join("images");
    progress(
        global,
        &format!("writing {} PNGs of {}×{}", args.files, args.side, args.side),
    );
    let bytes = write_images(&images, args.files, args.side)?;
    let daemon = start_daemon(&kromad, &temp.path().join("kromad")).await?;
    progress(global, "timing qa.check in kromad");
    let measured = measure_kromad(&daemon.client, &images, args.files).await;
    daemon.stop().await;
    let (kromad_seconds, kromad_files) = measured?;
    let throughput = |seconds: f64| Throughput {
        seconds,
        files_per_sec: args.files as f64 / seconds,
        mb_per_sec: bytes as f64 / 1e6 / seconds,
    };
    let old = match &args.rembg_python {
        None => OldSide::Skipped(
            "no Python given (--rembg-python or KROMA_REMBG_PYTHON; \
             `bash packaging/bench/rembg-venv.sh` makes one)"
                .to_owned(),
        ),
        Some(python) => {
            progress(global, "timing the old qa script");
            measure_old(python, &images)?
        }
    };
    let mut report = Report {
        files: args.files,
        side: args.side,
        bytes,
        rounds: ROUNDS,
        kromad: throughput(kromad_seconds),
        old: None,
        old_skipped: None,
        ratio: None,
        agreeing: None,
        mismatches: Vec::new(),
    };
    match old {
        OldSide::Timed { seconds, files } => {
            let (agreeing, mismatches) = compare(&kromad_files, &files);
            report.old = Some(throughput(seconds));
            report.ratio = Some(seconds / kromad_seconds);
            report.agreeing = Some(agreeing);
            report.mismatches = mismatches;
        }
        OldSide::Skipped(why) => report.old_skipped = Some(why),
    }
    if global.json {
        output::print_json(&report);
    } else if !global.quiet {
        println!("{}", report_text(&report));
    }
    if !report.mismatches.is_empty() {
        return Err(Failure::other(
            format!(
                "kromad and the old qa disagree on {} of {} files",
                report.mismatches.len(),
                report.files
            ),
            Some(
                "the guard must give the old system's chroma delta to 4 decimals (reference §4.1)",
            ),
        ));
    }
    Ok(())
}

fn failure(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::other(format!("{what}: {err}"), None)
}

fn progress(global: &Global, message: &str) {
    if !global.quiet && !global.json {
        eprintln!("{message}…");
    }
}

/// Writes the test PNGs into `folder` and answers their size on disk, together.
fn write_images(folder: &Path, files: usize, side: u32) -> Result<u64, Failure> {
    std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
    let mut bytes = 0;
    for index in 0..files {
        let path = folder.join(format!("qa-{index:04}.png"));
        test_image(index, side)
            .save(&path)
            .map_err(|err| failure(&format!("writing {}", path.display()), err))?;
        bytes += std::fs::metadata(&path)
            .map_err(|err| failure(&format!("reading {}", path.display()), err))?
            .len();
    }
    Ok(bytes)
}

/// Test image `index`: gray, near-gray with noise of ±2, near-gray with noise of ±3, or tinted
/// with alpha, in turn; a diagonal gradient kept within 16..=240 so noise never clips.
fn test_image(index: usize, side: u32) -> image::DynamicImage {
    let span = 2 * (side - 1).max(1);
    let base = |x: u32, y: u32| (16 + (x + y) * 224 / span) as i32;
    let mut seed = 0x9e37_79b9u32 ^ (index as u32).wrapping_mul(0x85eb_ca6b) | 1;
    let mut noise = |amplitude: i32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % (2 * amplitude as u32 + 1)) as i32 - amplitude
    };
    let channel = |value: i32| value.clamp(0, 255) as u8;
    match index % 4 {
        0 => {
            image::RgbImage::from_fn(side, side, |x, y| image::Rgb([channel(base(x, y)); 3])).into()
        }
        kind @ (1 | 2) => {
            let amplitude = if kind == 1 { 2 } else { 3 };
            image::RgbImage::from_fn(side, side, |x, y| {
                let value = base(x, y);
                image::Rgb([0; 3].map(|_: u8| channel(value + noise(amplitude))))
            })
            .into()
        }
        _ => image::RgbaImage::from_fn(side, side, |x, y| {
            let value = base(x, y);
            let alpha = (x * 255 / side.max(1)) as u8;
            image::Rgba([
                channel(value + 40),
                channel(value),
                channel(value - 30),
                alpha,
            ])
        })
        .into(),
    }
}

/// Starts kromad in `folder` with an empty config and settings of its own, so nothing of this
/// user's set-up changes what is measured.
async fn start_daemon(kromad: &Path, folder: &Path) -> Result<BenchKromad, Failure> {
    std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
    let config = folder.join("kromad.toml");
    let settings = folder.join("settings.toml");
    for file in [&config, &settings] {
        std::fs::write(file, "").map_err(|err| failure("writing kromad's config", err))?;
    }
    BenchKromad::start(kromad, folder, Some(&config), &settings, &[]).await
}

/// One `qa.check` on the folder untimed, then [`ROUNDS`] timed: the median's seconds and the
/// first report's files.
async fn measure_kromad(
    client: &Client,
    images: &Path,
    files: usize,
) -> Result<(f64, Vec<protocol::qa::FileVerdict>), Failure> {
    let params = protocol::qa::CheckParams {
        paths: vec![images.display().to_string()],
        max_chroma_delta: Some(MAX_CHROMA_DELTA),
        enforce_grayscale: Some(false),
        fail_on_chroma_exceed: Some(false),
        ..Default::default()
    };
    let report = client.call::<protocol::qa::Check>(&params).await?;
    if report.files.len() != files {
        return Err(Failure::other(
            format!(
                "kromad checked {} files of the {files} in the folder",
                report.files.len()
            ),
            None,
        ));
    }
    let mut seconds = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        client.call::<protocol::qa::Check>(&params).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok((median(&mut seconds), report.files))
}

/// The old script on the folder, untimed once, then [`ROUNDS`] timed; skipped when the Python
/// is not there.
fn measure_old(python: &Path, images: &Path) -> Result<OldSide, Failure> {
    let run = || {
        let started = Instant::now();
        let output = std::process::Command::new(python)
            .arg("-c")
            .arg(OLD_SCRIPT)
            .arg(images)
            .args(["--max-chroma-delta", &MAX_CHROMA_DELTA.to_string()])
            .stdin(std::process::Stdio::null())
            .output();
        (started.elapsed().as_secs_f64(), output)
    };
    let (_, warm) = run();
    let output = match warm {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(OldSide::Skipped(format!(
                "the Python {} was not found",
                python.display()
            )));
        }
        Err(err) => return Err(failure(&format!("running {}", python.display()), err)),
        Ok(output) => output,
    };
    let report = old_report(&output)?;
    let mut seconds = Vec::new();
    for _ in 0..ROUNDS {
        let (elapsed, output) = run();
        let output =
            output.map_err(|err| failure(&format!("running {}", python.display()), err))?;
        old_report(&output)?;
        seconds.push(elapsed);
    }
    Ok(OldSide::Timed {
        seconds: median(&mut seconds),
        files: report.files,
    })
}

fn old_report(output: &std::process::Output) -> Result<OldReport, Failure> {
    if !output.status.success() {
        return Err(Failure::other(
            format!(
                "the old qa script failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Some("the Python needs Pillow and numpy: bash packaging/bench/rembg-venv.sh"),
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|err| failure("reading the old qa's report", err))
}

/// Files both sides agree on, and the others; files are matched by name (they are all in one
/// folder, which each side may spell its own way).
fn compare(kromad: &[protocol::qa::FileVerdict], old: &[OldVerdict]) -> (usize, Vec<Mismatch>) {
    let name = |file: &str| {
        Path::new(file).file_name().map_or_else(
            || file.to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
    };
    // Per file name: kromad's (chroma, verdict), then the old script's.
    type Seen<'a> = Option<(Option<f64>, &'a str)>;
    let mut sides: BTreeMap<String, [Seen; 2]> = BTreeMap::new();
    for file in kromad {
        sides.entry(name(&file.file)).or_default()[0] =
            Some((file.chroma_delta, file.verdict().as_str()));
    }
    for file in old {
        let verdict = if !file.hard_fail_reasons.is_empty() {
            "fail"
        } else if !file.soft_warnings.is_empty() {
            "warn"
        } else {
            "pass"
        };
        sides.entry(name(&file.file)).or_default()[1] = Some((file.chroma_delta, verdict));
    }
    let mut agreeing = 0;
    let mut mismatches = Vec::new();
    for (file, [ours, theirs]) in sides {
        let same = match (ours, theirs) {
            (Some((a, va)), Some((b, vb))) => {
                crate::qa::chroma_text(a) == crate::qa::chroma_text(b) && va == vb
            }
            _ => false,
        };
        if same {
            agreeing += 1;
            continue;
        }
        let split = |side: Seen| match side {
            Some((chroma, verdict)) => (chroma, verdict.to_owned()),
            None => (None, "missing".to_owned()),
        };
        let ((kromad_chroma, kromad_verdict), (old_chroma, old_verdict)) =
            (split(ours), split(theirs));
        mismatches.push(Mismatch {
            file,
            kromad_chroma,
            old_chroma,
            kromad_verdict,
            old_verdict,
        });
    }
    (agreeing, mismatches)
}

fn report_text(report: &Report) -> String {
    let side = |throughput: &Throughput| {
        format!(
            "{:.1} files/s, {:.1} MB/s ({:.3} s)",
            throughput.files_per_sec, throughput.mb_per_sec, throughput.seconds
        )
    };
    let mut table = output::table(&["measurement", "kromad", "old qa", "ratio"]);
    table.add_row(vec![
        format!(
            "QA guard, {} PNGs of {}×{} ({:.1} MB), median of {}",
            report.files,
            report.side,
            report.side,
            report.bytes as f64 / 1e6,
            report.rounds
        ),
        side(&report.kromad),
        match (&report.old, &report.old_skipped) {
            (Some(old), _) => side(old),
            (None, skipped) => format!("skipped: {}", skipped.as_deref().unwrap_or("-")),
        },
        report
            .ratio
            .map(|ratio| format!("{ratio:.2}x"))
            .unwrap_or_default(),
    ]);
    if let Some(agreeing) = report.agreeing {
        table.add_row(vec![
            "same chroma delta (4 decimals) and verdict".to_owned(),
            format!("{agreeing} of {} files", report.files),
            String::new(),
            String::new(),
        ]);
    }
    let mut text = table.to_string();
    for mismatch in &report.mismatches {
        text.push_str(&format!(
            "\nDIFFERS {}: kromad {} {}, old {} {}",
            mismatch.file,
            crate::qa::chroma_text(mismatch.kromad_chroma),
            mismatch.kromad_verdict,
            crate::qa::chroma_text(mismatch.old_chroma),
            mismatch.old_verdict
        ));
    }
    text.push_str(
        "\nkromad: one qa.check call on the folder, warm; old qa: one Python process over the \
         folder (Pillow + numpy), its start-up included, as the old qa mode ran; \
         ratio = kromad's files/s over the old qa's",
    );
    text
}

#[cfg(test)]
mod tests;
