//! One-off post-process steps (`kromactl color`, `postprocess.color`) on real files: folders,
//! per-file errors, user profiles, provenance chunks, never overwriting, tiny and huge images.

use std::path::Path;

use kroma_tests::Daemon;

fn golden(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../daemon/tests/color")
        .join(format!("{name}.png"))
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn color_processes_a_folder_keeps_alpha_reports_bad_files_and_never_overwrites() {
    let temp = tempfile::tempdir().expect("temp");
    let settings = temp.path().join("user.toml");
    std::fs::write(&settings, "[color_profiles.mine]\ncontrast = 1.3\n").expect("settings");
    let daemon = Daemon::start_with_env(
        temp.path(),
        &[],
        &[("KROMA_SETTINGS", settings.to_str().expect("utf-8"))],
    );
    let folder = temp.path().join("art");
    std::fs::create_dir_all(folder.join("sub")).expect("folders");
    std::fs::copy(golden("source"), folder.join("source.png")).expect("copy");
    image::RgbImage::from_pixel(9, 7, image::Rgb([90, 120, 200]))
        .save(folder.join("sub/photo.jpg"))
        .expect("jpeg");
    image::RgbaImage::from_pixel(1, 1, image::Rgba([1, 2, 3, 4]))
        .save(folder.join("dot.png"))
        .expect("1x1");
    image::RgbaImage::from_pixel(20000, 10, image::Rgba([200, 100, 50, 255]))
        .save(folder.join("wide.png"))
        .expect("20000x10");
    std::fs::write(folder.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").expect("corrupt");
    std::fs::write(folder.join("notes.txt"), "skipped").expect("text");

    let folder_arg = folder.display().to_string();
    let out = kroma_tests::kromactl(
        &daemon.socket,
        &[
            "--json",
            "color",
            &folder_arg,
            "--profile",
            "cinematic_warm",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "one file failed");
    let report = json(&out);
    assert_eq!(
        (report["done"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(1))
    );
    let results = report["results"].as_array().expect("results");
    let broken = results
        .iter()
        .find(|r| {
            r["input"]
                .as_str()
                .is_some_and(|i| i.ends_with("broken.png"))
        })
        .expect("broken listed");
    assert_eq!(broken["error"]["code"], "image_damaged");
    assert!(
        results
            .iter()
            .all(|r| !r["input"].as_str().unwrap_or("").ends_with(".txt"))
    );

    let outputs = temp.path().join("art_cinematic_warm");
    let output = outputs.join("source.png");
    let written = image::open(&output).expect("output").to_rgba8();
    let expected = image::open(golden("cinematic_warm"))
        .expect("golden")
        .to_rgba8();
    assert_eq!(written, expected, "the same pixels as Pillow, alpha kept");
    let bytes = std::fs::read(&output).expect("read");
    let text = String::from_utf8_lossy(&bytes);
    use sha2::Digest as _;
    let source_sha = format!(
        "{:x}",
        sha2::Sha256::digest(std::fs::read(golden("source")).expect("source"))
    );
    assert!(text.contains("kroma:source_sha256") && text.contains(&source_sha));
    assert!(text.contains("kroma:step") && text.contains("cinematic_warm"));
    assert!(
        outputs.join("sub/photo.png").is_file(),
        "the folder's layout is mirrored"
    );
    assert_eq!(
        image::open(outputs.join("wide.png")).expect("wide").width(),
        20000
    );
    assert_eq!(
        std::fs::read_dir(&folder).expect("sources").count(),
        6,
        "nothing was written among the sources"
    );

    // Again: every output exists, nothing is overwritten.
    let before = std::fs::read(&output).expect("read");
    let out = kroma_tests::kromactl(
        &daemon.socket,
        &[
            "--json",
            "color",
            &folder_arg,
            "--profile",
            "cinematic_warm",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["done"], 0);
    assert!(
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .any(|r| r["error"]["code"] == "output_exists")
    );
    assert_eq!(std::fs::read(&output).expect("read"), before);

    // A user profile, into another folder.
    let elsewhere = temp.path().join("out");
    let source_arg = folder.join("source.png").display().to_string();
    let elsewhere_arg = elsewhere.display().to_string();
    let out = kroma_tests::kromactl(
        &daemon.socket,
        &[
            "color",
            &source_arg,
            "--profile",
            "mine",
            "-o",
            &elsewhere_arg,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.join("source_mine.png").is_file());

    let out = kroma_tests::kromactl(
        &daemon.socket,
        &["color", &source_arg, "--profile", "sepia"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sepia") && stderr.contains("mine"),
        "{stderr}"
    );
}

// ---- background removal and upscaling on the installed models (u2netp, x4v3) ----

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use protocol::postprocess::{BgRemoveParams, StepReport, UpscaleParams};

/// The rembg test images and their reference masks (`daemon/tests/bg/rembg_masks.py`).
const BG_IMAGES: [&str; 3] = ["figure_160x120", "object_128x96", "soft_96x72"];

fn bg_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../daemon/tests/bg")
        .join(name)
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

fn error_of(result: Result<StepReport, ClientError>) -> protocol::ErrorData {
    match result {
        Err(ClientError::Rpc {
            data: Some(data), ..
        }) => *data,
        other => panic!("expected an error with data, got {other:?}"),
    }
}

/// The `kroma:*` text chunks of a PNG.
fn provenance(path: &Path) -> std::collections::BTreeMap<String, String> {
    let file = std::fs::File::open(path).expect("open");
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder.read_info().expect("a PNG");
    reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .filter_map(|chunk| {
            let key = chunk.keyword.strip_prefix("kroma:")?;
            Some((key.to_owned(), chunk.text.clone()))
        })
        .collect()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    format!(
        "{:x}",
        sha2::Sha256::digest(std::fs::read(path).expect("read"))
    )
}

/// Intersection over union of two masks thresholded at 128, and their largest difference.
fn compare_masks(ours: &image::GrayImage, reference: &image::GrayImage) -> (f64, u8) {
    assert_eq!(ours.dimensions(), reference.dimensions());
    let (mut both, mut either, mut worst) = (0u32, 0u32, 0u8);
    for (a, b) in ours.as_raw().iter().zip(reference.as_raw()) {
        let (a_in, b_in) = (*a >= 128, *b >= 128);
        both += u32::from(a_in && b_in);
        either += u32::from(a_in || b_in);
        worst = worst.max(a.abs_diff(*b));
    }
    (f64::from(both) / f64::from(either.max(1)), worst)
}

async fn bg_remove(client: &Client, params: BgRemoveParams) -> Result<StepReport, ClientError> {
    client
        .call::<protocol::postprocess::BgRemove>(&params)
        .await
}

async fn upscale(client: &Client, params: UpscaleParams) -> Result<StepReport, ClientError> {
    client.call::<protocol::postprocess::Upscale>(&params).await
}

#[tokio::test]
async fn bg_remove_masks_match_rembg_and_cut_outs_keep_colours_and_alpha() {
    let temp = tempfile::tempdir().expect("temp");
    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    let art = temp.path().join("art");
    std::fs::create_dir_all(&art).expect("art");
    for name in BG_IMAGES {
        std::fs::copy(
            bg_fixture(&format!("{name}.png")),
            art.join(format!("{name}.png")),
        )
        .expect("copy");
    }

    let report = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&art)],
            mask_only: true,
            ..Default::default()
        },
    )
    .await
    .expect("masks");
    assert_eq!((report.done, report.failed), (3, 0), "{report:#?}");
    for name in BG_IMAGES {
        let ours = image::open(temp.path().join(format!("art_mask/{name}.png")))
            .expect("our mask")
            .to_luma8();
        let reference = image::open(bg_fixture(&format!("{name}.rembg_mask.png")))
            .expect("rembg mask")
            .to_luma8();
        let (iou, worst) = compare_masks(&ours, &reference);
        println!("{name}: IoU {iou:.4} against rembg, largest difference {worst}/255");
        assert!(iou >= 0.99, "{name}: IoU {iou}");
        // Same pre/post-processing as rembg: equal up to ONNX Runtime's float noise.
        assert!(worst <= 2, "{name}: differs by {worst}/255");
    }

    // The cut-out: colours untouched, the mask as alpha, provenance in the file.
    let figure = art.join("figure_160x120.png");
    let report = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&figure)],
            ..Default::default()
        },
    )
    .await
    .expect("cut-out");
    let output = art.join("figure_160x120_nobg.png");
    assert_eq!(
        report.results[0].output.as_deref(),
        Some(path_arg(&output).as_str())
    );
    let cut = image::open(&output).expect("cut-out").to_rgba8();
    let source = image::open(&figure).expect("source").to_rgba8();
    let mask = image::open(temp.path().join("art_mask/figure_160x120.png"))
        .expect("mask")
        .to_luma8();
    for ((out, src), m) in cut.pixels().zip(source.pixels()).zip(mask.pixels()) {
        assert_eq!(
            out.0[..3],
            src.0[..3],
            "colours are not darkened at the edges"
        );
        assert!(out[3].abs_diff(m[0]) <= 2, "alpha is the mask");
    }
    let chunks = provenance(&output);
    assert_eq!(chunks["step"], "bg_remove");
    assert_eq!(chunks["source_sha256"], sha256(&figure));
    let settings: serde_json::Value = serde_json::from_str(&chunks["settings"]).expect("json");
    assert_eq!(settings["model"], "u2netp");

    // Never overwrites: the same call again fails for that file and leaves it alone.
    let before = std::fs::read(&output).expect("read");
    let again = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&figure)],
            ..Default::default()
        },
    )
    .await
    .expect("answered");
    assert_eq!(again.failed, 1);
    assert_eq!(
        again.results[0].error.as_ref().map(|e| e.code.as_str()),
        Some("output_exists")
    );
    assert_eq!(std::fs::read(&output).expect("read"), before);

    // A source's own transparency stays; a solid background makes the result opaque; matting
    // only touches the mask's uncertain band.
    let mut half = source.clone();
    for (x, _, pixel) in half.enumerate_pixels_mut() {
        if x < 40 {
            pixel[3] = 0;
        }
    }
    let half_path = temp.path().join("half.png");
    half.save(&half_path).expect("save");
    let out_dir = temp.path().join("out");
    for (background, matting) in [(None, false), (Some("#ff8000"), false), (None, true)] {
        let dir = out_dir.join(format!(
            "{}-{matting}",
            background.unwrap_or("none").trim_start_matches('#')
        ));
        let report = bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&half_path)],
                output_dir: Some(path_arg(&dir)),
                background: background.map(str::to_owned),
                matting,
                ..Default::default()
            },
        )
        .await
        .expect("bg_remove");
        assert_eq!(report.done, 1, "{report:#?}");
        let out = image::open(dir.join("half_nobg.png"))
            .expect("out")
            .to_rgba8();
        let mask_of_half = {
            // The model saw the same RGB, so the mask is the same as the opaque figure's.
            &mask
        };
        for (x, y, pixel) in out.enumerate_pixels() {
            let m = mask_of_half.get_pixel(x, y)[0];
            match background {
                Some(_) => assert_eq!(pixel[3], 255),
                None if x < 40 => assert_eq!(pixel[3], 0, "transparent stays transparent"),
                None if !(11..240).contains(&m) => assert!(pixel[3].abs_diff(m) <= 2),
                None => {}
            }
        }
        if background.is_some() {
            // Fully cut-away pixels are the background colour.
            let (x, y) = (0, 0);
            assert_eq!(out.get_pixel(x, y).0, [255, 128, 0, 255]);
        }
    }

    // Bad and extreme inputs: per-file errors, the rest done.
    let odd = temp.path().join("odd");
    std::fs::create_dir_all(&odd).expect("odd");
    image::RgbaImage::from_pixel(1, 1, image::Rgba([1, 2, 3, 255]))
        .save(odd.join("dot.png"))
        .expect("1x1");
    image::RgbImage::from_fn(20000, 10, |x, _| image::Rgb([(x % 256) as u8, 90, 200]))
        .save(odd.join("wide.png"))
        .expect("20000x10");
    std::fs::write(odd.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").expect("corrupt");
    let report = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&odd)],
            ..Default::default()
        },
    )
    .await
    .expect("odd");
    assert_eq!((report.done, report.failed), (2, 1), "{report:#?}");
    let wide = image::open(temp.path().join("odd_nobg/wide.png")).expect("wide");
    assert_eq!((wide.width(), wide.height()), (20000, 10));
    let dot = image::open(temp.path().join("odd_nobg/dot.png")).expect("dot");
    assert_eq!((dot.width(), dot.height()), (1, 1));

    // Bad options are refused before any work.
    let err = error_of(
        bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&figure)],
                background: Some("orange".into()),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "invalid_colour");
}

