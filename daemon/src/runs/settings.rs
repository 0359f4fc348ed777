//! Run settings, in layers: the request, `<project root>/.kroma/settings.toml`, the user's
//! `$XDG_CONFIG_HOME/kroma/config.toml`, built-in defaults (highest first).
//!
//! Each file is checked on its own against [`Settings`] (unknown keys and wrong types are errors
//! that name the key and the file), then the layers are merged leaf by leaf so every value keeps
//! the layer it came from, and the merge is checked again for ranges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::Problem;

/// The prompt chunks of reference §3.2, used when no layer sets them.
pub const DEFAULT_PROMPTS: [(&str, &str); 5] = [
    (
        "style_base",
        "Preserve geometry and perspective. Apply one coherent noir drawing hand. No text, no logos, no watermark.",
    ),
    (
        "time_day",
        "Daylight scene with clear readability and stable contrast family.",
    ),
    (
        "time_night",
        "Night scene with controlled deep shadows, no topology changes.",
    ),
    (
        "weather_clear",
        "Dry clear atmosphere. No rain streaks, no snow particles, no diagonal sky hatching.",
    ),
    (
        "weather_rain",
        "Visible wet surfaces, puddles, and reflection cues; no style drift.",
    ),
];

/// The hard ceiling on candidates per scene, whatever the settings say.
pub const CANDIDATES_CEILING: u32 = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub generation: Generation,
    /// `style_base`, `time_<time>`, `weather_<weather>` prompt chunks.
    pub prompts: BTreeMap<String, String>,
    pub policy: Policy,
    pub budget: Budget,
    /// Prices for models the built-in registry does not know (USD per 1024×1024 image).
    pub pricing: BTreeMap<String, Pricing>,
    /// The user's own colour profiles, next to the built-in ones.
    pub color_profiles: BTreeMap<String, crate::postprocess::color::ColorProfile>,
    /// The local steps after generation in runs.
    pub postprocess: Postprocess,
    /// The QA guard on every candidate's final output, and drift from an approved baseline.
    pub qa: Qa,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Qa {
    /// The largest chroma delta a grayscale-like image has.
    pub max_chroma_delta: f64,
    /// An image that is not grayscale-like fails hard.
    pub enforce_grayscale: bool,
    /// A chroma delta above the threshold fails hard instead of warning.
    pub fail_on_chroma_exceed: bool,
    /// Above this structure drift (0 to 1) from the baseline a candidate is `drifted`.
    pub max_structure_drift: f64,
    /// Above this palette drift (0 to 1) from the baseline a candidate is `drifted`.
    pub max_palette_drift: f64,
}

impl Default for Qa {
    fn default() -> Qa {
        Qa {
            max_chroma_delta: crate::review::qa::DEFAULT_MAX_CHROMA_DELTA,
            enforce_grayscale: false,
            fail_on_chroma_exceed: false,
            // A building moved 60 px in a 256-px scene scores about 0.29; a 15 % crop 0.79.
            max_structure_drift: 0.3,
            // A 180° hue turn of a saturated scene scores about 0.2: only a palette that changed
            // more than that is drift (a night scene darkens, which is asked for).
            max_palette_drift: 0.25,
        }
    }
}

