//! Starting, stopping and crashing: one daemon per data dir, stale sockets, graceful shutdown,
//! and state that survives restarts.

use std::process::Stdio;
use std::time::Duration;

use kroma_protocol as protocol;
use kroma_tests::{Daemon, kromad_command, wait_with_timeout};

#[tokio::test]
async fn a_second_daemon_on_the_same_data_dir_exits_naming_the_first() {
    let temp = tempfile::tempdir().unwrap();
    let first = Daemon::start_in(temp.path(), &[]);
    let output = kromad_command(&temp.path().join("other.sock"), &first.data_dir)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // Another data dir on the same live socket is refused too, and the first keeps serving.
    let output = kromad_command(&first.socket, &temp.path().join("other-data"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already serving"));
    first
        .client()
        .await
        .call::<protocol::daemon::Version>(&protocol::NoParams {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stale_socket_after_kill_9_is_replaced_and_state_survives() {
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Survivor".into(),
            slug: None,
            description: None,
            root: None,
            s3: None,
        })
        .await
        .unwrap();
    drop(client);
    let socket = daemon.socket.clone();
    daemon.kill_hard();
    assert!(socket.exists(), "kill -9 leaves the socket file behind");

    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "survivor".into(),
        })
        .await
        .unwrap();
    assert_eq!(project.name, "Survivor");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_calls_and_removes_the_socket() {
    let daemon = Daemon::start();
    let socket = daemon.socket.clone();
    let data_dir = daemon.data_dir.clone();
    let client = daemon.client().await;
    let mut events = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket is removed on shutdown");
    // A follower sees the daemon stop before its stream ends.
    let mut kinds = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        kinds.push(event.unwrap().kind);
    }
    assert_eq!(kinds, [protocol::events::kind::DAEMON_STOPPING]);
    // The WAL was checkpointed: the database file alone holds everything.
    let wal = data_dir.join("kroma.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[tokio::test]
async fn daemon_shutdown_over_rpc_answers_then_exits() {
    let mut daemon = Daemon::start();
    let follower = daemon.client().await;
    let mut events = follower
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await
        .unwrap();
    let client = daemon.client().await;
    let ack = client
        .call::<protocol::daemon::Shutdown>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(ack.pid, daemon.pid());
    let status = wait_with_timeout(&mut daemon.child, Duration::from_secs(20));
    assert!(status.success());
    assert!(!daemon.socket.exists());
    // Followers see the stop also when it was asked for over RPC.
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kind, protocol::events::kind::DAEMON_STOPPING);
}

#[tokio::test]
async fn status_reports_the_daemon_and_its_counts() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.pid, daemon.pid());
    assert_eq!(status.socket, daemon.socket.display().to_string());
    assert_eq!(status.data_dir, daemon.data_dir.display().to_string());
    assert_eq!(status.schema_version, 15);
    assert_eq!(status.counts.projects, 0);
    assert!(status.counts.events >= 1, "daemon.started is recorded");
    assert!(status.counts.connections >= 1);
}

#[test]
fn a_database_from_a_newer_kromad_stops_the_start_and_is_left_alone() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let db = data_dir.join("kroma.db");
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=42'); c.execute('CREATE TABLE t(x)'); c.commit()")
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let before = std::fs::read(&db).unwrap();
    let output = kromad_command(&temp.path().join("kromad.sock"), &data_dir)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("newer kromad"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(!temp.path().join("kromad.sock").exists());
}

#[test]
fn bad_config_is_refused_with_the_key_named() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("kromad.toml");
    std::fs::write(&config, "[limits]\nmax_frame = 1\n").unwrap();
    let output = kromad_command(&temp.path().join("s.sock"), &temp.path().join("data"))
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `max_frame`"));
}

#[test]
fn a_client_that_never_reads_cannot_keep_the_daemon_from_stopping() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("kromad.toml");
    std::fs::write(&config, "[limits]\nrequest_timeout_secs = 1\n").unwrap();
    let daemon = Daemon::start_in(temp.path(), &["--config", config.to_str().unwrap()]);
    // Far more answers than the socket buffers hold, and never a read. The writing thread blocks
    // once kromad stops reading; it ends when kromad closes the connection.
    let socket = daemon.socket.clone();
    let greedy = std::thread::spawn(move || {
        use std::io::Write;
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        let request = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.discover\"}\n";
        for _ in 0..2_000 {
            if stream.write_all(request).is_err() {
                break;
            }
        }
        stream
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped after {:?}",
        started.elapsed()
    );
    drop(greedy.join());
}
