//! The local runtime and models as `packaging/install.sh` installs them (README step 1 runs
//! before the tests): `local_model.list`, `kromactl local-models list`, `doctor`, and the installer's own
//! `verify`, on the real installed files and on a damaged copy of them.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use kroma_tests::Daemon;
use protocol::local_model::FileState;

fn installer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/models/kroma_models.py")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test]
async fn the_installed_runtime_and_default_models_are_listed_and_intact() {
    let dir = kroma_tests::models_dir();
    assert!(
        dir.join("manifest.json").is_file(),
        "no models in {}: run `bash packaging/install.sh` first (README step 1)",
        dir.display()
    );
    let temp = tempfile::tempdir().expect("temp");
    let dir_arg = dir.display().to_string();
    let daemon = Daemon::start_in(temp.path(), &["--models-dir", &dir_arg]);
    let client = daemon.client().await;
    let local = client
        .call::<protocol::local_model::List>(&protocol::local_model::ListParams { verify: true })
        .await
        .expect("local_model.list");
    assert!(local.ok, "{local:#?}");
    for name in ["onnxruntime", "u2netp", "realesr-general-x4v3"] {
        let model = local
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} listed: {local:#?}"));
        assert_eq!(
            (model.state, model.verified),
            (FileState::Ok, true),
            "{name}"
        );
        assert!(
            !model.licence.is_empty() && !model.licence_files.is_empty(),
            "{name}"
        );
        assert!(
            model
                .licence_files
                .iter()
                .all(|file| Path::new(file).is_file())
        );
        assert_eq!(model.sha256.len(), 64);
    }
    let out = kroma_tests::kromactl(&daemon.socket, &["local-models", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("u2netp") && shown.contains("Apache-2.0"),
        "{shown}"
    );

    let verify = std::process::Command::new("python3")
        .arg(installer())
        .args(["verify", "--dest"])
        .arg(&dir)
        .output()
        .expect("python3");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn a_damaged_or_missing_model_is_named_with_the_fix() {
    let temp = tempfile::tempdir().expect("temp");
    let copy = temp.path().join("models");
    copy_dir(&kroma_tests::models_dir(), &copy);
    let copy_arg = copy.display().to_string();
    let daemon = Daemon::start_in(temp.path(), &["--models-dir", &copy_arg]);
    let client = daemon.client().await;
    let list = |verify| {
        let client = &client;
        async move {
            client
                .call::<protocol::local_model::List>(&protocol::local_model::ListParams { verify })
                .await
                .expect("local_model.list")
        }
    };

    let u2netp = copy.join("models/u2netp.onnx");
    let size = std::fs::metadata(&u2netp).expect("u2netp").len() as usize;
    std::fs::write(&u2netp, vec![0u8; size]).expect("damage");
    let unverified = list(false).await;
    assert!(unverified.ok, "same size: only the hash can tell");
    let verified = list(true).await;
    assert!(!verified.ok);
    let model = verified
        .models
        .iter()
        .find(|m| m.name == "u2netp")
        .expect("listed");
    assert_eq!(model.state, FileState::WrongHash);
    assert!(verified.problem.as_deref().unwrap_or("").contains("u2netp"));
    assert!(verified.hint.is_some());
    assert_eq!(
        verified.action,
        Some(protocol::Action::InstallModels { quality: false })
    );
    let verify = std::process::Command::new("python3")
        .arg(installer())
        .args(["verify", "--dest"])
        .arg(&copy)
        .output()
        .expect("python3");
    assert_eq!(verify.status.code(), Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.contains("u2netp"), "{said}");

    std::fs::remove_file(&u2netp).expect("remove");
    let missing = list(false).await;
    assert!(!missing.ok);
    assert_eq!(
        missing
            .models
            .iter()
            .find(|m| m.name == "u2netp")
            .map(|m| m.state),
        Some(FileState::Missing)
    );
    // `models` is the old spelling of `local-models`, kept as a hidden alias.
    let out = kroma_tests::kromactl(&daemon.socket, &["models", "list"]);
    assert_eq!(out.status.code(), Some(1));
    // kromactl shows kromad's action as the command that does it.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("\n  try: kromactl local-models install\n"),
        "{said}"
    );
    let out = kroma_tests::kromactl(&daemon.socket, &["doctor"]);
    assert_eq!(out.status.code(), Some(1), "doctor fails on missing models");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("local models"), "{said}");
    assert!(
        said.contains("try: kromactl local-models install"),
        "{said}"
    );

    std::fs::remove_file(copy.join("manifest.json")).expect("remove manifest");
    let none = list(false).await;
    assert!(!none.installed && !none.ok);
}
