//! The settings flags of a run, shared by `run plan|create` and `watch add` (a pipeline rule
//! plans each file that lands as the one scene of a run), and the one place they become
//! `run.plan`'s params.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;
use kroma_protocol as protocol;
use protocol::run as wire;

use crate::output::Failure;

/// The settings of a run besides its project and scenes, shared by `run plan|create` and
/// `watch add` (a pipeline rule plans each file as the one scene of a run).
#[derive(Debug, Args)]
pub struct RunSettingsArgs {
    /// Which pass of the staged workflow: style first, then time, weather or character
    #[arg(long, value_enum, default_value_t = StageArg::Style)]
    pub stage: StageArg,
    /// A style reference image: asset id or reference-set name (repeat for more)
    #[arg(long = "style-ref", value_name = "REF")]
    pub style_refs: Vec<String>,
    /// A character to put into every scene, UUID or name (repeat for more; character stage)
    #[arg(long = "character", value_name = "CHARACTER")]
    pub characters: Vec<String>,
    /// Style guide, UUID or name [default: the project's default guide]
    #[arg(long, value_name = "GUIDE")]
    pub style_guide: Option<String>,
    /// Prompt template, UUID or name, rendered into every job's prompt
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// A value for one of the template's variables, as NAME=VALUE (repeat for more)
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "template")]
    pub vars: Vec<String>,
    /// Time of day, a prompts.time_<TIME> setting, e.g. day or night (time and weather stages)
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Weather, a prompts.weather_<WEATHER> setting, e.g. clear or rain (weather stage)
    #[arg(long, value_name = "WEATHER")]
    pub weather: Option<String>,
    /// Candidates per scene [default: generation.candidates]
    #[arg(long, value_name = "N")]
    pub candidates: Option<u32>,
    /// Provider account name [default: from the settings]
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Image model [default: from the settings, else the provider's default model]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Output size as WIDTHxHEIGHT, e.g. 1024x1536 [default: generation.size]
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// low, medium or high [default: generation.quality]
    #[arg(long, value_name = "QUALITY")]
    pub quality: Option<String>,
    /// Remove the background of every generated image (true or false) [default: postprocess.bg_remove]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub bg_remove: Option<bool>,
    /// Upscale every generated image by 2 or 4; 0 turns it off [default: postprocess.upscale]
    #[arg(long, value_name = "SCALE")]
    pub upscale: Option<u32>,
    /// Colour profile applied to every generated image; "" turns it off [default: postprocess.color]
    #[arg(long, value_name = "PROFILE")]
    pub color: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StageArg {
    Style,
    Time,
    Weather,
    Character,
}

impl From<StageArg> for wire::Stage {
    fn from(stage: StageArg) -> wire::Stage {
        match stage {
            StageArg::Style => wire::Stage::Style,
            StageArg::Time => wire::Stage::Time,
            StageArg::Weather => wire::Stage::Weather,
            StageArg::Character => wire::Stage::Character,
        }
    }
}

/// `run.plan`'s params from the command line: the one place run settings flags become params.
/// Scenes naming files or folders are made absolute; `watch add` passes none (each file that
/// lands is the scene).
pub fn plan_params(
    project: &str,
    scenes: &[String],
    settings: &RunSettingsArgs,
) -> Result<wire::PlanParams, Failure> {
    let vars = parse_vars(&settings.vars).map_err(Failure::Usage)?;
    let cwd = std::env::current_dir()
        .map_err(|err| Failure::other(format!("reading the current directory: {err}"), None))?;
    Ok(wire::PlanParams {
        project: project.to_owned(),
        stage: settings.stage.into(),
        scenes: scenes.iter().map(|scene| scene_ref(&cwd, scene)).collect(),
        style_refs: settings.style_refs.clone(),
        characters: settings.characters.clone(),
        style_guide: settings.style_guide.clone(),
        template: settings
            .template
            .clone()
            .map(|name| wire::TemplateUse { name, vars }),
        time: settings.time.clone(),
        weather: settings.weather.clone(),
        candidates: settings.candidates,
        provider: settings.provider.clone(),
        model: settings.model.clone(),
        size: settings.size.clone(),
        quality: settings.quality.clone(),
        postprocess: (settings.color.is_some()
            || settings.bg_remove.is_some()
            || settings.upscale.is_some())
        .then(|| wire::PostprocessParams {
            bg_remove: settings.bg_remove,
            upscale: settings.upscale,
            color: settings.color.clone(),
        }),
    })
}

/// A scene naming an existing file or folder goes to the daemon as an absolute path (it does not
/// share our working directory); anything else as written, an asset id.
fn scene_ref(cwd: &Path, scene: &str) -> String {
    if Path::new(scene).exists() {
        cwd.join(scene).display().to_string()
    } else {
        scene.to_owned()
    }
}

/// `--var NAME=VALUE` pairs as a map; a pair without `=`, an empty name or a name given twice is
/// an error.
fn parse_vars(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("--var `{pair}` must look like NAME=VALUE"));
        };
        if name.is_empty() {
            return Err(format!("--var `{pair}` has no name before the `=`"));
        }
        if vars.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(format!("--var {name} is given more than once"));
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_vars_reads_pairs_and_names_the_bad_one() {
        let pairs = |pairs: &[&str]| {
            parse_vars(
                &pairs
                    .iter()
                    .map(|pair| pair.to_string())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            pairs(&["mood=calm", "light=a=b", "empty="]),
            Ok(BTreeMap::from([
                ("empty".to_owned(), String::new()),
                ("light".to_owned(), "a=b".to_owned()),
                ("mood".to_owned(), "calm".to_owned()),
            ]))
        );
        assert_eq!(
            pairs(&["mood"]),
            Err("--var `mood` must look like NAME=VALUE".to_owned())
        );
        assert_eq!(
            pairs(&["=calm"]),
            Err("--var `=calm` has no name before the `=`".to_owned())
        );
        assert_eq!(
            pairs(&["mood=calm", "mood=grim"]),
            Err("--var mood is given more than once".to_owned())
        );
    }
}
