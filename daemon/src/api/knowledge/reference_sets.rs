//! The handlers of reference sets (`reference_set.*`) and their items.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::knowledge as wire;
use protocol::{ErrorCode, ErrorKind};

use super::{changed, delete_entity, new_common, optional_text, read_all, read_one};
use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::knowledge::{self, parse_name, parse_references, parse_text};
use crate::store::StoreError;
use crate::store::knowledge::{self as rows, Entity, ItemRow, ReferenceSetRow};

pub(super) fn parse_items(items: &[wire::ReferenceItem]) -> Result<Vec<ItemRow>, Problem> {
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
) -> Result<wire::ReferenceSet, Problem> {
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
) -> Result<wire::ReferenceSet, Problem> {
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
) -> Result<wire::ReferenceSet, Problem> {
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
                    return Err(Problem::validation(
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
) -> Result<wire::ReferenceSet, Problem> {
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
                return Err(Problem::new(
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
pub(super) async fn save_reference_set(
    daemon: &Daemon,
    project_id: String,
    project_slug: String,
    action: protocol::events::Change,
    change: impl FnOnce(&rusqlite::Connection) -> Result<ReferenceSetRow, Problem> + Send + 'static,
) -> Result<wire::ReferenceSet, Problem> {
    let clock = daemon.clock;
    let saved = daemon
        .store
        .write(move |tx| {
            let mut set = change(tx)?;
            set.common.updated_at = clock.now();
            rows::put_reference_set(tx, &project_id, &set)?;
            let saved = rows::get_reference_set(tx, &set.common.id)?;
            let event = changed(Entity::ReferenceSet, &project_slug, action, &saved.common);
            Ok::<_, Problem>((saved, vec![event]))
        })
        .await?;
    reference_set_to_proto(&saved)
}

pub async fn reference_set_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::ReferenceSet, Problem> {
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
) -> Result<wire::ReferenceSetList, Problem> {
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
) -> Result<wire::Deleted, Problem> {
    delete_entity(&daemon, Entity::ReferenceSet, params, |_, _| Ok(())).await
}

pub(super) fn reference_set_to_proto(row: &ReferenceSetRow) -> Result<wire::ReferenceSet, Problem> {
    let kind =
        serde_json::from_value(serde_json::Value::String(row.kind.clone())).map_err(|_| {
            Problem::from(StoreError::Corrupt(format!(
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
