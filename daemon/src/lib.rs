//! kromad, the Kroma daemon, as a library: [`run`] serves the JSON-RPC contract of
//! `kroma-protocol` on a bound local socket until told to stop.
//!
//! `run` takes its whole world as arguments (configuration, listener, shutdown signal); only
//! `main.rs` reads the command line, the environment and the signals. Tests call the same `run`.

mod api;
pub mod clock;
pub mod config;
mod error;
mod exports;
mod files;
mod instructions;
mod knowledge;
pub mod lock;
pub mod logging;
mod page;
pub mod postprocess;
mod projects;
mod providers;
mod review;
mod runs;
pub mod secrets;
mod server;
pub mod service;
mod storage;
mod store;
mod watch;

pub use server::socket;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use kroma_protocol as protocol;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use store::StoreError;

/// The kromad version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every handler can reach: the daemon's own parts (its configuration, connections and
/// stop) and, through `Deref`, the [`Services`] background work shares.
pub(crate) struct Daemon {
    pub(crate) config: Config,
    /// `config.data_dir` with its links resolved, once at start: roots and output folders are
    /// kept out of it as the files really lie.
    pub(crate) real_data_dir: std::path::PathBuf,
    pub(crate) started: Instant,
    /// Cancelled by `daemon.shutdown`; `run` then records `daemon.stopping` before it cancels
    /// `shutdown`, so followers see the stop however it was asked for.
    pub(crate) stop_requested: CancellationToken,
    /// One permit per open connection.
    pub(crate) connections: Arc<Semaphore>,
    /// What the runner and its tasks get, rather than all of the daemon.
    pub(crate) services: Arc<Services>,
    /// Where the confirmation pages are served (loopback), when they are.
    pub(crate) confirm_page: Option<std::net::SocketAddr>,
    /// The drop folders' handle: rule changes reach the watcher task through it.
    pub(crate) watches: watch::Watches,
}

impl Daemon {
    /// `http://127.0.0.1:PORT`, the origin of the confirmation pages, when they are served.
    pub(crate) fn confirm_page_base(&self) -> Option<String> {
        self.confirm_page.map(|addr| format!("http://{addr}"))
    }
}

/// The narrow handle background work (the runner, its candidates and chains) is given: the
/// store, secrets, provider HTTP, local models, the clock and the stop. Not the connections,
/// the configuration or the daemon's own stop.
pub(crate) struct Services {
    pub(crate) store: store::Store,
    /// Cancelled once the daemon is stopping: connections stop reading, subscriptions end, work
    /// stops between tiles and files.
    pub(crate) shutdown: CancellationToken,
    /// Opened on first use.
    pub(crate) secrets: secrets::LazySecrets,
    /// The HTTP client for provider APIs (connection pools are shared), built on first use.
    pub(crate) http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    /// Executes started runs in the background.
    pub(crate) runner: runs::runner::Runner,
    /// The local ONNX models, loaded on first use.
    pub(crate) engine: Arc<postprocess::onnx::Engine>,
    /// Where every timestamp and "today" come from.
    pub(crate) clock: clock::Clock,
    /// The memory the local steps running at once may use (`limits.step_memory_mb`).
    pub(crate) memory: postprocess::budget::MemoryBudget,
    /// `limits.max_image_pixels`.
    pub(crate) max_image_pixels: u64,
}

impl std::ops::Deref for Daemon {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl Services {
    /// The HTTP client for provider APIs, built by the first caller: its TLS roots take memory a
    /// daemon that never calls a provider should not hold.
    pub(crate) fn http(&self) -> Result<&reqwest::Client, error::Problem> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("kroma/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(|err| {
                error::Problem::new(
                    protocol::ErrorKind::Internal,
                    protocol::ErrorCode::HttpClient,
                    format!("setting up the HTTP client: {err}"),
                )
            })
    }
}

