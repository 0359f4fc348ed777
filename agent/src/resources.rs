//! Resources: `kroma://projects` (every project), `kroma://projects/{slug}` (one project with
//! everything it knows), `kroma://projects/{slug}/assets` (its assets) and `kroma://runs/{id}`
//! (one run with its plan, jobs and candidates), each read from kromad and given as JSON, the
//! same shapes the tools answer with. `kroma://projects/{slug}/assets/{id}` is an image asset as
//! a bounded PNG thumbnail ([`crate::thumbnail`]: only a file inside the project's folder), or
//! the metadata of an `audio` asset as JSON: a voice recording's bytes are never served.

use base64::Engine;
use kroma_protocol as protocol;
use rmcp::ErrorData;
use rmcp::model::{
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde::Serialize;

use crate::kromad::KromadError;
use crate::server::KromaServer;
use crate::thumbnail;

const PROJECTS: &str = "kroma://projects";
const PROJECT_PREFIX: &str = "kroma://projects/";
const RUN_PREFIX: &str = "kroma://runs/";
const ASSETS: &str = "assets";
const JSON: &str = "application/json";
const PNG: &str = "image/png";

/// What a `kroma://` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KromaUri {
    Projects,
    Project { slug: String },
    Assets { slug: String },
    Asset { slug: String, id: String },
    Run { id: String },
}

impl KromaUri {
    /// Reads a URI; `None` for anything that is not one of ours.
    pub fn parse(uri: &str) -> Option<KromaUri> {
        if uri == PROJECTS {
            return Some(KromaUri::Projects);
        }
        if let Some(rest) = uri.strip_prefix(PROJECT_PREFIX) {
            let parts: Vec<&str> = rest.split('/').collect();
            return match parts.as_slice() {
                [slug] => segment(slug).map(|slug| KromaUri::Project { slug }),
                [slug, ASSETS] => segment(slug).map(|slug| KromaUri::Assets { slug }),
                [slug, ASSETS, id] => Some(KromaUri::Asset {
                    slug: segment(slug)?,
                    id: segment(id)?,
                }),
                _ => None,
            };
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

/// The URI templates of one project, its assets, one asset and one run.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{PROJECT_PREFIX}{{slug}}"), "project")
            .with_title("A Kroma project")
            .with_description(
                "A project with its style guides, characters, reference sets and prompt templates",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{PROJECT_PREFIX}{{slug}}/{ASSETS}"), "assets")
            .with_title("A Kroma project's assets")
            .with_description(
                "Every asset of a project (inputs, references, generated and processed images, \
                 voice recordings), oldest first",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{PROJECT_PREFIX}{{slug}}/{ASSETS}/{{id}}"), "asset")
            .with_title("A Kroma asset")
            .with_description(
                "An image asset as a PNG thumbnail (longest side at most 512 pixels, at most \
                 1 MiB); an audio asset (a voice recording) as its metadata in JSON, never its \
                 bytes",
            ),
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
        KromaUri::Assets { slug } => {
            let assets = kromad
                .call::<protocol::asset::List>(
                    client_name,
                    &protocol::asset::ListParams {
                        project: slug,
                        kind: None,
                    },
                )
                .await
                .map_err(|err| not_found_or_internal(uri, err))?;
            json(uri, &assets)
        }
        KromaUri::Asset { slug, id } => asset(server, client_name, uri, slug, id).await,
        KromaUri::Run { id } => {
            let detail = kromad
                .call::<protocol::run::Show>(client_name, &protocol::run::RunRef { run: id })
                .await
                .map_err(|err| not_found_or_internal(uri, err))?;
            json(uri, &detail)
        }
    }
}

/// An image asset as its thumbnail; an audio asset as its metadata.
async fn asset(
    server: &KromaServer,
    client_name: &str,
    uri: &str,
    slug: String,
    id: String,
) -> Result<ReadResourceResult, ErrorData> {
    let kromad = server.kromad();
    let asset = kromad
        .call::<protocol::asset::Get>(
            client_name,
            &protocol::asset::AssetRef { project: slug, id },
        )
        .await
        .map_err(|err| not_found_or_internal(uri, err))?;
    if asset.kind == protocol::asset::AssetKind::Audio {
        return json(uri, &asset);
    }
    let project = kromad
        .call::<protocol::project::Get>(
            client_name,
            &protocol::project::ProjectRef {
                slug: asset.project.clone(),
            },
        )
        .await
        .map_err(|err| not_found_or_internal(uri, err))?;
    let root = std::path::PathBuf::from(&project.root);
    let file = root.join(&asset.path);
    let made = tokio::task::spawn_blocking(move || {
        let real = thumbnail::inside_project(&root, &file)?;
        thumbnail::from_file(&real)
    })
    .await
    .map_err(|err| {
        ErrorData::internal_error(
            format!("making the thumbnail of {uri} stopped: {err}"),
            None,
        )
    })?
    .map_err(|err| ErrorData::invalid_request(format!("{uri}: {err}"), None))?;
    let png = base64::engine::general_purpose::STANDARD.encode(&made.png);
    Ok(ReadResourceResult::new(vec![
        ResourceContents::blob(png, uri).with_mime_type(PNG),
    ]))
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
    fn uris_name_projects_assets_and_runs_and_nothing_else() {
        let project = |slug: &str| {
            Some(KromaUri::Project {
                slug: slug.to_owned(),
            })
        };
        check("kroma://projects", Some(KromaUri::Projects));
        check("kroma://projects/noir", project("noir"));
        check(
            "kroma://projects/noir/assets",
            Some(KromaUri::Assets {
                slug: "noir".to_owned(),
            }),
        );
        check(
            "kroma://projects/noir/assets/5d1c-a9",
            Some(KromaUri::Asset {
                slug: "noir".to_owned(),
                id: "5d1c-a9".to_owned(),
            }),
        );
        check(
            "kroma://runs/0b9f4a5e-8a43-4b8e-9d0c-1f2e3d4c5b6a",
            Some(KromaUri::Run {
                id: "0b9f4a5e-8a43-4b8e-9d0c-1f2e3d4c5b6a".to_owned(),
            }),
        );
        for wrong in [
            "kroma://projects/",
            "kroma://projects/noir/extra",
            "kroma://projects/noir/assets/",
            "kroma://projects/noir/assets/a/b",
            "kroma://projects/noir/assets/..",
            "kroma://projects/noir/assets/a%2Fb",
            "kroma://projects//assets",
            "kroma://projects/noir/runs/1",
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
