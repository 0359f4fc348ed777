//! The QA guard on a run's candidates (reference §4): once a succeeded candidate's chain is done
//! (or the run has none), its final output is checked with the run's `[qa]` settings, its drift
//! from the job's baseline is measured, an output that fails hard is moved to `archive/bad/`
//! (its asset row follows), and the verdict is stored, in one transaction. The ranking and the
//! winner are computed from the stored verdicts when a run is shown (`runs::detail`).
//!
//! If kromad stops in between, the next start checks the candidate again; an output already
//! moved to the archive is found there by the candidate id in its provenance.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::qa::{FileVerdict, QaSettings, Reason, Verdict};
use protocol::run::CandidateQa;
use protocol::{ErrorCode, ErrorKind};
use tokio_util::sync::CancellationToken;

use super::context;
use crate::Services;
use crate::error::Problem;
use crate::files::{png, write};
use crate::postprocess::budget::{self, Loaded, StepCost};
use crate::review::qa;
use crate::store::runs as rows;

/// Checks candidate `id` if it waits for the QA guard, and stores the verdict.
pub async fn run(daemon: &Services, id: &str) -> Result<(), Problem> {
    let lookup = id.to_owned();
    let candidate = daemon
        .store
        .read(move |conn| rows::candidate_awaiting_review(conn, &lookup))
        .await?;
    let Some(candidate) = candidate else {
        return Ok(());
    };
    let context = context::load(daemon, candidate).await?;
    let Some(checked_rel) = context
        .candidate
        .final_path
        .clone()
        .or_else(|| context.candidate.output_path.clone())
    else {
        return Err(Problem::new(
            ErrorKind::Internal,
            ErrorCode::Internal,
            "a succeeded candidate without an output",
        ));
    };
    let _local = daemon
        .runner
        .local_slots()
        .acquire_owned()
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let baseline = match &context.job.baseline {
        Some(baseline) => {
            let (project_id, asset) = (context.run.project_id.clone(), baseline.asset.clone());
            let row = daemon
                .store
                .read(move |conn| crate::store::asset_queries::get(conn, &project_id, &asset))
                .await;
            match row {
                Ok(row) => Some(context.root().join(row.rel_path)),
                Err(err) => {
                    tracing::warn!(candidate = %context.candidate.id, %err, "the baseline is gone: no drift measured");
                    None
                }
            }
        }
        None => None,
    };
    let root = context.root().to_owned();
    let settings = context.settings.qa.guard();
    let candidate_id = context.candidate.id.clone();
    let memory = daemon.memory.clone();
    let max_pixels = daemon.max_image_pixels;
    let stop = daemon.shutdown.clone();
    let stamp = daemon.clock.now();
    let checked = tokio::task::spawn_blocking(move || {
        check_output(
            &root,
            &checked_rel,
            &candidate_id,
            baseline.as_deref(),
            &settings,
            &Limits {
                memory: &memory,
                max_pixels,
                stop: &stop,
            },
            &stamp,
        )
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let outcome = match checked {
        Ok(outcome) => outcome,
        // Stopped by a shutdown: checked again at the next start.
        Err(err) if err.code == ErrorCode::Stopped => return Ok(()),
        Err(err) => return Err(err),
    };
    let root = context.root().to_owned();
    let rel = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let checked_path = outcome.archived.as_deref().unwrap_or(&outcome.checked);
    let verdict = CandidateQa {
        verdict: outcome.verdict.verdict(),
        checked: checked_path.display().to_string(),
        chroma_delta: outcome.verdict.chroma_delta,
        hard_fail_reasons: outcome.verdict.hard_fail_reasons.clone(),
        soft_warnings: outcome.verdict.soft_warnings.clone(),
        rank: qa::rank(
            std::slice::from_ref(&outcome.verdict),
            &context.settings.qa.guard(),
        ),
        drift: outcome.drift.map(|drift| {
            let limits = &context.settings.qa;
            protocol::run::DriftScore {
                structure: drift.structure,
                palette: drift.palette,
                drifted: drift.structure > limits.max_structure_drift
                    || drift.palette > limits.max_palette_drift,
                baseline_asset: context
                    .job
                    .baseline
                    .as_ref()
                    .map(|baseline| baseline.asset.clone())
                    .unwrap_or_default(),
            }
        }),
        archived: outcome
            .archived
            .as_ref()
            .map(|path| path.display().to_string()),
    };
    let json = serde_json::to_string(&verdict)
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let moved = outcome
        .archived
        .as_ref()
        .map(|to| (rel(&outcome.checked), rel(to)));
    let id = context.candidate.id.clone();
    let books = super::outcomes::Books::of(&context);
    let provider_limit = daemon.runner.provider_limit;
    let at = daemon.clock.now();
    daemon
        .store
        .write(move |tx| {
            let moved = moved
                .as_ref()
                .map(|(from, to)| (from.as_str(), to.as_str()));
            // The job (and the run's progress) move on only once the verdict is in.
            let events = if rows::record_review(tx, &id, &json, moved)? {
                books.after_candidate(tx, provider_limit, &at)?
            } else {
                Vec::new()
            };
            Ok::<_, crate::store::StoreError>(((), events))
        })
        .await?;
    Ok(())
}

/// What one check of a file runs within.
pub(crate) struct Limits<'a> {
    pub(crate) memory: &'a budget::MemoryBudget,
    pub(crate) max_pixels: u64,
    pub(crate) stop: &'a CancellationToken,
}

/// The guard's verdict on one file, with its decoded pixels when it could be read. A file that
/// cannot be read is a verdict (`image_read_failed`), not an error; only a stop is. Blocking.
pub(crate) fn judge_file(
    path: &Path,
    settings: &QaSettings,
    limits: &Limits<'_>,
) -> Result<(FileVerdict, Option<Loaded>), Problem> {
    match budget::load_image(
        path,
        limits.max_pixels,
        limits.memory,
        StepCost::Qa,
        limits.stop,
    ) {
        Ok(loaded) => {
            let chroma = qa::chroma_delta(&loaded.image);
            Ok((
                qa::verdict(path.display().to_string(), chroma, settings),
                Some(loaded),
            ))
        }
        Err(err) if err.code == ErrorCode::Stopped => Err(err),
        Err(err) => Ok((
            qa::unjudged(
                path.display().to_string(),
                Reason::ImageReadFailed,
                Some(err.to_data()),
            ),
            None,
        )),
    }
}

/// The verdict on a candidate's output and where a hard-failed one went.
struct Outcome {
    /// The file checked, where it was.
    checked: PathBuf,
    verdict: FileVerdict,
    archived: Option<PathBuf>,
    /// Against the baseline, for an output that did not fail hard.
    drift: Option<crate::review::drift::Drift>,
}

/// Checks the output at `rel` and moves it to `archive/bad/` when it fails hard. An output
/// already moved there by an earlier check (a stop before the verdict was stored) is found by
/// the candidate id in its provenance and judged where it is. Blocking.
fn check_output(
    root: &Path,
    rel: &str,
    candidate_id: &str,
    baseline: Option<&Path>,
    settings: &QaSettings,
    limits: &Limits<'_>,
    stamp: &str,
) -> Result<Outcome, Problem> {
    let checked = root.join(rel);
    if !checked.exists()
        && let Some(archived) = find_archived(root, &checked, candidate_id)
    {
        let (verdict, _) = judge_file(&archived, settings, limits)?;
        return Ok(Outcome {
            checked,
            verdict,
            archived: Some(archived),
            drift: None,
        });
    }
    let (verdict, loaded) = judge_file(&checked, settings, limits)?;
    let drift = match (baseline, &loaded) {
        (Some(baseline), Some(loaded)) if verdict.verdict() != Verdict::Fail => {
            match budget::load_image(
                baseline,
                limits.max_pixels,
                limits.memory,
                StepCost::Qa,
                limits.stop,
            ) {
                Ok(base) => Some(crate::review::drift::drift(&base.image, &loaded.image)),
                Err(err) if err.code == ErrorCode::Stopped => return Err(err),
                Err(err) => {
                    tracing::warn!(baseline = %baseline.display(), message = %err.message, "the baseline cannot be read: no drift measured");
                    None
                }
            }
        }
        _ => None,
    };
    drop(loaded);
    let archived = if verdict.verdict() == Verdict::Fail && checked.exists() {
        let folder = root.join(write::BAD_FOLDER);
        let moved = write::archive(&folder, &checked, "bad", stamp).map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!(
                    "moving {} to {}: {err}",
                    checked.display(),
                    folder.display()
                ),
            )
            .with_hint("check that the project folder is writable")
        })?;
        Some(moved)
    } else {
        None
    };
    Ok(Outcome {
        checked,
        verdict,
        archived,
        drift,
    })
}

