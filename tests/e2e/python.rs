//! A client in Python's standard library only (`socket` + `json`) talks to kromad: the framing is
//! language-neutral.

use kroma_tests::Daemon;

#[test]
fn a_python_stdlib_client_can_call_batch_and_subscribe() {
    let daemon = Daemon::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/client.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&daemon.socket)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python client ok"), "{stdout}");
}
