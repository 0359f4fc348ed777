//! `settings.effective`: the run settings in force, each with the layer it came from.
//!
//! Layers, highest first: the request, `<project root>/.kroma/settings.toml`,
//! `$XDG_CONFIG_HOME/kroma/config.toml`, built-in defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EffectiveParams {
    /// Include this project's settings file (slug or UUID); without it, user settings and
    /// defaults only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Setting {
    /// Dotted key, e.g. `generation.quality`; a key with a dot in it is quoted, e.g.
    /// `pricing."gpt-image-1.5".high`.
    pub key: String,
    pub value: serde_json::Value,
    /// `default`, `user:<path>`, `project:<path>` or `request`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EffectiveSettings {
    /// Sorted by key.
    pub settings: Vec<Setting>,
    /// The settings files looked at, highest first, and whether each exists.
    pub files: Vec<SettingsFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SettingsFile {
    /// `project` or `user`.
    pub layer: String,
    pub path: String,
    pub exists: bool,
}

/// `settings.effective`.
pub enum Effective {}

impl Method for Effective {
    const NAME: &'static str = "settings.effective";
    const SUMMARY: &'static str = "Show every run setting in force and the layer it came from";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = EffectiveParams;
    type Output = EffectiveSettings;
}
