//! Tidy: kroma-mcp never calls a person's method. kromad refuses them on an agent's connection
//! anyway (`not_for_agents`); this keeps the agent's source from even naming them, so a change
//! that tries is a failing test before it is a refused call.

use std::path::{Path, PathBuf};

/// What a person's methods are called in the protocol crate and on the wire, spelled in pieces
/// so this file does not name them itself.
fn forbidden() -> Vec<String> {
    let path = |name: &str| format!("instruction::{name}");
    vec![
        path("Confirm"),
        path("Code"),
        path("ConfirmParams"),
        ["Allowance", "Set"].concat(),
        ["instruction", ".confirm\""].concat(),
        ["instruction", ".code\""].concat(),
        ["agent", ".allowance_set"].concat(),
    ]
}

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("read the source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Where `needle` occurs in `text` as a whole name (not the start of a longer one, such as
/// `ConfirmCode` for `Confirm`).
fn mentions(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|next| next.is_alphanumeric() || next == '_')
    })
}

#[test]
fn tidy_the_agent_never_names_a_persons_method() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "found the sources: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        // `use …::instruction::{Confirm, …}` would hide the path: refuse the bare names too.
        let bare = [
            "{Confirm",
            " Confirm,",
            " Confirm}",
            "{Code",
            " Code,",
            " Code}",
        ];
        for needle in forbidden().iter().map(String::as_str).chain(bare) {
            if mentions(&text, needle) {
                found.push(format!("{} names {needle}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn tidy_the_check_finds_what_it_looks_for() {
    let confirm = ["instruction::", "Confirm"].concat();
    assert!(mentions(&format!("call::<{confirm}>(x)"), &confirm));
    assert!(!mentions(&format!("call::<{confirm}Code>(x)"), &confirm));
}
