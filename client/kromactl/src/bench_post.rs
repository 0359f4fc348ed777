//! `kromactl bench postprocess`: the local post-process steps, each against a named baseline
//! measured in the same run.
//!
//! - Background removal: kromad (`postprocess.bg_remove` on a folder) against rembg 2.0.86 on
//!   the same files with the same u2netp model file, file to file, both warm; the masks are
//!   compared too (IoU). rembg needs a Python with `rembg==2.0.86` and `onnxruntime==1.31.1`:
//!   `--rembg-python` or `KROMA_REMBG_PYTHON` (`packaging/bench/rembg-venv.sh` makes one).
//! - Upscale: a 512×512 image to 2048×2048 in the default tiles against the whole image in one
//!   inference: time and the daemon's peak RSS, each in a fresh kromad.
//! - Colour: the whole `kromactl color` command on a 2048×2048 RGB PNG (`cinematic_warm`, a
//!   running kromad) against the old system's colour script on the same file, one process per
//!   file as the old pipeline ran it (`packaging/bench/old_color.py`, Pillow from the same Python
//!   as rembg); the pixels of both outputs are compared too.
//!
//! The colour step's lookup tables have their own comparison: `cargo bench -p kroma-daemon
//! --bench color`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kroma_client::Client;
use kroma_protocol as protocol;
use serde::Serialize;

use crate::Global;
use crate::bench_kromad::BenchKromad;
use crate::output::{self, Failure};

#[derive(Debug, Serialize)]
struct Report {
    images: usize,
    bg_remove: Vec<BgRemove>,
    upscale: Upscale,
    color: ColorStep,
}

#[derive(Debug, Serialize)]
struct ColorStep {
    size: String,
    profile: &'static str,
    /// The median of the runs, whole command.
    kroma_s: f64,
    /// `None` when no Python with Pillow was given.
    old_s: Option<f64>,
    /// The old system's time over kromad's: above 1, kromad is faster.
    speedup: Option<f64>,
    /// Whether both outputs hold the same RGB pixels.
    same_pixels: Option<bool>,
}

