//! Conventions checked as tests: every Rust file says what it is for, no test is skipped, the
//! crate graph points one way, `protocol` stays free of I/O, the client library depends only on
//! what it needs, the fake provider stays out of production packages, the daemon's pure modules
//! touch no store, wire or runtime, source files stay small, and kromad's hints never tell an
//! agent to type a kromactl command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The folders whose Rust files the conventions cover; every workspace member lies in one.
const CHECKED_FOLDERS: [&str; 5] = ["protocol", "daemon", "client", "agent", "tests"];

/// The dependency tables whose packages end up in a built library or binary.
const SHIPPED: &[&str] = &["dependencies", "build-dependencies"];
/// Every dependency table, tests and benches included.
const ALL: &[&str] = &["dependencies", "build-dependencies", "dev-dependencies"];

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
    for folder in CHECKED_FOLDERS {
        rust_files(&root.join(folder), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    files
}

/// The workspace's members, as the top-level manifest lists them.
fn workspace_members() -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_workspace_member_is_checked() {
    let files = all_rust_files();
    let members = workspace_members();
    assert!(members.iter().any(|member| member == "client/kromactl"));
    for member in members {
        assert!(
            CHECKED_FOLDERS
                .iter()
                .any(|folder| Path::new(&member).starts_with(folder)),
            "{member} is outside the folders tidy checks"
        );
        let sources = workspace_root().join(&member).join("src");
        assert!(
            files.iter().any(|file| file.starts_with(&sources)),
            "no Rust file of {member} is checked"
        );
    }
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

/// The packages a manifest's dependency tables of `kinds` name (a renamed one by its package),
/// the target-specific tables included.
fn dependencies(crate_dir: &str, kinds: &[&str]) -> BTreeSet<String> {
    let manifest: toml::Table = manifest(crate_dir).parse().unwrap();
    let targets = manifest.get("target").and_then(toml::Value::as_table);
    let mut tables = Vec::new();
    for kind in kinds {
        tables.extend(manifest.get(*kind).and_then(toml::Value::as_table));
        for target in targets.into_iter().flat_map(toml::Table::values) {
            tables.extend(target.get(*kind).and_then(toml::Value::as_table));
        }
    }
    tables
        .into_iter()
        .flat_map(toml::Table::iter)
        .map(|(name, spec)| {
            spec.get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    for crate_dir in ["protocol", "client", "client/kromactl", "agent", "tests"] {
        assert!(
            !manifest(crate_dir).contains("kroma-daemon"),
            "{crate_dir} depends on the daemon"
        );
    }
    assert!(!manifest("protocol").contains("kroma-client"));
    assert!(!manifest("daemon").contains("kroma-client"));
    // The command line is a leaf like the daemon: nothing builds on it, the library least of all.
    for crate_dir in [
        "protocol",
        "daemon",
        "client",
        "agent",
        "tests",
        "tests/fake-provider",
        "tests/s3-server",
    ] {
        assert!(
            !dependencies(crate_dir, ALL).contains("kromactl"),
            "{crate_dir} depends on kromactl"
        );
    }
}

#[test]
fn the_client_library_depends_only_on_what_it_needs() {
    // What an agent building on kroma-client gets: the wire contract, the async runtime and the
    // local socket, JSON and jsonrpsee's client for the transport, typed errors, the runtime
    // folder for socket discovery, and (on Unix) the uid checks of the socket. Command-line
    // crates (clap, indicatif, comfy-table, rpassword), HTTP, images and the fake provider
    // belong to kromactl.
    let allowed = [
        "directories",
        "interprocess",
        "jsonrpsee",
        "kroma-protocol",
        "nix",
        "serde",
        "serde_json",
        "thiserror",
        "tokio",
    ];
    assert_eq!(
        dependencies("client", SHIPPED),
        allowed
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn no_production_package_depends_on_the_test_servers() {
    // Only kromactl (`dev fake-provider`, `dev s3-server`, `bench runs`, `bench sync`) and the
    // tests may serve them.
    for crate_dir in ["protocol", "daemon", "client", "agent"] {
        for server in ["kroma-fake-provider", "kroma-s3-server"] {
            assert!(
                !dependencies(crate_dir, SHIPPED).contains(server),
                "{crate_dir} depends on {server}"
            );
        }
    }
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

/// The most lines a source file may have: past this it does several things. Test modules kept
/// in files of their own (`tests.rs`) are not counted.
const MAX_LINES: usize = 600;

/// Files still over [`MAX_LINES`], each with the size it may not grow past. Split one and take it
/// off the list (the test says when an entry is no longer needed).
const OVER_BUDGET: &[(&str, usize)] = &[
    ("client/kromactl/src/actions/spellings.rs", 627),
    ("client/kromactl/src/knowledge.rs", 834),
    ("client/kromactl/src/runs.rs", 1522),
];

#[test]
fn source_files_stay_small() {
    let root = workspace_root();
    let mut files = Vec::new();
    for folder in [
        "daemon/src",
        "protocol/src",
        "client/src",
        "client/kromactl/src",
        "agent/src",
    ] {
        rust_files(&root.join(folder), &mut files);
    }
    let mut problems = Vec::new();
    for file in files {
        let name = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if file.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let allowed = OVER_BUDGET
            .iter()
            .find(|(listed, _)| *listed == name)
            .map(|(_, lines)| *lines);
        match allowed {
            None if lines > MAX_LINES => {
                problems.push(format!("{name} has {lines} lines (budget {MAX_LINES})"))
            }
            Some(allowed) if lines > allowed => problems.push(format!(
                "{name} grew to {lines} lines; it is over budget and may not grow past {allowed}"
            )),
            Some(_) if lines <= MAX_LINES => problems.push(format!(
                "{name} is within budget now: take it off OVER_BUDGET"
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Daemon modules that decide without doing: no database, no wire, no runtime, no `Daemon`. They
/// may return a `Problem` (`error.rs`), which is plain data.
const PURE: &[&str] = &[
    "daemon/src/error.rs",
    "daemon/src/files/images.rs",
    "daemon/src/files/png.rs",
    "daemon/src/knowledge/mod.rs",
    "daemon/src/postprocess/color.rs",
    "daemon/src/postprocess/resize.rs",
    "daemon/src/projects/layout.rs",
    "daemon/src/projects/rules.rs",
    "daemon/src/providers/image_models.rs",
    "daemon/src/review/drift.rs",
    "daemon/src/review/qa.rs",
    "daemon/src/review/sheet.rs",
    "daemon/src/runs/decide.rs",
    "daemon/src/runs/planner.rs",
    "daemon/src/runs/record.rs",
    "daemon/src/runs/schedule.rs",
    "daemon/src/runs/settings.rs",
    "daemon/src/runs/stored.rs",
    "daemon/src/storage/plan.rs",
];

#[test]
fn pure_modules_touch_no_store_wire_or_runtime() {
    for file in PURE {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        for import in [
            "crate::store",
            "rusqlite",
            "crate::server",
            "jsonrpsee",
            "tokio",
            "crate::Daemon",
        ] {
            assert!(!text.contains(import), "{file} uses {import}");
        }
    }
}

/// kromad talks to people at a terminal and to agents over MCP alike: a hint says what to do and
/// its action names the method; kromactl turns that into a command. Comments may name kromactl.
#[test]
fn daemon_hints_never_name_kromactl() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("daemon/src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains('"') && code.contains("kromactl") {
                found.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// Background work gets the narrow `Services` handle, never the whole `Daemon` (its connections,
/// configuration and stop).
#[test]
fn background_work_gets_a_narrow_handle() {
    for file in [
        "daemon/src/runs/runner.rs",
        "daemon/src/runs/context.rs",
        "daemon/src/runs/outcomes.rs",
        "daemon/src/runs/recover.rs",
        "daemon/src/runs/chain.rs",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        assert!(!text.contains("Daemon"), "{file} reaches the whole Daemon");
    }
}
