//! kromactl as people and scripts use it: exit codes, `--json`, tables, confirmation.

use std::process::Output;

use kroma_tests::{Daemon, bin, kromactl};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn no_daemon_exits_3_with_a_hint() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("absent.sock");
    let output = kromactl(&socket, &["daemon", "status"]);
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("kromad is not running at {}", socket.display())),
        "{err}"
    );
    assert!(err.contains("kromactl daemon start"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("absent.sock");
    assert_eq!(
        kromactl(&socket, &["project", "frobnicate"]).status.code(),
        Some(2)
    );
    assert_eq!(
        kromactl(&socket, &["rpc", "call", "daemon.version", "[1,2]"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        kromactl(&socket, &["rpc", "call", "daemon.version", "{nope"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn start_status_stop() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("kromad.sock");
    let data_dir = temp.path().join("data");
    let started = kromactl(
        &socket,
        &[
            "--json",
            "daemon",
            "start",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--kromad",
            bin("kromad").to_str().unwrap(),
        ],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let started: serde_json::Value = serde_json::from_str(&stdout(&started)).unwrap();
    let pid = started["pid"].as_u64().unwrap();
    assert_eq!(started["already_running"], false);

    let again = kromactl(
        &socket,
        &[
            "--json",
            "daemon",
            "start",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    );
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["already_running"], true);
    assert_eq!(again["pid"].as_u64(), Some(pid));

    let status = kromactl(&socket, &["daemon", "status"]);
    assert!(status.status.success());
    let text = stdout(&status);
    assert!(
        text.contains("pid:") && text.contains(&pid.to_string()),
        "{text}"
    );
    assert!(text.contains(data_dir.to_str().unwrap()), "{text}");

    let stopped = kromactl(&socket, &["daemon", "stop"]);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(stdout(&stopped).contains(&format!("kromad (pid {pid}) stopped")));
    assert!(!socket.exists());
    assert_eq!(
        kromactl(&socket, &["daemon", "status"]).status.code(),
        Some(3)
    );
}

#[test]
fn start_reports_why_kromad_could_not_start() {
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(temp.path(), &[]);
    // Same data dir, another socket: the lock refuses it, and kromactl relays the reason.
    let output = kromactl(
        &temp.path().join("second.sock"),
        &[
            "daemon",
            "start",
            "--data-dir",
            daemon.data_dir.to_str().unwrap(),
            "--kromad",
            bin("kromad").to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("already running"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn projects_from_the_command_line() {
    let daemon = Daemon::start();
    let socket = &daemon.socket;
    let created = kromactl(
        socket,
        &[
            "--json",
            "project",
            "create",
            "Night Harbor",
            "--description",
            "Port city",
            "--s3-bucket",
            "comics",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let project: serde_json::Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(project["slug"], "night-harbor");
    assert_eq!(project["storage"]["s3"]["bucket"], "comics");

    // --json prints exactly the RPC result.
    let via_cli: serde_json::Value = serde_json::from_str(&stdout(&kromactl(
        socket,
        &["--json", "project", "show", "night-harbor"],
    )))
    .unwrap();
    let via_rpc: serde_json::Value = serde_json::from_str(&stdout(&kromactl(
        socket,
        &["rpc", "call", "project.get", r#"{"slug":"night-harbor"}"#],
    )))
    .unwrap();
    assert_eq!(via_cli, via_rpc);
    assert_eq!(via_cli, project);

    let table = stdout(&kromactl(socket, &["project", "list"]));
    assert!(
        table.contains("SLUG") && table.contains("night-harbor") && table.contains("s3://comics"),
        "{table}"
    );

    let updated = kromactl(
        socket,
        &[
            "project",
            "update",
            "night-harbor",
            "--clear-s3",
            "--name",
            "Night Harbour",
        ],
    );
    assert!(updated.status.success(), "{}", stderr(&updated));
    let shown = stdout(&kromactl(socket, &["project", "show", "night-harbor"]));
    assert!(shown.contains("Night Harbour"), "{shown}");

    let taken = kromactl(socket, &["project", "create", "Night Harbor"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("already exists") && stderr(&taken).contains("hint:"),
        "{}",
        stderr(&taken)
    );
    let taken_json = kromactl(socket, &["--json", "project", "create", "Night Harbor"]);
    let error: serde_json::Value = serde_json::from_str(stderr(&taken_json).trim()).unwrap();
    assert_eq!(error["error"]["data"]["code"], "slug_taken");

    // Without a terminal and without --yes, rm refuses instead of guessing.
    let unconfirmed = kromactl(socket, &["project", "rm", "night-harbor"]);
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{}",
        stderr(&unconfirmed)
    );
    assert!(stdout(&kromactl(socket, &["project", "list"])).contains("night-harbor"));
    let removed = kromactl(
        socket,
        &[
            "--quiet",
            "project",
            "rm",
            "night-harbor",
            "--yes",
            "--purge-files",
        ],
    );
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert_eq!(stdout(&removed), "");
    assert!(stdout(&kromactl(socket, &["project", "list"])).contains("no projects yet"));

    let events = stdout(&kromactl(socket, &["events", "--since", "1"]));
    let kinds: Vec<&str> = events
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        kinds,
        ["project.created", "project.updated", "project.deleted"],
        "{events}"
    );
    let events_json: serde_json::Value =
        serde_json::from_str(&stdout(&kromactl(socket, &["--json", "events"]))).unwrap();
    assert_eq!(events_json["events"].as_array().unwrap().len(), 4);
    assert_eq!(events_json["last_id"], 4);

    let audit = stdout(&kromactl(socket, &["audit", "list"]));
    assert!(
        audit.contains("kromactl") && audit.contains("project.delete"),
        "{audit}"
    );
}

#[test]
fn rpc_schema_is_the_openrpc_document() {
    let daemon = Daemon::start();
    let schema: serde_json::Value =
        serde_json::from_str(&stdout(&kromactl(&daemon.socket, &["rpc", "schema"]))).unwrap();
    assert_eq!(schema["openrpc"], "1.3.2");
    let names: Vec<&str> = schema["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in [
        "daemon.status",
        "project.create",
        "events.subscribe",
        "audit.list",
        "rpc.discover",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn events_follow_prints_new_events_as_json_lines() {
    use std::io::BufRead;
    let daemon = Daemon::start();
    let mut follower = std::process::Command::new(bin("kromactl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "events", "--follow", "--since", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["kind"], "daemon.started");
    assert!(
        kromactl(&daemon.socket, &["project", "create", "Followed"])
            .status
            .success()
    );
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["kind"], "project.created");
    assert_eq!(second["project"], "followed");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn completions_are_generated() {
    let temp = tempfile::tempdir().unwrap();
    let output = kromactl(&temp.path().join("x.sock"), &["completions", "bash"]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("kromactl"));
}

#[test]
fn the_rpc_bench_runs_and_reports_ratios() {
    // A smoke run: it proves the bench works; its numbers are not asserted (timings are noisy).
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
            "2",
            "--kromad",
            bin("kromad").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    for key in [
        "ratio_p50",
        "ratio_p99",
        "ratio_throughput",
        "cold_start_ms",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|value| value > 0.0),
            "{key}: {report}"
        );
    }
    assert!(
        report["kromad"]["calls_per_sec_n_clients"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn a_follower_that_falls_far_behind_misses_nothing() {
    use std::io::BufRead;
    let daemon = Daemon::start();
    // stdout is read only at the end, so kromactl stalls on a full pipe while events pour in and
    // its subscription overflows the client's buffer; it must resume from the last shown id.
    let mut follower = std::process::Command::new(bin("kromactl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "events", "--follow", "--since", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut raw = daemon.raw();
    let created = raw.call_json(
        r#"{"jsonrpc":"2.0","id":0,"method":"project.create","params":{"name":"Busy"}}"#,
    );
    assert!(created["result"].is_object(), "{created}");
    let updates = 6_000;
    for chunk in 0..updates / 500 {
        let batch: Vec<serde_json::Value> = (0..500)
            .map(|i| {
                serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "project.update",
                    "params": {"slug": "busy", "description": format!("take {}", chunk * 500 + i)}})
            })
            .collect();
        let answer = raw.call_json(&serde_json::Value::Array(batch).to_string());
        assert_eq!(answer.as_array().unwrap().len(), 500);
    }
    let total = 2 + updates as u64; // daemon.started, project.created, one event per update
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    for expected in 1..=total {
        let event: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(event["id"], expected);
    }
    let _ = follower.kill();
    let _ = follower.wait();
}
