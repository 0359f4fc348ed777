//! `run.*`, `settings.effective`, `image_model.list` and `cost.summary` handlers.
//!
//! The handlers gather what planning needs (settings files, project knowledge, assets, scene
//! files), hand it to the pure planner, and own the spend gates: `run.start` and `run.retry`
//! check the confirmation and reserve the budgets in the same transaction that starts the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::asset::AssetKind;
use protocol::image_model::Lifecycle;
use protocol::run::{CandidateStatus, Plan, PlanParams, RunDetail, RunStatus, RunSummary};
use protocol::{ErrorCode, ErrorKind};

use super::find_project;
use crate::error::ApiError;
use crate::providers::image_models as models;
use crate::runs::planner::{self, ImageRef};
use crate::runs::settings::{self, Layer, Resolved, Settings, Source};
use crate::store::knowledge::{self as knowledge_rows, Entity};
use crate::store::runs::{self as rows, NewCandidate, RunRow};
use crate::store::{NewEvent, ProjectRow, StoreError, asset_queries};
use crate::{Daemon, clock, runs};

/// Reads the settings layers (user, then the project's when given) below `request`.
pub(super) async fn resolve_settings(
    daemon: &Daemon,
    project_root: Option<PathBuf>,
    request: Option<Layer>,
) -> Result<(Resolved, Vec<protocol::settings::SettingsFile>), ApiError> {
    let user = daemon.config.user_settings.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut files = Vec::new();
        let mut layers = Vec::new();
        if let Some(path) = user {
            files.push(protocol::settings::SettingsFile {
                layer: "user".to_owned(),
                path: path.display().to_string(),
                exists: path.is_file(),
            });
            layers.extend(settings::read_file(&path, Source::User(path.clone()))?);
        }
        if let Some(root) = project_root {
            let path = settings::project_file(&root);
            files.insert(
                0,
                protocol::settings::SettingsFile {
                    layer: "project".to_owned(),
                    path: path.display().to_string(),
                    exists: path.is_file(),
                },
            );
            layers.extend(settings::read_file(&path, Source::Project(path.clone()))?);
        }
        Ok::<_, ApiError>((layers, files))
    });
    let (mut layers, files) = read.await.map_err(|err| {
        ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
    })??;
    layers.extend(request);
    Ok((settings::resolve(layers)?, files))
}

fn request_layer(params: &PlanParams) -> Layer {
    let mut values: Vec<(&str, &str, toml::Value)> = Vec::new();
    if let Some(candidates) = params.candidates {
        values.push((
            "generation",
            "candidates",
            toml::Value::Integer(i64::from(candidates)),
        ));
    }
    for (key, value) in [
        ("provider", &params.provider),
        ("model", &params.model),
        ("size", &params.size),
        ("quality", &params.quality),
    ] {
        if let Some(value) = value {
            values.push(("generation", key, toml::Value::String(value.clone())));
        }
    }
    if let Some(postprocess) = &params.postprocess {
        if let Some(color) = &postprocess.color {
            values.push(("postprocess", "color", toml::Value::String(color.clone())));
        }
        if let Some(bg_remove) = postprocess.bg_remove {
            values.push(("postprocess", "bg_remove", toml::Value::Boolean(bg_remove)));
        }
        if let Some(upscale) = postprocess.upscale {
            values.push((
                "postprocess",
                "upscale",
                toml::Value::Integer(i64::from(upscale)),
            ));
        }
    }
    settings::request_layer(&values)
}

fn image_of(root: &Path, asset: &crate::store::AssetRow) -> ImageRef {
    ImageRef {
        asset: Some(asset.id.clone()),
        path: root.join(&asset.rel_path).display().to_string(),
        sha256: Some(asset.sha256.clone()),
    }
}

/// A scene named by the caller: an asset id, or a path to import.
enum SceneSpec {
    Asset(String),
    Path(String),
}

