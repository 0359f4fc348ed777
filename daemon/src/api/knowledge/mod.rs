//! `style_guide.*`, `character.*`, `reference_set.*` and `prompt_template.*` handlers: validate
//! with `crate::knowledge`, then read-modify-write the row and its references in one transaction.

mod characters;
mod reference_sets;
mod style_guides;
mod templates;

pub use characters::{
    character_create, character_delete, character_get, character_list, character_update,
};
pub use reference_sets::{
    reference_set_add_item, reference_set_create, reference_set_delete, reference_set_get,
    reference_set_list, reference_set_remove_item, reference_set_update,
};
pub use style_guides::{
    style_guide_create, style_guide_delete, style_guide_get, style_guide_list, style_guide_update,
};
pub use templates::{
    prompt_template_create, prompt_template_delete, prompt_template_get, prompt_template_list,
    prompt_template_render, prompt_template_update,
};

use kroma_protocol as protocol;
use protocol::knowledge as wire;

use super::{find_project, unconfirmed_delete};
use crate::Daemon;
use crate::error::Problem;
use crate::knowledge::parse_text;
use crate::store::knowledge::{self as rows, Common, Entity};
use crate::store::{NewEvent, StoreError};

/// The `*.changed` event of `entity`'s kind.
pub(super) fn changed(
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

pub(super) fn new_common(project_slug: &str, name: String, at: String) -> Common {
    Common {
        id: uuid::Uuid::new_v4().to_string(),
        project_slug: project_slug.to_owned(),
        name,
        created_at: at.clone(),
        updated_at: at,
    }
}

pub(super) fn optional_text(
    field: &str,
    value: Option<&String>,
) -> Result<Option<String>, Problem> {
    value.map(|text| parse_text(field, text)).transpose()
}

/// Deletes any knowledge entity once confirmed; `after` runs in the same transaction (e.g.
/// promote a default).
pub(super) async fn delete_entity(
    daemon: &Daemon,
    entity: Entity,
    params: wire::DeleteParams,
    after: fn(&rusqlite::Connection, &str) -> Result<(), StoreError>,
) -> Result<wire::Deleted, Problem> {
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
pub(super) async fn read_one<R: Send + 'static>(
    daemon: &Daemon,
    entity: Entity,
    params: wire::EntityRef,
    get: fn(&rusqlite::Connection, &str) -> Result<R, StoreError>,
) -> Result<R, Problem> {
    let project = find_project(daemon, &params.project).await?;
    let row = daemon
        .store
        .read(move |conn| get(conn, &rows::resolve(conn, entity, &project.id, &params.id)?))
        .await?;
    Ok(row)
}

/// Reads the rows of every entity of one kind in a project.
pub(super) async fn read_all<R: Send + 'static>(
    daemon: &Daemon,
    entity: Entity,
    params: wire::ProjectParams,
    get: fn(&rusqlite::Connection, &str) -> Result<R, StoreError>,
) -> Result<Vec<R>, Problem> {
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
