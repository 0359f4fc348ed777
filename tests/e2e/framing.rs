//! The wire: newline-delimited JSON-RPC 2.0 and every kind of bad input, sent as raw bytes.

use kroma_tests::Daemon;
use serde_json::{Value, json};

fn error_of(answer: &Value) -> (i64, String) {
    let error = &answer["error"];
    (
        error["code"].as_i64().expect("error code"),
        error["data"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[test]
fn bad_input_gets_the_right_error_and_the_connection_keeps_serving() {
    let daemon = Daemon::start();
    let mut raw = daemon.raw();
    let cases: &[(&[u8], i64, &str)] = &[
        (b"{not json\n", -32700, "parse_error"),
        (b"\xff\xfe{}\n", -32700, "parse_error"),
        (b"42\n", -32600, "invalid_request"),
        (
            br#"{"jsonrpc":"1.0","id":1,"method":"daemon.version"}"#,
            -32600,
            "invalid_request",
        ),
        (
            br#"{"id":1,"method":"daemon.version"}"#,
            -32600,
            "invalid_request",
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"x":1},"method":"daemon.version"}"#,
            -32600,
            "invalid_request",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            -32600,
            "invalid_request",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"no.such"}"#,
            -32601,
            "method_not_found",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get","params":{"slug":"a","colour":1}}"#,
            -32602,
            "invalid_params",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get","params":{}}"#,
            -32602,
            "invalid_params",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get"}"#,
            -32602,
            "invalid_params",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get","params":["a"]}"#,
            -32602,
            "params_not_object",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get","params":{"slug":"Bad Slug"}}"#,
            -32602,
            "invalid_slug",
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"project.get","params":{"slug":"missing"}}"#,
            -32001,
            "project_not_found",
        ),
        (b"[]\n", -32600, "invalid_request"),
    ];
    for (frame, code, data_code) in cases {
        let mut frame = frame.to_vec();
        if frame.last() != Some(&b'\n') {
            frame.push(b'\n');
        }
        raw.send(&frame);
        let line = raw.read_line();
        let answer: Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
        assert_eq!(answer["jsonrpc"], "2.0", "{line}");
        assert_eq!(
            error_of(&answer),
            (*code, data_code.to_string()),
            "frame {:?} -> {line}",
            String::from_utf8_lossy(&frame)
        );
        assert!(answer["error"]["data"]["message"].is_string(), "{line}");
        assert!(answer["error"]["data"]["kind"].is_string(), "{line}");
    }
    // After all of that, the same connection still answers.
    let answer = raw.call_json(r#"{"jsonrpc":"2.0","id":"after","method":"daemon.version"}"#);
    assert_eq!(answer["id"], "after");
    assert_eq!(answer["result"]["protocol_version"], 1);
}

