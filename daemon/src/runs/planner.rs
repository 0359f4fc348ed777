//! Planning: turns a run request, the effective settings and the project's knowledge into a
//! [`Plan`]: one job per scene with its composed prompt and input images, the candidates, the
//! provider calls and their cost estimate. Pure: the caller reads the database and the disk and
//! hands everything in, so the same inputs always give the same plan.

use std::collections::BTreeMap;

use kroma_protocol as protocol;
use protocol::image_model::Lifecycle;
use protocol::run::{CostEstimate, Endpoint, InputImage, InputRole, Plan, PlannedJob, Stage};
use protocol::{ErrorCode, ErrorKind};
use sha2::{Digest, Sha256};

use crate::error::{Hint, Problem};
use crate::providers::image_models;
use crate::runs::settings::{self, Settings};

/// The rule added to every prompt while `policy.default_no_invention` is on.
pub const NO_INVENTION: &str = "Do not invent new object categories.";

/// The longest prompt the OpenAI Images API takes.
pub const MAX_PROMPT_CHARS: usize = 32_000;

/// An image the planner can put into a job: a file, and its asset when it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub asset: Option<String>,
    pub path: String,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Scene {
    /// The file name, e.g. `alley.png`.
    pub name: String,
    pub image: ImageRef,
}

#[derive(Debug, Clone)]
pub struct StyleGuide {
    pub name: String,
    pub instructions: String,
    pub palette: String,
    pub line: String,
    pub lighting: String,
    pub references: Vec<ImageRef>,
}

#[derive(Debug, Clone)]
pub struct Character {
    pub name: String,
    pub prompt_text: String,
    pub references: Vec<ImageRef>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub body: String,
    pub variables: Vec<String>,
    /// The caller's values for the template's own variables.
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub base_url: String,
    pub default_model: String,
}

/// Everything a plan is made from.
pub struct Inputs {
    pub project: String,
    pub stage: Stage,
    pub time: Option<String>,
    pub weather: Option<String>,
    pub settings: Settings,
    pub settings_snapshot: serde_json::Value,
    pub provider: Provider,
    pub scenes: Vec<Scene>,
    pub style_guide: Option<StyleGuide>,
    pub style_refs: Vec<ImageRef>,
    pub characters: Vec<Character>,
    pub template: Option<Template>,
    /// What the registry, the settings and the providers know about models, judged today.
    pub models: Vec<protocol::image_model::ModelInfo>,
    /// Later stages: the approved baseline of each scene that has one, by the scene image's
    /// path, with the baseline's image. A job of such a scene starts from its baseline.
    pub baselines: BTreeMap<String, (protocol::run::Baseline, ImageRef)>,
}

