//! `style_guide.*`, `character.*`, `reference_set.*` and `prompt_template.*` handlers: validate
//! with `crate::knowledge`, then read-modify-write the row and its references in one transaction.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::knowledge as wire;
use protocol::{ErrorCode, ErrorKind};

use super::{find_project, unconfirmed_delete};
use crate::Daemon;
use crate::error::ApiError;
use crate::knowledge::{self, parse_name, parse_references, parse_required_text, parse_text};
use crate::store::knowledge::{
    self as rows, CharacterRow, Common, Entity, ItemRow, PromptTemplateRow, ReferenceSetRow,
    StyleGuideRow,
};
use crate::store::{NewEvent, StoreError};

/// The `*.changed` event of `entity`'s kind.
fn changed(
    entity: Entity,
    project: &str,
    action: protocol::events::Change,
    common: &Common,
) -> NewEvent {
    let at = common.updated_at.clone();
    let project = Some(project.to_owned());
    let (id, name) = (common.id.clone(), common.name.clone());
    match entity {
        Entity::StyleGuide => NewEvent::of(
            at,
            project,
            &protocol::events::StyleGuideChanged { action, id, name },
        ),
        Entity::Character => NewEvent::of(
            at,
            project,
            &protocol::events::CharacterChanged { action, id, name },
        ),
        Entity::ReferenceSet => NewEvent::of(
            at,
            project,
            &protocol::events::ReferenceSetChanged { action, id, name },
        ),
        Entity::PromptTemplate => NewEvent::of(
            at,
            project,
            &protocol::events::PromptTemplateChanged { action, id, name },
        ),
    }
}

fn new_common(project_slug: &str, name: String, at: String) -> Common {
    Common {
        id: uuid::Uuid::new_v4().to_string(),
        project_slug: project_slug.to_owned(),
        name,
        created_at: at.clone(),
        updated_at: at,
    }
}

fn optional_text(field: &str, value: Option<&String>) -> Result<Option<String>, ApiError> {
    value.map(|text| parse_text(field, text)).transpose()
}

/// Deletes any knowledge entity once confirmed; `after` runs in the same transaction (e.g.
/// promote a default).
async fn delete_entity(
    daemon: &Daemon,
    entity: Entity,
    params: wire::DeleteParams,
    after: fn(&rusqlite::Connection, &str) -> Result<(), StoreError>,
) -> Result<wire::Deleted, ApiError> {
    if !params.confirm {
        let what = format!("{} `{}`", entity.what(), params.id);
        let known = [
            ("project", params.project.as_str().into()),
            ("id", params.id.as_str().into()),
        ];
        return Err(match entity {
            Entity::StyleGuide => unconfirmed_delete::<wire::style_guide::Delete>(&what, known),
            Entity::Character => unconfirmed_delete::<wire::character::Delete>(&what, known),
            Entity::ReferenceSet => unconfirmed_delete::<wire::reference_set::Delete>(&what, known),
            Entity::PromptTemplate => {
                unconfirmed_delete::<wire::prompt_template::Delete>(&what, known)
            }
        });
    }
    let project = find_project(daemon, &params.project).await?;
    let clock = daemon.clock;
    let deleted = daemon
        .store
        .write(move |tx| {
            let id = rows::resolve(tx, entity, &project.id, &params.id)?;
            let name = rows::delete(tx, entity, &id)?;
            after(tx, &project.id)?;
            let common = Common {
                id: id.clone(),
                project_slug: project.slug.clone(),
                name: name.clone(),
                created_at: String::new(),
                updated_at: clock.now(),
            };
            let event = changed(
                entity,
                &project.slug,
                protocol::events::Change::Deleted,
                &common,
            );
            Ok::<_, StoreError>((wire::Deleted { id, name }, vec![event]))
        })
        .await?;
    Ok(deleted)
}

/// Reads the row of one knowledge entity, named by id or name.
async fn read_one<R: Send + 'static>(
    daemon: &Daemon,
    entity: Entity,
    params: wire::EntityRef,
    get: fn(&rusqlite::Connection, &str) -> Result<R, StoreError>,
) -> Result<R, ApiError> {
    let project = find_project(daemon, &params.project).await?;
    let row = daemon
        .store
        .read(move |conn| get(conn, &rows::resolve(conn, entity, &project.id, &params.id)?))
        .await?;
    Ok(row)
}

