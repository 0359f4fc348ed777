//! The handlers of style guides (`style_guide.*`).

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::knowledge as wire;

use super::{changed, delete_entity, new_common, optional_text, read_all, read_one};
use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::knowledge::{parse_name, parse_references, parse_required_text, parse_text};
use crate::store::StoreError;
use crate::store::knowledge::{self as rows, Entity, StyleGuideRow};

pub async fn style_guide_create(
    daemon: Arc<Daemon>,
    params: wire::StyleGuideCreate,
) -> Result<wire::StyleGuide, Problem> {
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
) -> Result<wire::StyleGuide, Problem> {
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
                return Err(Problem::validation(
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
            Ok::<_, Problem>((saved, vec![event]))
        })
        .await?;
    Ok(style_guide_to_proto(&saved))
}

pub async fn style_guide_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::StyleGuide, Problem> {
    let row = read_one(&daemon, Entity::StyleGuide, params, rows::get_style_guide).await?;
    Ok(style_guide_to_proto(&row))
}

pub async fn style_guide_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::StyleGuideList, Problem> {
    let rows = read_all(&daemon, Entity::StyleGuide, params, rows::get_style_guide).await?;
    Ok(wire::StyleGuideList {
        style_guides: rows.iter().map(style_guide_to_proto).collect(),
    })
}

pub async fn style_guide_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, Problem> {
    delete_entity(
        &daemon,
        Entity::StyleGuide,
        params,
        rows::ensure_default_style_guide,
    )
    .await
}

pub(super) fn style_guide_to_proto(row: &StyleGuideRow) -> wire::StyleGuide {
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
