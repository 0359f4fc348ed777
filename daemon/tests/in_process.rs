//! The daemon in-process: `kroma_daemon::run` on a temporary socket, stopped through the shutdown
//! future its caller owns, exactly as `main.rs` wires it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use kroma_daemon::config::{Config, RawLimits};
use serde_json::json;

fn call(socket: &Path, request: &str) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .write_all(format!("{request}\n").as_bytes())
        .expect("write");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("read");
    serde_json::from_str(&line).expect("JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_every_method_of_the_contract_and_stops_when_told() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("kromad.sock");
    let config = Config::new(
        temp.path().join("data"),
        socket.clone(),
        &RawLimits::default(),
    )
    .unwrap();
    let listener = kroma_daemon::socket::bind(&socket).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kroma_daemon::run(config, listener, async {
        let _ = stop_rx.await;
    }));

    let socket_for_calls = socket.clone();
    let document = tokio::task::spawn_blocking(move || {
        call(
            &socket_for_calls,
            r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#,
        )
    })
    .await
    .unwrap();
    let served: Vec<String> = document["result"]["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|method| method["name"].as_str().unwrap().to_owned())
        .collect();
    let declared: Vec<String> = kroma_protocol::openrpc::method_infos()
        .iter()
        .map(|info| info.name.to_owned())
        .collect();
    assert_eq!(served, declared);
    // Every declared method is really registered: none answers "method not found".
    for name in &declared {
        let socket = socket.clone();
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{name}","params":{{"slug":"-"}}}}"#);
        let answer = tokio::task::spawn_blocking(move || call(&socket, &request))
            .await
            .unwrap();
        assert_ne!(answer["error"]["code"], -32601, "{name}: {answer}");
    }

    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    assert!(!socket.exists(), "run removes the socket when it returns");
}

#[tokio::test]
async fn binding_a_live_socket_is_refused_and_a_regular_file_is_never_replaced() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("kromad.sock");
    let _live = kroma_daemon::socket::bind(&socket).unwrap();
    let err = kroma_daemon::socket::bind(&socket).unwrap_err();
    assert!(err.to_string().contains("already serving"), "{err}");

    let file = temp.path().join("notes.txt");
    std::fs::write(&file, "precious").unwrap();
    let err = kroma_daemon::socket::bind(&file).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
}

/// Every hint is prose that names no program, and the step it asks for comes next to it as data
/// (`data.action`): a call with the params kromad knows, the human's part left in `needs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_their_next_step_as_an_action() {
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("kromad.sock");
    let mut config = Config::new(
        temp.path().join("data"),
        socket.clone(),
        &RawLimits::default(),
    )
    .unwrap();
    config.models_dir = temp.path().join("no-models");
    config.secrets.kind = kroma_daemon::secrets::StoreKind::File;
    config.secrets.file = temp.path().join("secrets.age");
    config.secrets.key_file = Some(temp.path().join("secrets.key"));
    let listener = kroma_daemon::socket::bind(&socket).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kroma_daemon::run(config, listener, async {
        let _ = stop_rx.await;
    }));

    let cases = [
        (
            r#""method":"secret.delete","params":{"name":"openai","confirm":true}"#,
            "secret_not_found",
            json!({"type": "call", "method": "secret.set", "params": {"name": "openai"}, "needs": ["value"]}),
        ),
        (
            r#""method":"project.delete","params":{"slug":"harbor","confirm":false,"purge_files":true}"#,
            "confirmation_required",
            json!({"type": "call", "method": "project.delete", "params": {"slug": "harbor", "purge_files": true}, "needs": ["confirm"]}),
        ),
        (
            r#""method":"style_guide.delete","params":{"project":"harbor","id":"Ink","confirm":false}"#,
            "confirmation_required",
            json!({"type": "call", "method": "style_guide.delete", "params": {"project": "harbor", "id": "Ink"}, "needs": ["confirm"]}),
        ),
        (
            r#""method":"postprocess.bg_remove","params":{"paths":["/nowhere/a.png"]}"#,
            "models_missing",
            json!({"type": "install_models", "quality": false}),
        ),
        (
            r#""method":"project.get","params":{"slug":"harbor"}"#,
            "project_not_found",
            json!({"type": "call", "method": "project.list"}),
        ),
        (
            r#""method":"project.list","params":[1]"#,
            "params_not_object",
            json!({"type": "call", "method": "rpc.discover"}),
        ),
        (
            r#""method":"project.erase""#,
            "method_not_found",
            json!({"type": "call", "method": "rpc.discover"}),
        ),
    ];
    for (request, code, action) in cases {
        let socket = socket.clone();
        let request = format!(r#"{{"jsonrpc":"2.0","id":1,{request}}}"#);
        let answer = tokio::task::spawn_blocking(move || call(&socket, &request))
            .await
            .unwrap();
        let data = &answer["error"]["data"];
        assert_eq!(
            (&data["code"], &data["action"]),
            (&json!(code), &action),
            "{answer}"
        );
        let hint = data["hint"].as_str().unwrap_or_default();
        assert!(!hint.is_empty() && !hint.contains("kromactl"), "{answer}");
    }

    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
}