/// Reads the rows of every entity of one kind in a project.
async fn read_all<R: Send + 'static>(
    daemon: &Daemon,
    entity: Entity,
    params: wire::ProjectParams,
    get: fn(&rusqlite::Connection, &str) -> Result<R, StoreError>,
) -> Result<Vec<R>, ApiError> {
    let project = find_project(daemon, &params.project).await?;
    let rows = daemon
        .store
        .read(move |conn| {
            rows::ids(conn, entity, &project.id)?
                .iter()
                .map(|id| get(conn, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(rows)
}

// ---- style guides ----

pub async fn style_guide_create(
    daemon: Arc<Daemon>,
    params: wire::StyleGuideCreate,
) -> Result<wire::StyleGuide, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = parse_name("style guide", &params.name)?;
    let mut guide = StyleGuideRow {
        common: new_common(&project.slug, name.name, daemon.clock.now()),
        instructions: parse_required_text("instructions", &params.instructions)?,
        palette: parse_text("palette", &params.palette)?,
        line: parse_text("line", &params.line)?,
        lighting: parse_text("lighting", &params.lighting)?,
        notes: parse_text("notes", &params.notes)?,
        is_default: params.is_default,
        references: parse_references(&params.reference_assets)?,
    };
    let saved = daemon
        .store
        .write(move |tx| {
            guide.is_default |= !rows::has_style_guides(tx, &project.id)?;
            rows::put_style_guide(tx, &project.id, &guide)?;
            let saved = rows::get_style_guide(tx, &guide.common.id)?;
            let event = changed(
                Entity::StyleGuide,
                &project.slug,
                protocol::events::Change::Created,
                &saved.common,
            );
            Ok::<_, StoreError>((saved, vec![event]))
        })
        .await?;
    Ok(style_guide_to_proto(&saved))
}

pub async fn style_guide_update(
    daemon: Arc<Daemon>,
    params: wire::StyleGuideUpdate,
) -> Result<wire::StyleGuide, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = params
        .name
        .as_deref()
        .map(|name| parse_name("style guide", name))
        .transpose()?;
    let instructions = params
        .instructions
        .as_deref()
        .map(|text| parse_required_text("instructions", text))
        .transpose()?;
    let palette = optional_text("palette", params.palette.as_ref())?;
    let line = optional_text("line", params.line.as_ref())?;
    let lighting = optional_text("lighting", params.lighting.as_ref())?;
    let notes = optional_text("notes", params.notes.as_ref())?;
    let references = params
        .reference_assets
        .as_deref()
        .map(parse_references)
        .transpose()?;
    let clock = daemon.clock;
    let saved = daemon
        .store
        .write(move |tx| {
            let id = rows::resolve(tx, Entity::StyleGuide, &project.id, &params.id)?;
            let mut guide = rows::get_style_guide(tx, &id)?;
            if params.is_default == Some(false) && guide.is_default {
                return Err(ApiError::validation(
                    ErrorCode::DefaultRequired,
                    format!(
                        "`{}` is the default style guide; a project keeps one while it has any",
                        guide.common.name
                    ),
                )
                .with_hint("make another guide the default instead"));
            }
            if let Some(name) = name {
                guide.common.name = name.name;
            }
            guide.instructions = instructions.unwrap_or(guide.instructions);
            guide.palette = palette.unwrap_or(guide.palette);
            guide.line = line.unwrap_or(guide.line);
            guide.lighting = lighting.unwrap_or(guide.lighting);
            guide.notes = notes.unwrap_or(guide.notes);
            guide.references = references.unwrap_or(guide.references);
            guide.is_default |= params.is_default == Some(true);
            guide.common.updated_at = clock.now();
            rows::put_style_guide(tx, &project.id, &guide)?;
            let saved = rows::get_style_guide(tx, &id)?;
            let event = changed(
                Entity::StyleGuide,
                &project.slug,
                protocol::events::Change::Updated,
                &saved.common,
            );
            Ok::<_, ApiError>((saved, vec![event]))
        })
        .await?;
    Ok(style_guide_to_proto(&saved))
}

pub async fn style_guide_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::StyleGuide, ApiError> {
    let row = read_one(&daemon, Entity::StyleGuide, params, rows::get_style_guide).await?;
    Ok(style_guide_to_proto(&row))
}

pub async fn style_guide_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::StyleGuideList, ApiError> {
    let rows = read_all(&daemon, Entity::StyleGuide, params, rows::get_style_guide).await?;
    Ok(wire::StyleGuideList {
        style_guides: rows.iter().map(style_guide_to_proto).collect(),
    })
}

pub async fn style_guide_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, ApiError> {
    delete_entity(
        &daemon,
        Entity::StyleGuide,
        params,
        rows::ensure_default_style_guide,
    )
    .await
}

fn style_guide_to_proto(row: &StyleGuideRow) -> wire::StyleGuide {
    wire::StyleGuide {
        id: row.common.id.clone(),
        project: row.common.project_slug.clone(),
        name: row.common.name.clone(),
        instructions: row.instructions.clone(),
        palette: row.palette.clone(),
        line: row.line.clone(),
        lighting: row.lighting.clone(),
        notes: row.notes.clone(),
        reference_assets: row.references.clone(),
        is_default: row.is_default,
        created_at: row.common.created_at.clone(),
        updated_at: row.common.updated_at.clone(),
    }
}

// ---- characters ----

pub async fn character_create(
    daemon: Arc<Daemon>,
    params: wire::CharacterCreate,
) -> Result<wire::Character, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = parse_name("character", &params.name)?;
    let character = CharacterRow {
        common: new_common(&project.slug, name.name, daemon.clock.now()),
        description: parse_text("description", &params.description)?,
        prompt_text: parse_text("prompt_text", &params.prompt_text)?,
        identity_notes: parse_text("identity_notes", &params.identity_notes)?,
        references: parse_references(&params.reference_assets)?,
    };
    let saved = daemon
        .store
        .write(move |tx| {
            rows::put_character(tx, &project.id, &character)?;
            let saved = rows::get_character(tx, &character.common.id)?;
            let event = changed(
                Entity::Character,
                &project.slug,
                protocol::events::Change::Created,
                &saved.common,
            );
            Ok::<_, StoreError>((saved, vec![event]))
        })
        .await?;
    Ok(character_to_proto(&saved))
}

pub async fn character_update(
    daemon: Arc<Daemon>,
    params: wire::CharacterUpdate,
) -> Result<wire::Character, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = params
        .name
        .as_deref()
        .map(|name| parse_name("character", name))
        .transpose()?;
    let description = optional_text("description", params.description.as_ref())?;
    let prompt_text = optional_text("prompt_text", params.prompt_text.as_ref())?;
    let identity_notes = optional_text("identity_notes", params.identity_notes.as_ref())?;
    let references = params
        .reference_assets
        .as_deref()
        .map(parse_references)
        .transpose()?;
    let clock = daemon.clock;
    let saved = daemon
        .store
        .write(move |tx| {
            let id = rows::resolve(tx, Entity::Character, &project.id, &params.id)?;
            let mut character = rows::get_character(tx, &id)?;
            if let Some(name) = name {
                character.common.name = name.name;
            }
            character.description = description.unwrap_or(character.description);
            character.prompt_text = prompt_text.unwrap_or(character.prompt_text);
            character.identity_notes = identity_notes.unwrap_or(character.identity_notes);
            character.references = references.unwrap_or(character.references);
            character.common.updated_at = clock.now();
            rows::put_character(tx, &project.id, &character)?;
            let saved = rows::get_character(tx, &id)?;
            let event = changed(
                Entity::Character,
                &project.slug,
                protocol::events::Change::Updated,
                &saved.common,
            );
            Ok::<_, StoreError>((saved, vec![event]))
        })
        .await?;
    Ok(character_to_proto(&saved))
}