#[derive(Debug, Serialize)]
struct BgRemove {
    size: String,
    kroma_s: f64,
    /// `None` when no rembg was given.
    rembg_s: Option<f64>,
    /// rembg's time over kromad's: above 1, kromad is faster.
    speedup: Option<f64>,
    /// The lowest mask IoU (thresholded at 128) over the images.
    min_iou: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Upscale {
    tiled_s: f64,
    whole_s: f64,
    tiled_peak_rss_mb: f64,
    whole_peak_rss_mb: f64,
}

fn failure(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::other(format!("{what}: {err}"), None)
}

pub async fn postprocess(
    global: &Global,
    images: usize,
    sizes: Vec<(u32, u32)>,
    rembg_python: Option<PathBuf>,
    kromad: Option<PathBuf>,
) -> Result<(), Failure> {
    let side = 32..=4096;
    if !(1..=200).contains(&images)
        || sizes.is_empty()
        || sizes
            .iter()
            .any(|(w, h)| !side.contains(w) || !side.contains(h))
    {
        return Err(Failure::Usage(
            "--images must be 1 to 200 and each side of --sizes 32 to 4096".into(),
        ));
    }
    let kromad = crate::common::kromad_binary(kromad)?;
    let temp = tempfile::tempdir().map_err(|err| failure("creating a temp dir", err))?;
    let mut bg_remove = Vec::new();
    for (width, height) in sizes {
        let folder = temp.path().join(format!("{width}x{height}"));
        bg_remove.push(
            measure_bg_remove(
                global,
                &kromad,
                &folder,
                images,
                (width, height),
                rembg_python.as_deref(),
            )
            .await?,
        );
    }

    progress(global, "upscale 512×512 → 2048×2048");
    let source = temp.path().join("upscale.png");
    page(7, 512, 512)
        .save(&source)
        .map_err(|err| failure("writing a test image", err))?;
    let (tiled_s, tiled_rss) = upscale(&kromad, &temp.path().join("tiled"), &source, None).await?;
    let (whole_s, whole_rss) =
        upscale(&kromad, &temp.path().join("whole"), &source, Some(1024)).await?;

    let color = measure_color(
        global,
        &kromad,
        &temp.path().join("color"),
        rembg_python.as_deref(),
    )
    .await?;

    let report = Report {
        images,
        bg_remove,
        color,
        upscale: Upscale {
            tiled_s,
            whole_s,
            tiled_peak_rss_mb: tiled_rss,
            whole_peak_rss_mb: whole_rss,
        },
    };
    if global.json {
        output::print_json(&report);
        return Ok(());
    }
    let mut table = output::table(&["measurement", "kromad", "baseline", "ratio"]);
    for bg in &report.bg_remove {
        table.add_row(vec![
            format!(
                "background removal, {images} files of {}, file to file",
                bg.size
            ),
            format!("{:.2} s", bg.kroma_s),
            bg.rembg_s
                .map(|s| format!("{s:.2} s (rembg 2.0.86)"))
                .unwrap_or_else(|| "rembg not given (--rembg-python)".to_owned()),
            bg.speedup
                .map(|x| format!("{x:.2}x faster (target ≥ 1.5x)"))
                .unwrap_or_default(),
        ]);
        if let Some(iou) = bg.min_iou {
            table.add_row(vec![
                format!("mask agreement with rembg at {} (lowest IoU)", bg.size),
                format!("{iou:.4}"),
                "≥ 0.99".to_owned(),
                String::new(),
            ]);
        }
    }
    let up = &report.upscale;
    table.add_row(vec![
        "upscale 512² → 2048², time".to_owned(),
        format!("{:.2} s (default tiles)", up.tiled_s),
        format!("{:.2} s (whole image at once)", up.whole_s),
        format!("{:.2}x", up.tiled_s / up.whole_s),
    ]);
    table.add_row(vec![
        "upscale 512² → 2048², kromad peak RSS".to_owned(),
        format!("{:.0} MB", up.tiled_peak_rss_mb),
        format!("{:.0} MB", up.whole_peak_rss_mb),
        format!("{:.2}x", up.tiled_peak_rss_mb / up.whole_peak_rss_mb),
    ]);
    let color = &report.color;
    table.add_row(vec![
        format!(
            "colour {}, {}, whole command (median of {COLOR_RUNS})",
            color.size, color.profile
        ),
        format!("{:.3} s (kromactl color)", color.kroma_s),
        color
            .old_s
            .map(|s| format!("{s:.3} s (the old Pillow script)"))
            .unwrap_or_else(|| "no Python with Pillow given (--rembg-python)".to_owned()),
        match (color.speedup, color.same_pixels) {
            (Some(x), Some(same)) => format!(
                "{x:.2}x faster (target ≥ 3x){}",
                if same {
                    ", same pixels"
                } else {
                    ", PIXELS DIFFER"
                }
            ),
            _ => String::new(),
        },
    ]);
    println!("{table}");
    println!(
        "the colour step is compared with a one-pass-per-step version by `cargo bench -p kroma-daemon --bench color`"
    );
    Ok(())
}

/// Runs of each side of the colour comparison; the median is reported.
const COLOR_RUNS: usize = 7;

/// The whole `kromactl color` command against the old system's script, on one 2048×2048 RGB
/// PNG, each run a fresh process writing a new file.
async fn measure_color(
    global: &Global,
    kromad: &Path,
    folder: &Path,
    python: Option<&Path>,
) -> Result<ColorStep, Failure> {
    const PROFILE: &str = "cinematic_warm";
    const SIDE: u32 = 2048;
    progress(
        global,
        &format!("colour {SIDE}×{SIDE}: kromactl color against the old system"),
    );
    std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
    let source = folder.join("photo.png");
    photo(SIDE, SIDE)
        .save(&source)
        .map_err(|err| failure("writing a test image", err))?;
    let daemon = start_kromad(kromad, &folder.join("kromad")).await?;
    let socket = folder.join("kromad").join("kromad.sock");
    let kromactl =
        std::env::current_exe().map_err(|err| failure("finding kromactl itself", err))?;
    let run_kromactl = |out: &Path| -> Result<f64, Failure> {
        let started = Instant::now();
        let status = std::process::Command::new(&kromactl)
            .arg("--socket")
            .arg(&socket)
            .arg("--quiet")
            .arg("color")
            .arg(&source)
            .args(["--profile", PROFILE, "--output"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|err| failure("running kromactl color", err))?;
        let seconds = started.elapsed().as_secs_f64();
        if !status.success() {
            return Err(Failure::other(
                format!("kromactl color failed: {status}"),
                None,
            ));
        }
        Ok(seconds)
    };
    // One run first: the model of nothing to load, but the settings and the page cache.
    run_kromactl(&folder.join("warm-kroma"))?;
    let mut kroma = Vec::new();
    for run in 0..COLOR_RUNS {
        kroma.push(run_kromactl(&folder.join(format!("kroma-{run}")))?);
    }
    daemon.stop().await;
    let kroma_s = median(&mut kroma);
    let kroma_out = folder.join("kroma-0").join(format!("photo_{PROFILE}.png"));

    let Some(python) = python else {
        return Ok(ColorStep {
            size: format!("{SIDE}×{SIDE}"),
            profile: PROFILE,
            kroma_s,
            old_s: None,
            speedup: None,
            same_pixels: None,
        });
    };
    let script = include_str!("../../../packaging/bench/old_color.py");
    let run_old = |out: &Path| -> Result<f64, Failure> {
        let started = Instant::now();
        let output = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(PROFILE)
            .arg(&source)
            .arg(out)
            .output()
            .map_err(|err| failure("running the old colour script", err))?;
        let seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            return Err(Failure::other(
                format!(
                    "the old colour script failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                Some("the Python needs Pillow: bash packaging/bench/rembg-venv.sh"),
            ));
        }
        Ok(seconds)
    };
    run_old(&folder.join("warm-old.png"))?;
    let mut old = Vec::new();
    for run in 0..COLOR_RUNS {
        old.push(run_old(&folder.join(format!("old-{run}.png")))?);
    }
    let old_s = median(&mut old);
    let read_rgb = |path: &Path| {
        image::open(path)
            .map(|image| image.to_rgb8())
            .map_err(|err| failure(&format!("reading {}", path.display()), err))
    };
    let same_pixels = read_rgb(&kroma_out)? == read_rgb(&folder.join("old-0.png"))?;
    Ok(ColorStep {
        size: format!("{SIDE}×{SIDE}"),
        profile: PROFILE,
        kroma_s,
        old_s: Some(old_s),
        speedup: Some(old_s / kroma_s),
        same_pixels: Some(same_pixels),
    })
}

/// The middle value (the upper one of an even count); sorts `values`.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A deterministic photo-like RGB image: the page's shapes with fine grain, so it compresses
/// like a real picture rather than like flat colour.
fn photo(width: u32, height: u32) -> image::RgbImage {
    let mut image = page(3, width, height);
    let mut seed = 0x9e37_79b9u32;
    for pixel in image.pixels_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        for (channel, noise) in pixel.0.iter_mut().zip(seed.to_le_bytes()) {
            *channel = channel.saturating_add(noise % 24).saturating_sub(12);
        }
    }
    image
}

/// kromad and (when given) rembg removing the backgrounds of `images` pages of `size`.
async fn measure_bg_remove(
    global: &Global,
    kromad: &Path,
    folder: &Path,
    images: usize,
    (width, height): (u32, u32),
    rembg_python: Option<&Path>,
) -> Result<BgRemove, Failure> {
    let pages = folder.join("pages");
    std::fs::create_dir_all(&pages).map_err(|err| failure("creating a folder", err))?;
    for index in 0..images {
        page(index, width, height)
            .save(pages.join(format!("page_{index:03}.png")))
            .map_err(|err| failure("writing a test image", err))?;
    }
    progress(
        global,
        &format!("background removal at {width}×{height} in kromad"),
    );
    let masks = folder.join("kroma_masks");
    let daemon = start_kromad(kromad, &folder.join("daemon")).await?;
    // Load the model first, as rembg's session is loaded before its clock starts.
    let warm = bg_remove(
        &daemon.client,
        &pages.join("page_000.png"),
        &folder.join("warm"),
        false,
    )
    .await;
    let started = Instant::now();
    let measured = match warm {
        Ok(()) => bg_remove(&daemon.client, &pages, &folder.join("kroma"), false).await,
        Err(err) => Err(err),
    };
    let kroma_s = started.elapsed().as_secs_f64();
    let masked = match measured {
        Ok(()) => bg_remove(&daemon.client, &pages, &masks, true).await,
        Err(err) => Err(err),
    };
    daemon.stop().await;
    masked?;
    let (rembg_s, min_iou) = match rembg_python {
        Some(python) => {
            progress(
                global,
                &format!("background removal at {width}×{height} in rembg"),
            );
            let rembg_masks = folder.join("rembg_masks");
            let seconds = rembg(python, &pages, &folder.join("rembg"), &rembg_masks)?;
            let mut min_iou = f64::INFINITY;
            for index in 0..images {
                let name = format!("page_{index:03}.png");
                min_iou = min_iou.min(iou(&masks.join(&name), &rembg_masks.join(&name))?);
            }
            (Some(seconds), Some(min_iou))
        }
        None => (None, None),
    };
    Ok(BgRemove {
        size: format!("{width}x{height}"),
        kroma_s,
        rembg_s,
        speedup: rembg_s.map(|rembg| rembg / kroma_s),
        min_iou,
    })
}

fn progress(global: &Global, message: &str) {
    if !global.quiet && !global.json {
        eprintln!("{message}…");
    }
}

/// A deterministic comic-page-like image: a graded sky, a ground, a figure and a few props.
fn page(seed: usize, width: u32, height: u32) -> image::RgbImage {
    let (w, h) = (width as f32, height as f32);
    let shift = (seed % 7) as f32 / 7.0;
    image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let head = ((fx - 0.5 - shift * 0.1).powi(2) + (fy - 0.3).powi(2)).sqrt() < 0.08;
        let body = (fx - 0.5 - shift * 0.1).abs() < 0.09 && (0.38..0.75).contains(&fy);
        let prop = ((fx * 9.0 + shift * 3.0).sin() > 0.9) && fy > 0.8;
        if head || body {
            image::Rgb([40, 30 + (fy * 40.0) as u8, 60])
        } else if prop {
            image::Rgb([200, 90, 40])
        } else if fy > 0.75 {
            image::Rgb([90, (110.0 + 40.0 * fx) as u8, 70])
        } else {
            image::Rgb([(150.0 + 80.0 * fy) as u8, (170.0 + 60.0 * fy) as u8, 235])
        }
    })
}

