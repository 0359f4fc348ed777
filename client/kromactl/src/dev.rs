//! `kromactl dev`: tools for trying Kroma without paying: `dev fake-provider` serves the fake
//! OpenAI Images API (the one the tests use) on 127.0.0.1 until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use kroma_fake_provider::{FakeConfig, FakeModel, FakeProvider};

use crate::output::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// Serve a fake OpenAI Images API on 127.0.0.1 (real PNGs, usage, faults on demand) until Ctrl-C
    FakeProvider(FakeProviderArgs),
}

#[derive(Debug, clap::Args)]
pub struct FakeProviderArgs {
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The only API key it accepts
    #[arg(long, default_value = "sk-fake")]
    pub key: String,
    /// Milliseconds to wait before answering each image request
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Size of the PNGs it draws, WIDTHxHEIGHT (default: the requested size)
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub render_size: Option<(u32, u32)>,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if (1..=4096).contains(&w) && (1..=4096).contains(&h) => Ok((w, h)),
        _ => Err(format!(
            "`{text}` is not WIDTHxHEIGHT with sides from 1 to 4096"
        )),
    }
}

pub async fn run(command: DevCommand) -> Result<(), Failure> {
    match command {
        DevCommand::FakeProvider(args) => fake_provider(args).await,
    }
}

async fn fake_provider(args: FakeProviderArgs) -> Result<(), Failure> {
    let config = FakeConfig {
        key: args.key.clone(),
        render_size: args.render_size,
        latency: Duration::from_millis(args.latency_ms),
        models: FakeConfig::default()
            .models
            .into_iter()
            .chain([FakeModel {
                id: "gpt-image-1".to_owned(),
                shutdown_date: Some("2026-10-23".to_owned()),
            }])
            .collect(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let provider = FakeProvider::start_on(addr, config).await.map_err(|err| {
        Failure::other(
            format!("cannot serve on {addr}: {err}"),
            Some("pick another --port, or 0 for any free one"),
        )
    })?;
    // The first line is machine-readable on purpose: scripts read the base URL from it.
    println!("{}", provider.base_url());
    eprintln!(
        "fake provider serving the OpenAI Images API at {} (key `{}`); faults: POST {}/_fake/faults, stats: GET {}/_fake/stats; Ctrl-C stops it",
        provider.base_url(),
        args.key,
        provider.addr(),
        provider.addr()
    );
    tokio::select! {
        _ = provider.wait() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_sizes_are_checked() {
        assert_eq!(parse_size("64x96"), Ok((64, 96)));
        assert!(parse_size("64").is_err());
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("9000x5").is_err());
    }
}