pub async fn character_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::Character, ApiError> {
    let row = read_one(&daemon, Entity::Character, params, rows::get_character).await?;
    Ok(character_to_proto(&row))
}

pub async fn character_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::CharacterList, ApiError> {
    let rows = read_all(&daemon, Entity::Character, params, rows::get_character).await?;
    Ok(wire::CharacterList {
        characters: rows.iter().map(character_to_proto).collect(),
    })
}

pub async fn character_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, ApiError> {
    delete_entity(&daemon, Entity::Character, params, |_, _| Ok(())).await
}

fn character_to_proto(row: &CharacterRow) -> wire::Character {
    wire::Character {
        id: row.common.id.clone(),
        project: row.common.project_slug.clone(),
        name: row.common.name.clone(),
        description: row.description.clone(),
        prompt_text: row.prompt_text.clone(),
        identity_notes: row.identity_notes.clone(),
        reference_assets: row.references.clone(),
        created_at: row.common.created_at.clone(),
        updated_at: row.common.updated_at.clone(),
    }
}

// ---- reference sets ----

fn parse_items(items: &[wire::ReferenceItem]) -> Result<Vec<ItemRow>, ApiError> {
    let assets: Vec<String> = items.iter().map(|item| item.asset.clone()).collect();
    parse_references(&assets)?;
    items
        .iter()
        .map(|item| {
            Ok(ItemRow {
                asset_id: item.asset.clone(),
                role: parse_text("role", &item.role)?,
                weight: knowledge::parse_weight(item.weight)?,
                notes: parse_text("notes", &item.notes)?,
            })
        })
        .collect()
}

