//! What planning needs, gathered from disk and the store: the settings layers, the scenes
//! (asset ids, files or folders), the project's knowledge, and the models a chain runs. Callable
//! without a JSON-RPC handler (drop folders plan runs too); the planner itself is pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::asset::AssetKind;
use protocol::run::{Plan, PlanParams};
use protocol::{Action, ErrorCode, ErrorKind};

use crate::Daemon;
use crate::error::{Hint, Problem};
use crate::providers::image_models as models;
use crate::runs::planner::{self, ImageRef};
use crate::runs::settings::{self, Layer, Resolved, Settings, Source};
use crate::store::knowledge::{self as knowledge_rows, Entity};
use crate::store::runs::{self as rows};
use crate::store::{ProjectRow, StoreError, asset_queries};

/// Reads the settings layers (user, then the project's when given) below `request`.
pub(crate) async fn resolve_settings(
    daemon: &Daemon,
    project_root: Option<PathBuf>,
    request: Option<Layer>,
) -> Result<(Resolved, Vec<protocol::settings::SettingsFile>), Problem> {
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
        Ok::<_, Problem>((layers, files))
    });
    let (mut layers, files) = read
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))??;
    layers.extend(request);
    Ok((settings::resolve(layers)?, files))
}

pub(crate) fn request_layer(params: &PlanParams) -> Layer {
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

pub(crate) fn image_of(
    root: &Path,
    asset: &crate::store::AssetRow,
) -> Result<ImageRef, StoreError> {
    // A voice recording is an asset too, but never an image a run may send.
    if asset.kind == AssetKind::Audio {
        return Err(StoreError::NotAnImage(asset.id.clone()));
    }
    Ok(ImageRef {
        asset: Some(asset.id.clone()),
        path: root.join(&asset.rel_path).display().to_string(),
        sha256: Some(asset.sha256.clone()),
    })
}

/// A scene named by the caller: an asset id, or a path to import.
pub(crate) enum SceneSpec {
    Asset(String),
    Path(String),
}

pub(crate) fn scene_specs(scenes: &[String]) -> Result<Vec<SceneSpec>, Problem> {
    if scenes.is_empty() {
        return Err(
            Problem::validation(ErrorCode::NoScenes, "a run needs at least one scene")
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
                Err(Problem::validation(
                    ErrorCode::InvalidScene,
                    format!("scene `{scene}` is neither an asset id nor an absolute path"),
                )
                .with_hint("name each scene by asset id or absolute path: kromad does not share the caller's working directory"))
            }
        })
        .collect()
}

