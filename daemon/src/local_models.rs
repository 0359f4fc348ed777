//! The local runtime and models, as `packaging/models/kroma_models.py` installed them: its
//! `manifest.json` read and every file checked (presence and size; the hash on request). Nothing
//! here loads a model.

use std::path::Path;

use kroma_protocol as protocol;
use protocol::models::{FileState, LocalModel, LocalModels};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The command that installs or repairs the default set.
pub const INSTALL_HINT: &str = "run `kromactl models install` (or `bash packaging/install.sh`)";

#[derive(Deserialize)]
struct Manifest {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    name: String,
    kind: String,
    #[serde(default)]
    quality: bool,
    file: String,
    sha256: String,
    size: u64,
    licence: String,
    #[serde(default)]
    licence_files: Vec<String>,
    source: Source,
}

#[derive(Deserialize)]
struct Source {
    package: String,
    version: String,
}

/// Reads the manifest in `dir` and checks every file. Blocking.
pub fn list(dir: &Path, verify: bool) -> LocalModels {
    let manifest_path = dir.join("manifest.json");
    let manifest: Manifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(manifest) => manifest,
            Err(err) => {
                return not_ok(
                    dir,
                    format!("{} is not a manifest: {err}", manifest_path.display()),
                );
            }
        },
        Err(err) => {
            return not_ok(
                dir,
                format!("no models installed in {} ({err})", dir.display()),
            );
        }
    };
    let models: Vec<LocalModel> = manifest
        .items
        .into_iter()
        .map(|item| check(dir, item, verify))
        .collect();
    let broken: Vec<&LocalModel> = models
        .iter()
        .filter(|model| !model.quality && model.state != FileState::Ok)
        .collect();
    let has = |kind: &str| models.iter().any(|m| m.kind == kind && !m.quality);
    let problem = if let Some(first) = broken.first() {
        Some(format!(
            "{} is {:?} at {}",
            first.name, first.state, first.path
        ))
    } else if !(has("runtime") && has("bg_removal") && has("upscale")) {
        Some("the manifest lacks the runtime or a default model".to_owned())
    } else {
        None
    };
    LocalModels {
        dir: dir.display().to_string(),
        installed: true,
        ok: problem.is_none(),
        hint: problem.as_ref().map(|_| INSTALL_HINT.to_owned()),
        problem,
        models,
    }
}

fn not_ok(dir: &Path, problem: String) -> LocalModels {
    LocalModels {
        dir: dir.display().to_string(),
        installed: false,
        models: Vec::new(),
        ok: false,
        problem: Some(problem),
        hint: Some(INSTALL_HINT.to_owned()),
    }
}

fn check(dir: &Path, item: Item, verify: bool) -> LocalModel {
    let path = dir.join(&item.file);
    let state = match std::fs::metadata(&path) {
        Err(_) => FileState::Missing,
        Ok(meta) if meta.len() != item.size => FileState::WrongSize,
        Ok(_) if verify => match std::fs::read(&path) {
            Ok(bytes) if format!("{:x}", Sha256::digest(&bytes)) == item.sha256 => FileState::Ok,
            Ok(_) => FileState::WrongHash,
            Err(_) => FileState::Missing,
        },
        Ok(_) => FileState::Ok,
    };
    LocalModel {
        name: item.name,
        kind: item.kind,
        quality: item.quality,
        path: path.display().to_string(),
        sha256: item.sha256,
        size: item.size,
        licence: item.licence,
        licence_files: item
            .licence_files
            .iter()
            .map(|file| dir.join(file).display().to_string())
            .collect(),
        source: format!("{}=={}", item.source.package, item.source.version),
        verified: verify && state != FileState::Missing && state != FileState::WrongSize,
        state,
    }
}
