//! `kromactl color|bg-remove|upscale`: one-off local post-process steps on files or folders, no
//! project needed. The daemon does the work (in parallel on its local-work slots); progress comes
//! from its `postprocess.file` events, and tiles within a file from `postprocess.progress`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::TypedValueParser;
use indicatif::{ProgressBar, ProgressStyle};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::Method;
use protocol::postprocess::{Step, StepReport};

use crate::Global;
use crate::output::{self, Failure, print};

#[derive(Debug, clap::Args)]
pub struct ColorArgs {
    /// Image files or folders (folders: every PNG, JPEG and WebP below, recursively)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// neutral, cinematic_warm, cold_rain, or one of your [color_profiles.<name>]
    #[arg(long, short, default_value = "neutral")]
    pub profile: String,
    /// Folder for the outputs [default: next to each source, as <stem>_<profile>.png]
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BgRemoveArgs {
    /// Image files or folders (folders: every PNG, JPEG and WebP below, recursively)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Folder for the outputs [default: next to each source, as <stem>_nobg.png]
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// An installed background-removal model [default: u2netp; u2net with --quality models]
    #[arg(long)]
    pub model: Option<String>,
    /// Write the mask (white = kept) instead of the cut-out, as <stem>_mask.png
    #[arg(long, conflicts_with = "background")]
    pub mask_only: bool,
    /// Refine the edge of the mask along the image's own edges (hair, soft outlines)
    #[arg(long)]
    pub matting: bool,
    /// Put the cut-out on this colour instead of transparency, e.g. '#ffffff'
    #[arg(long, value_name = "#RRGGBB")]
    pub background: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct UpscaleArgs {
    /// Image files or folders (folders: every PNG, JPEG and WebP below, recursively)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Folder for the outputs [default: next to each source, as <stem>_x<scale>.png]
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// 2 or 4
    #[arg(long, short, default_value_t = 4, value_parser = clap::builder::PossibleValuesParser::new(["2", "4"]).map(|s| s.parse::<u32>().unwrap_or(4)))]
    pub scale: u32,
    /// An installed upscale model [default: realesr-general-x4v3; realesrgan-x4plus with --quality models]
    #[arg(long)]
    pub model: Option<String>,
    /// Tile side in input pixels, 32 to 1024 [default: 256]; smaller tiles use less memory, more time
    #[arg(long)]
    pub tile: Option<u32>,
}

fn absolute(path: PathBuf) -> Result<String, Failure> {
    crate::common::absolute(&path)
}

fn absolute_all(paths: Vec<PathBuf>) -> Result<Vec<String>, Failure> {
    paths.into_iter().map(absolute).collect()
}

pub async fn color(global: &Global, socket: &Path, args: ColorArgs) -> Result<(), Failure> {
    let params = protocol::postprocess::ColorParams {
        paths: absolute_all(args.paths)?,
        profile: args.profile,
        output_dir: args.output.map(absolute).transpose()?,
    };
    run_step::<protocol::postprocess::Color>(global, socket, Step::Color, &params).await
}

pub async fn bg_remove(global: &Global, socket: &Path, args: BgRemoveArgs) -> Result<(), Failure> {
    let params = protocol::postprocess::BgRemoveParams {
        paths: absolute_all(args.paths)?,
        output_dir: args.output.map(absolute).transpose()?,
        model: args.model,
        mask_only: args.mask_only,
        matting: args.matting,
        background: args.background,
    };
    run_step::<protocol::postprocess::BgRemove>(global, socket, Step::BgRemove, &params).await
}

pub async fn upscale(global: &Global, socket: &Path, args: UpscaleArgs) -> Result<(), Failure> {
    let params = protocol::postprocess::UpscaleParams {
        paths: absolute_all(args.paths)?,
        output_dir: args.output.map(absolute).transpose()?,
        scale: Some(args.scale),
        model: args.model,
        tile: args.tile,
    };
    run_step::<protocol::postprocess::Upscale>(global, socket, Step::Upscale, &params).await
}

/// Calls `M` and shows its progress: files done, and the tiles of the file in hand.
async fn run_step<M: Method<Output = StepReport>>(
    global: &Global,
    socket: &Path,
    step: Step,
    params: &M::Params,
) -> Result<(), Failure> {
    let client = Client::connect_unbounded(socket).await?;
    let progress =
        if global.quiet || global.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
    let mut events = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await?;
    let call = client.call::<M>(params);
    tokio::pin!(call);
    let report = loop {
        tokio::select! {
            report = &mut call => break report?,
            Some(Ok(event)) = events.next() => {
                if let Some(Ok(file)) = event.payload::<protocol::events::PostprocessFile>()
                    && file.step == step
                {
                    progress.set_length(u64::from(file.total));
                    progress.set_position(u64::from(file.done));
                    progress.set_message(file.input);
                } else if let Some(Ok(protocol::events::PostprocessProgress::File(tiles))) =
                    event.payload::<protocol::events::PostprocessProgress>()
                    && tiles.step == step
                {
                    // The tiles of a run's post-process chain are another call's.
                    progress.set_message(format!(
                        "{} (tile {} of {})",
                        tiles.input, tiles.tiles_done, tiles.tiles
                    ));
                }
            }
        }
    };
    progress.finish_and_clear();
    print(global, &report, || report_text(&report));
    if report.failed > 0 {
        return Err(Failure::other(
            format!("{} of {} files failed", report.failed, report.results.len()),
            Some("each failed file says why above; the others were written"),
        ));
    }
    Ok(())
}

fn report_text(report: &protocol::postprocess::StepReport) -> String {
    let mut table = output::table(&["INPUT", "OUTPUT / ERROR"]);
    for result in &report.results {
        let outcome = match (&result.output, &result.error) {
            (Some(output), _) => output.clone(),
            (None, Some(error)) => match &error.hint {
                Some(hint) => format!("{} ({hint})", error.message),
                None => error.message.clone(),
            },
            (None, None) => String::new(),
        };
        table.add_row(vec![result.input.clone(), outcome]);
    }
    format!("{table}\n{} written, {} failed", report.done, report.failed)
}