pub async fn reference_set_create(
    daemon: Arc<Daemon>,
    params: wire::ReferenceSetCreate,
) -> Result<wire::ReferenceSet, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = parse_name("reference set", &params.name)?;
    let set = ReferenceSetRow {
        common: new_common(&project.slug, name.name, daemon.clock.now()),
        description: parse_text("description", &params.description)?,
        kind: params.kind.as_str().to_owned(),
        items: parse_items(&params.items)?,
    };
    save_reference_set(
        &daemon,
        project.id,
        project.slug,
        protocol::events::Change::Created,
        move |_| Ok(set),
    )
    .await
}

pub async fn reference_set_update(
    daemon: Arc<Daemon>,
    params: wire::ReferenceSetUpdate,
) -> Result<wire::ReferenceSet, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = params
        .name
        .as_deref()
        .map(|name| parse_name("reference set", name))
        .transpose()?;
    let description = optional_text("description", params.description.as_ref())?;
    let items = params.items.as_deref().map(parse_items).transpose()?;
    let key = params.id;
    let project_id = project.id.clone();
    save_reference_set(
        &daemon,
        project.id,
        project.slug,
        protocol::events::Change::Updated,
        move |tx| {
            let mut set = rows::get_reference_set(
                tx,
                &rows::resolve(tx, Entity::ReferenceSet, &project_id, &key)?,
            )?;
            if let Some(name) = name {
                set.common.name = name.name;
            }
            set.description = description.unwrap_or(set.description);
            if let Some(kind) = params.kind {
                set.kind = kind.as_str().to_owned();
            }
            set.items = items.unwrap_or(set.items);
            Ok(set)
        },
    )
    .await
}

pub async fn reference_set_add_item(
    daemon: Arc<Daemon>,
    params: wire::ReferenceItemAdd,
) -> Result<wire::ReferenceSet, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let item = parse_items(&[wire::ReferenceItem {
        asset: params.asset,
        role: params.role,
        weight: params.weight,
        notes: params.notes,
    }])?
    .remove(0);
    let key = params.set;
    let project_id = project.id.clone();
    save_reference_set(
        &daemon,
        project.id,
        project.slug,
        protocol::events::Change::Updated,
        move |tx| {
            let mut set = rows::get_reference_set(
                tx,
                &rows::resolve(tx, Entity::ReferenceSet, &project_id, &key)?,
            )?;
            let full = set.items.len() >= knowledge::MAX_REFERENCES;
            match set
                .items
                .iter_mut()
                .find(|existing| existing.asset_id == item.asset_id)
            {
                Some(existing) => *existing = item,
                None if full => {
                    return Err(ApiError::validation(
                        ErrorCode::TooManyReferences,
                        format!(
                            "a reference set holds at most {} items",
                            knowledge::MAX_REFERENCES
                        ),
                    ));
                }
                None => set.items.push(item),
            }
            Ok(set)
        },
    )
    .await
}

