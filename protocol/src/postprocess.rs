//! `postprocess.*`: local image steps run on files, no project needed (U01). Each output is a new
//! PNG next to its source (or in `output_dir`) carrying `kroma:*` text chunks: the source's sha256,
//! the step and its settings. An existing file is never overwritten.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ErrorData, Method};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorParams {
    /// Absolute paths of image files or folders (walked recursively, image files only).
    pub paths: Vec<String>,
    /// `neutral`, `cinematic_warm`, `cold_rain`, or a `[color_profiles.<name>]` of the user's
    /// settings.
    pub profile: String,
    /// Absolute folder for the outputs; default: next to each source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileResult {
    pub input: String,
    /// The file written, when the step worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    /// One per file, in the order the files were found.
    pub results: Vec<FileResult>,
    pub done: u32,
    pub failed: u32,
}

/// `postprocess.color`.
pub enum Color {}

impl Method for Color {
    const NAME: &'static str = "postprocess.color";
    const SUMMARY: &'static str =
        "Apply a colour profile to image files or folders (alpha kept; never overwrites)";
    const MUTATING: bool = true;
    type Params = ColorParams;
    type Output = StepReport;
}
