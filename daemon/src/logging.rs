//! Logs go through `tracing` to stderr and to a daily-rotated file in `<data dir>/logs/`, keeping
//! the last 7 files. Handlers log method names and outcomes, never params or secrets.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Log lines that may wait for the log file's writer thread.
const LOG_QUEUE_LINES: usize = 4096;

/// Installs the global subscriber. Keep the guard alive until exit: it flushes the file log.
/// `RUST_LOG` overrides the default level (`info`).
pub fn init(data_dir: &Path, format: LogFormat) -> Result<WorkerGuard, String> {
    // Made here: the appender prunes old files before it creates the folder, and says so on
    // stderr ("Error reading the log directory") on every fresh data dir.
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|err| format!("creating the log folder {}: {err}", logs.display()))?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("kromad")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&logs)
        .map_err(|err| format!("opening the log folder in {}: {err}", data_dir.display()))?;
    // The default queue holds 128 000 lines and is allocated (and touched) up front: 4 MB of an
    // idle daemon's memory. A few thousand lines cover any burst of ours; beyond that, lines are
    // dropped rather than calls slowed.
    let (file_writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(appender);
    // jsonrpsee traces whole requests (params included) at trace level: it never logs below info,
    // whatever RUST_LOG says, so no secret can reach a log.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("jsonrpsee=info".parse().map_err(|err| format!("{err}"))?)
        .add_directive(
            "jsonrpsee_core=info"
                .parse()
                .map_err(|err| format!("{err}"))?,
        )
        .add_directive(
            "jsonrpsee_types=info"
                .parse()
                .map_err(|err| format!("{err}"))?,
        );
    let file_layer = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .with_writer(file_writer);
    let registry = tracing_subscriber::registry().with(filter).with(file_layer);
    let installed = match format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.map_err(|err| format!("installing the logger: {err}"))?;
    Ok(guard)
}
