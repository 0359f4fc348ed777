//! `kromactl export …`: packages of a project's results (`export.*`). `create` has kromad write
//! one into the project's exports/ (a deterministic `.tar.gz`, or a folder), `list` and `show`
//! read them, `rm` deletes one, and `verify` checks one against its manifest: by id through
//! kromad, or by path here without kromad (`local.rs`), both by the contract's one rule.
//! `text.rs` renders.
//!
//! `verify` exits 1 when the export does not match, also with `--json` (the report is printed
//! first), so a script can stop on a damaged or altered export.

mod local;
#[cfg(test)]
mod tests;
pub(crate) mod text;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::export as wire;

use crate::Global;
use crate::common::confirm;
use crate::output::{Failure, print};

/// What `export verify` prints after its arguments in `--help`: its exit codes.
pub const VERIFY_EXIT_CODES: &str = "Exit codes: 0 the export matches its manifest, 1 it does not \
     (a file changed, missing or extra; or another error), 2 usage error, 3 kromad not running \
     (verifying by id), 4 socket not yours (another user's, or permission denied)";

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Package files, their run records and a manifest into the project's exports/
    Create(CreateArgs),
    /// List exports, newest first
    List {
        /// Only this project's exports
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one export
    Show {
        /// The export's id
        id: String,
    },
    /// Check an export against its manifest: a path here, without kromad, or an id through kromad (exit 1 if it does not match)
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify {
        /// A .tar.gz or folder to check here, or an export's id for kromad to check
        #[arg(value_name = "EXPORT")]
        export: PathBuf,
    },
    /// Delete an export and its file or folder (asks first unless --yes)
    Rm {
        /// The export's id
        id: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("selection")
        .required(true)
        .args(["approved", "run", "assets", "project_all"])
))]
pub struct CreateArgs {
    /// The project's slug
    pub project: String,
    /// The approved baseline of every scene (`kromactl run baselines`)
    #[arg(long, help_heading = "Selection (one of)")]
    pub approved: bool,
    /// One run: each job's winner and the run's record
    #[arg(long, value_name = "RUN", help_heading = "Selection (one of)")]
    pub run: Option<String>,
    /// These assets of the project (repeat for more)
    #[arg(long = "asset", value_name = "ID", help_heading = "Selection (one of)")]
    pub assets: Vec<String>,
    /// Every asset of the project and every run record
    #[arg(long, help_heading = "Selection (one of)")]
    pub project_all: bool,
    /// Write a folder instead of a .tar.gz
    #[arg(long)]
    pub folder: bool,
}

pub async fn run(global: &Global, socket: &Path, command: ExportCommand) -> Result<(), Failure> {
    match command {
        ExportCommand::Create(args) => create(global, socket, args).await,
        ExportCommand::List { project } => {
            let client = Client::connect(socket).await?;
            let list = client
                .call::<wire::List>(&wire::ListParams { project })
                .await?;
            print(global, &list, || text::list_text(&list));
            Ok(())
        }
        ExportCommand::Show { id } => {
            let client = Client::connect(socket).await?;
            let export = client.call::<wire::Get>(&wire::ExportRef { id }).await?;
            print(global, &export, || text::details_text(&export));
            Ok(())
        }
        ExportCommand::Verify { export } => verify(global, socket, &export).await,
        ExportCommand::Rm { id, yes } => remove(global, socket, id, yes).await,
    }
}

/// `export create`: kromad packs the files, which can take a while; a line says so first.
async fn create(global: &Global, socket: &Path, args: CreateArgs) -> Result<(), Failure> {
    let params = create_params(args)?;
    let client = Client::connect_unbounded(socket).await?;
    if !global.quiet && !global.json {
        eprintln!("{}", text::exporting_text(&params));
    }
    let progress = crate::common::byte_bar(global);
    let mut events = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await?;
    let call = client.call::<wire::Create>(&params);
    tokio::pin!(call);
    let export = loop {
        tokio::select! {
            export = &mut call => break export?,
            Some(Ok(event)) = events.next() => {
                // Another export of the same project at once would show here too; the bar is
                // only a guide, the answer is exact.
                if let Some(Ok(step)) = event.payload::<protocol::export::ExportProgress>()
                    && (step.project == params.project || event.project.as_deref() == Some(params.project.as_str()))
                {
                    progress.set_length(step.bytes_total);
                    progress.set_position(step.bytes_done);
                    let phase = match step.phase {
                        protocol::export::ExportPhase::Hashing => "hashing",
                        protocol::export::ExportPhase::Packing => "packing",
                    };
                    progress.set_message(format!("{phase} {}/{} files", step.done, step.total));
                }
            }
        }
    };
    progress.finish_and_clear();
    print(global, &export, || text::created_text(&export));
    Ok(())
}

/// `export verify`: a file or folder here, else an id through kromad; exit 1 when not ok.
async fn verify(global: &Global, socket: &Path, export: &Path) -> Result<(), Failure> {
    let report = match local::target(export)? {
        local::Target::Archive(path) => local::verify_archive(&path)?,
        local::Target::Folder(path) => local::verify_folder(&path)?,
        local::Target::Id(id) => {
            let client = Client::connect_unbounded(socket).await?;
            client.call::<wire::Verify>(&wire::ExportRef { id }).await?
        }
    };
    print(global, &report, || text::verify_text(&report));
    if !report.ok {
        return Err(Failure::other(
            text::mismatch_message(&report),
            Some(
                "changed: another size or sha256; missing: listed but not there; extra: there but not listed",
            ),
        ));
    }
    Ok(())
}

/// `export rm`: shows what goes and asks, unless `--yes`.
async fn remove(global: &Global, socket: &Path, id: String, yes: bool) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    if !yes {
        let export = client
            .call::<wire::Get>(&wire::ExportRef { id: id.clone() })
            .await?;
        if !confirm(&text::delete_question(&export))? {
            return Err(Failure::other(
                "not deleted",
                Some("pass --yes to skip the question"),
            ));
        }
    }
    let deleted = client
        .call::<wire::Delete>(&wire::DeleteParams {
            id: id.clone(),
            confirm: true,
        })
        .await?;
    print(global, &deleted, || {
        format!("deleted export {} and {}", deleted.id, deleted.path)
    });
    Ok(())
}

/// `export.create`'s params: the one selection clap let through, and the format.
fn create_params(args: CreateArgs) -> Result<wire::CreateParams, Failure> {
    let selection = if let Some(run) = args.run {
        wire::Selection::Run { run }
    } else if !args.assets.is_empty() {
        wire::Selection::Assets {
            assets: args.assets,
        }
    } else if args.project_all {
        wire::Selection::Project
    } else if args.approved {
        wire::Selection::Approved
    } else {
        // clap's group asks for one already.
        return Err(Failure::Usage(
            "say what to export: --approved, --run RUN, --asset ID or --project-all".to_owned(),
        ));
    };
    Ok(wire::CreateParams {
        project: args.project,
        selection,
        format: if args.folder {
            wire::ExportFormat::Folder
        } else {
            wire::ExportFormat::TarGz
        },
    })
}