fn scene_specs(scenes: &[String]) -> Result<Vec<SceneSpec>, ApiError> {
    if scenes.is_empty() {
        return Err(
            ApiError::validation(ErrorCode::NoScenes, "a run needs at least one scene")
                .with_hint("name scene assets, image files or a folder of images"),
        );
    }
    scenes
        .iter()
        .map(|scene| {
            if uuid::Uuid::parse_str(scene).is_ok() {
                Ok(SceneSpec::Asset(scene.clone()))
            } else if Path::new(scene).is_absolute() {
                Ok(SceneSpec::Path(scene.clone()))
            } else {
                Err(ApiError::validation(
                    ErrorCode::InvalidScene,
                    format!("scene `{scene}` is neither an asset id nor an absolute path"),
                )
                .with_hint("kromactl sends absolute paths; over the API, pass absolute paths"))
            }
        })
        .collect()
}

/// Expands path scenes into files (folders walked, sorted, image files only). With `import`, each
/// file becomes an `input` asset (content-addressed: the same file twice is one asset).
async fn resolve_scenes(
    daemon: &Daemon,
    project: &ProjectRow,
    specs: Vec<SceneSpec>,
    import: bool,
) -> Result<Vec<planner::Scene>, ApiError> {
    let root = PathBuf::from(&project.root);
    let mut scenes = Vec::new();
    for spec in specs {
        match spec {
            SceneSpec::Asset(id) => {
                let project_id = project.id.clone();
                let asset = daemon
                    .store
                    .read(move |conn| asset_queries::get(conn, &project_id, &id))
                    .await?;
                scenes.push(planner::Scene {
                    name: asset.original_name.clone(),
                    image: image_of(&root, &asset),
                });
            }
            SceneSpec::Path(path) => {
                let named = path.clone();
                let found = tokio::task::spawn_blocking(move || {
                    crate::projects::import::expand(std::slice::from_ref(&named))
                })
                .await
                .map_err(|err| {
                    ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                })?;
                let mut any = false;
                for entry in found {
                    let candidate = entry.map_err(|(_, err)| err)?;
                    if crate::projects::import::has_extension(
                        &candidate.shown,
                        &crate::files::images::UNREAD_EXTENSIONS,
                    ) {
                        return Err(ApiError::validation(
                            ErrorCode::UnsupportedScene,
                            format!(
                                "{}: BMP and TIFF scenes are not supported",
                                candidate.shown.display()
                            ),
                        )
                        .with_hint(
                            "convert it to PNG (or JPEG or WebP), or move it out of the folder",
                        ));
                    }
                    let explicit = candidate.shown == Path::new(&path);
                    if !explicit
                        && !crate::projects::import::has_extension(
                            &candidate.shown,
                            &crate::files::images::EXTENSIONS,
                        )
                    {
                        continue;
                    }
                    any = true;
                    let name = candidate
                        .shown
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if import {
                        let (_, asset) =
                            super::assets::import_one(daemon, project, candidate, AssetKind::Input)
                                .await?;
                        scenes.push(planner::Scene {
                            name: asset.original_name.clone(),
                            image: image_of(&root, &asset),
                        });
                    } else {
                        scenes.push(planner::Scene {
                            name,
                            image: ImageRef {
                                asset: None,
                                path: candidate.real.display().to_string(),
                                sha256: None,
                            },
                        });
                    }
                }
                if !any {
                    return Err(ApiError::validation(
                        ErrorCode::NoScenes,
                        format!(
                            "{path} holds no image files ({})",
                            crate::files::images::EXTENSIONS.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(scenes)
}

/// The project's knowledge the plan uses, read in one go.
struct Knowledge {
    provider: planner::Provider,
    style_guide: Option<planner::StyleGuide>,
    style_refs: Vec<ImageRef>,
    characters: Vec<planner::Character>,
    template: Option<planner::Template>,
    reported: models::Reported,
}

fn read_knowledge(
    conn: &rusqlite::Connection,
    project: &ProjectRow,
    params: &PlanParams,
    provider_name: &str,
) -> Result<Knowledge, StoreError> {
    let root = PathBuf::from(&project.root);
    let images = |ids: &[String]| -> Result<Vec<ImageRef>, StoreError> {
        ids.iter()
            .map(|id| {
                asset_queries::get(conn, &project.id, id).map(|asset| image_of(&root, &asset))
            })
            .collect()
    };
    let provider = crate::store::providers::get(conn, provider_name)?;
    let guide_id = match &params.style_guide {
        Some(key) => Some(knowledge_rows::resolve(
            conn,
            Entity::StyleGuide,
            &project.id,
            key,
        )?),
        None => {
            let mut default = None;
            for id in knowledge_rows::ids(conn, Entity::StyleGuide, &project.id)? {
                if knowledge_rows::get_style_guide(conn, &id)?.is_default {
                    default = Some(id);
                    break;
                }
            }
            default
        }
    };
    let style_guide = match guide_id {
        Some(id) => {
            let guide = knowledge_rows::get_style_guide(conn, &id)?;
            Some(planner::StyleGuide {
                references: images(&guide.references)?,
                name: guide.common.name,
                instructions: guide.instructions,
                palette: guide.palette,
                line: guide.line,
                lighting: guide.lighting,
            })
        }
        None => None,
    };
    let mut style_refs = Vec::new();
    for reference in &params.style_refs {
        if uuid::Uuid::parse_str(reference).is_ok() {
            style_refs.extend(images(std::slice::from_ref(reference))?);
        } else {
            let id = knowledge_rows::resolve(conn, Entity::ReferenceSet, &project.id, reference)?;
            let set = knowledge_rows::get_reference_set(conn, &id)?;
            let ids: Vec<String> = set.items.into_iter().map(|item| item.asset_id).collect();
            style_refs.extend(images(&ids)?);
        }
    }
    let mut characters = Vec::new();
    for key in &params.characters {
        let id = knowledge_rows::resolve(conn, Entity::Character, &project.id, key)?;
        let character = knowledge_rows::get_character(conn, &id)?;
        characters.push(planner::Character {
            references: images(&character.references)?,
            name: character.common.name,
            prompt_text: character.prompt_text,
        });
    }
    let template = match &params.template {
        Some(use_) => {
            let id =
                knowledge_rows::resolve(conn, Entity::PromptTemplate, &project.id, &use_.name)?;
            let template = knowledge_rows::get_prompt_template(conn, &id)?;
            Some(planner::Template {
                name: template.common.name,
                body: template.body,
                variables: template.variables,
                vars: use_.vars.clone(),
            })
        }
        None => None,
    };
    Ok(Knowledge {
        provider: planner::Provider {
            name: provider.name,
            base_url: provider.base_url,
            default_model: provider.default_model,
        },
        style_guide,
        style_refs,
        characters,
        template,
        reported: rows::reported_models(conn)?,
    })
}

/// Plans `params` for `project`; with `import`, path scenes become assets first.
async fn make_plan(
    daemon: &Daemon,
    project: &ProjectRow,
    params: &PlanParams,
    import: bool,
) -> Result<Plan, ApiError> {
    let specs = scene_specs(&params.scenes)?;
    let (resolved, _) = resolve_settings(
        daemon,
        Some(PathBuf::from(&project.root)),
        Some(request_layer(params)),
    )
    .await?;
    check_chain_models(daemon, &resolved.settings).await?;
    let provider_name = resolved.settings.generation.provider.clone();
    let knowledge = {
        let project = project.clone();
        let params = params.clone();
        let lookup = provider_name.clone();
        daemon
            .store
            .read(move |conn| read_knowledge(conn, &project, &params, &lookup))
            .await
            .map_err(|err| match err {
                StoreError::EntityNotFound { what: "provider", .. } => ApiError::validation(
                    ErrorCode::NoProvider,
                    format!("there is no provider account `{provider_name}`"),
                )
                .with_hint(format!(
                    "create it: `kromactl provider create {provider_name} --kind openai`, or pass --provider"
                )),
                other => other.into(),
            })?
    };
    let scenes = resolve_scenes(daemon, project, specs, import).await?;
    let today = clock::today();
    let inputs = planner::Inputs {
        project: project.slug.clone(),
        stage: params.stage,
        time: params.time.clone(),
        weather: params.weather.clone(),
        settings_snapshot: resolved.snapshot(),
        models: models::list(&resolved.settings, &knowledge.reported, &today),
        settings: resolved.settings,
        provider: knowledge.provider,
        scenes,
        style_guide: knowledge.style_guide,
        style_refs: knowledge.style_refs,
        characters: knowledge.characters,
        template: knowledge.template,
    };
    planner::plan(&inputs)
}

/// The local models the post-process chain needs must be installed before anything is spent.
async fn check_chain_models(daemon: &Daemon, settings: &Settings) -> Result<(), ApiError> {
    use crate::postprocess::local_models::{self, ModelKind};
    let chain = &settings.postprocess;
    let named = |name: &str| (!name.is_empty()).then(|| name.to_owned());
    let mut needed = Vec::new();
    if chain.bg_remove {
        needed.push((ModelKind::BgRemoval, named(&chain.bg_model)));
    }
    if chain.upscale != 0 {
        needed.push((ModelKind::Upscale, named(&chain.upscale_model)));
    }
    if needed.is_empty() {
        return Ok(());
    }
    let dir = daemon.config.models_dir.clone();
    tokio::task::spawn_blocking(move || {
        for (kind, name) in needed {
            local_models::find(&dir, kind, name.as_deref()).map_err(|err| {
                let message = format!("the post-process chain cannot run: {}", err.message);
                ApiError { message, ..err }
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}

pub async fn plan(daemon: Arc<Daemon>, params: PlanParams) -> Result<Plan, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    make_plan(&daemon, &project, &params, false).await
}

pub async fn create(
    daemon: Arc<Daemon>,
    params: protocol::run::CreateParams,
) -> Result<RunDetail, ApiError> {
    let project = find_project(&daemon, &params.plan.project).await?;
    let plan = make_plan(&daemon, &project, &params.plan, true).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let at = clock::now();
    let status = if params.dry_run {
        RunStatus::DryRun
    } else {
        RunStatus::Planned
    };
    let record = crate::projects::layout::run_record(Path::new(&project.root), &id);
    let run = RunRow {
        id: id.clone(),
        project_id: project.id.clone(),
        project_slug: project.slug.clone(),
        project_root: project.root.clone(),
        status: status.as_str().to_owned(),
        stage: plan.stage.as_str().to_owned(),
        model: plan.model.clone(),
        provider: plan.provider.clone(),
        plan_json: runs::stored::StoredPlan::from(&plan)
            .to_json()
            .map_err(|err| {
                ApiError::new(
                    ErrorKind::Internal,
                    ErrorCode::Internal,
                    format!("plan: {err}"),
                )
            })?,
        max_cost_usd: plan.cost.max_usd,
        confirmed_cost_usd: None,
        record_path: record.display().to_string(),
        created_at: at.clone(),
        started_at: None,
        finished_at: None,
    };
    let mut candidates = Vec::new();
    for (job_index, job) in plan.jobs.iter().enumerate() {
        for index in 1..=job.candidates {
            candidates.push(NewCandidate {
                id: uuid::Uuid::new_v4().to_string(),
                job_index: job_index as u32,
                job_key: job.key.clone(),
                index,
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                reserved_usd: planner::per_call_usd(job),
            });
        }
    }
    let jobs = plan.jobs.clone();
    let event = NewEvent::of(
        at.clone(),
        Some(project.slug.clone()),
        &protocol::events::RunCreated {
            run: id.clone(),
            status,
            jobs: plan.jobs.len() as u32,
            max_cost_usd: plan.cost.max_usd,
        },
    );
    let detail = daemon
        .store
        .write(move |tx| {
            rows::insert_run(tx, &run, &jobs, &candidates)?;
            let candidates = rows::candidates(tx, &run.id)?;
            let detail = runs::detail(&run, &candidates, 0.0)?;
            Ok::<_, StoreError>((detail, vec![event]))
        })
        .await?;
    write_record(detail.clone()).await?;
    Ok(detail)
}

async fn write_record(detail: RunDetail) -> Result<(), ApiError> {
    tokio::task::spawn_blocking(move || runs::write_record(&detail))
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}

async fn load_detail(daemon: &Daemon, run_id: String) -> Result<RunDetail, ApiError> {
    Ok(daemon
        .store
        .read(move |conn| {
            let run = rows::get_run(conn, &run_id)?;
            let candidates = rows::candidates(conn, &run_id)?;
            let spent = rows::run_spent(conn, &run_id)?;
            runs::detail(&run, &candidates, spent)
        })
        .await?)
}

fn parse_run_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.to_string())
        .map_err(|_| {
            ApiError::validation(
                ErrorCode::InvalidRun,
                format!("`{id}` is not a run id (a UUID)"),
            )
            .with_hint("`kromactl run list` shows the ids")
        })
}

pub async fn show(
    daemon: Arc<Daemon>,
    params: protocol::run::RunRef,
) -> Result<RunDetail, ApiError> {
    load_detail(&daemon, parse_run_id(&params.run)?).await
}

pub async fn list(
    daemon: Arc<Daemon>,
    params: protocol::run::ListParams,
) -> Result<protocol::run::RunList, ApiError> {
    let limit = match params.limit.unwrap_or(50) {
        limit @ 1..=1000 => limit,
        _ => {
            return Err(ApiError::validation(
                ErrorCode::InvalidLimit,
                "limit must be between 1 and 1000",
            ));
        }
    };
    let project_id = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?.id),
        None => None,
    };
    let status = params.status.map(|status| status.as_str().to_owned());
    let runs = daemon
        .store
        .read(move |conn| {
            rows::list_runs(conn, project_id.as_deref(), status.as_deref(), limit)?
                .iter()
                .map(|run| {
                    let candidates = rows::candidates(conn, &run.id)?;
                    let spent = rows::run_spent(conn, &run.id)?;
                    runs::summary(run, &candidates, spent)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(protocol::run::RunList { runs })
}

/// Money confirmed by a human must be a real, non-negative amount.
fn parse_confirmation(usd: f64) -> Result<f64, ApiError> {
    if usd.is_finite() && usd >= 0.0 {
        Ok(usd)
    } else {
        Err(ApiError::validation(
            ErrorCode::InvalidConfirmation,
            "confirm_cost_usd must be a number ≥ 0",
        ))
    }
}

fn usd(amount: f64) -> String {
    format!("${amount:.4}")
}

/// Checks that `amount` more can be reserved for `project` without breaking a budget. Called
/// inside the transaction that reserves it, so concurrent starts cannot both pass.
fn check_budgets(
    conn: &rusqlite::Connection,
    project_id: &str,
    budget: &settings::Budget,
    amount: f64,
) -> Result<(), ApiError> {
    let (spent_total, spent_today) = rows::project_spend(conn, project_id, &clock::today())?;
    let reserved = rows::project_reserved(conn, project_id)?;
    let over = |cap: Option<f64>, spent: f64| {
        cap.filter(|cap| *cap > 0.0)
            .filter(|cap| spent + reserved + amount > *cap + 1e-9)
    };
    if let Some(cap) = over(budget.project_usd, spent_total) {
        return Err(ApiError::new(
            ErrorKind::Policy,
            ErrorCode::BudgetExceeded,
            format!(
                "the project budget is {}: {} spent + {} held by running runs + {} for this run would exceed it",
                usd(cap), usd(spent_total), usd(reserved), usd(amount)
            ),
        )
        .with_hint("raise budget.project_usd in the project's .kroma/settings.toml, or plan fewer candidates"));
    }
    if let Some(cap) = over(budget.daily_usd, spent_today) {
        return Err(ApiError::new(
            ErrorKind::Policy,
            ErrorCode::BudgetExceeded,
            format!(
                "the daily budget is {}: {} spent today + {} held by running runs + {} for this run would exceed it",
                usd(cap), usd(spent_today), usd(reserved), usd(amount)
            ),
        )
        .with_hint("wait for tomorrow (UTC), or raise budget.daily_usd in the settings"));
    }
    Ok(())
}

/// Checks what must hold before money is spent: the key can be read and the model is not retired.
async fn preflight(daemon: &Daemon, plan: &Plan, resolved: &Resolved) -> Result<(), ApiError> {
    let provider_name = plan.provider.clone();
    let provider = daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await?;
    let secrets = daemon.secrets.get().await;
    let secret = provider.secret_name.clone();
    let readable = tokio::task::spawn_blocking(move || secrets.get(&secret).map(|_| ()))
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    if let Err(err) = readable {
        return Err(ApiError::new(
            ErrorKind::Provider,
            ErrorCode::NoKey,
            format!(
                "the key of provider `{}` (secret `{}`) cannot be read: {err}",
                provider.name, provider.secret_name
            ),
        )
        .with_hint(format!(
            "store it with `kromactl secret set {}`, then start again",
            provider.secret_name
        )));
    }
    let reported = daemon.store.read(rows::reported_models).await?;
    let today = clock::today();
    let models = models::list(&resolved.settings, &reported, &today);
    if let Some(model) = models.iter().find(|model| model.id == plan.model)
        && model.lifecycle == Lifecycle::Retired
    {
        return Err(ApiError::validation(
            ErrorCode::ModelRetired,
            format!(
                "model `{}` was shut down on {}",
                plan.model,
                model.shutdown_date.as_deref().unwrap_or("?")
            ),
        )
        .with_hint(match &model.replacement {
            Some(replacement) => format!("create a new run with --model {replacement}"),
            None => "create a new run with another model (`kromactl image-models list`)".to_owned(),
        }));
    }
    Ok(())
}

/// A human's confirmation must cover the most `what` can cost.
fn check_confirmation(confirmed: f64, max: f64, what: &str, command: &str) -> Result<(), ApiError> {
    if confirmed + 1e-9 >= max {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::Policy,
        ErrorCode::ConfirmationTooLow,
        format!(
            "{what} can cost up to {}; the confirmation covers {}",
            usd(max),
            usd(confirmed)
        ),
    )
    .with_hint(format!("confirm at least {max} ({command})")))
}

/// The checks before a run spends (key readable, model not retired), answering the budgets to
/// reserve against.
async fn spend_gate(daemon: &Daemon, detail: &RunDetail) -> Result<settings::Budget, ApiError> {
    let project = find_project(daemon, &detail.run.project).await?;
    let (resolved, _) = resolve_settings(daemon, Some(PathBuf::from(&project.root)), None).await?;
    preflight(daemon, &detail.plan, &resolved).await?;
    Ok(resolved.settings.budget)
}

pub async fn start(
    daemon: Arc<Daemon>,
    params: protocol::run::StartParams,
) -> Result<RunSummary, ApiError> {
    let id = parse_run_id(&params.plan_id)?;
    let confirmed = parse_confirmation(params.confirm_cost_usd)?;
    let detail = load_detail(&daemon, id.clone()).await?;
    match detail.run.status {
        RunStatus::Planned => {}
        RunStatus::DryRun => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                ErrorCode::DryRun,
                "a dry run is a record only and cannot be started",
            )
            .with_hint("create the run again without --dry-run"));
        }
        other => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                ErrorCode::AlreadyStarted,
                format!("run {id} is {}, not planned", other.as_str()),
            )
            .with_hint("`kromactl run retry` calls again for what did not succeed"));
        }
    }
    let max = detail.plan.cost.max_usd;
    check_confirmation(
        confirmed,
        max,
        "the run",
        &format!("kromactl run start {id} --yes --max-cost {max}"),
    )?;
    let budget = spend_gate(&daemon, &detail).await?;
    let at = clock::now();
    let summary = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &id)?;
            if run.status != "planned" {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    ErrorCode::AlreadyStarted,
                    format!("run {id} was started meanwhile"),
                ));
            }
            check_budgets(tx, &run.project_id, &budget, run.max_cost_usd)?;
            rows::start_run(tx, &id, confirmed, &at)?;
            let run = rows::get_run(tx, &id)?;
            let candidates = rows::candidates(tx, &id)?;
            let summary = runs::summary(&run, &candidates, 0.0)?;
            let event = NewEvent::of(
                at.clone(),
                Some(run.project_slug.clone()),
                &protocol::events::RunStarted {
                    run: id.clone(),
                    retry: false,
                    candidates: candidates.len() as u32,
                    chains: None,
                    confirmed_cost_usd: confirmed,
                    max_cost_usd: run.max_cost_usd,
                },
            );
            Ok::<_, ApiError>((summary, vec![event]))
        })
        .await?;
    daemon.runner.wake();
    Ok(summary)
}

