//! `kromactl storage …`: a project's folder, or one of its exports, kept in the project's S3
//! bucket (`storage.*`). `plan` shows what a sync would do; `sync` shows the plan, asks before it
//! deletes anything, carries it out with a progress bar from `storage.progress` events and prints
//! the report. `text.rs` renders; `settings.rs` holds the S3 flags of `project create` and
//! `project update`.
//!
//! `sync` exits 1 when a step failed, also with `--json` (the report is printed first), so a
//! script can stop on an incomplete sync.

mod settings;
#[cfg(test)]
mod tests;
mod text;

use std::path::Path;

use clap::{Args, Subcommand};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::storage as wire;

use crate::Global;
use crate::common::confirm;
use crate::output::{Failure, print};

pub use settings::{S3Args, s3_settings};

/// Where objects go and where the keys come from; a macro so the help texts can `concat!` it.
macro_rules! about {
    () => {
        "Objects live under <prefix>/<project slug>/ in the project's bucket (`kromactl project \
         update PROJECT --s3-bucket BUCKET --s3-prefix PREFIX`), each keyed by its path in the \
         project folder, so an export synced alone lands where a sync of the whole project puts \
         it; a file is sent again only when its size or SHA-256 differ, and nothing is deleted \
         without --delete\n\nThe keys are two secrets: `kromactl secret set s3_access_key_id` \
         and `kromactl secret set s3_secret_access_key`, or the names set with `kromactl project \
         update PROJECT --s3-access-key-secret NAME --s3-secret-key-secret NAME`; `kromactl \
         doctor` checks the bucket and the keys"
    };
}

/// What `kromactl storage --help` prints after its subcommands.
pub const ABOUT: &str = about!();

/// What `storage plan --help` prints after its arguments.
const PLAN_HELP: &str = about!();

/// What `storage sync --help` prints after its arguments: what it does, where objects go, and
/// its exit codes.
const SYNC_HELP: &str = concat!(
    "Shows the plan first and asks before deleting anything (--delete), then moves the files with \
     a progress bar and prints what it did and every file that failed\n\n",
    about!(),
    "\n\nExit codes: 0 every step succeeded (or a dry run), 1 a file or object failed (the report, \
     printed first, lists each; run the same command again to retry) or another error, 2 usage \
     error (also: deletes to confirm without a terminal and no --yes), 3 kromad not running, 4 \
     socket not yours (another user's, or permission denied)"
);

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Show what a sync would upload, download or delete, and change nothing
    #[command(after_help = PLAN_HELP)]
    Plan(PlanArgs),
    /// Push the project's folder (or one export) to its bucket, or pull it back with --pull
    #[command(after_help = SYNC_HELP)]
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The project's slug
    pub project: String,
    /// Only this export (its .tar.gz, or every file of its folder) instead of the whole folder
    #[arg(long, value_name = "ID")]
    pub export: Option<String>,
    /// Download from the bucket into the project's folder instead of uploading
    #[arg(long)]
    pub pull: bool,
    /// Also delete what the source no longer has: objects in the bucket, or with --pull files in
    /// the project's folder
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only show the plan kromad would carry out; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before deleting (needed without a terminal when the plan deletes)
    #[arg(long, short)]
    pub yes: bool,
}

pub async fn run(global: &Global, socket: &Path, command: StorageCommand) -> Result<(), Failure> {
    match command {
        StorageCommand::Plan(args) => {
            let client = Client::connect_unbounded(socket).await?;
            let plan = client.call::<wire::PlanSync>(&plan_params(args)).await?;
            print(global, &plan, || text::plan_text(&plan));
            Ok(())
        }
        StorageCommand::Sync(args) => sync(global, socket, args).await,
    }
}

/// `storage sync`: the plan, a question when it deletes, then the sync with a progress bar and
/// its report; exit 1 when a step failed.
async fn sync(global: &Global, socket: &Path, args: SyncArgs) -> Result<(), Failure> {
    let params = sync_params(args.plan, args.dry_run);
    let client = Client::connect_unbounded(socket).await?;
    if args.dry_run {
        let report = client.call::<wire::Sync>(&params).await?;
        print(global, &report, || text::dry_run_text(&report));
        return Ok(());
    }
    let plan = client
        .call::<wire::PlanSync>(&wire::PlanParams {
            project: params.project.clone(),
            what: params.what.clone(),
            direction: params.direction,
            delete: params.delete,
        })
        .await?;
    let ask = !args.yes && plan.items.iter().any(|item| item.op == wire::Op::Delete);
    if !global.json && !global.quiet {
        println!("{}\n", text::plan_text(&plan));
    } else if ask {
        // Whoever answers sees what goes; stdout keeps only the report.
        eprintln!("{}\n", text::plan_text(&plan));
    }
    if ask && !confirm(&text::delete_question(&plan))? {
        return Err(Failure::other(
            "not synced",
            Some("pass --yes to skip the question, or leave out --delete to keep every file"),
        ));
    }
    // `storage.sync` plans again as it starts: only the deletes shown here may happen.
    let params = wire::SyncParams {
        confirmed_deletes: params.delete.then(|| {
            plan.items
                .iter()
                .filter(|item| item.op == wire::Op::Delete)
                .map(|item| item.path.clone())
                .collect()
        }),
        ..params
    };
    let report = sync_with_progress(global, &client, &params).await?;
    print(global, &report, || text::report_text(&report));
    if !report.ok {
        return Err(Failure::other(
            text::failed_message(&report),
            Some(
                "each failed file is listed above with the store's code; run the same command \
                 again to retry them (files already synced are not sent again)",
            ),
        ));
    }
    Ok(())
}

/// Calls `storage.sync`, following `storage.progress` events of the project with a bar of
/// bytes on a terminal.
async fn sync_with_progress(
    global: &Global,
    client: &Client,
    params: &wire::SyncParams,
) -> Result<wire::SyncReport, Failure> {
    let progress = crate::common::byte_bar(global);
    let mut events = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await?;
    let call = client.call::<wire::Sync>(params);
    tokio::pin!(call);
    let report = loop {
        tokio::select! {
            report = &mut call => break report,
            Some(Ok(event)) = events.next() => {
                // Another sync of the same project at once would show here too; the bar is only
                // a guide, the report is exact.
                if let Some(Ok(step)) = event.payload::<wire::SyncProgress>()
                    && step.project == params.project
                {
                    progress.set_length(step.bytes_total);
                    progress.set_position(step.bytes_done);
                    progress.set_message(text::progress_message(&step));
                }
            }
        }
    };
    progress.finish_and_clear();
    Ok(report?)
}

/// `storage.plan`'s params from the flags.
fn plan_params(args: PlanArgs) -> wire::PlanParams {
    wire::PlanParams {
        project: args.project,
        what: what(args.export),
        direction: direction(args.pull),
        delete: args.delete,
    }
}

/// `storage.sync`'s params from the flags.
fn sync_params(args: PlanArgs, dry_run: bool) -> wire::SyncParams {
    wire::SyncParams {
        project: args.project,
        what: what(args.export),
        direction: direction(args.pull),
        delete: args.delete,
        dry_run,
        confirmed_deletes: None,
    }
}

fn what(export: Option<String>) -> wire::What {
    match export {
        Some(id) => wire::What::Export { id },
        None => wire::What::Project,
    }
}

fn direction(pull: bool) -> wire::Direction {
    if pull {
        wire::Direction::Pull
    } else {
        wire::Direction::Push
    }
}
