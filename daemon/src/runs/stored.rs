//! The plan as kromad stores it (the `runs.plan_json` column), in types of its own so the wire
//! type (`protocol::run::Plan`) can change without a data migration.
//!
//! Format 1 is the JSON kromad has written since runs began: it carries no format field, and
//! a stored plan without one is read as format 1. A later format adds `"format": N` and a
//! conversion from the formats before it; [`StoredPlan::read`] accepts every one it knows and
//! refuses a newer one by name.

use serde::{Deserialize, Serialize};

use kroma_protocol::run as wire;

/// The newest stored-plan format this kromad writes.
pub const FORMAT: u32 = 1;

/// A stored plan, format 1. Field names and optional fields match what has always been stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<u32>,
    project: String,
    stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weather: Option<String>,
    provider: String,
    base_url: String,
    model: String,
    size: String,
    quality: String,
    candidates: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    style_guide: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    characters: Vec<String>,
    jobs: Vec<Job>,
    cost: Cost,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    postprocess: Vec<String>,
    settings: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stage {
    Style,
    Time,
    Weather,
    Character,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    key: String,
    scene: String,
    prompt: String,
    prompt_sha256: String,
    input_images: Vec<Input>,
    endpoint: Endpoint,
    candidates: u32,
    max_cost_usd: f64,
    /// Later stages: the approved baseline the job starts from (absent in plans stored before
    /// baselines existed, and in style runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baseline: Option<Baseline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Baseline {
    scene_asset: String,
    asset: String,
    path: String,
    run: String,
    job: String,
    candidate: u32,
    stage: Stage,
    approved_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Input {
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    Scene,
    Style,
    Character,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Endpoint {
    Edits,
    Generations,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cost {
    calls: u32,
    per_call_max_usd: f64,
    max_usd: f64,
    price_source: String,
}

/// Why a stored plan cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("stored plan format {0} is newer than this kromad knows ({FORMAT})")]
    Newer(u32),
    #[error("stored plan: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoredPlan {
    /// Reads a stored plan of any format this kromad knows.
    pub fn read(json: &str) -> Result<StoredPlan, ReadError> {
        let plan: StoredPlan = serde_json::from_str(json)?;
        match plan.format.unwrap_or(1) {
            1 => Ok(plan),
            newer => Err(ReadError::Newer(newer)),
        }
    }

    /// The JSON to store, in the newest format.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl From<wire::Stage> for Stage {
    fn from(stage: wire::Stage) -> Stage {
        match stage {
            wire::Stage::Style => Stage::Style,
            wire::Stage::Time => Stage::Time,
            wire::Stage::Weather => Stage::Weather,
            wire::Stage::Character => Stage::Character,
        }
    }
}

impl From<Stage> for wire::Stage {
    fn from(stage: Stage) -> wire::Stage {
        match stage {
            Stage::Style => wire::Stage::Style,
            Stage::Time => wire::Stage::Time,
            Stage::Weather => wire::Stage::Weather,
            Stage::Character => wire::Stage::Character,
        }
    }
}

impl From<&wire::Plan> for StoredPlan {
    fn from(plan: &wire::Plan) -> StoredPlan {
        StoredPlan {
            // Format 1 is written as it always was, without the field.
            format: None,
            project: plan.project.clone(),
            stage: Stage::from(plan.stage),
            time: plan.time.clone(),
            weather: plan.weather.clone(),
            provider: plan.provider.clone(),
            base_url: plan.base_url.clone(),
            model: plan.model.clone(),
            size: plan.size.clone(),
            quality: plan.quality.clone(),
            candidates: plan.candidates,
            style_guide: plan.style_guide.clone(),
            characters: plan.characters.clone(),
            jobs: plan
                .jobs
                .iter()
                .map(|job| Job {
                    key: job.key.clone(),
                    scene: job.scene.clone(),
                    prompt: job.prompt.clone(),
                    prompt_sha256: job.prompt_sha256.clone(),
                    input_images: job
                        .input_images
                        .iter()
                        .map(|input| Input {
                            role: match input.role {
                                wire::InputRole::Scene => Role::Scene,
                                wire::InputRole::Style => Role::Style,
                                wire::InputRole::Character => Role::Character,
                            },
                            asset: input.asset.clone(),
                            path: input.path.clone(),
                            sha256: input.sha256.clone(),
                        })
                        .collect(),
                    endpoint: match job.endpoint {
                        wire::Endpoint::Edits => Endpoint::Edits,
                        wire::Endpoint::Generations => Endpoint::Generations,
                    },
                    candidates: job.candidates,
                    max_cost_usd: job.max_cost_usd,
                    baseline: job.baseline.as_ref().map(|baseline| Baseline {
                        scene_asset: baseline.scene_asset.clone(),
                        asset: baseline.asset.clone(),
                        path: baseline.path.clone(),
                        run: baseline.run.clone(),
                        job: baseline.job.clone(),
                        candidate: baseline.candidate,
                        stage: Stage::from(baseline.stage),
                        approved_at: baseline.approved_at.clone(),
                    }),
                })
                .collect(),
            cost: Cost {
                calls: plan.cost.calls,
                per_call_max_usd: plan.cost.per_call_max_usd,
                max_usd: plan.cost.max_usd,
                price_source: plan.cost.price_source.clone(),
            },
            postprocess: plan.postprocess.clone(),
            settings: plan.settings.clone(),
            warnings: plan.warnings.clone(),
        }
    }
}

impl From<StoredPlan> for wire::Plan {
    fn from(plan: StoredPlan) -> wire::Plan {
        wire::Plan {
            project: plan.project,
            stage: plan.stage.into(),
            time: plan.time,
            weather: plan.weather,
            provider: plan.provider,
            base_url: plan.base_url,
            model: plan.model,
            size: plan.size,
            quality: plan.quality,
            candidates: plan.candidates,
            style_guide: plan.style_guide,
            characters: plan.characters,
            jobs: plan
                .jobs
                .into_iter()
                .map(|job| wire::PlannedJob {
                    key: job.key,
                    scene: job.scene,
                    prompt: job.prompt,
                    prompt_sha256: job.prompt_sha256,
                    input_images: job
                        .input_images
                        .into_iter()
                        .map(|input| wire::InputImage {
                            role: match input.role {
                                Role::Scene => wire::InputRole::Scene,
                                Role::Style => wire::InputRole::Style,
                                Role::Character => wire::InputRole::Character,
                            },
                            asset: input.asset,
                            path: input.path,
                            sha256: input.sha256,
                        })
                        .collect(),
                    endpoint: match job.endpoint {
                        Endpoint::Edits => wire::Endpoint::Edits,
                        Endpoint::Generations => wire::Endpoint::Generations,
                    },
                    candidates: job.candidates,
                    max_cost_usd: job.max_cost_usd,
                    baseline: job.baseline.map(|baseline| wire::Baseline {
                        scene_asset: baseline.scene_asset,
                        asset: baseline.asset,
                        path: baseline.path,
                        run: baseline.run,
                        job: baseline.job,
                        candidate: baseline.candidate,
                        stage: baseline.stage.into(),
                        approved_at: baseline.approved_at,
                    }),
                })
                .collect(),
            cost: wire::CostEstimate {
                calls: plan.cost.calls,
                per_call_max_usd: plan.cost.per_call_max_usd,
                max_usd: plan.cost.max_usd,
                price_source: plan.cost.price_source,
            },
            postprocess: plan.postprocess,
            settings: plan.settings,
            warnings: plan.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan exactly as kromad stored it before the stored format had types of its own.
    const STORED_BEFORE: &str = r#"{"project":"noir","stage":"time","time":"night","provider":"fake","base_url":"http://127.0.0.1:1/v1","model":"gpt-image-2","size":"1024x1536","quality":"high","candidates":2,"style_guide":"ink","characters":["mira"],"jobs":[{"key":"time_1_alley","scene":"alley.png","prompt":"an alley","prompt_sha256":"ab","input_images":[{"role":"scene","asset":"a-1","path":"/p/inputs/alley.png","sha256":"cd"},{"role":"character","path":"/p/references/mira.png"}],"endpoint":"edits","candidates":2,"max_cost_usd":0.5}],"cost":{"calls":2,"per_call_max_usd":0.25,"max_usd":0.5,"price_source":"builtin:gpt-image-2"},"postprocess":["color:cold_rain"],"settings":{"generation":{"quality":"high"}},"warnings":["soon retired"]}"#;

    #[test]
    fn plans_stored_before_read_back_and_are_written_byte_for_byte_the_same() {
        let stored = StoredPlan::read(STORED_BEFORE).expect("format 1");
        let wire: wire::Plan = stored.clone().into();
        assert_eq!(wire.stage, wire::Stage::Time);
        assert_eq!(
            wire.jobs[0].input_images[1].role,
            wire::InputRole::Character
        );
        let again = StoredPlan::from(&wire);
        assert_eq!(again, stored);
        assert_eq!(again.to_json().expect("json"), STORED_BEFORE);
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let newer = STORED_BEFORE.replacen('{', r#"{"format":2,"#, 1);
        let err = StoredPlan::read(&newer).expect_err("newer");
        assert!(matches!(err, ReadError::Newer(2)), "{err}");
        let explicit_one = STORED_BEFORE.replacen('{', r#"{"format":1,"#, 1);
        assert!(StoredPlan::read(&explicit_one).is_ok());
    }
}