/// kromad signs S3 requests with its own clock. One an hour off is refused by a real S3 server
/// checking SigV4 at first; the S3 client then signs with the offset the store's `Date` showed,
/// so the check and a sync still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_an_hour_off_is_corrected_from_the_stores_answers() {
    let temp = tempfile::tempdir().unwrap();
    let store_root = temp.path().join("s3");
    std::fs::create_dir_all(store_root.join("comics")).unwrap();
    let server = kroma_s3_server::S3Server::start(&store_root, "skew-access", "skew-secret")
        .await
        .unwrap();
    let socket = temp.path().join("kromad.sock");
    let mut config = Config::new(
        temp.path().join("data"),
        socket.clone(),
        &RawLimits::default(),
    )
    .unwrap();
    config.secrets.env = kroma_daemon::secrets::env_overrides(
        [
            ("KROMA_SECRET_S3_ACCESS_KEY_ID", "skew-access"),
            ("KROMA_SECRET_S3_SECRET_ACCESS_KEY", "skew-secret"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned())),
    );
    let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let listener = kroma_daemon::socket::bind(&socket).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kroma_daemon::run_with_clock(
        config,
        listener,
        async {
            let _ = stop_rx.await;
        },
        kroma_daemon::clock::Clock::fixed(an_hour_ago),
    ));
    let rpc = |request: serde_json::Value| {
        let socket = socket.clone();
        tokio::task::spawn_blocking(move || call(&socket, &request.to_string()))
    };
    let created = rpc(
        json!({"jsonrpc": "2.0", "id": 1, "method": "project.create", "params": {
            "name": "Noir",
            "s3": {"bucket": "comics", "endpoint": server.endpoint()},
        }}),
    )
    .await
    .unwrap();
    assert!(created["result"]["id"].is_string(), "{created}");
    let checked = rpc(json!({"jsonrpc": "2.0", "id": 2, "method": "storage.check",
        "params": {"project": "noir"}}))
    .await
    .unwrap();
    assert_eq!(
        checked["result"]["destination"], "s3://comics/noir/",
        "{checked}"
    );
    let root = created["result"]["root"].as_str().unwrap().to_owned();
    std::fs::write(
        Path::new(&root).join("outputs/page.png"),
        b"not really a png",
    )
    .unwrap();
    let synced = rpc(json!({"jsonrpc": "2.0", "id": 3, "method": "storage.sync",
        "params": {"project": "noir"}}))
    .await
    .unwrap();
    assert_eq!(synced["result"]["uploaded"], 1, "{synced}");
    assert_eq!(
        std::fs::read(store_root.join("comics/noir/outputs/page.png")).unwrap(),
        b"not really a png"
    );

    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
}