#[tokio::test]
async fn upscale_tiles_meet_without_seams_keep_alpha_and_report_progress() {
    let temp = tempfile::tempdir().expect("temp");
    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    // The figure with a transparent left edge fading in.
    let mut source = image::open(bg_fixture("figure_160x120.png"))
        .expect("figure")
        .to_rgba8();
    for (x, _, pixel) in source.enumerate_pixels_mut() {
        pixel[3] = (x * 8).min(255) as u8;
    }
    let input = temp.path().join("figure.png");
    source.save(&input).expect("save");

    let events_before = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: None,
            limit: Some(1),
        })
        .await
        .expect("events")
        .last_id;
    for scale in [4u32, 2] {
        let mut outputs = Vec::new();
        for tile in [1024u32, 32] {
            let dir = temp.path().join(format!("x{scale}-{tile}"));
            let report = upscale(
                &client,
                UpscaleParams {
                    paths: vec![path_arg(&input)],
                    output_dir: Some(path_arg(&dir)),
                    scale: Some(scale),
                    tile: Some(tile),
                    ..Default::default()
                },
            )
            .await
            .expect("upscale");
            assert_eq!(report.done, 1, "{report:#?}");
            let path = dir.join(format!("figure_x{scale}.png"));
            let chunks = provenance(&path);
            assert_eq!(chunks["step"], "upscale");
            assert_eq!(chunks["source_sha256"], sha256(&input));
            outputs.push(image::open(&path).expect("output").to_rgba8());
        }
        let (whole, tiled) = (&outputs[0], &outputs[1]);
        assert_eq!(whole.dimensions(), (160 * scale, 120 * scale));
        let worst = whole
            .as_raw()
            .iter()
            .zip(tiled.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert!(
            worst <= 1,
            "×{scale}: 32-px tiles differ from the whole image by {worst}/255"
        );
        // Alpha follows the source: transparent at its left edge, opaque where it was.
        for y in (0..whole.height()).step_by(7) {
            assert!(whole.get_pixel(0, y)[3] <= 8, "left edge stays transparent");
            assert_eq!(whole.get_pixel(whole.width() - 1, y)[3], 255);
        }
    }
    let events = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: Some(events_before),
            limit: Some(1000),
        })
        .await
        .expect("events")
        .events;
    let tiles: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e.kind == protocol::events::kind::POSTPROCESS_PROGRESS)
        .map(|e| {
            (
                e.data["tiles_done"].as_u64().unwrap_or(0),
                e.data["tiles"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // 160×120 in 32-px tiles is 5 × 4; every file's last tile is reported.
    assert!(tiles.contains(&(20, 20)), "{tiles:?}");
    assert!(tiles.contains(&(1, 1)), "{tiles:?}");

    // Tiny, extreme and broken inputs; the CLI on a folder.
    let odd = temp.path().join("odd");
    std::fs::create_dir_all(&odd).expect("odd");
    image::RgbaImage::from_pixel(1, 1, image::Rgba([10, 200, 30, 255]))
        .save(odd.join("dot.png"))
        .expect("1x1");
    image::RgbImage::from_fn(20000, 10, |x, y| {
        image::Rgb([(x % 256) as u8, (y * 20) as u8, 128])
    })
    .save(odd.join("wide.png"))
    .expect("20000x10");
    std::fs::write(odd.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").expect("corrupt");
    let out = kroma_tests::kromactl(
        &daemon.socket,
        &["--json", "upscale", "--scale", "2", &path_arg(&odd)],
    );
    assert_eq!(out.status.code(), Some(1), "one file failed");
    let report = json(&out);
    assert_eq!(
        (report["done"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let dot = image::open(temp.path().join("odd_x2/dot.png"))
        .expect("dot")
        .to_rgba8();
    assert_eq!(dot.dimensions(), (2, 2));
    let wide = image::open(temp.path().join("odd_x2/wide.png")).expect("wide");
    assert_eq!((wide.width(), wide.height()), (40000, 20));
    assert!(
        !std::fs::read_dir(temp.path().join("odd_x2"))
            .expect("dir")
            .any(|e| e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".part")),
        "no half-written file is left"
    );

    let err = error_of(
        upscale(
            &client,
            UpscaleParams {
                paths: vec![path_arg(&input)],
                scale: Some(3),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "invalid_scale");
    // A folder with nothing to do is said so, not reported as success.
    let empty = temp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty");
    std::fs::write(empty.join("notes.txt"), "no image").expect("text");
    let err = error_of(
        upscale(
            &client,
            UpscaleParams {
                paths: vec![path_arg(&empty)],
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "no_images");
}

#[tokio::test]
async fn a_missing_model_or_runtime_is_a_clear_error_that_writes_nothing() {
    let temp = tempfile::tempdir().expect("temp");
    let models = temp.path().join("models");
    std::fs::create_dir_all(models.join("models")).expect("models");
    let installed = kroma_tests::models_dir();
    std::fs::copy(
        installed.join("manifest.json"),
        models.join("manifest.json"),
    )
    .expect("manifest");
    std::fs::copy(
        installed.join("models/u2netp.onnx"),
        models.join("models/u2netp.onnx"),
    )
    .expect("u2netp");
    // No runtime, no upscale model.
    let daemon = Daemon::start_in(temp.path(), &["--models-dir", &path_arg(&models)]);
    let client = daemon.client().await;
    let input = temp.path().join("figure.png");
    std::fs::copy(bg_fixture("figure_160x120.png"), &input).expect("copy");

    let err = error_of(
        bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&input)],
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "models_missing");
    assert!(err.message.contains("onnxruntime"), "{}", err.message);
    assert_eq!(
        err.action,
        Some(protocol::Action::InstallModels { quality: false })
    );
    let err = error_of(
        upscale(
            &client,
            UpscaleParams {
                paths: vec![path_arg(&input)],
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "models_missing");
    assert!(
        err.message.contains("realesr-general-x4v3"),
        "{}",
        err.message
    );
    let err = error_of(
        bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&input)],
                model: Some("u2net-human".into()),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "unknown_model");

    // The CLI says the same, with the fix, and exits non-zero; the daemon is still fine.
    let out = kroma_tests::kromactl(&daemon.socket, &["bg-remove", &path_arg(&input)]);
    assert_ne!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("kromactl local-models install"), "{said}");
    assert_eq!(
        std::fs::read_dir(temp.path())
            .expect("dir")
            .filter(|e| e
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains("nobg")))
            .count(),
        0,
        "nothing written"
    );
    // A runtime file the manifest vouches for (size and hash) that is not a library: verifying
    // loads it and says so; a step says so too, and nothing panics.
    std::fs::copy(
        installed.join("models/realesr-general-x4v3.onnx"),
        models.join("models/realesr-general-x4v3.onnx"),
    )
    .expect("x4v3");
    let garbage = vec![7u8; 4096];
    std::fs::create_dir_all(models.join("runtime")).expect("runtime dir");
    let runtime_file = models.join("runtime/libonnxruntime.so.1.31.1");
    std::fs::write(&runtime_file, &garbage).expect("garbage runtime");
    let manifest_path = models.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    for item in manifest["items"].as_array_mut().expect("items") {
        if item["kind"] == "runtime" {
            item["size"] = garbage.len().into();
            item["sha256"] = sha256(&runtime_file).into();
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let listed = client
        .call::<protocol::local_model::List>(&protocol::local_model::ListParams { verify: true })
        .await
        .expect("local_model.list");
    assert!(!listed.ok);
    assert!(
        listed
            .problem
            .as_deref()
            .unwrap_or("")
            .contains("cannot be used"),
        "{listed:#?}"
    );
    let err = error_of(
        bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&input)],
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "runtime_unusable");
    assert_eq!(
        err.action,
        Some(protocol::Action::InstallModels { quality: false })
    );

    std::fs::remove_file(models.join("manifest.json")).expect("remove");
    let err = error_of(
        bg_remove(
            &client,
            BgRemoveParams {
                paths: vec![path_arg(&input)],
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(err.code, "models_missing");
    client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .expect("the daemon still answers");
}

#[test]
fn the_postprocess_benchmark_measures_each_side() {
    let out = std::process::Command::new(kroma_tests::bin("kromactl"))
        .args([
            "--json",
            "bench",
            "postprocess",
            "--images",
            "2",
            "--sizes",
            "96x64",
        ])
        .arg("--kromad")
        .arg(kroma_tests::bin("kromad"))
        .env_remove("KROMA_REMBG_PYTHON")
        .output()
        .expect("kromactl bench postprocess");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let bg = &report["bg_remove"][0];
    assert_eq!(bg["size"], "96x64");
    assert!(bg["kroma_s"].as_f64().expect("kroma") > 0.0);
    assert!(bg["rembg_s"].is_null(), "no rembg here: said so, not faked");
    let upscale = &report["upscale"];
    for key in [
        "tiled_s",
        "whole_s",
        "tiled_peak_rss_mb",
        "whole_peak_rss_mb",
    ] {
        assert!(upscale[key].as_f64().expect(key) > 0.0, "{key}");
    }
}

#[tokio::test]
async fn a_model_is_loaded_on_first_use_and_freed_when_idle() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("kromad.toml");
    std::fs::write(
        &config,
        "[local_models]\nidle_secs = 2\nintra_threads = 1\n",
    )
    .expect("config");
    let daemon = Daemon::start_in(temp.path(), &["--config", &path_arg(&config)]);
    let client = daemon.client().await;
    let loaded = |list: &protocol::local_model::LocalModels| -> Vec<String> {
        list.models
            .iter()
            .filter(|m| m.loaded)
            .map(|m| m.name.clone())
            .collect()
    };
    let list = || async {
        client
            .call::<protocol::local_model::List>(&protocol::local_model::ListParams {
                verify: false,
            })
            .await
            .expect("local_model.list")
    };
    assert!(
        loaded(&list().await).is_empty(),
        "nothing is loaded before use"
    );
    let input = temp.path().join("figure.png");
    std::fs::copy(bg_fixture("figure_160x120.png"), &input).expect("copy");
    let report = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&input)],
            mask_only: true,
            ..Default::default()
        },
    )
    .await
    .expect("bg_remove");
    assert_eq!(report.done, 1);
    assert_eq!(loaded(&list().await), ["u2netp"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !loaded(&list().await).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "u2netp is still loaded 10 s after its last use with idle_secs = 2"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And it loads again when needed.
    let again = bg_remove(
        &client,
        BgRemoveParams {
            paths: vec![path_arg(&input)],
            output_dir: Some(path_arg(&temp.path().join("again"))),
            mask_only: true,
            ..Default::default()
        },
    )
    .await
    .expect("bg_remove again");
    assert_eq!(again.done, 1);
}

#[test]
fn long_steps_outlive_the_request_timeout_and_stop_when_the_caller_leaves() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("kromad.toml");
    std::fs::write(
        &config,
        "[limits]\nrequest_timeout_secs = 1\n[runs]\nlocal_jobs = 1\n",
    )
    .expect("config");
    let daemon = Daemon::start_in(temp.path(), &["--config", &path_arg(&config)]);
    let pages = temp.path().join("pages");
    std::fs::create_dir_all(&pages).expect("pages");
    let source = image::open(bg_fixture("figure_160x120.png")).expect("figure");
    for index in 0..20 {
        source
            .save(pages.join(format!("page_{index:02}.png")))
            .expect("page");
    }
    let request = |id: u32, out: &Path| {
        serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "postprocess.bg_remove",
            "params": { "paths": [path_arg(&pages)], "output_dir": path_arg(out), "mask_only": true },
        })
        .to_string()
    };
    let written = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);

    // 20 inferences take longer than the 1 s request timeout, and the call still answers.
    let all = temp.path().join("all");
    let mut connection = kroma_tests::RawConnection::connect(&daemon.socket).expect("connect");
    // 20 inferences take about 20 s on an idle 2-core machine, and longer beside a build.
    connection.set_read_timeout(std::time::Duration::from_secs(300));
    let started = std::time::Instant::now();
    let answer = connection.call_json(&request(1, &all));
    assert_eq!(answer["result"]["done"], 20, "{answer}");
    // How long one file takes on this machine now: the waits below scale with it, so a busy
    // machine does not turn the file in hand into "work that went on".
    let settle = (started.elapsed() / 20 * 3).max(std::time::Duration::from_secs(2));
    assert_eq!(written(&all), 20);

    // A caller that leaves stops the rest of its call.
    let some = temp.path().join("some");
    let mut connection = kroma_tests::RawConnection::connect(&daemon.socket).expect("connect");
    connection.send(format!("{}\n", request(2, &some)).as_bytes());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while written(&some) < 2 {
        assert!(std::time::Instant::now() < deadline, "no output came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(connection);
    // The file in hand finishes; then nothing more comes.
    std::thread::sleep(settle);
    let after_leaving = written(&some);
    std::thread::sleep(settle);
    assert_eq!(
        written(&some),
        after_leaving,
        "work went on after the caller left"
    );
    assert!(after_leaving < 20, "{after_leaving}");
    let mut connection = kroma_tests::RawConnection::connect(&daemon.socket).expect("connect");
    let status = connection.call_json(r#"{"jsonrpc":"2.0","id":3,"method":"daemon.status"}"#);
    assert!(status["result"].is_object(), "{status}");
}