/// A kromad of our own, with its own data dir, for one measurement.
async fn start_kromad(kromad: &Path, folder: &Path) -> Result<BenchKromad, Failure> {
    BenchKromad::start(kromad, folder, None, &folder.join("settings.toml"), &[]).await
}

async fn bg_remove(
    client: &Client,
    path: &Path,
    out: &Path,
    mask_only: bool,
) -> Result<(), Failure> {
    let report = client
        .call::<protocol::postprocess::BgRemove>(&protocol::postprocess::BgRemoveParams {
            paths: vec![path.display().to_string()],
            output_dir: Some(out.display().to_string()),
            mask_only,
            ..Default::default()
        })
        .await?;
    if report.failed > 0 {
        return Err(Failure::other(
            format!("background removal failed: {:?}", report.results),
            None,
        ));
    }
    Ok(())
}

async fn upscale(
    kromad: &Path,
    folder: &Path,
    source: &Path,
    tile: Option<u32>,
) -> Result<(f64, f64), Failure> {
    let daemon = start_kromad(kromad, folder).await?;
    let started = Instant::now();
    let report = daemon
        .client
        .call::<protocol::postprocess::Upscale>(&protocol::postprocess::UpscaleParams {
            paths: vec![source.display().to_string()],
            output_dir: Some(folder.join("out").display().to_string()),
            scale: Some(4),
            tile,
            ..Default::default()
        })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let rss = daemon.peak_rss_mb();
    daemon.stop().await;
    let report = report?;
    if report.failed > 0 {
        return Err(Failure::other(
            format!("upscale failed: {:?}", report.results),
            None,
        ));
    }
    Ok((seconds, rss?))
}

