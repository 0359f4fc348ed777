//! `kromactl`: the command line client of kromad.
//!
//! Exit codes: 0 success, 1 error, 2 usage error, 3 kromad not running, 4 the socket is not
//! yours (another user's, or permission denied).

mod actions;
mod assets;
mod bench;
mod bench_kromad;
mod bench_post;
mod bench_qa;
mod bench_runs;
mod bench_sync;
mod bench_watch;
mod commands;
mod common;
mod daemon;
mod dev;
mod doctor;
mod export;
mod instructions;
mod knowledge;
mod local_models;
mod output;
mod postprocess;
mod qa;
mod run_review;
mod run_settings;
mod runs;
mod secret_args;
mod service;
mod settings;
mod storage;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit code when the daemon does not answer.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code of a usage error (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the socket is another user's or this user may not reach it.
pub const EXIT_SOCKET_NOT_YOURS: u8 = 4;

/// Control kromad, the Kroma image production daemon
#[derive(Debug, Parser)]
#[command(name = "kromactl", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 usage error, 3 kromad not running, 4 socket not yours (another user's, or permission denied)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Socket of the daemon [default: $XDG_RUNTIME_DIR/kroma/kromad.sock]
    #[arg(long, global = true, env = "KROMA_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print exactly the JSON result of the call instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on success
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop and inspect the daemon
    #[command(subcommand)]
    Daemon(crate::daemon::DaemonCommand),
    /// Create, list, show, update and remove projects
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Import images into a project and relate them
    #[command(subcommand)]
    Asset(AssetCommand),
    /// Style guides: how the project's images are drawn
    #[command(subcommand)]
    Style(crate::knowledge::StyleCommand),
    /// Characters and their reference images
    #[command(subcommand)]
    Character(crate::knowledge::CharacterCommand),
    /// Reference sets: weighted groups of reference images
    #[command(subcommand)]
    Refset(crate::knowledge::RefsetCommand),
    /// Prompt templates with {{variable}} placeholders
    #[command(subcommand)]
    Template(crate::knowledge::TemplateCommand),
    /// Hand the project's knowledge to an outside AI and import its answer
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Provider keys and other secrets (values are never shown)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Image API accounts: add one, check that it works
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Generation runs: plan, create, start, watch, list, show, cancel, retry, approve and sheet
    #[command(subcommand)]
    Run(crate::runs::RunCommand),
    /// Show what was spent, by project, model and day
    Cost(crate::runs::CostArgs),
    /// The run settings in force and where each comes from
    #[command(subcommand)]
    Settings(crate::settings::SettingsCommand),
    /// Image models at providers: prices, lifecycles and shutdown dates
    #[command(subcommand, alias = "model")]
    ImageModels(crate::settings::ModelCommand),
    /// Local ONNX runtime and models on this machine: list, check, install
    #[command(subcommand, alias = "models")]
    LocalModels(crate::local_models::ModelsCommand),
    /// Apply a colour profile to image files or folders (alpha kept; never overwrites)
    Color(crate::postprocess::ColorArgs),
    /// Remove the background of image files or folders with a local model (never overwrites)
    BgRemove(crate::postprocess::BgRemoveArgs),
    /// Upscale image files or folders ×2 or ×4 with a local model, in tiles (never overwrites)
    Upscale(crate::postprocess::UpscaleArgs),
    /// Check images, folders, an asset or a run's outputs with the QA guard (exit 1 if a file fails)
    #[command(after_help = crate::qa::QA_EXIT_CODES)]
    Qa(crate::qa::QaArgs),
    /// Move image files or folders to a project's archive/bad/ (renamed, never overwriting)
    #[command(after_help = crate::qa::ARCHIVE_EXIT_CODES)]
    ArchiveBad(crate::qa::ArchiveBadArgs),
    /// Show an image file's provenance (what Kroma wrote into it), its asset and its QA verdict
    Inspect(crate::qa::InspectArgs),
    /// Package a project's results with their run records and a manifest; verify a package
    #[command(subcommand)]
    Export(crate::export::ExportCommand),
    /// Sync a project's folder, or one export, with its S3 bucket: plan, push, pull
    #[command(subcommand, after_help = crate::storage::ABOUT)]
    Storage(crate::storage::StorageCommand),
    /// Drop folders: run a project pipeline or a local chain on each file that lands in a folder
    #[command(subcommand)]
    Watch(crate::watch::WatchCommand),
    /// Check everything kroma needs: daemon, socket, database, secret store, providers, disk, S3
    Doctor,
    /// Show the event log, or follow it live
    Events(EventsArgs),
    /// Work agents proposed: list, show, approve (confirm or a one-time code), cancel
    #[command(subcommand)]
    Instruction(crate::instructions::InstructionCommand),
    /// What agents may do without asking a person
    #[command(subcommand)]
    Agent(crate::instructions::AgentCommand),
    /// Conversations with agents and the instructions they produced
    #[command(subcommand)]
    Chat(crate::instructions::ChatCommand),
    /// Read the audit log of mutating calls
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Call any method, or print the API description
    #[command(subcommand)]
    Rpc(RpcCommand),
    /// Measure kromad against a baseline
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Tools for trying Kroma without paying (a fake image provider, an S3 server)
    #[command(subcommand)]
    Dev(crate::dev::DevCommand),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project and its root folder
    Create {
        /// Display name, e.g. "Night Harbor"
        name: String,
        /// Short unique id [default: derived from the name]
        #[arg(long)]
        slug: Option<String>,
        /// What the story world is about
        #[arg(long)]
        description: Option<String>,
        /// Absolute path of the root folder [default: <data dir>/projects/<slug>]
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        #[command(flatten)]
        s3: crate::storage::S3Args,
    },
    /// List projects
    List,
    /// Show one project
    Show {
        /// The project's slug
        slug: String,
    },
    /// Change a project's name, description or S3 settings
    Update {
        /// The project's slug
        slug: String,
        /// New display name
        #[arg(long)]
        name: Option<String>,
        /// New description
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        s3: crate::storage::S3Args,
        /// Remove the S3 settings
        #[arg(long, conflicts_with = "s3_bucket")]
        clear_s3: bool,
    },
    /// Delete a project (asks first unless --yes)
    Rm {
        /// The project's slug
        slug: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
        /// Also delete the project's root folder and every file in it
        #[arg(long)]
        purge_files: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Add a provider account; its key is the secret of the same name unless --secret says otherwise
    Add {
        /// Short name, e.g. openai
        name: String,
        /// The API the provider speaks
        #[arg(long, value_enum, default_value_t = ProviderKindArg::Openai)]
        kind: ProviderKindArg,
        /// API base URL [default for openai: https://api.openai.com/v1]
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Model used when a run names none [default: gpt-image-2]
        #[arg(long, value_name = "MODEL")]
        default_model: Option<String>,
        /// OpenAI organization id
        #[arg(long)]
        organization: Option<String>,
        /// Name of the secret holding the key
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// The endpoint answers a repeated Idempotency-Key without billing twice, so a call that
        /// may have reached it is re-sent instead of marked unknown (OpenAI does not)
        #[arg(long)]
        honors_idempotency_key: bool,
    },
    /// List provider accounts
    List,
    /// Show one provider account
    Show {
        /// The provider's name
        name: String,
    },
    /// Change a provider account
    Update {
        /// The provider's name
        name: String,
        /// New API base URL
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Model used when a run names none
        #[arg(long, value_name = "MODEL")]
        default_model: Option<String>,
        /// OpenAI organization id ("" removes it)
        #[arg(long)]
        organization: Option<String>,
        /// Name of the secret holding the key
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// Whether the endpoint answers a repeated Idempotency-Key without billing twice
        #[arg(long, value_name = "BOOL")]
        honors_idempotency_key: Option<bool>,
    },
    /// Make one cheap authenticated call and report ok or what is wrong (exit 1 if not ok)
    Check {
        /// The provider's name
        name: String,
    },
    /// Delete a provider account (its secret is kept; asks first unless --yes)
    Rm {
        /// The provider's name
        name: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProviderKindArg {
    Openai,
    OpenaiCompatible,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret; the value is read from a hidden prompt, or from stdin when piped
    Set {
        /// The secret's name, e.g. openai
        name: String,
        /// A value given here by mistake: refused without being shown
        #[arg(
            hide = true,
            num_args = 0..,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        value_on_command_line: Vec<std::ffi::OsString>,
    },
    /// List secret names and the active store
    List,
    /// Check that kromad can read a secret
    Test {
        /// The secret's name
        name: String,
    },
    /// Delete a stored secret (asks first unless --yes)
    Rm {
        /// The secret's name
        name: String,
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Print the prompt to paste into an AI (with --json: prompt, current document and schema)
    Export {
        /// The project's slug
        project: String,
    },
    /// Import the AI's answer from FILE (or stdin): show the changes, then apply them
    Import {
        /// The project's slug
        project: String,
        /// File with the AI's answer; `-` or nothing reads stdin
        file: Option<PathBuf>,
        /// merge: create and change, keep the rest; replace: given sections become exactly the document
        #[arg(long, value_enum, default_value_t = ImportModeArg::Merge)]
        mode: ImportModeArg,
        /// Show the changes without making them
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImportModeArg {
    Merge,
    Replace,
}

#[derive(Debug, Subcommand)]
pub enum AssetCommand {
    /// Copy image files, or every image in folders, into a project
    Import {
        /// The project's slug
        project: String,
        /// Files or folders (folders are walked; your files are copied, never moved)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// What the images are for
        #[arg(long, value_enum, default_value_t = ImportKind::Input)]
        kind: ImportKind,
    },
    /// List a project's assets
    List {
        /// The project's slug
        project: String,
        /// Only assets of this kind
        #[arg(long, value_enum)]
        kind: Option<AnyKind>,
    },
    /// Show one asset
    Show {
        /// The project's slug
        project: String,
        /// The asset id
        id: String,
    },
    /// Delete an asset, its links and its copy in the project (asks first unless --yes)
    Rm {
        /// The project's slug
        project: String,
        /// The asset id
        id: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Record that FROM relates to TO, e.g. `asset link comic UPSCALED derived-from ORIGINAL`
    Link {
        /// The project's slug
        project: String,
        /// The child asset id
        from: String,
        #[arg(value_enum)]
        relation: RelationArg,
        /// The parent asset id
        to: String,
    },
    /// Show every asset connected to one, and how
    Lineage {
        /// The project's slug
        project: String,
        /// The asset id
        id: String,
    },
}

/// Kinds an import may have.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImportKind {
    Input,
    Reference,
    Mask,
    Other,
}

/// Every asset kind, for filters, named as tables and the API print them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AnyKind {
    Input,
    Reference,
    Mask,
    Generated,
    #[value(alias = "bg-removed")]
    BgRemoved,
    Upscaled,
    #[value(alias = "color-corrected")]
    ColorCorrected,
    Other,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RelationArg {
    DerivedFrom,
    VariantOf,
    MaskFor,
    ReferenceOf,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show events after this id (the last id you have seen)
    #[arg(long, value_name = "ID")]
    pub since: Option<u64>,
    /// Keep running and print new events as they happen
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, oldest first
    List {
        /// Entries after this id
        #[arg(long, value_name = "ID")]
        since: Option<u64>,
        /// At most this many entries (1 to 1000)
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum RpcCommand {
    /// Call METHOD with JSON params (an object) and print the JSON result
    Call {
        /// Method name, e.g. project.get
        method: String,
        /// Named params as a JSON object, e.g. '{"slug":"night-harbor"}'
        params: Option<String>,
    },
    /// Print the OpenRPC document of every method
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Round-trip latency and throughput of daemon.version against a raw echo server
    Rpc {
        /// Calls per client
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
        /// Concurrent clients in the throughput run
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// The kromad binary [default: next to kromactl, else on PATH]
        #[arg(long, value_name = "PATH")]
        kromad: Option<PathBuf>,
    },
    /// Background removal against rembg, and tiled upscale against one-piece upscale
    Postprocess {
        /// Images to remove the background of
        #[arg(long, default_value_t = 8)]
        images: usize,
        /// Their sizes, WxH, comma-separated: the generator's page and a print-size page
        #[arg(long, value_delimiter = ',', default_value = "1024x1536,2048x3072", value_parser = crate::bench::parse_size)]
        sizes: Vec<(u32, u32)>,
        /// A Python with rembg==2.0.86 and onnxruntime==1.31.1 (packaging/bench/rembg-venv.sh); its Pillow also runs the old colour script
        #[arg(
            long,
            env = "KROMA_REMBG_PYTHON",
            hide_env_values = true,
            value_name = "PATH"
        )]
        rembg_python: Option<PathBuf>,
        /// The kromad binary [default: next to kromactl, else on PATH]
        #[arg(long, value_name = "PATH")]
        kromad: Option<PathBuf>,
    },
    /// Run orchestration overhead per candidate and throughput against direct provider calls
    Runs {
        /// Candidates per measurement
        #[arg(long, default_value_t = 100)]
        candidates: usize,
        /// Parallel provider calls to measure throughput at, comma-separated
        #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
        parallel: Vec<usize>,
        /// The fake provider's latency per call in the throughput measurements
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// The kromad binary [default: next to kromactl, else on PATH]
        #[arg(long, value_name = "PATH")]
        kromad: Option<PathBuf>,
    },
    /// Drop-folder trigger latency and throughput against direct colour calls
    Watch(crate::bench_watch::WatchArgs),
    /// The QA guard on a folder of PNGs against the old system's qa script
    Qa(crate::bench_qa::QaArgs),
    /// S3 push throughput of storage.sync against the same uploads made with aws-sdk-s3 directly
    Sync(crate::bench_sync::SyncArgs),
}

fn main() -> ExitCode {
    let cli = secret_args::parse_or_exit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ExitCode::from(output::report(&failure, json)),
    }
}
