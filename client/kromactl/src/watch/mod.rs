//! `kromactl watch …`: drop folders. A rule maps a folder to a project pipeline (each file that
//! lands becomes the one scene of a run, proposed as an instruction and run within the rule's
//! budget) or to a local chain of steps (each result written to an output folder). kromad does
//! the watching; these commands add, change, pause and remove rules and read their journals.
//!
//! The pipeline's run settings are `run plan`'s flags, turned into params by the same
//! [`crate::run_settings::plan_params`]. `--chain` and `--settle` are parsed in `parse.rs`; the
//! tables and messages are `text.rs`.

mod parse;
#[cfg(test)]
mod tests;
mod text;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::watch as wire;

use crate::Global;
use crate::common::{absolute, parse_usd_or_zero};
use crate::output::{Failure, print};
use crate::run_settings::{RunSettingsArgs, plan_params};
use parse::{parse_duration_ms, parse_steps};
use text::{added_text, details_text, list_text, log_text, state_hint, state_text};

const ADD_EXAMPLES: &str = "\
Examples:
  # Each image dropped into ./inbox becomes a style run in the project harbor; up to $5 of
  # them run without asking, the rest wait for `kromactl instruction confirm`
  kromactl watch add ./inbox --project harbor --budget 5 --quality high

  # Cut out, upscale ×2 and colour every image dropped into ./scans, into ./finished
  kromactl watch add ./scans --chain bg_remove,upscale:2,color:cinematic_warm --output ./finished

  # A folder on a network mount: poll it, and leave the inputs where they land
  kromactl watch add /mnt/share/drop --name share --chain upscale --output ~/upscaled \\
    --poll --settle 5s --keep-inputs --pattern '*.tif' --pattern '*.png'";