pub async fn cancel(
    daemon: Arc<Daemon>,
    params: protocol::run::RunRef,
) -> Result<RunSummary, ApiError> {
    let id = parse_run_id(&params.run)?;
    let at = clock::now();
    let run_id = id.clone();
    daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &run_id)?;
            match run.status.as_str() {
                "planned" => {
                    rows::cancel_planned(tx, &run_id, &at)?;
                    rows::set_run_status(tx, &run_id, "canceled", Some(&at))?;
                }
                "running" => {
                    rows::cancel_planned(tx, &run_id, &at)?;
                    rows::set_run_status(tx, &run_id, "canceling", None)?;
                }
                "canceling" => {}
                other => {
                    return Err(ApiError::new(
                        ErrorKind::Conflict,
                        ErrorCode::NotCancelable,
                        format!(
                            "run {run_id} is {other}; only planned or running runs can be canceled"
                        ),
                    ));
                }
            }
            Ok::<_, ApiError>(((), Vec::new()))
        })
        .await?;
    // Closes the run now if nothing is in flight, else when the last call is recorded.
    crate::runs::runner::finish_run_if_done(&daemon, &id).await?;
    let detail = load_detail(&daemon, id).await?;
    if detail.run.status == RunStatus::Canceled {
        write_record(detail.clone()).await?;
    }
    Ok(detail.run)
}

