//! What `kromactl bench sync` reports: the measurements as `--json` prints them, and the table
//! with what each side does and what the ratio compares.

use std::time::Duration;

use serde::Serialize;

use crate::output;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// PNGs of noise written into the project's folder.
    pub(super) pngs: usize,
    /// Their size asked for, in MB (10^6 bytes), each.
    pub(super) size_mb: f64,
    /// Files each side uploads per round: what kromad's plan sends (the PNGs and the project's
    /// own files).
    pub(super) files: usize,
    /// Their bytes, together.
    pub(super) bytes: u64,
    /// Uploads in flight on each side.
    pub(super) in_flight: usize,
    pub(super) rounds: Vec<Round>,
    pub(super) median: Median,
}

#[derive(Debug, Serialize)]
pub(super) struct Round {
    pub(super) round: usize,
    /// aws-sdk-s3 directly from kromactl.
    pub(super) baseline: Throughput,
    /// One `storage.sync` push.
    pub(super) kromad: Throughput,
    /// kromad's MB/s over the baseline's: above 1, kromad is faster.
    pub(super) ratio: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Throughput {
    pub(super) seconds: f64,
    pub(super) files_per_sec: f64,
    pub(super) mb_per_sec: f64,
}

/// Each side at its median round, and the median of the rounds' ratios.
#[derive(Debug, Serialize)]
pub(super) struct Median {
    pub(super) baseline: Throughput,
    pub(super) kromad: Throughput,
    pub(super) ratio: f64,
}

impl Throughput {
    pub(super) fn of(files: usize, bytes: u64, elapsed: Duration) -> Throughput {
        Throughput::from_seconds(files, bytes, elapsed.as_secs_f64())
    }

    fn from_seconds(files: usize, bytes: u64, seconds: f64) -> Throughput {
        Throughput {
            seconds,
            files_per_sec: files as f64 / seconds,
            mb_per_sec: bytes as f64 / 1e6 / seconds,
        }
    }
}

impl Round {
    pub(super) fn new(round: usize, baseline: Throughput, kromad: Throughput) -> Round {
        Round {
            round,
            ratio: kromad.mb_per_sec / baseline.mb_per_sec,
            baseline,
            kromad,
        }
    }
}

impl Report {
    /// `rounds` must not be empty.
    pub(super) fn new(
        pngs: usize,
        size_mb: f64,
        files: usize,
        bytes: u64,
        in_flight: usize,
        rounds: Vec<Round>,
    ) -> Report {
        let seconds = |side: fn(&Round) -> &Throughput| {
            median(rounds.iter().map(|round| side(round).seconds).collect())
        };
        let median = Median {
            baseline: Throughput::from_seconds(files, bytes, seconds(|round| &round.baseline)),
            kromad: Throughput::from_seconds(files, bytes, seconds(|round| &round.kromad)),
            ratio: median(rounds.iter().map(|round| round.ratio).collect()),
        };
        Report {
            pngs,
            size_mb,
            files,
            bytes,
            in_flight,
            rounds,
            median,
        }
    }
}

/// The middle value, or the mean of the two middle ones: with the default two rounds, the upper
/// one alone would report the better round.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

pub(super) fn text(report: &Report) -> String {
    let side = |throughput: &Throughput| {
        format!(
            "{:.1} MB/s, {:.1} files/s ({:.3} s)",
            throughput.mb_per_sec, throughput.files_per_sec, throughput.seconds
        )
    };
    let mut table = output::table(&["measurement", "kromad", "aws-sdk-s3 directly", "ratio"]);
    let what = format!(
        "{} files ({:.1} MB)",
        report.files,
        report.bytes as f64 / 1e6
    );
    for round in &report.rounds {
        table.add_row(vec![
            format!("push {what}, round {}", round.round),
            side(&round.kromad),
            side(&round.baseline),
            format!("{:.2}x", round.ratio),
        ]);
    }
    table.add_row(vec![
        format!("push {what}, median of {}", report.rounds.len()),
        side(&report.median.kromad),
        side(&report.median.baseline),
        format!("{:.2}x", report.median.ratio),
    ]);
    format!(
        "{table}\n\
         {} PNGs of noise of about {} MB each, in a project's folder, pushed to the S3 test server \
         in this process (s3s-fs on 127.0.0.1), every round to new prefixes\n\
         kromad: one storage.sync call, its plan included (bucket check, folder walk, listing); \
         aws-sdk-s3 directly: the same files hashed (SHA-256) and sent with one PutObject each \
         carrying the same checksum and sha256 metadata, {} in flight as in kromad, on a client \
         built like kromad's; ratio = kromad's MB/s over the direct uploads'",
        report.pngs, report.size_mb, report.in_flight
    )
}
