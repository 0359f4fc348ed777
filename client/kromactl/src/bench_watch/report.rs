//! What `kromactl bench watch` reports: the measurements as `--json` prints them, and the table
//! with the goal and what each ratio compares.

use std::time::Duration;

use serde::Serialize;

use super::PROFILE;
use crate::output;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) latency: LatencyReport,
    pub(super) throughput: ThroughputReport,
}

#[derive(Debug, Serialize)]
pub(super) struct LatencyReport {
    pub(super) rounds: usize,
    pub(super) width: u32,
    pub(super) height: u32,
    /// The rule's settle time as kromad chose it (the default).
    pub(super) settle_ms: u64,
    /// From the rename to the `watch.file` event `processing`.
    pub(super) taken: Spread,
    /// From the rename to the `watch.file` event `done`, the result written.
    pub(super) done: Spread,
    /// One direct `postprocess.color` call on the same image: the baseline.
    pub(super) direct_color: Spread,
    pub(super) goal_taken_ms: f64,
    /// Median taken over the median direct call.
    pub(super) ratio_taken: f64,
    /// Median done over the median direct call.
    pub(super) ratio_done: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Spread {
    pub(super) median_ms: f64,
    pub(super) p90_ms: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct ThroughputReport {
    pub(super) files: usize,
    pub(super) side: u32,
    /// Through the drop folder: from the first rename to every file `done`.
    pub(super) kroma_files_per_sec: f64,
    /// One `postprocess.color` call on a folder of the same files.
    pub(super) direct_files_per_sec: f64,
    pub(super) ratio: f64,
}

impl Spread {
    pub(super) fn of(mut times: Vec<Duration>) -> Spread {
        times.sort();
        let percentile = |p: f64| {
            let index = ((times.len() as f64 - 1.0) * p).round() as usize;
            times[index].as_secs_f64() * 1000.0
        };
        Spread {
            median_ms: percentile(0.5),
            p90_ms: percentile(0.9),
        }
    }
}

/// Milliseconds with a decimal where they are few.
fn ms(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

pub(super) fn print_text(report: &Report) {
    let latency = &report.latency;
    let throughput = &report.throughput;
    let goal = format!("goal ≤ {}", ms(latency.goal_taken_ms));
    let mut table = output::table(&["metric", "drop folder", "one direct color call", "ratio"]);
    for (what, spread, ratio_of_median, with_goal) in [
        ("rename → taken", &latency.taken, latency.ratio_taken, true),
        (
            "rename → result done",
            &latency.done,
            latency.ratio_done,
            false,
        ),
    ] {
        let median = if with_goal {
            format!("median {} ({goal})", ms(spread.median_ms))
        } else {
            format!("median {}", ms(spread.median_ms))
        };
        table.add_row(vec![
            format!("{what}, median"),
            median,
            ms(latency.direct_color.median_ms),
            format!("{ratio_of_median:.2}x"),
        ]);
        table.add_row(vec![
            format!("{what}, p90"),
            ms(spread.p90_ms),
            ms(latency.direct_color.p90_ms),
            format!("{:.2}x", spread.p90_ms / latency.direct_color.p90_ms),
        ]);
    }
    table.add_row(vec![
        format!(
            "files/s, {} files of {}×{} at once",
            throughput.files, throughput.side, throughput.side
        ),
        format!("{:.1}", throughput.kroma_files_per_sec),
        format!(
            "{:.1} (one call on the folder)",
            throughput.direct_files_per_sec
        ),
        format!("{:.2}x", throughput.ratio),
    ]);
    println!("{table}");
    let met = if latency.taken.median_ms <= latency.goal_taken_ms {
        "met"
    } else {
        "missed"
    };
    println!(
        "latency: {} rounds of one {}×{} PNG renamed into a folder watched by a `color:{PROFILE}` chain (settle {} ms); ratio = latency / one direct color call on the same image, made in turns with the rounds",
        latency.rounds, latency.width, latency.height, latency.settle_ms
    );
    println!(
        "goal: rename → taken ≤ {} at the median: {met} ({})",
        ms(latency.goal_taken_ms),
        ms(latency.taken.median_ms)
    );
}