pub async fn retry(
    daemon: Arc<Daemon>,
    params: protocol::run::RetryParams,
) -> Result<RunSummary, ApiError> {
    let id = parse_run_id(&params.run)?;
    let confirmed = parse_confirmation(params.confirm_cost_usd)?;
    let detail = load_detail(&daemon, id.clone()).await?;
    if !matches!(
        detail.run.status,
        RunStatus::Done | RunStatus::Partial | RunStatus::Failed | RunStatus::Canceled
    ) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            ErrorCode::NotRetryable,
            format!(
                "run {id} is {}; retry a finished run",
                detail.run.status.as_str()
            ),
        )
        .with_hint("wait for it to finish (`kromactl run watch`), or cancel it first"));
    }
    let statuses: &'static [&'static str] = if params.only_failed {
        &["failed"]
    } else {
        &["failed", "unknown", "canceled"]
    };
    let per_call: Vec<f64> = detail.plan.jobs.iter().map(planner::per_call_usd).collect();
    let retried: Vec<(u32, u32)> = detail
        .jobs
        .iter()
        .enumerate()
        .flat_map(|(job_index, job)| {
            job.candidates
                .iter()
                .filter(|c| statuses.contains(&c.status.as_str()))
                .map(move |c| (job_index as u32, c.index))
        })
        .collect();
    // Chains that failed on a generated image run again too: that costs nothing.
    let chains = detail
        .jobs
        .iter()
        .flat_map(|job| &job.candidates)
        .filter(|c| {
            c.status == CandidateStatus::Succeeded && c.postprocess.as_deref() == Some("failed")
        })
        .count();
    if retried.is_empty() && chains == 0 {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            ErrorCode::NothingToRetry,
            format!(
                "run {id} has no {} candidates and no failed post-process chain",
                statuses.join(" or ")
            ),
        ));
    }
    let max = models::round_usd(retried.iter().map(|(job, _)| per_call[*job as usize]).sum());
    check_confirmation(
        confirmed,
        max,
        &format!("retrying {} calls", retried.len()),
        &format!("kromactl run retry {id} --yes --max-cost {max}"),
    )?;
    // Chains alone spend nothing: no key, model or budget check for them.
    let budget = if retried.is_empty() {
        settings::Budget::default()
    } else {
        spend_gate(&daemon, &detail).await?
    };
    let at = clock::now();
    let run_id = id.clone();
    let summary = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &run_id)?;
            if run.status.as_str() == "running" || run.status.as_str() == "canceling" {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    ErrorCode::NotRetryable,
                    format!("run {run_id} was started again meanwhile"),
                ));
            }
            check_budgets(tx, &run.project_id, &budget, max)?;
            let reset = rows::reset_for_retry(tx, &run_id, statuses, |job| per_call[job as usize])?;
            let chains = rows::reset_failed_chains(tx, &run_id)?;
            rows::start_run(tx, &run_id, confirmed, &at)?;
            let run = rows::get_run(tx, &run_id)?;
            let candidates = rows::candidates(tx, &run_id)?;
            let spent = rows::run_spent(tx, &run_id)?;
            let summary = runs::summary(&run, &candidates, spent)?;
            let event = NewEvent::of(
                at.clone(),
                Some(run.project_slug.clone()),
                &protocol::events::RunStarted {
                    run: run_id.clone(),
                    retry: true,
                    candidates: reset.len() as u32,
                    chains: Some(chains.len() as u32),
                    confirmed_cost_usd: confirmed,
                    max_cost_usd: max,
                },
            );
            Ok::<_, ApiError>(((summary, chains), vec![event]))
        })
        .await?;
    let (summary, chains) = summary;
    for candidate in chains {
        daemon.runner.run_chain(daemon.clone(), candidate);
    }
    daemon.runner.wake();
    Ok(summary)
}

