//! `kromactl color`: one-off local post-process steps on files or folders, no project needed.
//! The daemon does the work (in parallel on its local-work slots); progress comes from its
//! `postprocess.file` events.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kroma_client::Client;
use kroma_protocol as protocol;

use crate::Global;
use crate::commands::print;
use crate::output::{self, Failure};

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

fn absolute(path: PathBuf) -> Result<String, Failure> {
    let cwd = std::env::current_dir()
        .map_err(|err| Failure::other(format!("reading the current directory: {err}"), None))?;
    Ok(cwd.join(path).display().to_string())
}

pub async fn color(
    global: &Global,
    socket: &std::path::Path,
    args: ColorArgs,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let params = protocol::postprocess::ColorParams {
        paths: args
            .paths
            .into_iter()
            .map(absolute)
            .collect::<Result<_, _>>()?,
        profile: args.profile,
        output_dir: args.output.map(absolute).transpose()?,
    };
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
    let call = client.call::<protocol::postprocess::Color>(&params);
    tokio::pin!(call);
    let report = loop {
        tokio::select! {
            report = &mut call => break report?,
            Some(Ok(event)) = events.next() => {
                if event.kind == protocol::events::kind::POSTPROCESS_FILE && event.data["step"] == "color" {
                    progress.set_length(event.data["total"].as_u64().unwrap_or(0));
                    progress.set_position(event.data["done"].as_u64().unwrap_or(0));
                    progress.set_message(event.data["input"].as_str().unwrap_or_default().to_owned());
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
