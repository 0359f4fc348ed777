//! Only the user who started kromad may talk to it. Needs root to switch users; skipped with a
//! printed reason otherwise.

use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use kroma_tests::{RawConnection, bin};

const NOBODY: u32 = 65534;

#[test]
fn a_connection_from_another_user_is_refused() {
    let own_uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    if own_uid != 0 {
        println!("SKIPPED: switching users needs root; this test runs as uid {own_uid}");
        return;
    }
    // kromad runs as `nobody` from a copy it can execute, in a folder it owns; this test (root,
    // another uid) then connects to it.
    let temp = tempfile::Builder::new()
        .prefix("kroma-uid")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let kromad = temp.path().join("kromad");
    std::fs::copy(bin("kromad"), &kromad).unwrap();
    std::fs::set_permissions(&kromad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = temp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let socket = home.join("kromad.sock");
    let mut child = std::process::Command::new(&kromad)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(home.join("data"))
        .env("HOME", &home)
        .env("RUST_LOG", "warn")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut raw) = RawConnection::connect(&socket) {
            break raw.read_line();
        }
        assert!(Instant::now() < deadline, "kromad as nobody never listened");
        assert!(
            child.try_wait().unwrap().is_none(),
            "kromad as nobody exited early"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("a refusal line");
    assert_eq!(
        answer["error"]["data"]["code"], "permission_denied",
        "{answer}"
    );
    assert_eq!(answer["error"]["data"]["kind"], "policy");
}
