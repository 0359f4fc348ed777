//! `kromactl daemon …`: start kromad by hand, stop it, show its status, and install it as a user
//! service (the unit files themselves are in `service`).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use comfy_table::{Table, presets};
use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use protocol::NoParams;

use crate::Global;
use crate::common::kromad_binary;
use crate::output::{Failure, print};

#[derive(Debug, clap::Subcommand)]
pub enum DaemonCommand {
    /// Start kromad in the background and wait until it answers
    Start {
        /// Data dir of the daemon [default: $XDG_DATA_HOME/kroma]
        #[arg(long, env = "KROMA_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The kromad binary [default: next to kromactl, else on PATH]
        #[arg(long, value_name = "PATH")]
        kromad: Option<PathBuf>,
        /// How long to wait for the socket to answer
        #[arg(long, default_value_t = 10.0, value_name = "SECS")]
        wait_secs: f64,
    },
    /// Ask kromad to stop after in-flight calls finish, and wait until it has
    Stop {
        /// How long to wait for the daemon to exit
        #[arg(long, default_value_t = 30.0, value_name = "SECS")]
        wait_secs: f64,
    },
    /// Show version, pid, uptime, socket, data dir, counts and whether a service manager runs it
    Status,
    /// Run kromad as a user service: started at login, restarted after a crash
    ///
    /// Writes the user unit (systemd on Linux: kromad.socket and kromad.service in
    /// ~/.config/systemd/user; launchd on macOS: ~/Library/LaunchAgents/org.kroma.kromad.plist)
    /// naming this kromad, and enables it. Logs: journalctl --user -u kromad
    InstallService {
        /// Also start it now (restarting it if it runs), not only at the next login
        #[arg(long)]
        now: bool,
        /// The kromad binary [default: next to kromactl, else on PATH]
        #[arg(long, value_name = "PATH")]
        kromad: Option<PathBuf>,
        /// Data dir the service uses [default: $XDG_DATA_HOME/kroma]
        #[arg(long, env = "KROMA_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Stop and disable the user service and remove its unit files
    UninstallService,
}

pub async fn run(global: &Global, socket: &Path, command: DaemonCommand) -> Result<(), Failure> {
    match command {
        DaemonCommand::Start {
            data_dir,
            kromad,
            wait_secs,
        } => daemon_start(global, socket, data_dir, kromad, wait_secs).await,
        DaemonCommand::Stop { wait_secs } => daemon_stop(global, socket, wait_secs).await,
        DaemonCommand::Status => {
            let client = Client::connect(socket).await?;
            let status = client
                .call::<protocol::daemon::Status>(&NoParams {})
                .await?;
            print(global, &status, || status_table(&status).to_string());
            Ok(())
        }
        DaemonCommand::InstallService {
            now,
            kromad,
            data_dir,
        } => {
            let setup = crate::service::Setup {
                kromad: absolute_binary(kromad_binary(kromad)?)?,
                socket: global.socket.clone(),
                data_dir: data_dir
                    .map(|dir| crate::common::absolute(&dir).map(PathBuf::from))
                    .transpose()?,
                writable: project_roots(socket).await,
                now,
            };
            let installed = crate::service::install(socket, &setup).await?;
            print(global, &installed, || installed.to_text());
            Ok(())
        }
        DaemonCommand::UninstallService => {
            let removed = crate::service::uninstall()?;
            print(global, &removed, || removed.to_text());
            Ok(())
        }
    }
}

/// The installed kromad as an absolute path with its links resolved: the unit must name it
/// wherever the service manager runs it from.
fn absolute_binary(path: PathBuf) -> Result<PathBuf, Failure> {
    std::fs::canonicalize(&path).map_err(|err| {
        Failure::other(
            format!("finding kromad at {}: {err}", path.display()),
            Some("pass the installed binary with --kromad PATH"),
        )
    })
}

/// The roots of the projects a running kromad knows: the service must be able to write them.
/// Empty when kromad does not answer; the README says how to add a folder later.
async fn project_roots(socket: &Path) -> Vec<PathBuf> {
    let Ok(client) = Client::connect(socket).await else {
        return Vec::new();
    };
    match client.call::<protocol::project::List>(&NoParams {}).await {
        Ok(list) => list
            .projects
            .into_iter()
            .map(|project| PathBuf::from(project.root))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// One line on who runs kromad: `systemd (kromad.service, socket-activated)`, `started by hand`.
fn supervision(service: &protocol::daemon::Supervision) -> String {
    let manager = match service.manager {
        Some(protocol::daemon::ServiceManager::Systemd) => "systemd",
        Some(protocol::daemon::ServiceManager::Launchd) => "launchd",
        None => "none (started by hand)",
    };
    let mut details: Vec<&str> = service.unit.iter().map(String::as_str).collect();
    if service.socket_activated {
        details.push("socket-activated");
    }
    if details.is_empty() {
        manager.to_owned()
    } else {
        format!("{manager} ({})", details.join(", "))
    }
}

async fn daemon_start(
    global: &Global,
    socket: &Path,
    data_dir: Option<PathBuf>,
    kromad: Option<PathBuf>,
    wait_secs: f64,
) -> Result<(), Failure> {
    let running = match Client::connect(socket).await {
        Ok(client) => Some(client),
        // Starting a daemon of our own would not help: the socket is in the way, and it is not
        // ours to remove.
        Err(err @ ClientError::SocketNotYours { .. }) => return Err(err.into()),
        Err(_) => None,
    };
    if let Some(client) = running {
        let status = client
            .call::<protocol::daemon::Status>(&NoParams {})
            .await?;
        let started = serde_json::json!({ "pid": status.pid, "socket": status.socket, "already_running": true });
        print(global, &started, || {
            format!(
                "kromad is already running (pid {}) at {}",
                status.pid, status.socket
            )
        });
        return Ok(());
    }
    // Installed as a service: the service manager starts it, or the socket unit could not take
    // the socket at the next login.
    if kromad.is_none()
        && data_dir.is_none()
        && let Some(unit) = crate::service::installed()
    {
        match crate::service::start_installed() {
            Ok(ran) => {
                let deadline = Instant::now() + Duration::from_secs_f64(wait_secs.max(0.1));
                while !answers(socket).await {
                    if Instant::now() > deadline {
                        return Err(Failure::other(
                            format!(
                                "`{ran}` succeeded, but kromad did not answer at {} within {wait_secs} s",
                                socket.display()
                            ),
                            Some("see `journalctl --user -u kromad`"),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let started = serde_json::json!({ "socket": socket, "already_running": false, "service": ran });
                print(global, &started, || {
                    format!(
                        "kromad started by its service ({ran}) at {}",
                        socket.display()
                    )
                });
                return Ok(());
            }
            Err(why) => eprintln!(
                "warning: kromad is installed as a service ({}), but {why}; starting it by hand",
                unit.display()
            ),
        }
    }
    let kromad = kromad_binary(kromad)?;
    let mut command = std::process::Command::new(&kromad);
    command.arg("--socket").arg(socket);
    if let Some(data_dir) = data_dir {
        command.arg("--data-dir").arg(data_dir);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        // Its own process group: Ctrl-C in this terminal must not stop the daemon.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let mut child = command.spawn().map_err(|err| {
        Failure::other(
            format!("starting {}: {err}", kromad.display()),
            Some("pass the binary with --kromad PATH"),
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs_f64(wait_secs.max(0.1));
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.take() {
                let lines = std::io::BufReader::new(pipe).lines().map_while(Result::ok);
                for line in lines {
                    stderr.push_str(&line);
                    stderr.push('\n');
                }
            }
            return Err(Failure::other(
                format!(
                    "kromad exited ({exit}) before it was ready: {}",
                    stderr.trim()
                ),
                Some("run kromad in a terminal to see its full output"),
            ));
        }
        if answers(socket).await {
            break;
        }
        if Instant::now() > deadline {
            return Err(Failure::other(
                format!(
                    "kromad (pid {}) did not answer at {} within {wait_secs} s",
                    child.id(),
                    socket.display()
                ),
                Some("see the kromad log in <data dir>/logs"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started =
        serde_json::json!({ "pid": child.id(), "socket": socket, "already_running": false });
    print(global, &started, || {
        format!(
            "kromad started (pid {}) at {}",
            child.id(),
            socket.display()
        )
    });
    Ok(())
}

async fn daemon_stop(global: &Global, socket: &Path, wait_secs: f64) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let status = client
        .call::<protocol::daemon::Status>(&NoParams {})
        .await?;
    let ack = client
        .call::<protocol::daemon::Shutdown>(&NoParams {})
        .await?;
    drop(client);
    let deadline = Instant::now() + Duration::from_secs_f64(wait_secs.max(0.1));
    // A socket the service manager holds stays, and connecting to it starts kromad again: wait
    // for the process instead.
    while if status.service.socket_activated {
        process_alive(ack.pid)
    } else {
        Client::connect(socket).await.is_ok() || socket.exists()
    } {
        if Instant::now() > deadline {
            return Err(Failure::other(
                format!(
                    "kromad (pid {}) is still running after {wait_secs} s",
                    ack.pid
                ),
                Some("it is finishing in-flight calls; check again with `kromactl daemon status`"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    print(global, &ack, || {
        let mut text = format!("kromad (pid {}) stopped", ack.pid);
        if status.service.socket_activated {
            text.push_str(
                "; the service manager starts it again on the next connection (to keep it \
                 stopped: systemctl --user stop kromad.socket kromad.service)",
            );
        }
        text
    });
    Ok(())
}

/// Whether a kromad answers at `socket`.
async fn answers(socket: &Path) -> bool {
    match Client::connect(socket).await {
        Ok(client) => client
            .call::<protocol::daemon::Version>(&NoParams {})
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a process with this pid still exists.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // Signal 0 checks without sending; EPERM would mean another user's process.
        let exists = !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        // An exited process its parent has not reaped yet (a zombie) still has its pid.
        #[cfg(target_os = "linux")]
        let exists = exists
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (name) STATE …`: the state follows the last `)`.
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            });
        exists
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

fn status_table(status: &protocol::daemon::DaemonStatus) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    let rows = [
        (
            "version",
            format!("{} (protocol {})", status.version, status.protocol_version),
        ),
        ("pid", status.pid.to_string()),
        ("uptime", format!("{} s", status.uptime_secs)),
        ("socket", status.socket.clone()),
        ("data dir", status.data_dir.clone()),
        ("schema version", status.schema_version.to_string()),
        (
            "secret store",
            match &status.secret_store.problem {
                None => format!(
                    "{} ({})",
                    status.secret_store.kind, status.secret_store.detail
                ),
                Some(problem) => format!("{} NOT AVAILABLE: {problem}", status.secret_store.kind),
            },
        ),
        ("projects", status.counts.projects.to_string()),
        ("events", status.counts.events.to_string()),
        ("audit entries", status.counts.audit_events.to_string()),
        ("connections", status.counts.connections.to_string()),
        ("service", supervision(&status.service)),
    ];
    for (key, value) in rows {
        table.add_row(vec![format!("{key}:"), value]);
    }
    table
}