#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Watch a folder: each complete file that lands starts a project run or a local chain, once
    #[command(after_long_help = ADD_EXAMPLES)]
    Add(Box<AddArgs>),
    /// List the rules with their state, file counts, spend and last error
    List,
    /// Show one rule: its folder, action, detection, budget and file counts
    Show {
        /// The rule's name or id
        rule: String,
    },
    /// Change a rule's patterns, budget, detection, inputs or chain; files already taken keep theirs
    Update(UpdateArgs),
    /// Stop watching a folder and forget its rule (files in flight finish; nothing is deleted)
    #[command(alias = "rm")]
    Remove {
        /// The rule's name or id
        rule: String,
    },
    /// Pause a rule: files that land wait in the folder until it resumes
    Pause {
        /// The rule's name or id
        rule: String,
    },
    /// Resume a paused rule; files that landed meanwhile are taken
    Resume {
        /// The rule's name or id
        rule: String,
    },
    /// Show the files a rule took, newest first, with what became of each
    Log {
        /// The rule's name or id
        rule: String,
        /// At most this many files (1 to 1000)
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The folder to watch (files directly in it; its subfolders are not watched)
    pub folder: PathBuf,
    /// Run each file as the one scene of a run in this project (proposed as an instruction)
    #[arg(
        long,
        help_heading = "Pipeline",
        required_unless_present = "chain",
        conflicts_with = "chain"
    )]
    pub project: Option<String>,
    #[command(flatten, next_help_heading = "Pipeline")]
    pub settings: RunSettingsArgs,
    /// Instead, run local steps on each file, comma-separated: bg_remove, upscale[:2|4], color:PROFILE
    #[arg(
        long,
        value_name = "STEPS",
        value_parser = parse_steps,
        help_heading = "Chain",
        requires = "output",
        conflicts_with = "RunSettingsArgs"
    )]
    pub chain: Option<ChainSteps>,
    /// The folder for the chain's results (as <name>.png), outside the watched one
    #[arg(long, value_name = "DIR", help_heading = "Chain", requires = "chain")]
    pub output: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Chain")]
    pub step_options: StepOptions,
    /// A short name for the rule: letters, digits, - and _ [default: the folder's name]
    #[arg(long, help_heading = "Rule")]
    pub name: Option<String>,
    /// A file name pattern, e.g. '*.png' (repeat for more) [default: *.png *.jpg *.jpeg *.webp]
    #[arg(long = "pattern", value_name = "GLOB", help_heading = "Rule")]
    pub patterns: Vec<String>,
    /// What paid work from this rule may spend in all without asking, in USD [default: 0, every paid file waits for a person]
    #[arg(long, value_name = "USD", value_parser = parse_usd_or_zero, help_heading = "Rule")]
    pub budget: Option<f64>,
    /// Poll the folder instead of OS notifications (network and FUSE mounts)
    #[arg(long, help_heading = "Rule")]
    pub poll: bool,
    /// How long a file must stay unchanged before it counts when no rename or close was seen, e.g. 500ms or 2s [default: 2s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms, help_heading = "Rule")]
    pub settle: Option<u64>,
    /// Leave inputs where they land instead of moving them to processing/, done/, failed/ or duplicates/
    #[arg(long, help_heading = "Rule")]
    pub keep_inputs: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The rule's name or id
    pub rule: String,
    /// Replace the patterns: a file name pattern, e.g. '*.png' (repeat for more)
    #[arg(
        long = "pattern",
        value_name = "GLOB",
        conflicts_with = "default_patterns"
    )]
    pub patterns: Vec<String>,
    /// Go back to the default patterns (*.png *.jpg *.jpeg *.webp)
    #[arg(long)]
    pub default_patterns: bool,
    /// What paid work from this rule may spend in all without asking, in USD (0: nothing)
    #[arg(long, value_name = "USD", value_parser = parse_usd_or_zero)]
    pub budget: Option<f64>,
    /// Poll the folder instead of OS notifications (network and FUSE mounts)
    #[arg(long, conflicts_with = "no_poll")]
    pub poll: bool,
    /// Use OS notifications again instead of polling
    #[arg(long)]
    pub no_poll: bool,
    /// How long a file must stay unchanged before it counts, e.g. 500ms or 2s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub settle: Option<u64>,
    /// Leave inputs where they land from now on
    #[arg(long, conflicts_with = "move_inputs")]
    pub keep_inputs: bool,
    /// Move inputs to processing/, then done/, failed/ or duplicates/ from now on
    #[arg(long)]
    pub move_inputs: bool,
    /// Replace the chain's steps, comma-separated: bg_remove, upscale[:2|4], color:PROFILE
    #[arg(long, value_name = "STEPS", value_parser = parse_steps)]
    pub chain: Option<ChainSteps>,
    /// The chain's new output folder (with --chain, turns a pipeline rule into a chain)
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub step_options: StepOptions,
}

/// The settings of a chain's steps, as `kromactl bg-remove` and `kromactl upscale` take them.
#[derive(Debug, Args)]
pub struct StepOptions {
    /// The bg_remove step's installed model [default: the default one]
    #[arg(long, value_name = "MODEL", requires = "chain")]
    pub bg_remove_model: Option<String>,
    /// The bg_remove step writes the mask (white = kept) instead of the cut-out
    #[arg(long, requires = "chain", conflicts_with = "background")]
    pub mask_only: bool,
    /// The bg_remove step refines the mask's edge (hair, soft outlines)
    #[arg(long, requires = "chain")]
    pub matting: bool,
    /// The bg_remove step puts the cut-out on this colour instead of transparency, e.g. '#ffffff'
    #[arg(long, value_name = "#RRGGBB", requires = "chain")]
    pub background: Option<String>,
    /// The upscale step's installed model [default: the default one]
    #[arg(long, value_name = "MODEL", requires = "chain")]
    pub upscale_model: Option<String>,
    /// The upscale step's tile side in input pixels, 32 to 1024 [default: 256]
    #[arg(long, value_name = "PIXELS", requires = "chain")]
    pub tile: Option<u32>,
}

/// `--chain`: the steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSteps(pub Vec<wire::LocalStep>);