pub fn plan(inputs: &Inputs) -> Result<Plan, Problem> {
    let generation = &inputs.settings.generation;
    let (time, weather) = stage_options(inputs)?;
    if inputs.scenes.is_empty() {
        return Err(
            Problem::validation(ErrorCode::NoScenes, "a run needs at least one scene")
                .with_hint("name scene assets, image files or a folder of images"),
        );
    }
    if inputs.scenes.len() > generation.safe_batch_limit as usize {
        return Err(Problem::new(
            ErrorKind::Policy,
            ErrorCode::BatchLimit,
            format!(
                "{} scenes exceed the safety limit of {} jobs per run",
                inputs.scenes.len(),
                generation.safe_batch_limit
            ),
        )
        .with_hint("split the scenes into several runs, or raise generation.safe_batch_limit"));
    }
    let model = if generation.model.is_empty() {
        inputs.provider.default_model.clone()
    } else {
        generation.model.clone()
    };
    let mut warnings = Vec::new();
    check_model(inputs, &model, &mut warnings)?;
    let pricing = image_models::pricing(&inputs.settings, &model).ok_or_else(|| {
        Problem::validation(
            ErrorCode::UnpricedModel,
            format!("Kroma has no price table for model `{model}`, so it cannot cap the spend"),
        )
        .with_hint(format!(
            "add [pricing.\"{model}\"] with low, medium and high (USD per 1024x1024 image) to the settings"
        ))
    })?;
    let size = if generation.size == "auto" {
        None
    } else {
        settings::parse_size(&generation.size)
    };

    let mut style_images: Vec<ImageRef> = Vec::new();
    if let Some(guide) = &inputs.style_guide {
        push_unique(&mut style_images, &guide.references);
    }
    push_unique(&mut style_images, &inputs.style_refs);

    let mut jobs = Vec::with_capacity(inputs.scenes.len());
    for (index, scene) in inputs.scenes.iter().enumerate() {
        let prompt = compose_prompt(inputs, scene, time.as_deref(), weather.as_deref())?;
        let baseline = if inputs.stage == Stage::Style {
            None
        } else {
            inputs.baselines.get(&scene.image.path)
        };
        if inputs.stage != Stage::Style && baseline.is_none() {
            warnings.push(format!(
                "scene `{}` has no approved baseline: its job starts from the scene itself (approve a candidate of a style run first)",
                scene.name
            ));
        }
        let start = baseline.map(|(_, image)| image).unwrap_or(&scene.image);
        let mut images = vec![input(InputRole::Scene, start)];
        for image in &style_images {
            if image.path != scene.image.path && image.path != start.path {
                images.push(input(InputRole::Style, image));
            }
        }
        for character in &inputs.characters {
            for image in &character.references {
                if images.iter().all(|known| known.path != image.path) {
                    images.push(input(InputRole::Character, image));
                }
            }
        }
        let per_call = image_models::call_max_usd(
            &pricing,
            size,
            &generation.quality,
            prompt.chars().count(),
            images.len(),
        );
        jobs.push(PlannedJob {
            key: job_key(inputs.stage, index + 1, &scene.name),
            scene: scene.name.clone(),
            prompt_sha256: hex_sha256(prompt.as_bytes()),
            prompt,
            endpoint: if images.is_empty() {
                Endpoint::Generations
            } else {
                Endpoint::Edits
            },
            input_images: images,
            baseline: baseline.map(|(baseline, _)| baseline.clone()),
            candidates: generation.candidates,
            max_cost_usd: image_models::round_usd(per_call * f64::from(generation.candidates)),
        });
    }
    let calls = jobs.iter().map(|job| job.candidates).sum();
    let max_usd = image_models::round_usd(jobs.iter().map(|job| job.max_cost_usd).sum());
    let per_call_max_usd = jobs.iter().map(per_call_usd).fold(0.0, f64::max);
    Ok(Plan {
        project: inputs.project.clone(),
        stage: inputs.stage,
        time,
        weather,
        provider: inputs.provider.name.clone(),
        base_url: inputs.provider.base_url.clone(),
        model,
        size: generation.size.clone(),
        quality: generation.quality.clone(),
        candidates: generation.candidates,
        style_guide: inputs.style_guide.as_ref().map(|guide| guide.name.clone()),
        characters: inputs.characters.iter().map(|c| c.name.clone()).collect(),
        jobs,
        postprocess: postprocess_steps(&inputs.settings),
        cost: CostEstimate {
            calls,
            per_call_max_usd: image_models::round_usd(per_call_max_usd),
            max_usd,
            price_source: pricing.source.clone(),
        },
        settings: inputs.settings_snapshot.clone(),
        warnings,
    })
}

/// The most one call of `job` can cost: its share of the job's maximum. What each candidate
/// reserves against the budgets, and its cost when the price table is all there is.
pub fn per_call_usd(job: &PlannedJob) -> f64 {
    image_models::round_usd(job.max_cost_usd / f64::from(job.candidates.max(1)))
}