pub async fn reference_set_remove_item(
    daemon: Arc<Daemon>,
    params: wire::ReferenceItemRemove,
) -> Result<wire::ReferenceSet, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let key = params.set;
    let asset = params.asset;
    let project_id = project.id.clone();
    save_reference_set(
        &daemon,
        project.id,
        project.slug,
        protocol::events::Change::Updated,
        move |tx| {
            let mut set = rows::get_reference_set(
                tx,
                &rows::resolve(tx, Entity::ReferenceSet, &project_id, &key)?,
            )?;
            let before = set.items.len();
            set.items.retain(|item| item.asset_id != asset);
            if set.items.len() == before {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    ErrorCode::ItemNotFound,
                    format!(
                        "asset `{asset}` is not in reference set `{}`",
                        set.common.name
                    ),
                ));
            }
            Ok(set)
        },
    )
    .await
}

/// Builds the new state of a set with `change` inside the transaction, then stores it.
async fn save_reference_set(
    daemon: &Daemon,
    project_id: String,
    project_slug: String,
    action: protocol::events::Change,
    change: impl FnOnce(&rusqlite::Connection) -> Result<ReferenceSetRow, ApiError> + Send + 'static,
) -> Result<wire::ReferenceSet, ApiError> {
    let clock = daemon.clock;
    let saved = daemon
        .store
        .write(move |tx| {
            let mut set = change(tx)?;
            set.common.updated_at = clock.now();
            rows::put_reference_set(tx, &project_id, &set)?;
            let saved = rows::get_reference_set(tx, &set.common.id)?;
            let event = changed(Entity::ReferenceSet, &project_slug, action, &saved.common);
            Ok::<_, ApiError>((saved, vec![event]))
        })
        .await?;
    reference_set_to_proto(&saved)
}

pub async fn reference_set_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::ReferenceSet, ApiError> {
    let row = read_one(
        &daemon,
        Entity::ReferenceSet,
        params,
        rows::get_reference_set,
    )
    .await?;
    reference_set_to_proto(&row)
}

pub async fn reference_set_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::ReferenceSetList, ApiError> {
    let rows = read_all(
        &daemon,
        Entity::ReferenceSet,
        params,
        rows::get_reference_set,
    )
    .await?;
    Ok(wire::ReferenceSetList {
        reference_sets: rows
            .iter()
            .map(reference_set_to_proto)
            .collect::<Result<_, _>>()?,
    })
}

pub async fn reference_set_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, ApiError> {
    delete_entity(&daemon, Entity::ReferenceSet, params, |_, _| Ok(())).await
}

fn reference_set_to_proto(row: &ReferenceSetRow) -> Result<wire::ReferenceSet, ApiError> {
    let kind =
        serde_json::from_value(serde_json::Value::String(row.kind.clone())).map_err(|_| {
            ApiError::from(StoreError::Corrupt(format!(
                "reference set kind `{}`",
                row.kind
            )))
        })?;
    Ok(wire::ReferenceSet {
        id: row.common.id.clone(),
        project: row.common.project_slug.clone(),
        name: row.common.name.clone(),
        description: row.description.clone(),
        kind,
        items: row
            .items
            .iter()
            .map(|item| wire::ReferenceItem {
                asset: item.asset_id.clone(),
                role: item.role.clone(),
                weight: item.weight,
                notes: item.notes.clone(),
            })
            .collect(),
        created_at: row.common.created_at.clone(),
        updated_at: row.common.updated_at.clone(),
    })
}

// ---- prompt templates ----

