//! The handlers of prompt templates (`prompt_template.*`), with rendering.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::knowledge as wire;

use super::{changed, delete_entity, new_common, read_all, read_one};
use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::knowledge::{self, parse_name, parse_required_text};
use crate::store::StoreError;
use crate::store::knowledge::{self as rows, Entity, PromptTemplateRow};

pub async fn prompt_template_create(
    daemon: Arc<Daemon>,
    params: wire::PromptTemplateCreate,
) -> Result<wire::PromptTemplate, Problem> {
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
) -> Result<wire::PromptTemplate, Problem> {
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
            Ok::<_, Problem>((saved, vec![event]))
        })
        .await?;
    Ok(prompt_template_to_proto(&saved))
}

pub async fn prompt_template_get(
    daemon: Arc<Daemon>,
    params: wire::EntityRef,
) -> Result<wire::PromptTemplate, Problem> {
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
) -> Result<wire::PromptTemplateList, Problem> {
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
) -> Result<wire::Deleted, Problem> {
    delete_entity(&daemon, Entity::PromptTemplate, params, |_, _| Ok(())).await
}

pub async fn prompt_template_render(
    daemon: Arc<Daemon>,
    params: wire::RenderParams,
) -> Result<wire::Rendered, Problem> {
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

pub(super) fn prompt_template_to_proto(row: &PromptTemplateRow) -> wire::PromptTemplate {
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
