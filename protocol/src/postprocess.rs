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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgRemoveParams {
    /// Absolute paths of image files or folders (walked recursively, image files only).
    pub paths: Vec<String>,
    /// Absolute folder for the outputs; default: next to each source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
    /// An installed background-removal model; default: the default one (`u2netp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Write the mask (grayscale, white = kept) instead of the cut-out.
    #[serde(default)]
    pub mask_only: bool,
    /// Refine the mask's uncertain edge band along the image's own edges.
    #[serde(default)]
    pub matting: bool,
    /// `#RRGGBB`: put the cut-out on this colour instead of transparency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpscaleParams {
    /// Absolute paths of image files or folders (walked recursively, image files only).
    pub paths: Vec<String>,
    /// Absolute folder for the outputs; default: next to each source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
    /// 2 or 4; default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// An installed upscale model; default: the default one (`realesr-general-x4v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tile side in input pixels (32 to 1024); default 256. Smaller tiles use less memory and more time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<u32>,
}

/// A local post-process step, as events name it (`postprocess.file`, `postprocess.progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "PostprocessStep")]
pub enum Step {
    /// A colour profile (`postprocess.color`, the chain's last step).
    Color,
    /// Background removal (`postprocess.bg_remove`, the chain's first step).
    BgRemove,
    /// Upscaling (`postprocess.upscale`).
    Upscale,
}

impl Step {
    /// The wire name, e.g. `bg_remove`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Color => "color",
            Step::BgRemove => "bg_remove",
            Step::Upscale => "upscale",
        }
    }
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
    const UNBOUNDED: bool = true;
    type Params = ColorParams;
    type Output = StepReport;
}

/// `postprocess.bg_remove`.
pub enum BgRemove {}

impl Method for BgRemove {
    const NAME: &'static str = "postprocess.bg_remove";
    const SUMMARY: &'static str =
        "Remove the background of image files or folders with a local model (never overwrites)";
    const MUTATING: bool = true;
    const UNBOUNDED: bool = true;
    type Params = BgRemoveParams;
    type Output = StepReport;
}

/// `postprocess.upscale`.
pub enum Upscale {}

impl Method for Upscale {
    const NAME: &'static str = "postprocess.upscale";
    const SUMMARY: &'static str =
        "Upscale image files or folders ×2 or ×4 with a local model, in tiles (never overwrites)";
    const MUTATING: bool = true;
    const UNBOUNDED: bool = true;
    type Params = UpscaleParams;
    type Output = StepReport;
}