pub async fn run(global: &Global, socket: &Path, command: WatchCommand) -> Result<(), Failure> {
    match command {
        WatchCommand::Add(args) => {
            let params = add_params(*args)?;
            let client = Client::connect(socket).await?;
            let rule = client.call::<wire::Add>(&params).await?;
            print(global, &rule, || added_text(&rule));
        }
        WatchCommand::List => {
            let client = Client::connect(socket).await?;
            let list = client.call::<wire::List>(&protocol::NoParams {}).await?;
            print(global, &list, || list_text(&list.rules));
        }
        WatchCommand::Show { rule } => {
            let client = Client::connect(socket).await?;
            let rule = client.call::<wire::Get>(&wire::RuleRef { rule }).await?;
            print(global, &rule, || details_text(&rule));
        }
        WatchCommand::Update(args) => {
            refuse_empty(&args)?;
            let client = Client::connect(socket).await?;
            let params = update_params(&client, args).await?;
            let rule = client.call::<wire::Update>(&params).await?;
            print(global, &rule, || {
                format!("updated rule {}\n\n{}", rule.name, details_text(&rule))
            });
        }
        WatchCommand::Remove { rule } => {
            let client = Client::connect(socket).await?;
            let rule = client.call::<wire::Remove>(&wire::RuleRef { rule }).await?;
            print(global, &rule, || {
                format!(
                    "removed rule {}; nothing in {} was deleted",
                    rule.name, rule.folder
                )
            });
        }
        WatchCommand::Pause { rule } => {
            let client = Client::connect(socket).await?;
            let rule = client.call::<wire::Pause>(&wire::RuleRef { rule }).await?;
            print(global, &rule, || {
                format!(
                    "paused rule {}: files that land wait in {} until `kromactl watch resume {}`",
                    rule.name, rule.folder, rule.name
                )
            });
        }
        WatchCommand::Resume { rule } => {
            let client = Client::connect(socket).await?;
            let rule = client.call::<wire::Resume>(&wire::RuleRef { rule }).await?;
            print(global, &rule, || {
                let mut lines = vec![format!(
                    "resumed rule {}: {}",
                    rule.name,
                    state_text(rule.state)
                )];
                lines.extend(state_hint(&rule));
                lines.join("\n")
            });
        }
        WatchCommand::Log { rule, limit } => {
            let client = Client::connect(socket).await?;
            let log = client
                .call::<wire::Log>(&wire::LogParams {
                    rule,
                    limit: Some(limit),
                })
                .await?;
            print(global, &log, || log_text(&log));
        }
    }
    Ok(())
}

/// The steps with the step options applied; an option for a step the chain lacks is an error,
/// so a flag is never silently ignored.
fn with_options(
    steps: Vec<wire::LocalStep>,
    options: &StepOptions,
) -> Result<Vec<wire::LocalStep>, String> {
    let has = |name: &str| steps.iter().any(|step| step.name() == name);
    let bg_remove_flags = [
        ("--bg-remove-model", options.bg_remove_model.is_some()),
        ("--mask-only", options.mask_only),
        ("--matting", options.matting),
        ("--background", options.background.is_some()),
    ];
    let upscale_flags = [
        ("--upscale-model", options.upscale_model.is_some()),
        ("--tile", options.tile.is_some()),
    ];
    for (step, flags) in [
        ("bg_remove", &bg_remove_flags[..]),
        ("upscale", &upscale_flags),
    ] {
        if let Some((flag, _)) = flags.iter().find(|(_, given)| *given)
            && !has(step)
        {
            return Err(format!(
                "{flag} is for the {step} step, and --chain has none"
            ));
        }
    }
    Ok(steps
        .into_iter()
        .map(|step| match step {
            wire::LocalStep::BgRemove { .. } => wire::LocalStep::BgRemove {
                model: options.bg_remove_model.clone(),
                mask_only: options.mask_only,
                matting: options.matting,
                background: options.background.clone(),
            },
            wire::LocalStep::Upscale { scale, .. } => wire::LocalStep::Upscale {
                scale,
                model: options.upscale_model.clone(),
                tile: options.tile,
            },
            step => step,
        })
        .collect())
}

