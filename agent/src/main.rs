//! `kroma-mcp`: reads the command line and serves MCP over stdio. Standard output is the MCP
//! channel, so logs go to standard error only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kroma_agent::KromaServer;
use kroma_agent::selection::ToolSelection;
use rmcp::ServiceExt;

/// The Kroma MCP server: lets agent hosts read projects, plan runs and see candidates through
/// kromad, over stdio
#[derive(Debug, Parser)]
#[command(name = "kroma-mcp", version)]
struct Cli {
    /// kromad's local socket [default: $KROMA_SOCKET, else $XDG_RUNTIME_DIR/kroma/kromad.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Offer only the tools that change nothing
    #[arg(long)]
    read_only: bool,
    /// Offer only these tools (names separated by commas)
    #[arg(long, value_name = "NAMES")]
    tools: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KROMA_MCP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init()
        .ok();
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kroma-mcp: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let selection = ToolSelection {
        read_only: cli.read_only,
        allow: cli
            .tools
            .as_deref()
            .map(ToolSelection::parse_allow_list)
            .transpose()?,
    };
    let socket = kroma_client::discovery::discover_socket(cli.socket.as_deref());
    let server = KromaServer::new(&socket, &selection)?;
    tracing::info!(socket = %socket.display(), "serving MCP over stdio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .context("starting the MCP session on stdio")?;
        running.waiting().await.context("serving MCP on stdio")?;
        anyhow::Ok(())
    })
}
