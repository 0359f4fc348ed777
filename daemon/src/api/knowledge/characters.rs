//! The handlers of characters (`character.*`).

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::knowledge as wire;

use super::{changed, delete_entity, new_common, optional_text, read_all, read_one};
use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::knowledge::{parse_name, parse_references, parse_text};
use crate::store::StoreError;
use crate::store::knowledge::{self as rows, CharacterRow, Entity};

pub async fn character_create(
    daemon: Arc<Daemon>,
    params: wire::CharacterCreate,
) -> Result<wire::Character, Problem> {
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
) -> Result<wire::Character, Problem> {
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
) -> Result<wire::Character, Problem> {
    let row = read_one(&daemon, Entity::Character, params, rows::get_character).await?;
    Ok(character_to_proto(&row))
}

pub async fn character_list(
    daemon: Arc<Daemon>,
    params: wire::ProjectParams,
) -> Result<wire::CharacterList, Problem> {
    let rows = read_all(&daemon, Entity::Character, params, rows::get_character).await?;
    Ok(wire::CharacterList {
        characters: rows.iter().map(character_to_proto).collect(),
    })
}

pub async fn character_delete(
    daemon: Arc<Daemon>,
    params: wire::DeleteParams,
) -> Result<wire::Deleted, Problem> {
    delete_entity(&daemon, Entity::Character, params, |_, _| Ok(())).await
}

pub(super) fn character_to_proto(row: &CharacterRow) -> wire::Character {
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
