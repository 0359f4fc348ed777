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