impl Qa {
    /// The guard's own settings, as the wire names them.
    pub fn guard(&self) -> protocol::qa::QaSettings {
        protocol::qa::QaSettings {
            max_chroma_delta: self.max_chroma_delta,
            enforce_grayscale: self.enforce_grayscale,
            fail_on_chroma_exceed: self.fail_on_chroma_exceed,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postprocess {
    /// Remove the background of every generated image.
    pub bg_remove: bool,
    /// The background-removal model; empty: the default installed one.
    pub bg_model: String,
    /// Refine the mask's edge band along the image's edges.
    pub matting: bool,
    /// `#RRGGBB` to put cut-outs on; empty: transparent.
    pub background: String,
    /// 2 or 4 to upscale every generated image; 0: off.
    pub upscale: u32,
    /// The upscale model; empty: the default installed one.
    pub upscale_model: String,
    /// A colour profile for every generated image; empty: off.
    pub color: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Generation {
    /// Provider account name.
    pub provider: String,
    /// Empty: the provider account's default model.
    pub model: String,
    pub size: String,
    pub quality: String,
    pub candidates: u32,
    pub max_candidates: u32,
    /// The most jobs (scenes) one run may have.
    pub safe_batch_limit: u32,
    /// Seconds one provider call may take.
    pub timeout_secs: u64,
    /// Calls per candidate when the provider says "try again" (429, 5xx).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter, unless `Retry-After` says more.
    pub retry_base_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Adds "Do not invent new object categories." to every prompt.
    pub default_no_invention: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Most this project may ever spend, USD. 0 or absent: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_usd: Option<f64>,
    /// Most this project may spend per UTC day, USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            generation: Generation::default(),
            prompts: DEFAULT_PROMPTS
                .iter()
                .map(|(key, text)| ((*key).to_owned(), (*text).to_owned()))
                .collect(),
            policy: Policy::default(),
            budget: Budget::default(),
            pricing: BTreeMap::new(),
            color_profiles: BTreeMap::new(),
            postprocess: Postprocess::default(),
            qa: Qa::default(),
        }
    }
}

impl Default for Generation {
    fn default() -> Generation {
        Generation {
            provider: "openai".to_owned(),
            model: String::new(),
            size: "1024x1536".to_owned(),
            quality: "high".to_owned(),
            candidates: 1,
            max_candidates: CANDIDATES_CEILING,
            safe_batch_limit: 20,
            timeout_secs: 180,
            max_attempts: 4,
            retry_base_ms: 1000,
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            default_no_invention: true,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    User(PathBuf),
    Project(PathBuf),
    Request,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Default => "default".to_owned(),
            Source::User(path) => format!("user:{}", path.display()),
            Source::Project(path) => format!("project:{}", path.display()),
            Source::Request => "request".to_owned(),
        }
    }
}

/// One layer: a parsed TOML table and where it came from.
pub struct Layer {
    pub source: Source,
    pub table: toml::Table,
}

/// Settings merged from layers, each leaf with its source.
pub struct Resolved {
    pub settings: Settings,
    leaves: BTreeMap<Vec<String>, (toml::Value, Source)>,
}

/// Reads a settings file; a missing file is an empty layer.
pub fn read_file(path: &Path, source: Source) -> Result<Option<Layer>, Problem> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(Problem::new(
                protocol::ErrorKind::Infra,
                ErrorCode::SettingsUnreadable,
                format!("cannot read settings file {}: {err}", path.display()),
            ));
        }
    };
    parse(&text, source).map(Some)
}

/// Parses and checks one layer on its own.
pub fn parse(text: &str, source: Source) -> Result<Layer, Problem> {
    let bad = |message: String| {
        Problem::validation(
            ErrorCode::InvalidSettings,
            format!("settings in {}: {message}", source.describe()),
        )
        .with_hint("settings.effective lists every key and where its value comes from")
        .with_action(protocol::Action::call::<protocol::settings::Effective>(
            [],
            &[],
        ))
    };
    let table: toml::Table = toml::from_str(text).map_err(|err| bad(err.message().to_owned()))?;
    check_shape(&table).map_err(bad)?;
    Ok(Layer { source, table })
}

/// A layer built from the request's own values: `(section, key, value)`.
pub fn request_layer(values: &[(&str, &str, toml::Value)]) -> Layer {
    let mut table = toml::Table::new();
    for (section, key, value) in values {
        let entry = table
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(inner) = entry {
            inner.insert((*key).to_owned(), value.clone());
        }
    }
    Layer {
        source: Source::Request,
        table,
    }
}

/// Checks that a table has only known keys of the right types, naming the first one that is not.
fn check_shape(table: &toml::Table) -> Result<(), String> {
    Settings::deserialize(toml::Value::Table(table.clone()))
        .map(|_| ())
        .map_err(|err| err.message().to_owned())
}

