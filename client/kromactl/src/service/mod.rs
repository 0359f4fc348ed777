//! kromad as a user service, started by the session's service manager rather than by hand: a
//! systemd socket and service unit on Linux (`systemd.rs`), a launchd agent on macOS
//! (`launchd.rs`). Both are rendered from the templates in `packaging/`, so what
//! `install-service` writes and what the release archive ships are the same files.

mod launchd;
mod systemd;

use std::io::Write;
use std::path::{Path, PathBuf};

use kroma_client::Client;
use kroma_protocol as protocol;
use serde::Serialize;

use crate::output::Failure;

/// What the unit is to run.
#[derive(Debug)]
pub struct Setup {
    /// The installed kromad, absolute.
    pub kromad: PathBuf,
    /// A socket other than the default, when kromactl was given one.
    pub socket: Option<PathBuf>,
    /// A data dir other than the default.
    pub data_dir: Option<PathBuf>,
    /// Folders kromad must be able to write besides the home folder (project roots).
    pub writable: Vec<PathBuf>,
    /// Start (or restart) it now.
    pub now: bool,
}

#[derive(Debug, Serialize)]
pub struct Installed {
    /// `systemd` or `launchd`.
    pub manager: &'static str,
    pub kromad: PathBuf,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// The service manager commands run, in order.
    pub ran: Vec<String>,
    /// Whether it was (re)started now.
    pub started: bool,
    /// Where its log goes.
    pub logs: String,
}

impl Installed {
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = self
            .files
            .iter()
            .map(|file| format!("wrote {}", file.display()))
            .collect();
        lines.extend(self.ran.iter().map(|command| format!("ran {command}")));
        lines.push(if self.started {
            format!("kromad runs under {} now and at every login", self.manager)
        } else {
            format!(
                "kromad starts under {} at your next login (now: kromactl daemon install-service --now)",
                self.manager
            )
        });
        lines.push(format!("logs: {}", self.logs));
        lines.join("\n")
    }
}

#[derive(Debug, Serialize)]
pub struct Removed {
    pub manager: &'static str,
    /// The files removed; empty when it was not installed.
    pub files: Vec<PathBuf>,
    pub ran: Vec<String>,
}

impl Removed {
    pub fn to_text(&self) -> String {
        if self.files.is_empty() {
            return format!("kromad is not installed as a {} service", self.manager);
        }
        let mut lines: Vec<String> = self
            .ran
            .iter()
            .map(|command| format!("ran {command}"))
            .collect();
        lines.extend(
            self.files
                .iter()
                .map(|file| format!("removed {}", file.display())),
        );
        lines.join("\n")
    }
}

/// Writes the unit for this user, enables it, and with `now` starts it.
pub async fn install(socket: &Path, setup: &Setup) -> Result<Installed, Failure> {
    if setup.now
        && let Ok(client) = Client::connect(socket).await
        && let Ok(status) = client
            .call::<protocol::daemon::Status>(&protocol::NoParams {})
            .await
        && status.service.manager.is_none()
    {
        return Err(Failure::other(
            format!(
                "a kromad started by hand (pid {}) serves {}; the service could not take the socket",
                status.pid, status.socket
            ),
            Some("stop it with `kromactl daemon stop`, then run this again"),
        ));
    }
    if cfg!(target_os = "macos") {
        launchd::install(setup)
    } else if cfg!(target_os = "linux") {
        systemd::install(setup)
    } else {
        Err(unsupported())
    }
}

/// Stops and disables the service and removes its files.
pub fn uninstall() -> Result<Removed, Failure> {
    if cfg!(target_os = "macos") {
        launchd::uninstall()
    } else if cfg!(target_os = "linux") {
        systemd::uninstall()
    } else {
        Err(unsupported())
    }
}

/// The installed service unit kromactl starts kromad through (`daemon start`): the systemd
/// unit on Linux. `None` when none is installed (and on macOS, where launchd starts the agent at
/// login and `daemon start` spawns kromad itself).
pub fn installed() -> Option<PathBuf> {
    if cfg!(target_os = "linux") {
        systemd::installed()
    } else {
        None
    }
}

/// Starts the installed service; answers the command that did, or why it failed.
pub fn start_installed() -> Result<String, String> {
    systemd::start()
}

fn unsupported() -> Failure {
    Failure::other(
        "install-service knows systemd (Linux) and launchd (macOS) only",
        Some("run kromad from your system's own service manager; see the README"),
    )
}

fn home() -> Result<PathBuf, Failure> {
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().to_owned())
        .ok_or_else(|| Failure::other("cannot find your home folder", Some("set HOME")))
}

/// A path as text a unit file may hold: UTF-8, and no character that would end or escape the
/// line it is written on (a newline in a folder name must not add a directive).
fn unit_text(path: &Path) -> Result<&str, Failure> {
    let text = path.to_str().ok_or_else(|| {
        Failure::other(
            format!("{} is not valid UTF-8", path.display()),
            Some("use a path made of UTF-8 characters"),
        )
    })?;
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(Failure::other(
            format!("{text:?} holds a control character, a quote or a backslash"),
            Some("install kromad, and keep its data, under a plainer path"),
        ));
    }
    Ok(text)
}

/// kromad's command line in the unit: the binary, and `--socket` and `--data-dir` when they are
/// not the defaults, each checked by [`unit_text`].
fn command_line(setup: &Setup) -> Result<Vec<&str>, Failure> {
    let mut args = vec![unit_text(&setup.kromad)?];
    if let Some(socket) = &setup.socket {
        args.extend(["--socket", unit_text(socket)?]);
    }
    if let Some(data_dir) = &setup.data_dir {
        args.extend(["--data-dir", unit_text(data_dir)?]);
    }
    Ok(args)
}

/// Writes `text` to `path` through a temporary file beside it, so a unit is never half written.
fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    let failure = |err: std::io::Error| {
        Failure::other(
            format!("writing {}: {err}", path.display()),
            Some("check that you may write there"),
        )
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(failure)?;
    let mut file = tempfile::NamedTempFile::new_in(folder).map_err(failure)?;
    file.write_all(text.as_bytes()).map_err(failure)?;
    file.as_file().sync_all().map_err(failure)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(failure)?;
    }
    file.persist(path).map_err(|err| failure(err.error))?;
    Ok(())
}

/// Runs a service manager command; its failure says what was already done and how to finish.
fn manager_command(
    program: &str,
    args: &[&str],
    ran: &mut Vec<String>,
    done: &str,
    finish: &str,
) -> Result<(), Failure> {
    let shown = format!("{program} {}", args.join(" "));
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            ran.push(shown);
            Ok(())
        }
        Ok(output) => Err(Failure::other(
            format!(
                "{done}, but `{shown}` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Some(finish),
        )),
        Err(err) => Err(Failure::other(
            format!("{done}, but `{shown}` could not run: {err}"),
            Some(finish),
        )),
    }
}
