//! The local runtime and models, as `packaging/models/kroma_models.py` installed them: its
//! `manifest.json` read and every file checked (presence and size; the hash on request). Nothing
//! here loads a model; `onnx` does, with what [`find`] answers.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::local_model::{FileState, LocalModel, LocalModels};
use protocol::{ErrorCode, ErrorKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Hint, Problem};

/// What installs or repairs the runtime and the default models.
pub fn install_hint() -> Hint {
    Hint::new(
        "install the local runtime and models",
        protocol::Action::InstallModels { quality: false },
    )
}

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
    #[serde(default)]
    interface: Interface,
}

/// A model's tensors, as the installer recorded them.
#[derive(Deserialize, Default)]
struct Interface {
    input: Option<Tensor>,
    output: Option<Tensor>,
    scale: Option<u32>,
}

#[derive(Deserialize)]
struct Tensor {
    name: String,
}

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    BgRemoval,
    Upscale,
}

impl ModelKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ModelKind::BgRemoval => "bg_removal",
            ModelKind::Upscale => "upscale",
        }
    }
}

/// One installed model, checked to be in place, and the runtime that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub runtime: PathBuf,
    /// The input and output tensor names.
    pub input: String,
    pub output: String,
    /// How much larger the output image is (upscale models).
    pub scale: u32,
}

/// The installed model `name` of `kind`, or the default (non-quality) one of `kind`. Checks that
/// its file and the runtime are in place with their recorded sizes. Blocking.
pub fn find(dir: &Path, kind: ModelKind, name: Option<&str>) -> Result<Installed, Problem> {
    let not_installed = |message: String| {
        Problem::new(ErrorKind::Infra, ErrorCode::ModelsMissing, message).with_hint(install_hint())
    };
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(|err| {
        not_installed(format!(
            "no local models are installed in {} ({err})",
            dir.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|err| {
        not_installed(format!(
            "{} is not a models manifest: {err}",
            manifest_path.display()
        ))
    })?;
    let of_kind: Vec<&Item> = manifest
        .items
        .iter()
        .filter(|item| item.kind == kind.as_str())
        .collect();
    let item = match name {
        Some(name) => of_kind.iter().find(|item| item.name == name).ok_or_else(|| {
            let known: Vec<&str> = of_kind.iter().map(|item| item.name.as_str()).collect();
            let mut err = Problem::validation(
                ErrorCode::UnknownModel,
                format!("no {} model `{name}` is installed", kind.as_str()),
            );
            err = if known.is_empty() {
                err.with_hint(install_hint())
            } else {
                err.with_hint(Hint::new(
                    format!(
                        "installed: {}; the quality models come with the installer's quality option",
                        known.join(", ")
                    ),
                    protocol::Action::InstallModels { quality: true },
                ))
            };
            err
        })?,
        None => of_kind
            .iter()
            .find(|item| !item.quality)
            .ok_or_else(|| {
                not_installed(format!(
                    "the manifest in {} has no default {} model",
                    dir.display(),
                    kind.as_str()
                ))
            })?,
    };
    let runtime = manifest
        .items
        .iter()
        .find(|item| item.kind == "runtime")
        .ok_or_else(|| {
            not_installed(format!(
                "the manifest in {} has no ONNX Runtime",
                dir.display()
            ))
        })?;
    for needed in [*item, runtime] {
        let path = dir.join(&needed.file);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == needed.size => {}
            Ok(meta) => {
                return Err(not_installed(format!(
                    "{} is damaged: {} holds {} bytes, the manifest says {}",
                    needed.name,
                    path.display(),
                    meta.len(),
                    needed.size
                )));
            }
            Err(err) => {
                return Err(not_installed(format!(
                    "{} is missing: {} ({err})",
                    needed.name,
                    path.display()
                )));
            }
        }
    }
    let interface = &item.interface;
    let tensor = |tensor: &Option<Tensor>, what: &str| {
        tensor.as_ref().map(|t| t.name.clone()).ok_or_else(|| {
            not_installed(format!(
                "the manifest does not name the {what} tensor of {}",
                item.name
            ))
        })
    };
    Ok(Installed {
        name: item.name.clone(),
        path: dir.join(&item.file),
        sha256: item.sha256.clone(),
        runtime: dir.join(&runtime.file),
        input: tensor(&interface.input, "input")?,
        output: tensor(&interface.output, "output")?,
        scale: interface.scale.unwrap_or(1),
    })
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
    let (hint, action) = Hint::parts(problem.is_some().then(install_hint));
    LocalModels {
        dir: dir.display().to_string(),
        installed: true,
        ok: problem.is_none(),
        hint,
        action,
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
        hint: Some(install_hint().text),
        action: install_hint().action,
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
        loaded: false,
        state,
    }
}