#[test]
fn ids_come_back_unchanged_and_notifications_get_no_answer() {
    let daemon = Daemon::start();
    let mut raw = daemon.raw();
    for id in [json!(1), json!(-7), json!("abc"), json!(null), json!(1.5)] {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "daemon.version"});
        let answer = raw.call_json(&request.to_string());
        assert_eq!(answer["id"], id);
        assert!(answer["result"].is_object());
    }
    // A notification (no id) is executed but answered with nothing: the next line answers the
    // request sent after it.
    raw.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"daemon.version\"}\n");
    let answer = raw.call_json(r#"{"jsonrpc":"2.0","id":2,"method":"daemon.version"}"#);
    assert_eq!(answer["id"], 2);
    // Blank lines are ignored.
    raw.send(b"\n\r\n   \n");
    let answer = raw.call_json(r#"{"jsonrpc":"2.0","id":3,"method":"daemon.version"}"#);
    assert_eq!(answer["id"], 3);
}

#[test]
fn batches_answer_each_request_in_one_line() {
    let daemon = Daemon::start();
    let mut raw = daemon.raw();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "daemon.version"},
        {"jsonrpc": "2.0", "method": "daemon.version"},
        {"jsonrpc": "2.0", "id": 2, "method": "no.such"},
        5,
        {"jsonrpc": "2.0", "id": 3, "method": "project.create", "params": {"name": "Batch Made"}},
    ]);
    let answer = raw.call_json(&batch.to_string());
    let answers = answer.as_array().expect("a batch gets an array");
    assert_eq!(answers.len(), 4, "the notification gets no entry: {answer}");
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .expect("answer")
    };
    assert!(by_id(json!(1))["result"]["version"].is_string());
    assert_eq!(by_id(json!(2))["error"]["code"], -32601);
    assert_eq!(by_id(json!(3))["result"]["slug"], "batch-made");
    assert!(
        answers
            .iter()
            .any(|a| a["id"].is_null() && a["error"]["code"] == -32600)
    );

    // A batch of notifications only gets no answer at all.
    raw.send(b"[{\"jsonrpc\":\"2.0\",\"method\":\"daemon.version\"}]\n");
    let answer = raw.call_json(r#"{"jsonrpc":"2.0","id":9,"method":"daemon.version"}"#);
    assert_eq!(answer["id"], 9);
}

#[test]
fn an_oversized_frame_closes_only_that_connection() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("kromad.toml"),
        "[limits]\nmax_frame_bytes = 4096\n",
    )
    .unwrap();
    let config = temp.path().join("kromad.toml");
    let daemon = Daemon::start_in(temp.path(), &["--config", config.to_str().unwrap()]);
    let mut bystander = daemon.raw();
    let mut greedy = daemon.raw();
    let mut frame = vec![b' '; 10_000];
    frame.push(b'\n');
    greedy.send(&frame);
    let answer: Value = serde_json::from_str(&greedy.read_line()).unwrap();
    assert_eq!(answer["error"]["code"], -32600);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    assert_eq!(
        greedy.read_line(),
        "",
        "the connection is closed after an oversized frame"
    );
    let answer = bystander.call_json(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#);
    assert!(answer["result"].is_object());
    // A frame right at the limit is fine.
    let mut fresh = daemon.raw();
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#;
    let padded = format!("{request}{}", " ".repeat(4096 - request.len()));
    let answer = fresh.call_json(&padded);
    assert!(answer["result"].is_object(), "{answer}");
}

#[test]
fn a_client_that_disconnects_mid_request_does_not_disturb_the_daemon() {
    let daemon = Daemon::start();
    for _ in 0..20 {
        let mut quitter = daemon.raw();
        quitter.send(
            br#"{"jsonrpc":"2.0","id":1,"method":"project.create","params":{"name":"Half Way"}}"#,
        );
        drop(quitter);
        let mut partial = daemon.raw();
        partial.send(br#"{"jsonrpc":"2.0","id":1,"meth"#);
        partial.shutdown_write();
        let _ = partial.read_line();
    }
    let mut raw = daemon.raw();
    let answer = raw.call_json(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#);
    assert!(answer["result"]["pid"].is_number(), "{answer}");
}

#[test]
fn too_many_connections_are_refused_with_an_error() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("kromad.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 2\n").unwrap();
    let daemon = Daemon::start_in(temp.path(), &["--config", config.to_str().unwrap()]);
    let mut first = daemon.raw();
    // Wait until the readiness probe's connection is gone and only `first` is open.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while first.call_json(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#)["result"]["counts"]
        ["connections"]
        != 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "connections never settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut second = daemon.raw();
    assert!(
        second.call_json(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#)["result"]
            .is_object()
    );
    let mut third = daemon.raw();
    let refusal: Value = serde_json::from_str(&third.read_line()).unwrap();
    assert_eq!(refusal["error"]["data"]["code"], "too_many_connections");
    drop(first);
    // The freed slot is usable again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut again = daemon.raw();
        let answer = again.call_json(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#);
        if answer["result"].is_object() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slot never freed: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start();
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
