//! kromactl when the connection goes wrong: a kromad that refuses it as busy, a kromad killed
//! while a call waits, a server that hangs up without answering. Each gets a plain sentence and a
//! hint, never the client library's wrapping of it.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kroma_tests::{Daemon, bin, kromactl};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the client library's own messages look like; none may reach the user.
fn assert_not_garbled(err: &str) {
    for garble in [
        "background task",
        "restart required",
        "Unparseable",
        "Custom error",
    ] {
        assert!(!err.contains(garble), "`{garble}` in: {err}");
    }
}

#[test]
fn a_busy_kromad_is_reported_with_its_own_message_and_hint() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("kromad.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 1\n").unwrap();
    let daemon = Daemon::start_in(temp.path(), &["--config", config.to_str().unwrap()]);
    // Take the only slot: retry until this connection is the one being served (the readiness
    // probe's connection may still hold it for a moment).
    let deadline = Instant::now() + Duration::from_secs(5);
    let _held = loop {
        let mut raw = daemon.raw();
        if raw
            .call(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#)
            .contains("\"result\"")
        {
            break raw;
        }
        assert!(Instant::now() < deadline, "the only slot never freed");
        std::thread::sleep(Duration::from_millis(10));
    };

    let output = kromactl(&daemon.socket, &["daemon", "status"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: kromad already serves 1 connections"),
        "{err}"
    );
    assert!(
        err.contains("hint: close idle clients or raise limits.max_connections"),
        "{err}"
    );
    assert_not_garbled(&err);

    let output = kromactl(&daemon.socket, &["--json", "daemon", "status"]);
    let line: serde_json::Value = serde_json::from_str(stderr(&output).trim()).unwrap();
    assert_eq!(
        line["error"]["data"]["code"], "too_many_connections",
        "{line}"
    );
}

#[test]
fn a_kromad_killed_mid_call_is_reported_as_closed_before_answering() {
    // `provider check` makes kromad call the provider; this provider accepts the connection and
    // never answers, so the call is surely in flight when kromad is killed.
    let provider = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", provider.local_addr().unwrap());
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_env(temp.path(), &[], &[("KROMA_SECRET_STALL", "sk-stall")]);
    let added = kromactl(
        &daemon.socket,
        &[
            "provider",
            "add",
            "stall",
            "--kind",
            "openai-compatible",
            "--base-url",
            &base_url,
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));

    let check = Command::new(bin("kromactl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["provider", "check", "stall"])
        .env_remove("KROMA_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kromad reaching the provider proves the call is in flight.
    provider.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let _in_flight = loop {
        match provider.accept() {
            Ok((stream, _)) => break stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "kromad never called the provider"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => panic!("accepting kromad's call: {err}"),
        }
    };
    daemon.kill_hard();

    let output = check.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "error: kromad closed the connection before answering provider.check (it may have stopped or crashed)"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: check `kromactl daemon status` and the kromad log"),
        "{err}"
    );
    assert_not_garbled(&err);
}

#[test]
fn a_server_that_hangs_up_without_answering_is_reported_as_such() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("kromad.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut request = String::new();
        BufReader::new(&stream).read_line(&mut request).unwrap();
        request
    });

    let output = kromactl(&socket, &["project", "list"]);
    let request = server.join().unwrap();
    assert!(request.contains("\"project.list\""), "{request}");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: kromad closed the connection before answering project.list"),
        "{err}"
    );
    assert_not_garbled(&err);
}
