//! `kromactl doctor` against real setups: all well, a dead keyring and a keyless provider, and no
//! daemon at all.

use kroma_tests::Daemon;
use kroma_tests::fake_provider::{FakeConfig, FakeProvider};

#[test]
fn doctor_passes_on_a_healthy_setup_and_names_every_failure_with_a_fix() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "doctor checks the keyring: run the suite with `bash packaging/test.sh`"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime
        .block_on(FakeProvider::start(FakeConfig {
            key: "sk-doctor".into(),
            ..FakeConfig::default()
        }))
        .expect("start the fake provider");
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_env(temp.path(), &[], &[("KROMA_SECRET_STUB", "sk-doctor")]);
    let socket = &daemon.socket;
    let added = kroma_tests::kromactl(
        socket,
        &[
            "provider",
            "add",
            "stub",
            "--kind",
            "openai-compatible",
            "--base-url",
            &fake.base_url(),
        ],
    );
    assert!(added.status.success());
    let healthy = kroma_tests::kromactl(socket, &["--json", "doctor"]);
    let report: serde_json::Value = serde_json::from_slice(&healthy.stdout).unwrap();
    assert_eq!(healthy.status.code(), Some(0), "{report:#}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "daemon",
            "socket",
            "database",
            "secret store",
            "disk",
            "local models",
            "provider stub"
        ]
    );
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    drop(daemon);

    // The keyring does not answer and the provider's key is missing: both fail, with fixes.
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_env(
        temp.path(),
        &[],
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/kroma-doctor-bus",
        )],
    );
    let socket = &daemon.socket;
    assert!(
        kroma_tests::kromactl(
            socket,
            &[
                "provider",
                "add",
                "stub",
                "--kind",
                "openai-compatible",
                "--base-url",
                &fake.base_url()
            ]
        )
        .status
        .success()
    );
    let sick = kroma_tests::kromactl(socket, &["doctor"]);
    assert_eq!(sick.status.code(), Some(1));
    let text = String::from_utf8_lossy(&sick.stdout);
    assert!(
        text.contains("FAIL secret store") && text.contains("fix: start a keyring"),
        "{text}"
    );
    assert!(
        text.contains("FAIL provider stub") && text.contains("kromactl secret set stub"),
        "{text}"
    );
    assert!(text.contains("ok   database"), "{text}");
    drop(daemon);

    let nothing = kroma_tests::kromactl(&temp.path().join("absent.sock"), &["doctor"]);
    assert_eq!(nothing.status.code(), Some(1));
    let text = String::from_utf8_lossy(&nothing.stdout);
    assert!(
        text.contains("FAIL daemon") && text.contains("kromactl daemon start"),
        "{text}"
    );
    drop(fake);
}
