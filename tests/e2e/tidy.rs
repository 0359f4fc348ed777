//! Conventions checked as tests: every Rust file says what it is for, no test is skipped, the
//! crate graph points one way, and `protocol` stays free of I/O.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn rust_files(folder: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, files);
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for crate_dir in ["protocol", "daemon", "client", "tests"] {
        rust_files(&root.join(crate_dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    for file in all_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a `//!` header",
            file.display()
        );
    }
}

#[test]
fn no_test_is_ignored() {
    let marker = ["#[", "ignore"].concat();
    for file in all_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&marker), "{} skips a test", file.display());
    }
}

fn manifest(crate_dir: &str) -> String {
    std::fs::read_to_string(workspace_root().join(crate_dir).join("Cargo.toml")).unwrap()
}

#[test]
fn dependencies_point_one_way() {
    for crate_dir in ["protocol", "client", "tests"] {
        assert!(
            !manifest(crate_dir).contains("kroma-daemon"),
            "{crate_dir} depends on the daemon"
        );
    }
    assert!(!manifest("protocol").contains("kroma-client"));
    assert!(!manifest("daemon").contains("kroma-client"));
}

#[test]
fn protocol_does_no_io() {
    let protocol = manifest("protocol");
    let dependencies = protocol
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let names: Vec<&str> = dependencies
        .lines()
        .filter_map(|line| line.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty())
        .collect();
    assert_eq!(names, ["schemars", "serde", "serde_json"]);
    let mut files = Vec::new();
    rust_files(&workspace_root().join("protocol/src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for io in [
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "std::io",
            "tokio",
        ] {
            assert!(!text.contains(io), "{} uses {io}", file.display());
        }
    }
}