pub async fn prompt_template_create(
    daemon: Arc<Daemon>,
    params: wire::PromptTemplateCreate,
) -> Result<wire::PromptTemplate, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = parse_name("prompt template", &params.name)?;
    let body = parse_required_text("body", &params.body)?;
    let variables = knowledge::parse_variables(&params.variables)?;
    knowledge::check_template(&body, &variables)?;
    let template = PromptTemplateRow {
        common: new_common(&project.slug, name.name, daemon.clock.now()),
        body,
        variables,
    };
    let saved = daemon
        .store
        .write(move |tx| {
            rows::put_prompt_template(tx, &project.id, &template)?;
            let saved = rows::get_prompt_template(tx, &template.common.id)?;
            let event = changed(
                Entity::PromptTemplate,
                &project.slug,
                protocol::events::Change::Created,
                &saved.common,
            );
            Ok::<_, StoreError>((saved, vec![event]))
        })
        .await?;
    Ok(prompt_template_to_proto(&saved))
}

pub async fn prompt_template_update(
    daemon: Arc<Daemon>,
    params: wire::PromptTemplateUpdate,
) -> Result<wire::PromptTemplate, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let name = params
        .name
        .as_deref()
        .map(|name| parse_name("prompt template", name))
        .transpose()?;
    let body = params
        .body
        .as_deref()
        .map(|body| parse_required_text("body", body))
        .transpose()?;
    let variables = params
        .variables
        .as_deref()
        .map(knowledge::parse_variables)
        .transpose()?;
    let clock = daemon.clock;
    let saved = daemon
        .store
        .write(move |tx| {
            let id = rows::resolve(tx, Entity::PromptTemplate, &project.id, &params.id)?;
            let mut template = rows::get_prompt_template(tx, &id)?;
            if let Some(name) = name {
                template.common.name = name.name;
            }
            template.body = body.unwrap_or(template.body);
            template.variables = variables.unwrap_or(template.variables);
            knowledge::check_template(&template.body, &template.variables)?;
            template.common.updated_at = clock.now();
            rows::put_prompt_template(tx, &project.id, &template)?;
            let saved = rows::get_prompt_template(tx, &id)?;
            let event = changed(
                Entity::PromptTemplate,
                &project.slug,
                protocol::events::Change::Updated,
                &saved.common,
            );
            Ok::<_, ApiError>((saved, vec![event]))
        })
        .await?;
    Ok(prompt_template_to_proto(&saved))
}

pub async fn prompt_template_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::PromptTemplate, ApiError> {
    let row = read_one(
        &daemon,
        Entity::PromptTemplate,
        params,
        rows::get_prompt_template,
    )
    .await?;
    Ok(prompt_template_to_proto(&row))
}

pub async fn prompt_template_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::PromptTemplateList, ApiError> {
    let rows = read_all(
        &daemon,
        Entity::PromptTemplate,
        params,
        rows::get_prompt_template,
    )
    .await?;
    Ok(wire::PromptTemplateList {
        prompt_templates: rows.iter().map(prompt_template_to_proto).collect(),
    })
}

pub async fn prompt_template_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, ApiError> {
    delete_entity(&daemon, Entity::PromptTemplate, params, |_, _| Ok(())).await
}

pub async fn prompt_template_render(
    daemon: Arc<Daemon>,
    params: wire::RenderParams,
) -> Result<wire::Rendered, ApiError> {
    let project = find_project(&daemon, &params.project).await?;
    let key = params.id;
    let template = daemon
        .store
        .read(move |conn| {
            rows::get_prompt_template(
                conn,
                &rows::resolve(conn, Entity::PromptTemplate, &project.id, &key)?,
            )
        })
        .await?;
    let text = knowledge::render(&template.body, &template.variables, &params.vars)?;
    Ok(wire::Rendered { text })
}

fn prompt_template_to_proto(row: &PromptTemplateRow) -> wire::PromptTemplate {
    wire::PromptTemplate {
        id: row.common.id.clone(),
        project: row.common.project_slug.clone(),
        name: row.common.name.clone(),
        body: row.body.clone(),
        variables: row.variables.clone(),
        created_at: row.common.created_at.clone(),
        updated_at: row.common.updated_at.clone(),
    }
}
