//! `bootstrap.*` handlers: export the prompt and document; import by planning against the current
//! knowledge (`crate::knowledge::bootstrap::plan`) and applying the plan in the same transaction.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::ErrorCode;
use rusqlite::Connection;

use super::find_project;
use crate::Daemon;
use crate::error::Problem;
use crate::knowledge::bootstrap::{self, Plan, Snapshot};
use crate::store::knowledge::{self as rows, Entity};
use crate::store::{self, NewEvent, ProjectChanges, ProjectRow, StoreError};

fn load_snapshot(conn: &Connection, project: &ProjectRow) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        project_slug: project.slug.clone(),
        project_name: project.name.clone(),
        project_description: project.description.clone(),
        style_guides: rows::ids(conn, Entity::StyleGuide, &project.id)?
            .iter()
            .map(|id| rows::get_style_guide(conn, id))
            .collect::<Result<_, _>>()?,
        characters: rows::ids(conn, Entity::Character, &project.id)?
            .iter()
            .map(|id| rows::get_character(conn, id))
            .collect::<Result<_, _>>()?,
        prompt_templates: rows::ids(conn, Entity::PromptTemplate, &project.id)?
            .iter()
            .map(|id| rows::get_prompt_template(conn, id))
            .collect::<Result<_, _>>()?,
    })
}

pub async fn export(
    daemon: Arc<Daemon>,
    params: protocol::knowledge::ProjectParams,
) -> Result<protocol::bootstrap::BootstrapExport, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let snapshot = daemon
        .store
        .read(move |conn| load_snapshot(conn, &project))
        .await?;
    let current = bootstrap::document_of(&snapshot);
    let schema = protocol::bootstrap::schema();
    Ok(protocol::bootstrap::BootstrapExport {
        schema_version: protocol::bootstrap::SCHEMA_VERSION.to_owned(),
        prompt: bootstrap::prompt(&current, &schema),
        current,
        schema,
    })
}

pub async fn import(
    daemon: Arc<Daemon>,
    params: protocol::bootstrap::ImportParams,
) -> Result<protocol::bootstrap::ImportSummary, Problem> {
    let document = match (params.document, params.text) {
        (Some(document), None) => document,
        (None, Some(text)) => bootstrap::read_answer(&text)?,
        _ => {
            return Err(Problem::validation(
                ErrorCode::InvalidParams,
                "give exactly one of `document` (JSON) and `text` (the AI's answer as it came)",
            ));
        }
    };
    let slug = find_project(&daemon, &params.project).await?.slug;
    let mode = params.mode;
    let now = daemon.clock.now();
    if params.dry_run {
        let mut summary = daemon
            .store
            .read(move |conn| {
                let project = store::get_project(conn, &slug)?;
                let snapshot = load_snapshot(conn, &project)?;
                Ok(bootstrap::plan(&snapshot, &document, mode, &now).map(|plan| plan.summary))
            })
            .await??;
        summary.dry_run = true;
        return Ok(summary);
    }
    daemon
        .store
        .write(move |tx| {
            let project = store::get_project(tx, &slug)?;
            let snapshot = load_snapshot(tx, &project)?;
            let plan = bootstrap::plan(&snapshot, &document, mode, &now)?;
            apply(tx, &project, &plan, &now)?;
            let summary = plan.summary;
            let counts =
                |section: &protocol::bootstrap::SectionChange| protocol::events::SectionCounts {
                    created: section.created.len() as u32,
                    updated: section.updated.len() as u32,
                    deleted: section.deleted.len() as u32,
                };
            let event = NewEvent::of(
                now,
                Some(project.slug.clone()),
                &protocol::events::BootstrapImported {
                    mode,
                    style_guides: counts(&summary.style_guides),
                    characters: counts(&summary.characters),
                    prompt_templates: counts(&summary.prompt_templates),
                },
            );
            Ok::<_, Problem>((summary, vec![event]))
        })
        .await
}

fn apply(tx: &Connection, project: &ProjectRow, plan: &Plan, now: &str) -> Result<(), StoreError> {
    for id in &plan.style_guides.delete {
        rows::delete(tx, Entity::StyleGuide, id)?;
    }
    for id in &plan.characters.delete {
        rows::delete(tx, Entity::Character, id)?;
    }
    for id in &plan.prompt_templates.delete {
        rows::delete(tx, Entity::PromptTemplate, id)?;
    }
    // Rows that stop being the default go first, so the one-default index never sees two.
    let (demoted, others): (Vec<_>, Vec<_>) = plan
        .style_guides
        .put
        .iter()
        .partition(|guide| !guide.is_default);
    for guide in demoted.into_iter().chain(others) {
        rows::put_style_guide(tx, &project.id, guide)?;
    }
    for character in &plan.characters.put {
        rows::put_character(tx, &project.id, character)?;
    }
    for template in &plan.prompt_templates.put {
        rows::put_prompt_template(tx, &project.id, template)?;
    }
    rows::ensure_default_style_guide(tx, &project.id)?;
    if plan.project_name.is_some() || plan.project_description.is_some() {
        let changes = ProjectChanges {
            name: plan.project_name.clone(),
            description: plan.project_description.clone(),
            s3: None,
        };
        store::update_project(tx, &project.slug, &changes, now)?;
    }
    Ok(())
}
