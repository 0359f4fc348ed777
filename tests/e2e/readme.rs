//! The README's walkthrough (`examples/walkthrough.sh`) runs as written against the built binaries.

#[test]
fn the_walkthrough_runs() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/walkthrough.sh");
    kroma_tests::bin("kromad");
    let path = format!(
        "{}:{}",
        kroma_tests::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new("bash")
        .arg(&script)
        .env("PATH", path)
        .env_remove("KROMA_SOCKET")
        .env_remove("KROMA_DATA_DIR")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("created project night-harbor"), "{stdout}");
    assert!(stdout.contains("schema version"), "{stdout}");
    assert!(stdout.contains("run.finished"), "{stdout}");
    assert!(stdout.contains("stopped"), "{stdout}");
    assert!(
        stdout.contains("style_1_harbor-dawn"),
        "the plan lists the jobs: {stdout}"
    );
    assert!(stdout.contains("dry_run"), "{stdout}");
    assert!(stdout.contains("4 succeeded, 0 failed"), "{stdout}");
    assert!(stdout.contains("character_1_pier-rain"), "{stdout}");
}