pub async fn settings_effective(
    daemon: Arc<Daemon>,
    params: protocol::settings::EffectiveParams,
) -> Result<protocol::settings::EffectiveSettings, ApiError> {
    let root = match &params.project {
        Some(slug) => Some(PathBuf::from(find_project(&daemon, slug).await?.root)),
        None => None,
    };
    let (resolved, files) = resolve_settings(&daemon, root, None).await?;
    Ok(protocol::settings::EffectiveSettings {
        settings: resolved.entries(),
        files,
    })
}

pub async fn model_list(
    daemon: Arc<Daemon>,
    params: protocol::image_model::ListParams,
) -> Result<protocol::image_model::ModelList, ApiError> {
    if let Some(name) = &params.refresh {
        let lookup = name.clone();
        let provider = daemon
            .store
            .read(move |conn| crate::store::providers::get(conn, &lookup))
            .await?;
        let secrets = daemon.secrets.get().await;
        let secret = provider.secret_name.clone();
        let key = tokio::task::spawn_blocking(move || secrets.get(&secret))
            .await
            .map_err(|err| {
                ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })?
            .map_err(|err| {
                ApiError::new(
                    ErrorKind::Provider,
                    ErrorCode::NoKey,
                    format!("the key of provider `{name}` cannot be read: {err}"),
                )
                .with_hint(format!(
                    "store it with `kromactl secret set {}`",
                    provider.secret_name
                ))
            })?
            .0;
        let account = crate::providers::Account {
            name: &provider.name,
            base_url: &provider.base_url,
            organization: provider.organization.as_deref(),
        };
        let listed = crate::providers::list_models(
            daemon.http()?,
            &account,
            &key,
            daemon.secrets.scrubber(),
        )
        .await
        .map_err(|message| {
            ApiError::new(ErrorKind::Provider, ErrorCode::ProviderUnreachable, message)
                .with_hint(format!("check it with `kromactl provider check {name}`"))
        })?;
        let at = clock::now();
        let provider_name = provider.name.clone();
        daemon
            .store
            .write(move |tx| {
                rows::put_reported_models(tx, &provider_name, &listed, &at)?;
                Ok::<_, StoreError>(((), Vec::new()))
            })
            .await?;
    }
    let (resolved, _) = resolve_settings(&daemon, None, None).await?;
    let reported = daemon.store.read(rows::reported_models).await?;
    let today = clock::today();
    Ok(protocol::image_model::ModelList {
        models: models::list(&resolved.settings, &reported, &today),
        today,
    })
}

