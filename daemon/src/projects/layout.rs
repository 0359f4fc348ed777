//! The one module that knows the project folder layout (SPEC §9): the folders every root has,
//! the marker file, where an asset of each kind is stored, and the names of a run's files.

use std::path::{Path, PathBuf};

use kroma_protocol::asset::AssetKind;

/// Folders every project root has.
pub const FOLDERS: &[&str] = &[
    "inputs",
    "references",
    OUTPUTS,
    RUNS,
    BG_REMOVED,
    UPSCALED,
    COLOR_CORRECTED,
    AUDIO,
    "archive/bad",
    REPLACED,
    "exports",
    ".kroma",
];

/// The file inside a project root that names the project owning it.
pub const MARKER: &str = ".kroma/project.json";

/// The project's own settings file, relative to its root.
pub const SETTINGS: &str = ".kroma/settings.toml";

const OUTPUTS: &str = "outputs";
const RUNS: &str = "runs";
const BG_REMOVED: &str = "background_removed";
const UPSCALED: &str = "upscaled";
const COLOR_CORRECTED: &str = "color_corrected";
const AUDIO: &str = "audio";
/// Where a file that would have been overwritten goes instead.
pub const REPLACED: &str = "archive/replaced";

/// The project folder an asset of `kind` is stored in.
pub fn folder_of(kind: AssetKind) -> &'static str {
    match kind {
        AssetKind::Input | AssetKind::Mask | AssetKind::Other => "inputs",
        AssetKind::Reference => "references",
        AssetKind::Generated => OUTPUTS,
        AssetKind::BgRemoved => BG_REMOVED,
        AssetKind::Upscaled => UPSCALED,
        AssetKind::ColorCorrected => COLOR_CORRECTED,
        AssetKind::Audio => AUDIO,
    }
}

/// `outputs/<job key>-<run>.png`, or `outputs/<job key>__c<n>-<run>.png` when the job has several
/// candidates, `<run>` being the first 8 characters of the run id: two runs of the same scenes
/// never compete for a file name.
pub fn generated_output(job_key: &str, index: u32, candidates: u32, run_id: &str) -> String {
    let run = run_id.get(..8).unwrap_or(run_id);
    if candidates > 1 {
        format!("{OUTPUTS}/{job_key}__c{index}-{run}.png")
    } else {
        format!("{OUTPUTS}/{job_key}-{run}.png")
    }
}

/// Where a run's background-removal step writes the output made from `stem`.
pub fn bg_removed_output(stem: &str) -> String {
    format!("{BG_REMOVED}/{stem}_nobg.png")
}

/// Where a run's upscale step writes the output made from `stem`.
pub fn upscaled_output(stem: &str, scale: u32) -> String {
    format!("{UPSCALED}/{stem}_x{scale}.png")
}

/// Where a run's colour step writes the output made from `stem` with profile `profile`.
pub fn color_output(stem: &str, profile: &str) -> String {
    format!("{COLOR_CORRECTED}/{stem}_{profile}.png")
}

/// The record file of a run: `<project root>/runs/<run id>.json`.
pub fn run_record(project_root: &Path, run_id: &str) -> PathBuf {
    project_root.join(RUNS).join(format!("{run_id}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_candidate_count() {
        let run = "0c93d3df-1c67-419f-a93e-42794c4c21c8";
        assert_eq!(
            generated_output("style_1_a", 1, 1, run),
            "outputs/style_1_a-0c93d3df.png"
        );
        assert_eq!(
            generated_output("style_1_a", 2, 3, run),
            "outputs/style_1_a__c2-0c93d3df.png"
        );
    }

    #[test]
    fn every_asset_folder_is_in_the_layout() {
        for kind in [
            AssetKind::Input,
            AssetKind::Reference,
            AssetKind::Mask,
            AssetKind::Other,
            AssetKind::Generated,
            AssetKind::BgRemoved,
            AssetKind::Upscaled,
            AssetKind::ColorCorrected,
            AssetKind::Audio,
        ] {
            assert!(FOLDERS.contains(&folder_of(kind)), "{kind:?}");
        }
        assert!(FOLDERS.contains(&REPLACED));
        assert!(Path::new(MARKER).starts_with(".kroma"));
    }
}
