//! `kromactl bench rpc` measures a blocking client too: one call at a time on a synchronous
//! socket, against kromad and against the echo floor, with the ratio. Timings are not asserted.

use kroma_tests::{bin, kromactl};

#[test]
fn the_rpc_bench_measures_a_blocking_client() {
    let temp = tempfile::tempdir().unwrap();
    let output = kromactl(
        &temp.path().join("unused.sock"),
        &[
            "--json",
            "bench",
            "rpc",
            "--calls",
            "50",
            "--clients",
            "1",
            "--kromad",
            bin("kromad").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let positive = |value: &serde_json::Value| value.as_f64().is_some_and(|value| value > 0.0);
    for key in ["blocking_ratio_p50", "blocking_ratio_p99", "ratio_p50"] {
        assert!(positive(&report[key]), "{key}: {report}");
    }
    for server in ["kromad", "floor"] {
        for figure in ["p50_us", "p99_us"] {
            assert!(
                positive(&report["blocking"][server][figure]),
                "blocking.{server}.{figure}: {report}"
            );
        }
    }
}