/// Runs `packaging/bench/rembg_bench.py` (embedded) and answers its timed seconds.
fn rembg(python: &Path, pages: &Path, out: &Path, masks: &Path) -> Result<f64, Failure> {
    let models = std::env::var_os("KROMA_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("", "", "kroma").map(|d| d.data_dir().join("models"))
        })
        .ok_or_else(|| Failure::other("no models dir", None))?;
    let script = include_str!("../../../packaging/bench/rembg_bench.py");
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(models.join("models/u2netp.onnx"))
        .arg(pages)
        .arg(out)
        .arg(masks)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| failure(&format!("running {}", python.display()), err))?;
    if !output.status.success() {
        return Err(Failure::other(
            format!(
                "rembg failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Some("make a Python with rembg: `bash packaging/bench/rembg-venv.sh`"),
        ));
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| failure("reading rembg's answer", err))?;
    answer["seconds"]
        .as_f64()
        .ok_or_else(|| Failure::other("rembg's answer has no seconds", None))
}

/// Intersection over union of two masks, thresholded at 128.
fn iou(ours: &Path, theirs: &Path) -> Result<f64, Failure> {
    let open = |path: &Path| {
        image::open(path)
            .map(|image| image.to_luma8())
            .map_err(|err| failure(&format!("reading {}", path.display()), err))
    };
    let (a, b) = (open(ours)?, open(theirs)?);
    let (mut both, mut either) = (0u64, 0u64);
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        both += u64::from(*x >= 128 && *y >= 128);
        either += u64::from(*x >= 128 || *y >= 128);
    }
    Ok(both as f64 / either.max(1) as f64)
}
