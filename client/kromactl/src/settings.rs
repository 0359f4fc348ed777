//! `kromactl settings show` and `kromactl image-models list`: the run settings in force, where each comes
//! from, and the image models with their prices and shutdown dates.

use std::path::Path;

use clap::Subcommand;
use kroma_client::Client;
use kroma_protocol as protocol;

use crate::Global;
use crate::output::{self, Failure, print, usd};

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show every run setting in force and the layer it came from
    Show {
        /// Include this project's .kroma/settings.toml
        #[arg(long)]
        project: Option<String>,
        /// Accepted for the documented spelling; the view is always the effective one
        #[arg(long)]
        effective: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// List known image models with prices and shutdown dates
    List {
        /// Ask this provider account which models it has first, and store the shutdown dates it reports
        #[arg(long, value_name = "PROVIDER")]
        refresh: Option<String>,
    },
}

pub async fn settings(
    global: &Global,
    socket: &Path,
    command: SettingsCommand,
) -> Result<(), Failure> {
    let SettingsCommand::Show {
        project,
        effective: _,
    } = command;
    let client = Client::connect(socket).await?;
    let settings = client
        .call::<protocol::settings::Effective>(&protocol::settings::EffectiveParams { project })
        .await?;
    print(global, &settings, || settings_text(&settings));
    Ok(())
}

pub async fn model(global: &Global, socket: &Path, command: ModelCommand) -> Result<(), Failure> {
    let ModelCommand::List { refresh } = command;
    let client = Client::connect(socket).await?;
    let list = client
        .call::<protocol::image_model::List>(&protocol::image_model::ListParams { refresh })
        .await?;
    print(global, &list, || model_text(&list));
    Ok(())
}

fn settings_text(settings: &protocol::settings::EffectiveSettings) -> String {
    let mut table = output::table(&["key", "value", "source"]);
    for setting in &settings.settings {
        table.add_row(vec![
            setting.key.clone(),
            setting_value(&setting.value),
            setting.source.clone(),
        ]);
    }
    let mut text = table.to_string();
    text.push_str("\n\nfiles, highest first:");
    for file in &settings.files {
        text.push_str(&format!(
            "\n  {:<8} {} ({})",
            file.layer,
            file.path,
            if file.exists { "exists" } else { "not there" }
        ));
    }
    text
}

/// Strings as they are, everything else as compact JSON.
fn setting_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn model_text(list: &protocol::image_model::ModelList) -> String {
    let mut table = output::table(&[
        "id",
        "lifecycle",
        "shutdown",
        "replacement",
        "low",
        "medium",
        "high",
        "source",
    ]);
    let dash = || "-".to_owned();
    for model in &list.models {
        let prices = model.image_prices.as_ref();
        table.add_row(vec![
            model.id.clone(),
            lifecycle(model.lifecycle).to_owned(),
            model.shutdown_date.clone().unwrap_or_else(dash),
            model.replacement.clone().unwrap_or_else(dash),
            prices.map_or_else(dash, |prices| usd(prices.low)),
            prices.map_or_else(dash, |prices| usd(prices.medium)),
            prices.map_or_else(dash, |prices| usd(prices.high)),
            model.source.clone(),
        ]);
    }
    format!(
        "{table}\n\nprices: USD per 1024×1024 output image; lifecycles as of {}",
        list.today
    )
}

fn lifecycle(lifecycle: protocol::image_model::Lifecycle) -> &'static str {
    match lifecycle {
        protocol::image_model::Lifecycle::Active => "active",
        protocol::image_model::Lifecycle::Retiring => "retiring",
        protocol::image_model::Lifecycle::Retired => "retired",
    }
}
