//! `kromad`: reads the command line, the environment and the config file, takes the data dir lock,
//! binds the socket, and hands everything to `kroma_daemon::run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kroma_daemon::config::{Config, LogFormat, RawConfig};
use kroma_daemon::lock::DataDirLock;

/// The Kroma daemon: serves the JSON-RPC API on a local socket
///
/// Run it by hand, with `kromactl daemon start`, or as a user service (`kromactl daemon
/// install-service`). Under systemd it serves the socket that kromad.socket passes (socket
/// activation: LISTEN_FDS) and reports when it is ready (Type=notify). It logs to stderr and to
/// <data dir>/logs; under systemd read them with `journalctl --user -u kromad`.
#[derive(Debug, Parser)]
#[command(name = "kromad", version)]
struct Cli {
    /// Local socket to listen on [default: $XDG_RUNTIME_DIR/kroma/kromad.sock]
    #[arg(long, env = "KROMA_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Folder for the database, logs and projects [default: $XDG_DATA_HOME/kroma]
    #[arg(long, env = "KROMA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file [default: $XDG_CONFIG_HOME/kroma/kromad.toml when it exists]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The local runtime and models [default: $XDG_DATA_HOME/kroma/models]
    #[arg(long, env = "KROMA_MODELS_DIR", value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Run settings file of this user [default: $XDG_CONFIG_HOME/kroma/config.toml]
    #[arg(long, env = "KROMA_SETTINGS", value_name = "FILE")]
    settings: Option<PathBuf>,
    /// Format of the log lines on stderr (the log file is always JSON)
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Write the man page kromad.1 into DIR and exit (install.sh does)
    #[arg(long, value_name = "DIR", hide = true)]
    man_pages: Option<PathBuf>,
}

fn main() -> ExitCode {
    // First, while kromad has one thread: take the socket systemd may have passed, clearing the
    // variables that pass it so nothing kromad starts inherits them.
    #[cfg(unix)]
    let inherited = kroma_daemon::socket::take_inherited().map_err(anyhow::Error::from);
    #[cfg(not(unix))]
    let inherited: anyhow::Result<Option<std::convert::Infallible>> = Ok(None);
    let cli = Cli::parse();
    if let Some(dir) = &cli.man_pages {
        return man_page(dir);
    }
    match inherited.and_then(|inherited| start(cli, inherited)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kromad: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
type Inherited = std::os::unix::net::UnixListener;
#[cfg(not(unix))]
type Inherited = std::convert::Infallible;

fn start(cli: Cli, inherited: Option<Inherited>) -> anyhow::Result<()> {
    let dirs = directories::ProjectDirs::from("", "", "kroma");
    let raw = match (&cli.config, &dirs) {
        (Some(path), _) => RawConfig::load(path)?,
        (None, Some(dirs)) if dirs.config_dir().join("kromad.toml").is_file() => {
            RawConfig::load(&dirs.config_dir().join("kromad.toml"))?
        }
        (None, _) => RawConfig::default(),
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let data_dir = match cli.data_dir.or(raw.data_dir) {
        Some(dir) => cwd.join(dir),
        None => dirs
            .as_ref()
            .map(|dirs| dirs.data_dir().to_owned())
            .context("cannot find a home directory for the data dir; pass --data-dir")?,
    };
    let socket = match cli.socket.or(raw.socket) {
        Some(socket) => cwd.join(socket),
        None => kroma_protocol::paths::default_socket(
            directories::BaseDirs::new()
                .and_then(|dirs| dirs.runtime_dir().map(ToOwned::to_owned))
                .as_deref(),
            &std::env::temp_dir(),
            &user_id(),
        ),
    };
    let passphrase = std::env::var("KROMA_SECRETS_PASSPHRASE")
        .ok()
        .map(secrecy::SecretString::from);
    let mut config = Config::new(data_dir, socket, &raw.limits)?
        .with_secrets(
            &raw.secrets,
            passphrase,
            kroma_daemon::secrets::env_overrides(std::env::vars()),
        )?
        .with_runs(&raw.runs)?
        .with_local_models(&raw.local_models)?
        .with_confirm_page(&raw.confirm_page)?
        .with_notifications(&raw.notifications)
        .with_instructions(&raw.instructions)?;
    if let Some(dir) = cli.models_dir {
        config.models_dir = cwd.join(dir);
    } else if let Some(dirs) = &dirs {
        config.models_dir = dirs.data_dir().join("models");
    }
    config.user_settings = match cli.settings {
        Some(path) => Some(cwd.join(path)),
        None => dirs
            .as_ref()
            .map(|dirs| dirs.config_dir().join("config.toml")),
    };
    create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let _lock = DataDirLock::acquire(&config.data_dir, std::process::id())?;
    let _log_guard = kroma_daemon::logging::init(
        &config.data_dir,
        cli.log_format
            .or(raw.log_format)
            .unwrap_or(LogFormat::Pretty),
    )
    .map_err(anyhow::Error::msg)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // The handlers are in place before the socket exists: a client that can connect can
        // also stop kromad with SIGTERM and see it stop cleanly.
        let shutdown = shutdown_signal().context("installing the signal handlers")?;
        let socket_activated = inherited.is_some();
        let listener = match inherited {
            #[cfg(unix)]
            Some(inherited) => kroma_daemon::socket::adopt(inherited)?,
            #[cfg(not(unix))]
            Some(never) => match never {},
            None => kroma_daemon::socket::bind(&config.socket)?,
        };
        let mut config = config;
        if listener.path() != config.socket {
            tracing::info!(socket = %listener.path().display(), "serving the socket the service manager passed");
            config.socket = listener.path().to_owned();
        }
        config.service = kroma_daemon::service::this_process(socket_activated);
        kroma_daemon::run(config, listener, shutdown).await?;
        Ok(())
    })
}

/// Writes kromad.1, rendered from the command line definition.
fn man_page(dir: &std::path::Path) -> ExitCode {
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).generate_to(dir)
    });
    match written {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kromad: writing the man page into {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now and answers a future that resolves when one
/// arrives (on Windows: Ctrl-C, watched from the future's first poll). Installing them on the future's first poll instead left a window
/// in which a signal still killed kromad outright.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Names the per-user socket folder when there is no runtime dir.
fn user_id() -> String {
    #[cfg(unix)]
    {
        nix::unistd::geteuid().as_raw().to_string()
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "user".to_owned())
    }
}