/// The loopback listener of the confirmation pages, when they are served.
async fn daemon_page_listener(config: &Config) -> std::io::Result<Option<tokio::net::TcpListener>> {
    match config.confirm_page {
        Some(addr) => Ok(Some(tokio::net::TcpListener::bind(addr).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("creating data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Serves until `shutdown` resolves or a client calls `daemon.shutdown`, then stops accepting,
/// lets in-flight calls finish, flushes the database and removes the socket.
pub async fn run(
    config: Config,
    listener: socket::Listener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    run_with_clock(config, listener, shutdown, clock::Clock::system()).await
}

/// [`run`] with the clock given: tests fix the date.
pub async fn run_with_clock(
    config: Config,
    listener: socket::Listener,
    shutdown: impl Future<Output = ()> + Send,
    clock: clock::Clock,
) -> Result<(), RunError> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(data_dir.join("projects")).map_err(|source| RunError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let real_data_dir = projects::root::resolve(&data_dir).map_err(|source| RunError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let db_path = data_dir.join("kroma.db");
    let store = tokio::task::spawn_blocking(move || store::Store::open(&db_path))
        .await
        .map_err(|err| StoreError::Task(err.to_string()))??;

    // Bound before the daemon exists, so instructions can name the page's address.
    let page_listener = match daemon_page_listener(&config).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(%err, "the confirmation pages are not served; confirm on the terminal or with a code");
            None
        }
    };
    let confirm_page = page_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    let token = CancellationToken::new();
    // Every background task (the runner's loop and its candidates, chains, the model sweeper) is
    // on this tracker; shutdown cancels `token` and waits for it (`Runner::drain`).
    let background = TaskTracker::new();
    let daemon = Arc::new(Daemon {
        services: Arc::new(Services {
            http: std::sync::OnceLock::new(),
            runner: runs::runner::Runner::new(&config.runs, background.clone()),
            engine: Arc::new(postprocess::onnx::Engine::new(
                config.models_dir.clone(),
                config.local_models.clone(),
            )),
            secrets: secrets::LazySecrets::new(config.secrets.clone(), data_dir.clone()),
            memory: postprocess::budget::MemoryBudget::new(config.limits.step_memory_mb),
            clock,
            store: store.clone(),
            shutdown: token.clone(),
            max_image_pixels: config.limits.max_image_pixels,
        }),
        real_data_dir,
        connections: Arc::new(Semaphore::new(config.limits.max_connections)),
        config,
        started: Instant::now(),
        stop_requested: CancellationToken::new(),
        confirm_page,
        watches: watch::Watches::default(),
    });
    store
        .append_events(vec![store::NewEvent::of(
            daemon.clock.now(),
            None,
            &protocol::events::DaemonStarted {
                version: VERSION.to_owned(),
                pid: std::process::id(),
            },
        )])
        .await?;
    tracing::info!(socket = %listener.path().display(), data_dir = %data_dir.display(), version = VERSION, "kromad is serving");
    service::notify_ready();

    background.spawn(runs::runner::run(daemon.services.clone()));
    background.spawn(free_idle_models(daemon.engine.clone(), token.clone()));
    background.spawn(instructions::recover(daemon.clone()));
    background.spawn(watch::serve(daemon.clone()));
    if daemon.config.desktop_notifications {
        background.spawn(instructions::notify::serve(daemon.clone()));
    }
    if let Some(listener) = page_listener {
        background.spawn(page::serve(daemon.clone(), listener, token.clone()));
    }
    let methods: jsonrpsee::Methods = api::module(daemon.clone()).into();
    let tracker = TaskTracker::new();
    let accept = server::accept_loop(
        &listener,
        methods,
        daemon.config.limits.clone(),
        daemon.connections.clone(),
        token.clone(),
        tracker.clone(),
    );
    tokio::select! {
        _ = accept => {}
        _ = daemon.stop_requested.cancelled() => {}
        _ = shutdown => {
            tracing::info!("shutdown signal received");
        }
    }
    service::notify_stopping();
    // Followers see the stop before their subscriptions end.
    if let Err(err) = store
        .append_events(vec![store::NewEvent::of(
            daemon.clock.now(),
            None,
            &protocol::events::DaemonStopping {
                pid: std::process::id(),
            },
        )])
        .await
    {
        tracing::error!(%err, "could not record daemon.stopping");
    }
    token.cancel();
    drop(listener);
    tracker.close();
    // In-flight calls get as long as one request may take; a client that stopped reading its
    // answers must not keep the daemon from stopping.
    let grace = daemon.config.limits.request_timeout + std::time::Duration::from_secs(1);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            connections = tracker.len(),
            "connections still busy after {} s; stopping without them",
            grace.as_secs()
        );
    }
    // Provider calls in flight get the same grace to be recorded; any still running are left
    // `calling` and settled by the next start.
    daemon.runner.drain(grace).await;
    let flushed = tokio::task::spawn_blocking(move || store.checkpoint()).await;
    if let Ok(Err(err)) = flushed {
        tracing::warn!(%err, "could not checkpoint the database");
    }
    tracing::info!("kromad stopped");
    Ok(())
}

/// Frees the local models nobody used for a while, until the daemon stops.
async fn free_idle_models(engine: Arc<postprocess::onnx::Engine>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(engine.sweep_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {
                let engine = engine.clone();
                let _ = tokio::task::spawn_blocking(move || engine.free_idle()).await;
            }
        }
    }
}