fn add_params(args: AddArgs) -> Result<wire::AddParams, Failure> {
    let action = match (args.chain, args.output, args.project) {
        (Some(ChainSteps(steps)), Some(output), None) => wire::WatchAction::Chain {
            steps: with_options(steps, &args.step_options).map_err(Failure::Usage)?,
            output: absolute(&output)?,
        },
        (None, None, Some(project)) => wire::WatchAction::Pipeline {
            plan: Box::new(plan_params(&project, &[], &args.settings)?),
        },
        // clap refuses most other combinations; `--project` with `--output` gets here.
        _ => {
            return Err(Failure::Usage(
                "pass --project PROJECT, or --chain STEPS with --output DIR".to_owned(),
            ));
        }
    };
    Ok(wire::AddParams {
        name: args.name,
        folder: absolute(&args.folder)?,
        action,
        patterns: args.patterns,
        budget_usd: args.budget.unwrap_or(0.0),
        poll: args.poll,
        settle_ms: args.settle,
        inputs: if args.keep_inputs {
            wire::Inputs::Keep
        } else {
            wire::Inputs::Move
        },
    })
}

/// The update's params. A new chain or output alone keeps the other half of the rule's current
/// chain, read with `watch.get`.
async fn update_params(client: &Client, args: UpdateArgs) -> Result<wire::UpdateParams, Failure> {
    let current = if args.chain.is_some() != args.output.is_some() {
        let rule = wire::RuleRef {
            rule: args.rule.clone(),
        };
        Some(client.call::<wire::Get>(&rule).await?)
    } else {
        None
    };
    update_params_from(args, current.as_ref())
}

/// [`update_params`] once the current rule is known (needed only for half a chain).
fn update_params_from(
    args: UpdateArgs,
    current: Option<&wire::WatchRule>,
) -> Result<wire::UpdateParams, Failure> {
    refuse_empty(&args)?;
    let action = match (args.chain, args.output, current) {
        (None, None, _) => None,
        (Some(ChainSteps(steps)), Some(output), _) => Some(wire::WatchAction::Chain {
            steps: with_options(steps, &args.step_options).map_err(Failure::Usage)?,
            output: absolute(&output)?,
        }),
        (_, _, None) => {
            return Err(Failure::Usage(
                "pass both --chain STEPS and --output DIR".to_owned(),
            ));
        }
        (chain, output, Some(current)) => {
            let wire::WatchAction::Chain {
                steps: current_steps,
                output: current_output,
            } = &current.action
            else {
                return Err(Failure::Usage(format!(
                    "rule {} runs a pipeline; pass both --chain STEPS and --output DIR to make it \
                     a chain",
                    current.name
                )));
            };
            let steps = match chain {
                Some(ChainSteps(steps)) => {
                    with_options(steps, &args.step_options).map_err(Failure::Usage)?
                }
                None => current_steps.clone(),
            };
            let output = match output {
                Some(output) => absolute(&output)?,
                None => current_output.clone(),
            };
            Some(wire::WatchAction::Chain { steps, output })
        }
    };
    let patterns = match (args.default_patterns, args.patterns.is_empty()) {
        (true, _) => Some(Vec::new()),
        (false, false) => Some(args.patterns),
        (false, true) => None,
    };
    let poll = match (args.poll, args.no_poll) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let inputs = match (args.keep_inputs, args.move_inputs) {
        (true, _) => Some(wire::Inputs::Keep),
        (false, true) => Some(wire::Inputs::Move),
        (false, false) => None,
    };
    Ok(wire::UpdateParams {
        rule: args.rule,
        action,
        patterns,
        budget_usd: args.budget,
        poll,
        settle_ms: args.settle,
        inputs,
    })
}

/// A usage error when `args` changes nothing, before kromad is asked anything.
fn refuse_empty(args: &UpdateArgs) -> Result<(), Failure> {
    let changes_nothing = args.patterns.is_empty()
        && !args.default_patterns
        && args.budget.is_none()
        && !args.poll
        && !args.no_poll
        && args.settle.is_none()
        && !args.keep_inputs
        && !args.move_inputs
        && args.chain.is_none()
        && args.output.is_none();
    if changes_nothing {
        return Err(Failure::Usage(
            "nothing to change; pass --pattern, --budget, --poll, --settle, --keep-inputs, \
             --chain or --output (see `kromactl watch update --help`)"
                .to_owned(),
        ));
    }
    Ok(())
}
