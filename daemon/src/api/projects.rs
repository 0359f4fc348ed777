//! `project.*` handlers: validate with `crate::projects::rules`, change rows and the root folder in one
//! transaction, record the event.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};

use crate::Daemon;
use crate::error::Problem;
use crate::projects::{root as project_root, rules as project};
use crate::store::{self, NewEvent, NewProject, ProjectChanges, ProjectRow, StoreError};

pub async fn project_create(
    daemon: Arc<Daemon>,
    params: protocol::project::CreateParams,
) -> Result<protocol::project::Project, Problem> {
    let name = project::parse_name(&params.name)?;
    let slug = match &params.slug {
        Some(slug) => project::parse_slug(slug)?,
        None => project::derive_slug(&name)?,
    };
    let description = project::parse_description(params.description.as_deref().unwrap_or(""))?;
    let root = project::parse_root(params.root.as_deref(), &daemon.config.data_dir, &slug)?;
    // Compared and stored with every link resolved: a link cannot make two roots share files.
    let root = tokio::task::spawn_blocking(move || resolve_root(&root))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))??;
    let data_dir = daemon.real_data_dir.clone();
    let s3 = params.s3.as_ref().map(project::parse_s3).transpose()?;
    let new = NewProject {
        id: uuid::Uuid::new_v4().to_string(),
        slug,
        name,
        description,
        root: root.display().to_string(),
        s3,
        at: daemon.clock.now(),
    };
    let row = daemon
        .store
        .write(move |tx| {
            // The row first: a taken slug fails before anything touches the disk.
            let row = store::insert_project(tx, &new)?;
            let others = store::list_projects(tx)?;
            let other_roots = project_root::resolve_all(
                others
                    .iter()
                    .filter(|other| other.id != row.id)
                    .map(|other| other.root.as_str()),
            );
            project::check_root_apart(&root, &data_dir, &other_roots)?;
            // Kept as soon as the layout exists: a rolled-back row leaves an empty layout behind,
            // but a committed row never loses its folder, even if the caller has timed out.
            project_root::create(&root, &row.id, &row.slug)?.keep();
            let event = NewEvent::of(
                new.at.clone(),
                Some(row.slug.clone()),
                &protocol::events::ProjectCreated {
                    id: row.id.clone(),
                    name: row.name.clone(),
                    root: row.root.clone(),
                },
            );
            Ok::<_, Problem>((row, vec![event]))
        })
        .await?;
    tracing::info!(slug = %row.slug, root = %row.root, "project created");
    Ok(to_proto(&row))
}

pub async fn project_update(
    daemon: Arc<Daemon>,
    params: protocol::project::UpdateParams,
) -> Result<protocol::project::Project, Problem> {
    let slug = project::parse_slug(&params.slug)?;
    let changes = ProjectChanges {
        name: params
            .name
            .as_deref()
            .map(project::parse_name)
            .transpose()?,
        description: params
            .description
            .as_deref()
            .map(project::parse_description)
            .transpose()?,
        s3: match &params.s3 {
            None => None,
            Some(None) => Some(None),
            Some(Some(s3)) => Some(Some(project::parse_s3(s3)?)),
        },
    };
    let mut changed = Vec::new();
    if changes.name.is_some() {
        changed.push(protocol::events::ProjectField::Name);
    }
    if changes.description.is_some() {
        changed.push(protocol::events::ProjectField::Description);
    }
    if changes.s3.is_some() {
        changed.push(protocol::events::ProjectField::S3);
    }
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            let row = store::update_project(tx, &slug, &changes, &at)?;
            let event = NewEvent::of(
                at,
                Some(row.slug.clone()),
                &protocol::events::ProjectUpdated { changed },
            );
            Ok::<_, StoreError>((row, vec![event]))
        })
        .await?;
    Ok(to_proto(&row))
}

pub async fn project_delete(
    daemon: Arc<Daemon>,
    params: protocol::project::DeleteParams,
) -> Result<protocol::project::Deleted, Problem> {
    let slug = project::parse_slug(&params.slug)?;
    if !params.confirm {
        let purge_files = params.purge_files.then(|| ("purge_files", true.into()));
        return Err(super::unconfirmed_delete::<protocol::project::Delete>(
            &format!("project `{slug}`"),
            [Some(("slug", slug.as_str().into())), purge_files]
                .into_iter()
                .flatten(),
        ));
    }
    let purge_files = params.purge_files;
    let at = daemon.clock.now();
    let data_dir = daemon.real_data_dir.clone();
    let (row, detached) = daemon
        .store
        .write(move |tx| {
            let row = store::delete_project(tx, &slug)?;
            let detached = if purge_files {
                // Checked again now, links resolved as they are today: a folder linked into
                // this root since it was created must not be purged with it.
                let root = resolve_root(std::path::Path::new(&row.root))?;
                let others = store::list_projects(tx)?;
                let other_roots =
                    project_root::resolve_all(others.iter().map(|other| other.root.as_str()));
                project::check_root_apart(&root, &data_dir, &other_roots).map_err(|err| {
                    Problem {
                        message: format!("not purged: {}", err.message),
                        ..err
                    }
                    .with_hint("delete without purge_files, then remove the files that are only this project's by hand")
                })?;
                Some(project_root::detach(&root, &row.id)?)
            } else {
                None
            };
            let event = NewEvent::of(
                at,
                Some(row.slug.clone()),
                &protocol::events::ProjectDeleted {
                    id: row.id.clone(),
                    root: row.root.clone(),
                    purged_files: purge_files,
                },
            );
            Ok::<_, Problem>(((row, detached), vec![event]))
        })
        .await?;
    if let Some(detached) = detached {
        let root = row.root.clone();
        let purged = tokio::task::spawn_blocking(move || detached.purge())
            .await
            .map_err(|err| {
                Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })?;
        if let Err(err) = purged {
            return Err(Problem {
                message: format!(
                    "project `{}` was deleted, but removing its files failed: {}",
                    row.slug, err.message
                ),
                ..err
            }
            .with_hint(format!(
                "remove the folder next to {root} whose name ends in .deleting-{} by hand",
                row.id
            )));
        }
    }
    tracing::info!(slug = %row.slug, purge_files, "project deleted");
    Ok(protocol::project::Deleted {
        slug: row.slug,
        root: row.root,
        purged_files: purge_files,
    })
}

/// The wire form of a stored project.
pub fn to_proto(row: &ProjectRow) -> protocol::project::Project {
    protocol::project::Project {
        id: row.id.clone(),
        slug: row.slug.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        root: row.root.clone(),
        storage: protocol::project::StorageSettings {
            s3: row.s3.as_ref().map(project::S3Settings::to_proto),
        },
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

/// A root with its links resolved.
fn resolve_root(path: &std::path::Path) -> Result<std::path::PathBuf, Problem> {
    project_root::resolve(path).map_err(|err| {
        Problem::validation(
            ErrorCode::InvalidRoot,
            format!("cannot resolve {}: {err}", path.display()),
        )
        .with_hint("name a folder that exists, or one whose parent folders exist")
    })
}
