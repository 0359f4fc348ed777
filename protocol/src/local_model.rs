//! `local_model.list`: the local runtime and ONNX models on this machine (background removal,
//! upscaling), as the installer's manifest records them, checked against the files.
//! Not to be confused with `image_model.list`, the image models at providers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Also re-hash every file (slower: the quality models are hundreds of MB) and load the ONNX
    /// Runtime library; without it, only presence and size are checked.
    #[serde(default)]
    pub verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Present with the recorded size (and hash, when verified).
    Ok,
    Missing,
    WrongSize,
    WrongHash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalModel {
    /// e.g. `onnxruntime`, `u2netp`, `realesr-general-x4v3`.
    pub name: String,
    /// `runtime`, `bg_removal` or `upscale`.
    pub kind: String,
    /// Part of the opt-in quality set.
    pub quality: bool,
    /// Absolute path.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub licence: String,
    /// Absolute paths of the licence texts.
    pub licence_files: Vec<String>,
    /// `package==version` at the registry it came from.
    pub source: String,
    pub state: FileState,
    /// Whether the hash was checked this time.
    pub verified: bool,
    /// Whether kromad holds it in memory now (loaded on first use, freed when idle).
    #[serde(default)]
    pub loaded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalModels {
    /// The models folder (`--models-dir`, `KROMA_MODELS_DIR`, else
    /// `$XDG_DATA_HOME/kroma/models`).
    pub dir: String,
    /// Whether `manifest.json` was found and read.
    pub installed: bool,
    pub models: Vec<LocalModel>,
    /// The runtime and the default models are all there and intact.
    pub ok: bool,
    /// What is wrong, in one line, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What fixes it, when not ok: prose for people, naming no program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The hint's next step as data, as in an error's `data.action`; an action of a type a
    /// client does not know reads as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::action::known"
    )]
    #[schemars(with = "Option<crate::Action>")]
    pub action: Option<crate::Action>,
}

/// `local_model.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "local_model.list";
    const SUMMARY: &'static str =
        "List the local ONNX runtime and models with path, hash, licence and size, checked";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = LocalModels;
}