/// The chain's steps in their fixed order: background removal → upscale → colour.
pub fn postprocess_steps(settings: &Settings) -> Vec<String> {
    let mut steps = Vec::new();
    let chain = &settings.postprocess;
    if chain.bg_remove {
        let model = if chain.bg_model.is_empty() {
            "default"
        } else {
            &chain.bg_model
        };
        steps.push(format!("bg_remove:{model}"));
    }
    if chain.upscale != 0 {
        steps.push(format!("upscale:x{}", chain.upscale));
    }
    if !settings.postprocess.color.is_empty() {
        steps.push(format!("color:{}", settings.postprocess.color));
    }
    steps
}

/// Checks the stage's time and weather (reference §3.3) and fills their defaults.
fn stage_options(inputs: &Inputs) -> Result<(Option<String>, Option<String>), Problem> {
    let stage = inputs.stage;
    if inputs.time.is_some() && !matches!(stage, Stage::Time | Stage::Weather) {
        return Err(Problem::validation(
            ErrorCode::TimeNotAllowed,
            format!(
                "`time` applies to the time and weather stages, not `{}`",
                stage.as_str()
            ),
        ));
    }
    if inputs.weather.is_some() && stage != Stage::Weather {
        return Err(Problem::validation(
            ErrorCode::WeatherNotAllowed,
            format!(
                "`weather` applies to the weather stage, not `{}`",
                stage.as_str()
            ),
        ));
    }
    match stage {
        Stage::Character if inputs.characters.is_empty() => {
            return Err(Problem::validation(
                ErrorCode::NoCharacters,
                "the character stage needs at least one character",
            )
            .with_hint("name the characters to put into the scenes"));
        }
        Stage::Style | Stage::Time | Stage::Weather if !inputs.characters.is_empty() => {
            return Err(Problem::validation(
                ErrorCode::CharactersNotAllowed,
                format!(
                    "characters are put into scenes in the character stage, not `{}`",
                    stage.as_str()
                ),
            ));
        }
        _ => {}
    }
    let time = match stage {
        Stage::Time | Stage::Weather => {
            Some(inputs.time.clone().unwrap_or_else(|| "day".to_owned()))
        }
        _ => None,
    };
    let weather = match stage {
        Stage::Weather => Some(inputs.weather.clone().unwrap_or_else(|| "clear".to_owned())),
        _ => None,
    };
    Ok((time, weather))
}

fn check_model(inputs: &Inputs, model: &str, warnings: &mut Vec<String>) -> Result<(), Problem> {
    let Some(info) = inputs.models.iter().find(|info| info.id == model) else {
        return Ok(());
    };
    let date = info.shutdown_date.as_deref().unwrap_or("?");
    let instead = info
        .replacement
        .as_deref()
        .map(|replacement| format!("; use `{replacement}` instead"))
        .unwrap_or_default();
    match info.lifecycle {
        Lifecycle::Retired => Err(Problem::validation(
            ErrorCode::ModelRetired,
            format!("model `{model}` was shut down on {date}{instead}"),
        )
        .with_hint(match &info.replacement {
            Some(replacement) => Hint::new(
                format!(
                    "pick `{replacement}` as the run's model, or set generation.model = \"{replacement}\" in the settings"
                ),
                protocol::Action::EditSettings {
                    key: "generation.model".to_owned(),
                    value: Some(replacement.as_str().into()),
                },
            ),
            None => Hint::new(
                "pick another model",
                protocol::Action::call::<protocol::image_model::List>([], &[]),
            ),
        })),
        Lifecycle::Retiring => {
            warnings.push(format!("model `{model}` shuts down on {date}{instead}"));
            Ok(())
        }
        Lifecycle::Active => Ok(()),
    }
}