/// Merges layers given lowest first (defaults are added below them) and checks the result.
pub fn resolve(layers: Vec<Layer>) -> Result<Resolved, Problem> {
    let defaults = toml::Table::try_from(Settings::default()).map_err(|err| {
        Problem::new(
            protocol::ErrorKind::Internal,
            ErrorCode::Internal,
            format!("default settings do not serialize: {err}"),
        )
    })?;
    let mut leaves = BTreeMap::new();
    flatten(&defaults, &mut Vec::new(), &Source::Default, &mut leaves);
    for layer in &layers {
        flatten(&layer.table, &mut Vec::new(), &layer.source, &mut leaves);
    }
    let mut merged = toml::Table::new();
    for (path, (value, _)) in &leaves {
        insert(&mut merged, path, value.clone());
    }
    let settings = Settings::deserialize(toml::Value::Table(merged)).map_err(|err| {
        Problem::validation(
            ErrorCode::InvalidSettings,
            format!("merged settings: {}", err.message()),
        )
    })?;
    let resolved = Resolved { settings, leaves };
    resolved.check_ranges()?;
    Ok(resolved)
}

fn flatten(
    table: &toml::Table,
    prefix: &mut Vec<String>,
    source: &Source,
    out: &mut BTreeMap<Vec<String>, (toml::Value, Source)>,
) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            toml::Value::Table(inner) => flatten(inner, prefix, source, out),
            leaf => {
                out.insert(prefix.clone(), (leaf.clone(), source.clone()));
            }
        }
        prefix.pop();
    }
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// `generation.quality`, or `pricing."gpt-image-1.5".high` when a part needs quoting.
pub fn display_key(path: &[String]) -> String {
    path.iter()
        .map(|part| {
            if !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                part.clone()
            } else {
                format!("{part:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Resolved {
    /// Where the value at `path` came from; `None` for a default.
    fn source_of(&self, path: &[&str]) -> Option<&Source> {
        let path: Vec<String> = path.iter().map(|part| (*part).to_owned()).collect();
        self.leaves.get(&path).map(|(_, source)| source)
    }

    fn out_of_range(&self, path: &[&str], rule: &str) -> Problem {
        let key = display_key(&path.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>());
        let source = self.source_of(path);
        let from = source.map_or_else(|| "default".to_owned(), Source::describe);
        let err = Problem::validation(
            ErrorCode::InvalidSettings,
            format!("`{key}` (from {from}) {rule}"),
        )
        .with_hint(format!("fix `{key}` where it came from"));
        // A value the request gave is fixed in the request, not in a settings file.
        match source {
            Some(Source::User(_) | Source::Project(_)) => {
                err.with_action(protocol::Action::EditSettings { key, value: None })
            }
            _ => err,
        }
    }

    fn check_ranges(&self) -> Result<(), Problem> {
        let generation = &self.settings.generation;
        let g = |key: &'static str| ["generation", key];
        if generation.provider.trim().is_empty() {
            return Err(self.out_of_range(&g("provider"), "must name a provider account"));
        }
        if generation.size != "auto" && parse_size(&generation.size).is_none() {
            return Err(self.out_of_range(
                &g("size"),
                "must be `WIDTHxHEIGHT` (16 to 4096 each) or `auto`",
            ));
        }
        if !matches!(generation.quality.as_str(), "low" | "medium" | "high") {
            return Err(self.out_of_range(&g("quality"), "must be `low`, `medium` or `high`"));
        }
        if !(1..=CANDIDATES_CEILING).contains(&generation.max_candidates) {
            return Err(self.out_of_range(
                &g("max_candidates"),
                &format!("must be between 1 and {CANDIDATES_CEILING}"),
            ));
        }
        if !(1..=generation.max_candidates).contains(&generation.candidates) {
            return Err(self.out_of_range(
                &g("candidates"),
                &format!(
                    "must be between 1 and generation.max_candidates ({})",
                    generation.max_candidates
                ),
            ));
        }
        if !(1..=10_000).contains(&generation.safe_batch_limit) {
            return Err(self.out_of_range(&g("safe_batch_limit"), "must be between 1 and 10000"));
        }
        if !(1..=3600).contains(&generation.timeout_secs) {
            return Err(self.out_of_range(&g("timeout_secs"), "must be between 1 and 3600"));
        }
        if !(1..=10).contains(&generation.max_attempts) {
            return Err(self.out_of_range(&g("max_attempts"), "must be between 1 and 10"));
        }
        if !(1..=60_000).contains(&generation.retry_base_ms) {
            return Err(self.out_of_range(&g("retry_base_ms"), "must be between 1 and 60000"));
        }
        for (key, text) in &self.settings.prompts {
            if text.trim().is_empty() {
                return Err(self.out_of_range(&["prompts", key], "must not be empty"));
            }
        }
        let budget = &self.settings.budget;
        for (key, value) in [
            ("project_usd", budget.project_usd),
            ("daily_usd", budget.daily_usd),
        ] {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(self.out_of_range(&["budget", key], "must be a number ≥ 0"));
            }
        }
        for (model, prices) in &self.settings.pricing {
            for (quality, value) in [
                ("low", prices.low),
                ("medium", prices.medium),
                ("high", prices.high),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(self.out_of_range(&["pricing", model, quality], "must be ≥ 0"));
                }
            }
        }
        let qa = &self.settings.qa;
        if !(qa.max_chroma_delta.is_finite() && qa.max_chroma_delta >= 0.0) {
            return Err(self.out_of_range(&["qa", "max_chroma_delta"], "must be a number ≥ 0"));
        }
        for (key, value) in [
            ("max_structure_drift", qa.max_structure_drift),
            ("max_palette_drift", qa.max_palette_drift),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(self.out_of_range(&["qa", key], "must be between 0 and 1"));
            }
        }
        let postprocess = &self.settings.postprocess;
        if ![0, 2, 4].contains(&postprocess.upscale) {
            return Err(self.out_of_range(&["postprocess", "upscale"], "must be 0 (off), 2 or 4"));
        }
        if !postprocess.background.is_empty()
            && crate::postprocess::bg_remove::parse_colour(&postprocess.background).is_err()
        {
            return Err(self.out_of_range(
                &["postprocess", "background"],
                "must be a colour like #ffffff, or empty for transparency",
            ));
        }
        let color = &postprocess.color;
        if !color.is_empty()
            && !self.settings.color_profiles.contains_key(color)
            && !crate::postprocess::color::builtin().contains_key(color)
        {
            return Err(self.out_of_range(
                &["postprocess", "color"],
                "names no colour profile (built in: neutral, cinematic_warm, cold_rain; or a [color_profiles.<name>])",
            ));
        }
        for (name, profile) in &self.settings.color_profiles {
            if let Err(rule) = profile.check() {
                return Err(self.out_of_range(&["color_profiles", name], &rule));
            }
        }
        Ok(())
    }

    /// Every leaf with its value and source, sorted by key.
    pub fn entries(&self) -> Vec<protocol::settings::Setting> {
        self.leaves
            .iter()
            .map(|(path, (value, source))| protocol::settings::Setting {
                key: display_key(path),
                value: serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
                source: source.describe(),
            })
            .collect()
    }

    /// The settings as one JSON object, for the run record.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&self.settings).unwrap_or(serde_json::Value::Null)
    }
}

/// `1024x1536` → (1024, 1536), each side 16..=4096.
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (width, height) = size.split_once('x')?;
    let width: u32 = width.parse().ok()?;
    let height: u32 = height.parse().ok()?;
    let ok = |side: u32| (16..=4096).contains(&side);
    (ok(width) && ok(height)).then_some((width, height))
}

/// The settings file of a project root.
pub fn project_file(root: &Path) -> PathBuf {
    root.join(crate::projects::layout::SETTINGS)
}

#[cfg(test)]
mod tests;
