//! `kromactl bench sync`: its PNGs, what the baseline's uploads carry, and the report.

use super::*;

#[test]
fn the_pngs_are_distinct_deterministic_noise_of_about_the_size_asked() {
    for size_mb in [0.01, 0.2, 1.0] {
        let first = noise_png(0, size_mb);
        assert_eq!(
            first,
            noise_png(0, size_mb),
            "the same seed gives the same file"
        );
        assert_ne!(first, noise_png(1, size_mb), "each file has its own noise");
        let target = size_mb * 1e6;
        let off = (first.len() as f64 - target).abs() / target;
        assert!(off < 0.02, "{} bytes for {size_mb} MB", first.len());
        let decoded =
            image::load_from_memory_with_format(&first, image::ImageFormat::Png).expect("a PNG");
        assert_eq!(decoded.color(), image::ColorType::Rgb8);
    }
}

#[test]
fn the_baseline_sends_the_checksum_and_metadata_kromad_sends() {
    let temp = tempfile::tempdir().unwrap();
    let empty = temp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let digest = sha256_of(&empty).unwrap();
    assert_eq!(
        hex(&digest),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(digest),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    // Longer than one read, so the reads are joined in order.
    let big = temp.path().join("big");
    let bytes = noise_png(3, 0.6);
    std::fs::write(&big, &bytes).unwrap();
    assert_eq!(
        sha256_of(&big).unwrap(),
        <[u8; 32]>::from(Sha256::digest(&bytes))
    );
}

#[test]
fn kromad_reads_the_keys_from_the_variables_of_the_default_secrets() {
    assert_eq!(
        secret_variable(protocol::storage::DEFAULT_ACCESS_KEY_SECRET),
        "KROMA_SECRET_S3_ACCESS_KEY_ID"
    );
    assert_eq!(
        secret_variable(protocol::storage::DEFAULT_SECRET_KEY_SECRET),
        "KROMA_SECRET_S3_SECRET_ACCESS_KEY"
    );
}

#[test]
fn every_side_writes_under_a_prefix_of_its_own_each_round() {
    let prefixes = [
        prefix(Side::Baseline, 1),
        prefix(Side::Kromad, 1),
        prefix(Side::Baseline, 2),
        prefix(Side::Kromad, 2),
    ];
    let unique: std::collections::BTreeSet<&String> = prefixes.iter().collect();
    assert_eq!(unique.len(), prefixes.len(), "{prefixes:?}");
}

/// A round of 201 files of 500 MB together.
fn round(round: usize, baseline_s: f64, kromad_s: f64) -> Round {
    small_round(201, 500_000_000, round, baseline_s, kromad_s)
}

fn small_round(files: usize, bytes: u64, round: usize, baseline_s: f64, kromad_s: f64) -> Round {
    Round::new(
        round,
        Throughput::of(files, bytes, Duration::from_secs_f64(baseline_s)),
        Throughput::of(files, bytes, Duration::from_secs_f64(kromad_s)),
    )
}

#[test]
fn the_median_of_two_rounds_is_their_mean() {
    let report = Report::new(
        200,
        2.5,
        201,
        500_000_000,
        IN_FLIGHT,
        vec![round(1, 4.0, 5.0), round(2, 2.0, 2.0)],
    );
    assert_eq!(report.median.baseline.seconds, 3.0);
    assert_eq!(report.median.kromad.seconds, 3.5);
    assert_eq!(report.median.ratio, (0.8 + 1.0) / 2.0);
    let odd = Report::new(
        200,
        2.5,
        201,
        500_000_000,
        IN_FLIGHT,
        vec![round(1, 4.0, 5.0), round(2, 2.0, 2.0), round(3, 3.0, 2.0)],
    );
    assert_eq!(odd.median.baseline.seconds, 3.0);
    assert_eq!(odd.median.ratio, 1.0);
}

#[test]
fn the_report_reads_as_a_table_per_round_and_the_median() {
    let two = Report::new(
        200,
        2.5,
        201,
        500_000_000,
        IN_FLIGHT,
        vec![round(1, 4.0, 5.0), round(2, 3.2, 3.0)],
    );
    let one = Report::new(
        10,
        1.0,
        11,
        10_000_400,
        IN_FLIGHT,
        vec![small_round(11, 10_000_400, 1, 0.5, 0.4)],
    );
    insta::assert_snapshot!([report::text(&two), report::text(&one)].join("\n\n----\n\n"));
}

#[test]
fn the_json_report_names_both_sides_and_the_ratio() {
    let report = Report::new(
        10,
        1.0,
        11,
        10_000_000,
        IN_FLIGHT,
        vec![small_round(11, 10_000_000, 1, 0.5, 0.4)],
    );
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "pngs",
        "size_mb",
        "files",
        "bytes",
        "in_flight",
        "rounds",
        "median",
    ] {
        assert!(json.get(key).is_some(), "{key}: {json}");
    }
    let first = &json["rounds"][0];
    assert_eq!(first["ratio"], 1.25);
    assert!(first["baseline"]["mb_per_sec"].is_f64() && first["kromad"]["files_per_sec"].is_f64());
    assert_eq!(json["median"]["ratio"], 1.25);
}
