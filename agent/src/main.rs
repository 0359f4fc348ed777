//! `kroma-mcp`: reads the command line and the environment, then serves MCP over stdio, or over
//! streamable HTTP with `--http`. On stdio, standard output is the MCP channel, so logs go to
//! standard error only.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kroma_agent::KromaServer;
use kroma_agent::selection::ToolSelection;
use kroma_agent::server::ServerOptions;
use kroma_agent::token::BearerToken;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

/// The Kroma MCP server: lets agent hosts read projects, plan runs, see candidates and propose
/// work through kromad, over stdio (the default) or streamable HTTP
#[derive(Debug, Parser)]
#[command(name = "kroma-mcp", version)]
struct Cli {
    /// kromad's local socket [default: $KROMA_SOCKET, else $XDG_RUNTIME_DIR/kroma/kromad.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Offer only the tools that change nothing (no instruction tools that propose, approve with
    /// a code, cancel or run work)
    #[arg(long)]
    read_only: bool,
    /// Offer only these tools (names separated by commas)
    #[arg(long, value_name = "NAMES")]
    tools: Option<String>,
    /// Serve streamable HTTP at this address (e.g. 127.0.0.1:8765) instead of stdio; clients
    /// send the bearer token kept in <config dir>/kroma/mcp-token
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Instructions one client (by its declared name) may submit per minute
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(kroma_agent::rate::DEFAULT_PER_MINUTE).unwrap_or(NonZeroU32::MIN))]
    max_submissions_per_minute: NonZeroU32,
    /// Let --http listen on an address that is not loopback (other machines can then reach it)
    #[arg(long, requires = "http")]
    bind: bool,
    /// Write the man page kroma-mcp.1 into DIR and exit (install.sh does)
    #[arg(long, value_name = "DIR", hide = true)]
    man_pages: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.man_pages {
        return man_page(dir);
    }
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
    let options = ServerOptions {
        selection: ToolSelection {
            read_only: cli.read_only,
            allow: cli
                .tools
                .as_deref()
                .map(ToolSelection::parse_allow_list)
                .transpose()?,
        },
        max_submissions_per_minute: cli.max_submissions_per_minute,
    };
    let socket = kroma_client::discovery::discover_socket(cli.socket.as_deref());
    let server = KromaServer::new(&socket, &options)?;
    if let Some(address) = cli.http {
        kroma_agent::http::check_address(address, cli.bind)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.http {
        Some(address) => runtime.block_on(serve_http(server, address)),
        None => runtime.block_on(serve_stdio(server)),
    }
}

async fn serve_stdio(server: KromaServer) -> anyhow::Result<()> {
    tracing::info!("serving MCP over stdio");
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    running.waiting().await.context("serving MCP on stdio")?;
    Ok(())
}

async fn serve_http(server: KromaServer, address: SocketAddr) -> anyhow::Result<()> {
    let token_file = directories::ProjectDirs::from("", "", "kroma")
        .map(|dirs| dirs.config_dir().join("mcp-token"))
        .context("cannot find a home directory for the token file")?;
    let token = BearerToken::load_or_create(&token_file)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    eprintln!(
        "kroma-mcp: serving MCP at http://{bound}{}; clients send `Authorization: Bearer <token>` with the token in {}",
        kroma_agent::http::MCP_PATH,
        token_file.display()
    );
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    kroma_agent::http::serve(server, listener, token, shutdown)
        .await
        .context("serving MCP over HTTP")
}

/// Writes kroma-mcp.1, rendered from the command line definition.
fn man_page(dir: &std::path::Path) -> ExitCode {
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).generate_to(dir)
    });
    match written {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "kroma-mcp: writing the man page into {}: {err}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