/// Expands path scenes into files (folders walked, sorted, image files only). With `import`, each
/// file becomes an `input` asset (content-addressed: the same file twice is one asset).
pub(crate) async fn resolve_scenes(
    daemon: &Daemon,
    project: &ProjectRow,
    specs: Vec<SceneSpec>,
    import: bool,
) -> Result<Vec<planner::Scene>, Problem> {
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
                    image: image_of(&root, &asset)?,
                });
            }
            SceneSpec::Path(path) => {
                let named = path.clone();
                let found = tokio::task::spawn_blocking(move || {
                    crate::projects::import::expand(std::slice::from_ref(&named))
                })
                .await
                .map_err(|err| {
                    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                })?;
                let mut any = false;
                for entry in found {
                    let candidate = entry.map_err(|(_, err)| err)?;
                    if crate::projects::import::has_extension(
                        &candidate.shown,
                        &crate::files::images::UNREAD_EXTENSIONS,
                    ) {
                        return Err(Problem::validation(
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
                        let (_, asset) = crate::api::assets::import_one(
                            daemon,
                            project,
                            candidate,
                            AssetKind::Input,
                        )
                        .await?;
                        scenes.push(planner::Scene {
                            name: asset.original_name.clone(),
                            image: image_of(&root, &asset)?,
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
                    return Err(Problem::validation(
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
pub(crate) struct Knowledge {
    provider: planner::Provider,
    style_guide: Option<planner::StyleGuide>,
    style_refs: Vec<ImageRef>,
    characters: Vec<planner::Character>,
    template: Option<planner::Template>,
    reported: models::Reported,
}

pub(crate) fn read_knowledge(
    conn: &rusqlite::Connection,
    project: &ProjectRow,
    params: &PlanParams,
    provider_name: &str,
) -> Result<Knowledge, StoreError> {
    let root = PathBuf::from(&project.root);
    let images = |ids: &[String]| -> Result<Vec<ImageRef>, StoreError> {
        ids.iter()
            .map(|id| {
                asset_queries::get(conn, &project.id, id).and_then(|asset| image_of(&root, &asset))
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
pub(crate) async fn make_plan(
    daemon: &Daemon,
    project: &ProjectRow,
    params: &PlanParams,
    import: bool,
) -> Result<Plan, Problem> {
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
                StoreError::EntityNotFound {
                    what: "provider", ..
                } => Problem::validation(
                    ErrorCode::NoProvider,
                    format!("there is no provider account `{provider_name}`"),
                )
                .with_hint(Hint::new(
                    format!("create provider account `{provider_name}`, or name another provider"),
                    Action::call::<protocol::provider::Create>(
                        [
                            ("name", provider_name.as_str().into()),
                            ("kind", "openai".into()),
                        ],
                        &[],
                    ),
                )),
                other => other.into(),
            })?
    };
    let scenes = resolve_scenes(daemon, project, specs, import).await?;
    let baselines = if params.stage == protocol::run::Stage::Style {
        BTreeMap::new()
    } else {
        baselines_of(daemon, project, &scenes).await?
    };
    let today = daemon.clock.today();
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
        baselines,
    };
    planner::plan(&inputs)
}

/// The approved baseline of each scene that has one, by the scene image's path. A scene named
/// by a file not imported yet is matched by its content.
async fn baselines_of(
    daemon: &Daemon,
    project: &ProjectRow,
    scenes: &[planner::Scene],
) -> Result<BTreeMap<String, (protocol::run::Baseline, ImageRef)>, Problem> {
    let project = project.clone();
    let scenes: Vec<(String, Option<String>, Option<String>)> = scenes
        .iter()
        .map(|scene| {
            (
                scene.image.path.clone(),
                scene.image.asset.clone(),
                scene.image.sha256.clone(),
            )
        })
        .collect();
    Ok(daemon
        .store
        .read(move |conn| {
            let approved = rows::baselines(conn, &project.id)?;
            let root = Path::new(&project.root);
            let mut found = BTreeMap::new();
            for (path, asset, sha256) in scenes {
                let scene_asset = match (asset, sha256) {
                    (Some(asset), _) => Some(asset),
                    (None, Some(sha)) => {
                        asset_queries::find_by_sha(conn, &project.id, &sha)?.map(|row| row.id)
                    }
                    (None, None) => None,
                };
                let Some(scene_asset) = scene_asset else {
                    continue;
                };
                let Some(row) = approved.iter().find(|b| b.scene_asset_id == scene_asset) else {
                    continue;
                };
                let image = asset_queries::get(conn, &project.id, &row.asset_id)?;
                let full = root.join(&image.rel_path).display().to_string();
                found.insert(
                    path,
                    (
                        baseline_to_proto(row, &full)?,
                        ImageRef {
                            asset: Some(image.id.clone()),
                            path: full,
                            sha256: Some(image.sha256.clone()),
                        },
                    ),
                );
            }
            Ok::<_, StoreError>(found)
        })
        .await?)
}

/// A stored baseline as the wire shows it; `path` is the approved image's absolute path.
pub(crate) fn baseline_to_proto(
    row: &rows::BaselineRow,
    path: &str,
) -> Result<protocol::run::Baseline, StoreError> {
    Ok(protocol::run::Baseline {
        scene_asset: row.scene_asset_id.clone(),
        asset: row.asset_id.clone(),
        path: path.to_owned(),
        run: row.run_id.clone(),
        job: row.job_key.clone(),
        candidate: row.candidate_index,
        stage: crate::runs::parse_stored("stage", &row.stage)?,
        approved_at: row.approved_at.clone(),
    })
}

/// The local models the post-process chain needs must be installed before anything is spent.
pub(crate) async fn check_chain_models(
    daemon: &Daemon,
    settings: &Settings,
) -> Result<(), Problem> {
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
                Problem { message, ..err }
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}