/// `YYYY-MM-DD` or an RFC 3339 time, as the `at >= since` bound.
fn parse_since(since: &str) -> Result<String, ApiError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(since, &Rfc3339) {
        return Ok(clock::format(at));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(since, &date_format) {
        return Ok(clock::format(date.midnight().assume_utc()));
    }
    Err(ApiError::validation(
        ErrorCode::InvalidSince,
        format!("`{since}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
    ))
}

pub async fn cost_summary(
    daemon: Arc<Daemon>,
    params: protocol::cost::SummaryParams,
) -> Result<protocol::cost::CostSummary, ApiError> {
    let project_id = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?.id),
        None => None,
    };
    let since = params.since.as_deref().map(parse_since).transpose()?;
    Ok(daemon
        .store
        .read(move |conn| {
            let project = project_id.as_deref();
            let since = since.as_deref();
            let lines = |group: &str| -> Result<Vec<protocol::cost::CostLine>, StoreError> {
                Ok(rows::cost_lines(conn, group, project, since)?
                    .into_iter()
                    .map(|(key, calls, usd)| protocol::cost::CostLine {
                        key,
                        calls,
                        usd: models::round_usd(usd),
                    })
                    .collect())
            };
            let (calls, usd, from_usage) = rows::cost_totals(conn, project, since)?;
            Ok(protocol::cost::CostSummary {
                calls,
                usd: models::round_usd(usd),
                usd_from_usage: models::round_usd(from_usage),
                by_project: lines("project")?,
                by_model: lines("model")?,
                by_day: lines("day")?,
                reserved_usd: models::round_usd(rows::total_reserved(conn, project)?),
            })
        })
        .await?)
}
