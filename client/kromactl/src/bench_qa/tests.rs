//! `kromactl bench qa`: its test images, how the two sides' reports are compared, and the old
//! script against the reference's chroma delta.

use super::*;

/// §4.1 over an image's 8-bit RGB, rounded as Python's `round(x, 4)` does (no ties occur:
/// a multiple of 1/20000 is never a binary fraction).
fn chroma(image: &image::DynamicImage) -> f64 {
    let rgb = image.to_rgb8();
    let n = (rgb.width() * rgb.height()).max(1) as f64;
    let mut sums = [0u64; 3];
    for pixel in rgb.pixels() {
        let [r, g, b] = pixel.0.map(i32::from);
        for (sum, diff) in sums.iter_mut().zip([r - g, r - b, g - b]) {
            *sum += diff.unsigned_abs() as u64;
        }
    }
    let mean = (sums[0] as f64 / n + sums[1] as f64 / n + sums[2] as f64 / n) / 3.0;
    format!("{mean:.4}").parse().unwrap()
}

#[test]
fn the_test_images_pass_warn_and_tint_in_turn() {
    let chromas: Vec<f64> = (0..8).map(|index| chroma(&test_image(index, 64))).collect();
    for (index, chroma) in chromas.iter().enumerate() {
        let expected = match index % 4 {
            0 => *chroma == 0.0,
            1 => (1.0..MAX_CHROMA_DELTA).contains(chroma),
            2 => (MAX_CHROMA_DELTA..3.0).contains(chroma),
            _ => *chroma > 20.0,
        };
        assert!(expected, "image {index}: chroma {chroma}");
    }
    assert!(test_image(3, 64).color().has_alpha());
    // The smallest side the bench takes still makes every kind.
    for index in 0..4 {
        assert_eq!(test_image(index, 8).width(), 8);
    }
}

fn old(file: &str, chroma_delta: Option<f64>, soft: &[&str]) -> OldVerdict {
    OldVerdict {
        file: file.to_owned(),
        chroma_delta,
        hard_fail_reasons: Vec::new(),
        soft_warnings: soft.iter().map(|reason| reason.to_string()).collect(),
    }
}

fn ours(file: &str, chroma_delta: Option<f64>, warned: bool) -> protocol::qa::FileVerdict {
    protocol::qa::FileVerdict {
        file: file.to_owned(),
        chroma_delta,
        grayscale_like: chroma_delta.map(|delta| delta <= MAX_CHROMA_DELTA),
        hard_fail_reasons: Vec::new(),
        soft_warnings: if warned {
            vec![protocol::qa::Reason::ChromaExceedsThreshold]
        } else {
            Vec::new()
        },
        error: None,
    }
}

#[test]
fn both_sides_agree_by_file_name_to_four_decimals() {
    let kromad = [
        ours("/tmp/x/images/a.png", Some(0.0), false),
        ours("/tmp/x/images/b.png", Some(1.6), false),
        ours("/tmp/x/images/c.png", Some(2.0001), true),
        ours("/tmp/x/images/d.png", Some(2.28), true),
    ];
    let old_files = [
        old("/private/tmp/x/images/a.png", Some(0.0), &[]),
        old("images/b.png", Some(1.60001), &[]),
        old("c.png", Some(2.0), &[]),
        old("e.png", Some(5.0), &["chroma_exceeds_threshold"]),
    ];
    let (agreeing, mismatches) = compare(&kromad, &old_files);
    assert_eq!(agreeing, 2);
    let mismatch = |file: &str, ours: (Option<f64>, &str), theirs: (Option<f64>, &str)| Mismatch {
        file: file.to_owned(),
        kromad_chroma: ours.0,
        old_chroma: theirs.0,
        kromad_verdict: ours.1.to_owned(),
        old_verdict: theirs.1.to_owned(),
    };
    assert_eq!(
        mismatches,
        [
            mismatch("c.png", (Some(2.0001), "warn"), (Some(2.0), "pass")),
            mismatch("d.png", (Some(2.28), "warn"), (None, "missing")),
            mismatch("e.png", (None, "missing"), (Some(5.0), "warn")),
        ]
    );
}

/// The old script itself, on the bench's images, against §4.1 computed here: when a Python
/// with Pillow and numpy is named by `KROMA_REMBG_PYTHON` (as `bench postprocess` uses it).
#[test]
fn the_old_script_computes_the_reference_chroma() {
    let Some(python) = std::env::var_os("KROMA_REMBG_PYTHON").map(PathBuf::from) else {
        eprintln!("KROMA_REMBG_PYTHON is not set: the old qa script is not run");
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let images = temp.path().join("images");
    write_images(&images, 8, 33).unwrap();
    let Ok(OldSide::Timed { files, .. }) = measure_old(&python, &images) else {
        panic!("the old qa script did not run with {}", python.display());
    };
    assert_eq!(files.len(), 8);
    for (index, file) in files.iter().enumerate() {
        assert_eq!(
            file.file,
            images
                .join(format!("qa-{index:04}.png"))
                .display()
                .to_string()
        );
        let expected = chroma(&test_image(index, 33));
        assert_eq!(file.chroma_delta, Some(expected), "{}", file.file);
        let warned = expected > MAX_CHROMA_DELTA;
        assert_eq!(!file.soft_warnings.is_empty(), warned, "{}", file.file);
        assert!(file.hard_fail_reasons.is_empty(), "{}", file.file);
    }
}

#[test]
fn the_report_reads_as_a_table_with_what_differs() {
    let throughput = |seconds: f64| Throughput {
        seconds,
        files_per_sec: 32.0 / seconds,
        mb_per_sec: 85.0 / seconds,
    };
    let report = |old: Option<Throughput>, mismatches: Vec<Mismatch>| Report {
        files: 32,
        side: 2048,
        bytes: 85_000_000,
        rounds: ROUNDS,
        kromad: throughput(0.8),
        ratio: old.as_ref().map(|old| old.seconds / 0.8),
        agreeing: old.as_ref().map(|_| 32 - mismatches.len()),
        old_skipped: old.is_none().then(|| "no Python given".to_owned()),
        old,
        mismatches,
    };
    let differs = Mismatch {
        file: "qa-0002.png".to_owned(),
        kromad_chroma: Some(2.2855),
        old_chroma: Some(2.2854),
        kromad_verdict: "warn".to_owned(),
        old_verdict: "warn".to_owned(),
    };
    insta::assert_snapshot!(
        [
            report_text(&report(Some(throughput(3.3)), vec![differs])),
            report_text(&report(None, Vec::new())),
        ]
        .join("\n\n----\n\n")
    );
}
