//! Resources: `kroma://projects` (every project), `kroma://projects/{slug}` (one project with
//! everything it knows) and `kroma://runs/{id}` (one run with its plan, jobs and candidates),
//! each read from kromad and given as JSON, the same shapes the tools answer with.

use kroma_protocol as protocol;
use rmcp::ErrorData;
use rmcp::model::{
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde::Serialize;

use crate::kromad::KromadError;
use crate::server::KromaServer;

const PROJECTS: &str = "kroma://projects";
const PROJECT_PREFIX: &str = "kroma://projects/";
const RUN_PREFIX: &str = "kroma://runs/";
const JSON: &str = "application/json";

/// What a `kroma://` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KromaUri {
    Projects,
    Project { slug: String },
    Run { id: String },
}

impl KromaUri {
    /// Reads a URI; `None` for anything that is not one of ours.
    pub fn parse(uri: &str) -> Option<KromaUri> {
        if uri == PROJECTS {
            return Some(KromaUri::Projects);
        }
        if let Some(slug) = uri.strip_prefix(PROJECT_PREFIX) {
            return segment(slug).map(|slug| KromaUri::Project { slug });
        }
        uri.strip_prefix(RUN_PREFIX)
            .and_then(segment)
            .map(|id| KromaUri::Run { id })
    }
}

/// One path segment: not empty, and no separator, query, fragment, escape or control character.
fn segment(text: &str) -> Option<String> {
    let plain = !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain.then(|| text.to_owned())
}

/// The index resource and one resource per project.
pub async fn list(
    server: &KromaServer,
    client_name: &str,
) -> Result<ListResourcesResult, ErrorData> {
    let projects = server
        .kromad()
        .call::<protocol::project::List>(client_name, &protocol::NoParams {})
        .await
        .map_err(internal)?
        .projects;
    let mut resources = vec![
        Resource::new(PROJECTS, "projects")
            .with_title("Kroma projects")
            .with_description("Every project, oldest first")
            .with_mime_type(JSON),
    ];
    resources.extend(projects.into_iter().map(|project| {
        Resource::new(format!("{PROJECT_PREFIX}{}", project.slug), project.slug)
            .with_description(
                "A project with its style guides, characters, reference sets and prompt templates",
            )
            .with_mime_type(JSON)
    }));
    Ok(ListResourcesResult::with_all_items(resources))
}

/// The URI templates of one project and one run.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{PROJECT_PREFIX}{{slug}}"), "project")
            .with_title("A Kroma project")
            .with_description(
                "A project with its style guides, characters, reference sets and prompt templates",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{RUN_PREFIX}{{id}}"), "run")
            .with_title("A Kroma run")
            .with_description("A run with its plan, costs, jobs and candidates")
            .with_mime_type(JSON),
    ]
}

/// Reads one resource.
pub async fn read(
    server: &KromaServer,
    client_name: &str,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let not_ours = || {
        ErrorData::resource_not_found(
            format!("{uri} is not a Kroma resource; see resources/templates/list"),
            None,
        )
    };
    let kromad = server.kromad();
    match KromaUri::parse(uri).ok_or_else(not_ours)? {
        KromaUri::Projects => {
            let projects = kromad
                .call::<protocol::project::List>(client_name, &protocol::NoParams {})
                .await
                .map_err(internal)?;
            json(uri, &projects)
        }
        KromaUri::Project { slug } => {
            let knowledge = server
                .project_knowledge(client_name, &slug)
                .await
                .map_err(|err| not_found_or_internal(uri, err))?;
            json(uri, &knowledge)
        }
        KromaUri::Run { id } => {
            let detail = kromad
                .call::<protocol::run::Show>(client_name, &protocol::run::RunRef { run: id })
                .await
                .map_err(|err| not_found_or_internal(uri, err))?;
            json(uri, &detail)
        }
    }
}

fn json(uri: &str, value: &impl Serialize) -> Result<ReadResourceResult, ErrorData> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| ErrorData::internal_error(format!("encoding {uri}: {err}"), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(JSON),
    ]))
}

fn internal(err: KromadError) -> ErrorData {
    ErrorData::internal_error(err.for_agent(), None)
}

fn not_found_or_internal(uri: &str, err: KromadError) -> ErrorData {
    if err.is_not_found() {
        ErrorData::resource_not_found(format!("{uri}: {}", err.for_agent()), None)
    } else {
        internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expected: Option<KromaUri>) {
        assert_eq!(KromaUri::parse(uri), expected, "{uri}");
    }

    #[test]
    fn uris_name_projects_and_runs_and_nothing_else() {
        let project = |slug: &str| {
            Some(KromaUri::Project {
                slug: slug.to_owned(),
            })
        };
        check("kroma://projects", Some(KromaUri::Projects));
        check("kroma://projects/noir", project("noir"));
        check(
            "kroma://runs/0b9f4a5e-8a43-4b8e-9d0c-1f2e3d4c5b6a",
            Some(KromaUri::Run {
                id: "0b9f4a5e-8a43-4b8e-9d0c-1f2e3d4c5b6a".to_owned(),
            }),
        );
        for wrong in [
            "kroma://projects/",
            "kroma://projects/noir/extra",
            "kroma://projects/../runs",
            "kroma://projects/noir?x=1",
            "kroma://projects/n%6Fir",
            "kroma://runs/",
            "kroma://assets/1",
            "file:///etc/passwd",
            "kroma://projectsnoir",
        ] {
            check(wrong, None);
        }
    }
}