/// The file in `archive/bad/` named after `original` that holds this candidate's output.
fn find_archived(root: &Path, original: &Path, candidate_id: &str) -> Option<PathBuf> {
    let stem = original.file_stem()?.to_string_lossy().into_owned();
    let folder = root.join(write::BAD_FOLDER);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(&format!("{stem}_bad_")))
        })
        .collect();
    entries.sort();
    entries
        .into_iter()
        .find(|path| png::holds_candidate(path, candidate_id).is_some())
}

#[cfg(test)]
mod tests {
    //! Golden verdicts on generated files of every kind the guard meets, read through the same
    //! path runs and `qa.check` use.

    use std::io::Cursor;

    use super::*;

    fn encode(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .expect("encode");
        bytes
    }

    fn png(image: impl Into<image::DynamicImage>) -> Vec<u8> {
        encode(image.into(), image::ImageFormat::Png)
    }

    /// A 64×64 image from a pixel function.
    fn rgb(f: impl Fn(u32, u32) -> [u8; 3]) -> image::RgbImage {
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb(f(x, y)))
    }

    /// A 64×64 indexed PNG: a gray ramp palette, with one tinted entry used in one row.
    fn palette_png() -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = ::png::Encoder::new(&mut bytes, 64, 64);
        encoder.set_color(::png::ColorType::Indexed);
        encoder.set_depth(::png::BitDepth::Eight);
        let mut palette: Vec<u8> = (0..255u8).flat_map(|v| [v, v, v]).collect();
        palette.extend([200, 40, 40]);
        encoder.set_palette(palette);
        let mut writer = encoder.write_header().expect("header");
        let data: Vec<u8> = (0..64 * 64)
            .map(|i| {
                if i / 64 == 10 {
                    255
                } else {
                    (i % 64 * 4) as u8
                }
            })
            .collect();
        writer.write_image_data(&data).expect("data");
        writer.finish().expect("finish");
        bytes
    }

    fn cmyk_jpeg(c: u8, m: u8, y: u8, k: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut bytes, 95);
        let data: Vec<u8> = std::iter::repeat_n([c, m, y, k], 64 * 64)
            .flatten()
            .collect();
        encoder
            .encode(&data, 64, 64, jpeg_encoder::ColorType::Cmyk)
            .expect("cmyk jpeg");
        bytes
    }

    fn files() -> Vec<(&'static str, Vec<u8>)> {
        let noise = |x: u32, y: u32| ((x * 7 + y * 13) % 3) as u8;
        let gray = png(rgb(|_, _| [128, 128, 128]));
        let mut truncated = gray.clone();
        truncated.truncate(gray.len() / 2);
        vec![
            ("pure_gray.png", gray),
            (
                "near_gray_noise.png",
                png(rgb(|x, y| [120 + noise(x, y), 121, 120 + noise(y, x)])),
            ),
            ("tinted_sepia.png", png(rgb(|_, _| [140, 120, 100]))),
            (
                "alpha_gray.png",
                png(image::RgbaImage::from_fn(64, 64, |x, _| {
                    image::Rgba([90, 90, 90, (x * 4) as u8])
                })),
            ),
            (
                "sixteen_bit.png",
                png(image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(
                    64,
                    64,
                    |x, _| image::Rgb([30_000 + x as u16 * 100, 30_000, 30_000]),
                )),
            ),
            ("palette.png", palette_png()),
            (
                "gray_alpha.png",
                png(image::GrayAlphaImage::from_fn(64, 64, |x, y| {
                    image::LumaA([(x + y) as u8, 200])
                })),
            ),
            (
                "red_patch_on_gray.png",
                png(rgb(|x, y| {
                    if x < 16 && y < 16 {
                        [255, 0, 0]
                    } else {
                        [128, 128, 128]
                    }
                })),
            ),
            ("truncated.png", truncated),
            ("cmyk_gray.jpg", cmyk_jpeg(0, 0, 0, 128)),
            ("cmyk_cyan.jpg", cmyk_jpeg(200, 0, 0, 0)),
            ("not_an_image.png", b"hello, not an image".to_vec()),
        ]
    }

    fn line(verdict: &FileVerdict) -> String {
        let name = Path::new(&verdict.file)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reasons = |reasons: &[Reason]| {
            reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{name:<24} {:<4} chroma={:<8} gray={:<5} hard=[{}] soft=[{}]{}",
            verdict.verdict().as_str(),
            verdict
                .chroma_delta
                .map(|c| format!("{c:.4}"))
                .unwrap_or_else(|| "-".into()),
            verdict
                .grayscale_like
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            reasons(&verdict.hard_fail_reasons),
            reasons(&verdict.soft_warnings),
            verdict
                .error
                .as_ref()
                .map(|e| format!(" error={}", e.code))
                .unwrap_or_default(),
        )
    }

    async fn check(settings: QaSettings) -> String {
        let folder = tempfile::tempdir().expect("temp dir");
        let mut paths = Vec::new();
        for (name, bytes) in files() {
            let path = folder.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            paths.push(path);
        }
        tokio::task::spawn_blocking(move || {
            let memory = budget::MemoryBudget::new(256);
            let stop = CancellationToken::new();
            let limits = Limits {
                memory: &memory,
                max_pixels: 100_000_000,
                stop: &stop,
            };
            let mut lines = Vec::new();
            for path in &paths {
                let (verdict, _) = judge_file(path, &settings, &limits).expect("judged");
                lines.push(line(&verdict));
            }
            lines.join("\n")
        })
        .await
        .expect("task")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn golden_verdicts_with_the_default_settings() {
        let settings = QaSettings {
            max_chroma_delta: 2.0,
            enforce_grayscale: false,
            fail_on_chroma_exceed: false,
        };
        insta::assert_snapshot!(check(settings).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn golden_verdicts_for_a_grayscale_project() {
        let settings = QaSettings {
            max_chroma_delta: 2.0,
            enforce_grayscale: true,
            fail_on_chroma_exceed: true,
        };
        insta::assert_snapshot!(check(settings).await);
    }
}
