//! `qa.*` and `file.inspect`: the QA guard of reference §4 on files, folders, assets and runs,
//! moving bad files to the archive, and what Kroma wrote into a file.
//!
//! The guard's verdicts equal the old system's on the same files: the chroma delta (mean of
//! |R−G|, |R−B|, |G−B| over the 8-bit RGB pixels, rounded to 4 decimals), `grayscale_like` when it
//! is at most `max_chroma_delta`, and the hard and soft reasons below. `qa.check` answers a
//! report; a caller decides what a hard failure means (`kromactl qa` exits 1).
//!
//! None of these is open to agents: they name arbitrary paths. Agents read a run's verdicts
//! through `run.show`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ErrorData, Method};

/// The guard's settings, from `[qa]` of the effective settings unless the call sets them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QaSettings {
    /// The largest chroma delta a grayscale-like image has (default 2.0).
    pub max_chroma_delta: f64,
    /// An image that is not grayscale-like fails hard (`not_grayscale_like`).
    pub enforce_grayscale: bool,
    /// A chroma delta above the threshold fails hard instead of warning.
    pub fail_on_chroma_exceed: bool,
}

/// Why a file fails or is warned about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "QaReason")]
pub enum Reason {
    /// `enforce_grayscale` and the chroma delta is above the threshold.
    NotGrayscaleLike,
    /// The chroma delta is above the threshold (hard with `fail_on_chroma_exceed`, else soft).
    ChromaExceedsThreshold,
    /// The file is not an image Kroma reads, is damaged, or is too large; see `error`.
    ImageReadFailed,
    /// A named path does not exist.
    InputNotFound,
    /// A named folder holds no image files.
    NoImagesFound,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotGrayscaleLike => "not_grayscale_like",
            Reason::ChromaExceedsThreshold => "chroma_exceeds_threshold",
            Reason::ImageReadFailed => "image_read_failed",
            Reason::InputNotFound => "input_not_found",
            Reason::NoImagesFound => "no_images_found",
        }
    }
}

/// One file's verdict (reference §4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileVerdict {
    /// The file (or the named path, for `input_not_found` and `no_images_found`).
    pub file: String,
    /// Absent when the image could not be read.
    pub chroma_delta: Option<f64>,
    pub grayscale_like: Option<bool>,
    pub hard_fail_reasons: Vec<Reason>,
    pub soft_warnings: Vec<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

impl FileVerdict {
    pub fn verdict(&self) -> Verdict {
        if !self.hard_fail_reasons.is_empty() {
            Verdict::Fail
        } else if !self.soft_warnings.is_empty() {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }
}

/// A file's verdict in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No reason at all.
    Pass,
    /// Soft warnings only.
    Warn,
    /// At least one hard reason.
    Fail,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub total_files: u32,
    /// Files with at least one hard reason.
    pub hard_failures: u32,
    /// Files with at least one soft warning.
    pub soft_warnings: u32,
}

/// What `qa.check` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// What was checked: the named paths, the asset's path, or the run's outputs.
    pub inputs: Vec<String>,
    pub settings: QaSettings,
    pub summary: Summary,
    /// Sorted by path within each named folder, folders in the order named.
    pub files: Vec<FileVerdict>,
}

/// A candidate's rank keys (reference §4.3): fewer is better for each, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Rank {
    pub hard_failures: u32,
    pub soft_warnings: u32,
    /// Mean of max(0, chroma − threshold) over the files with a chroma, rounded to 4 decimals.
    pub avg_chroma_exceed: f64,
}

/// What to check: exactly one of `paths`, `asset` (with `project`) or `run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// Absolute paths of image files or folders (walked recursively, image files only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// An asset id of `project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// A run: every succeeded candidate's final output (after its post-process chain), with the
    /// run's own settings unless this call sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Project slug or UUID: its settings apply (and `asset` is looked up in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chroma_delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_grayscale: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_chroma_exceed: Option<bool>,
}

/// `qa.check`.
pub enum Check {}

impl Method for Check {
    const NAME: &'static str = "qa.check";
    const SUMMARY: &'static str = "Check image files, folders, an asset or a run's outputs with the QA guard (chroma, grayscale)";
    const MUTATING: bool = false;
    const UNBOUNDED: bool = true;
    type Params = CheckParams;
    type Output = Report;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveBadParams {
    /// Absolute paths of image files or folders (walked recursively, image files only).
    pub paths: Vec<String>,
    /// Absolute folder to move the files into; default: `archive/bad/` of the project whose
    /// folder holds each file (files outside every project need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
}

/// One file moved (or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Moved {
    pub from: String,
    /// Where it is now: `<stem>_bad_<stamp><ext>` in the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveReport {
    pub files: Vec<Moved>,
    pub moved: u32,
    pub failed: u32,
}

/// `qa.archive_bad`.
pub enum ArchiveBad {}

impl Method for ArchiveBad {
    const NAME: &'static str = "qa.archive_bad";
    const SUMMARY: &'static str = "Move image files to a project's archive/bad/ (renamed, never overwriting; asset rows follow)";
    const MUTATING: bool = true;
    const UNBOUNDED: bool = true;
    type Params = ArchiveBadParams;
    type Output = ArchiveReport;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectParams {
    /// Absolute path of an image file.
    pub path: String,
    /// Project slug or UUID whose QA settings apply; default: the project whose folder holds the
    /// file, else the user's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// What Kroma knows about one image file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inspection {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// `png`, `jpeg` or `webp`; absent when the file is not an image Kroma reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The `kroma:*` text chunks, keys without the prefix: run, job, candidate, prompt hash,
    /// model, request id, source sha256, step. Empty for a file Kroma did not write.
    pub provenance: BTreeMap<String, String>,
    /// The asset with this content, when a project holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<InspectedAsset>,
    pub qa: FileVerdict,
    pub settings: QaSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InspectedAsset {
    /// Project slug.
    pub project: String,
    pub id: String,
    pub kind: String,
}

/// `file.inspect`.
pub enum Inspect {}

impl Method for Inspect {
    const NAME: &'static str = "file.inspect";
    const SUMMARY: &'static str =
        "Show an image file's provenance (what Kroma wrote into it), its asset and its QA verdict";
    const MUTATING: bool = false;
    type Params = InspectParams;
    type Output = Inspection;
}
