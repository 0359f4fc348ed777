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

/// What a command wrote on a terminal, and its exit status.
#[derive(Debug)]
pub struct Terminal {
    pub output: String,
    pub status: i64,
}

/// Runs `kromactl ARGS` on a real terminal (`tests/python/on_a_terminal.py`, a pseudo-terminal
/// from Python's standard library) and types `answer` once it asks `[y/N]`.
pub async fn on_a_terminal(args: &[&str], answer: &str) -> Terminal {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/on_a_terminal.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--answer", answer, "--after", "[y/N]", "--"])
        .arg(kroma_tests::bin("kromactl"))
        .args(args)
        .env_remove("KROMA_SOCKET")
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(seen["answered"], true, "never asked: {seen:#}");
    Terminal {
        output: seen["output"].as_str().unwrap_or_default().to_owned(),
        status: seen["status"].as_i64().expect("a status"),
    }
}
