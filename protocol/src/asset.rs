//! `asset.*`: image files a project knows, stored in its root folder and addressed by content.
//!
//! Importing copies files (the user's originals are never moved or changed); the same bytes
//! imported twice give the same asset. Links record how assets relate (`derived_from`, ...), and
//! `asset.lineage` walks them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ErrorData, Method};

/// What an asset is for. Importing accepts `input`, `reference`, `mask` and `other`; the pipeline
/// adds the other kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A scene to work on; stored in `inputs/`.
    Input,
    /// A style or character reference; stored in `references/`.
    Reference,
    /// A mask for another asset; stored in `inputs/`.
    Mask,
    /// A generated candidate; stored in `outputs/`.
    Generated,
    /// Background removed; stored in `background_removed/`.
    BgRemoved,
    /// Upscaled; stored in `upscaled/`.
    Upscaled,
    /// Colour corrected; stored in `color_corrected/`.
    ColorCorrected,
    /// Anything else; stored in `inputs/`.
    Other,
    /// A voice recording a chat message transcribes (`chat.append`); stored in `audio/`. Never
    /// an input of a run.
    Audio,
}

impl AssetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AssetKind::Input => "input",
            AssetKind::Reference => "reference",
            AssetKind::Mask => "mask",
            AssetKind::Generated => "generated",
            AssetKind::BgRemoved => "bg_removed",
            AssetKind::Upscaled => "upscaled",
            AssetKind::ColorCorrected => "color_corrected",
            AssetKind::Other => "other",
            AssetKind::Audio => "audio",
        }
    }
}

/// How two assets relate: `from` is the child, `to` the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// `from` was made from `to` (an upscale of it, a candidate from it).
    DerivedFrom,
    /// `from` is another take on `to`.
    VariantOf,
    /// `from` is a mask for `to`.
    MaskFor,
    /// `from` is a reference image of `to` (a character sheet for a scene).
    ReferenceOf,
}

impl Relation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Relation::DerivedFrom => "derived_from",
            Relation::VariantOf => "variant_of",
            Relation::MaskFor => "mask_for",
            Relation::ReferenceOf => "reference_of",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Asset {
    /// UUID.
    pub id: String,
    /// The project's slug.
    pub project: String,
    pub kind: AssetKind,
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    pub mime: String,
    /// File size in bytes.
    pub bytes: u64,
    /// The file name it was imported from.
    pub original_name: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssetLink {
    /// The child asset's id.
    pub from: String,
    pub relation: Relation,
    /// The parent asset's id.
    pub to: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// `asset.import`: copy image files into a project.
pub enum Import {}

impl Method for Import {
    const NAME: &'static str = "asset.import";
    const SUMMARY: &'static str =
        "Copy image files (or every image in folders) into a project, one result per file";
    const MUTATING: bool = true;
    type Params = ImportParams;
    type Output = ImportReport;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// The project's slug.
    pub project: String,
    /// Absolute paths of files or folders. Folders are walked (sorted); entries that lead outside
    /// the folder (symlinks) are refused.
    pub paths: Vec<String>,
    pub kind: AssetKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportReport {
    /// One entry per file, in the order the files were found.
    pub results: Vec<ImportResult>,
    pub imported: u32,
    pub existing: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportResult {
    /// The file as named or found.
    pub path: String,
    pub outcome: ImportOutcome,
    /// The asset, unless the file failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<Asset>,
    /// Why the file failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// Copied in as a new asset.
    Imported,
    /// The same bytes were already an asset of the project; that asset is returned.
    Existing,
    /// Nothing was copied; see `error`.
    Failed,
}

/// `asset.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "asset.list";
    const SUMMARY: &'static str = "List a project's assets, oldest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = AssetList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub project: String,
    /// Only assets of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AssetKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssetList {
    pub assets: Vec<Asset>,
}

/// `asset.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "asset.get";
    const SUMMARY: &'static str = "Show one asset";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = AssetRef;
    type Output = Asset;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetRef {
    pub project: String,
    pub id: String,
}

/// `asset.delete`: remove an asset, its links and its file in the project.
pub enum Delete {}

impl Method for Delete {
    const NAME: &'static str = "asset.delete";
    const SUMMARY: &'static str =
        "Delete an asset, its links and its copy in the project (needs confirm: true)";
    const MUTATING: bool = true;
    type Params = DeleteParams;
    type Output = AssetDeleted;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub project: String,
    pub id: String,
    /// Must be `true`.
    pub confirm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssetDeleted {
    pub id: String,
    /// The file removed from the project root.
    pub path: String,
    /// Links removed with it.
    pub links_removed: u32,
}

/// `asset.link`.
pub enum Link {}

impl Method for Link {
    const NAME: &'static str = "asset.link";
    const SUMMARY: &'static str = "Record that asset `from` relates to asset `to` (derived_from, variant_of, mask_for, reference_of)";
    const MUTATING: bool = true;
    type Params = LinkParams;
    type Output = AssetLink;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkParams {
    pub project: String,
    pub from: String,
    pub to: String,
    pub relation: Relation,
}

/// `asset.lineage`: every asset connected to one, with the links between them.
pub enum Lineage {}

impl Method for Lineage {
    const NAME: &'static str = "asset.lineage";
    const SUMMARY: &'static str = "Walk the links from an asset to its ancestors and descendants";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = AssetRef;
    type Output = LineageGraph;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineageGraph {
    /// The asset asked about.
    pub root: String,
    /// Every asset reachable through links in either direction, the root first, then by distance.
    pub assets: Vec<Asset>,
    /// Every link between those assets.
    pub links: Vec<AssetLink>,
}
