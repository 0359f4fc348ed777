//! Exports and S3 syncs agents propose. Both are checked against the instruction's project. An
//! export is free local work and runs at once. A sync is planned when it is proposed, so a wrong
//! setting or a missing key is the agent's answer at once, and a person approves it (unless it is
//! a dry run) after reading what it would move; an agent's sync never deletes.

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::storage::{Direction, Op, SyncParams};

use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::store::ProjectRow;

fn other_project(project: &ProjectRow, named: &str) -> Problem {
    Problem::validation(
        ErrorCode::InvalidInstruction,
        format!(
            "the instruction is for project `{}` but its params name `{named}`",
            project.slug
        ),
    )
}

async fn check_same_project(
    daemon: &Daemon,
    project: &ProjectRow,
    named: &str,
) -> Result<(), Problem> {
    if find_project(daemon, named).await?.id != project.id {
        return Err(other_project(project, named));
    }
    Ok(())
}

/// An export an agent asks for packs the instruction's project only.
pub(crate) async fn check_export(
    daemon: &Daemon,
    project: &ProjectRow,
    params: &protocol::export::CreateParams,
) -> Result<(), Problem> {
    check_same_project(daemon, project, &params.project).await
}

/// Checks and plans a sync an agent asks for; answers why a person must approve it, or `None`
/// for a dry run (which changes nothing and runs at once).
pub(crate) async fn plan_sync(
    daemon: &Daemon,
    project: &ProjectRow,
    params: &SyncParams,
) -> Result<Option<String>, Problem> {
    check_same_project(daemon, project, &params.project).await?;
    if params.delete || params.confirmed_deletes.is_some() {
        return Err(Problem::validation(
            ErrorCode::InvalidInstruction,
            "an agent's sync never deletes: deletes are a person's to ask for",
        )
        .with_hint(
            "propose the sync without `delete`; a person can delete with `storage.sync` themselves",
        ));
    }
    let plan = crate::api::storage::plan_in(
        daemon,
        &protocol::storage::PlanParams {
            project: params.project.clone(),
            what: params.what.clone(),
            direction: params.direction,
            delete: false,
        },
    )
    .await?;
    if params.dry_run {
        return Ok(None);
    }
    let transfers = plan
        .items
        .iter()
        .filter(|item| item.op != Op::Delete)
        .count();
    let mb = plan.transfer_bytes as f64 / 1e6;
    let what = match params.direction {
        Direction::Push => format!(
            "it would upload {transfers} files ({mb:.1} MB) of project `{}` to {}",
            project.slug, plan.destination
        ),
        Direction::Pull => format!(
            "it would download {transfers} files ({mb:.1} MB) from {} into project `{}`'s folder (files it replaces are kept in archive/replaced/)",
            plan.destination, project.slug
        ),
    };
    Ok(Some(format!(
        "{what}, as planned when proposed; a person approves every sync with S3"
    )))
}