fn compose_prompt(
    inputs: &Inputs,
    scene: &Scene,
    time: Option<&str>,
    weather: Option<&str>,
) -> Result<String, Problem> {
    let prompts = &inputs.settings.prompts;
    let prompt_key = |key: String| -> Result<String, Problem> {
        prompts.get(&key).cloned().ok_or_else(|| {
            let known: Vec<&str> = prompts.keys().map(String::as_str).collect();
            Problem::validation(ErrorCode::MissingPrompt, format!("missing prompts.{key}"))
                .with_hint(format!(
                    "add `{key}` under [prompts] in the settings; known: {}",
                    known.join(", ")
                ))
        })
    };
    let mut chunks = vec![prompt_key("style_base".to_owned())?];
    if let Some(guide) = &inputs.style_guide {
        let mut parts = Vec::new();
        for (label, text) in [
            ("Style", &guide.instructions),
            ("Palette", &guide.palette),
            ("Line", &guide.line),
            ("Lighting", &guide.lighting),
        ] {
            let text = text.trim();
            if !text.is_empty() {
                parts.push(format!("{label}: {}", sentence(text)));
            }
        }
        if !parts.is_empty() {
            chunks.push(parts.join(" "));
        }
    }
    if let Some(template) = &inputs.template {
        chunks.push(render_template(inputs, template, scene, time, weather)?);
    }
    if let Some(time) = time {
        chunks.push(prompt_key(format!("time_{time}"))?);
    }
    if let Some(weather) = weather {
        chunks.push(prompt_key(format!("weather_{weather}"))?);
    }
    for character in &inputs.characters {
        let text = character.prompt_text.trim();
        chunks.push(if text.is_empty() {
            format!("Include the character {}.", character.name)
        } else {
            format!("Character {}: {}", character.name, sentence(text))
        });
    }
    if inputs.settings.policy.default_no_invention {
        chunks.push(NO_INVENTION.to_owned());
    }
    let prompt = chunks
        .iter()
        .map(|chunk| chunk.trim())
        .filter(|chunk| !chunk.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(Problem::validation(
            ErrorCode::PromptTooLong,
            format!(
                "the composed prompt has {} characters; the provider takes at most {MAX_PROMPT_CHARS}",
                prompt.chars().count()
            ),
        )
        .with_hint("shorten the style guide, template or character prompt texts"));
    }
    Ok(prompt)
}

/// Renders the run's template; the planner fills `stage`, `time`, `weather`, `scene` and
/// `characters` when the template declares them and the caller did not.
fn render_template(
    inputs: &Inputs,
    template: &Template,
    scene: &Scene,
    time: Option<&str>,
    weather: Option<&str>,
) -> Result<String, Problem> {
    let builtins = [
        ("stage", inputs.stage.as_str().to_owned()),
        ("time", time.unwrap_or_default().to_owned()),
        ("weather", weather.unwrap_or_default().to_owned()),
        ("scene", stem(&scene.name).to_owned()),
        (
            "characters",
            inputs
                .characters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let mut vars = template.vars.clone();
    for (name, value) in builtins {
        if template.variables.iter().any(|declared| declared == name) {
            vars.entry(name.to_owned()).or_insert(value);
        }
    }
    crate::knowledge::render(&template.body, &template.variables, &vars).map_err(|mut err| {
        err.message = format!("template `{}`: {}", template.name, err.message);
        err
    })
}

fn sentence(text: &str) -> String {
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn push_unique(into: &mut Vec<ImageRef>, images: &[ImageRef]) {
    for image in images {
        if into.iter().all(|known| known.path != image.path) {
            into.push(image.clone());
        }
    }
}

fn input(role: InputRole, image: &ImageRef) -> InputImage {
    InputImage {
        role,
        asset: image.asset.clone(),
        path: image.path.clone(),
        sha256: image.sha256.clone(),
    }
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// `<stage>_<n>_<stem>`: the stem lowercased, runs outside `[a-z0-9_-]` turned into one `_`,
/// trimmed of `_`; `n` alone when nothing is left (reference §3.4).
pub fn job_key(stage: Stage, n: usize, scene_name: &str) -> String {
    let mut clean = String::new();
    for c in stem(scene_name).to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
            clean.push(c);
        } else if !clean.ends_with('_') {
            clean.push('_');
        }
    }
    let clean = clean.trim_matches('_');
    if clean.is_empty() {
        format!("{}_{n}", stage.as_str())
    } else {
        format!("{}_{n}_{clean}", stage.as_str())
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
