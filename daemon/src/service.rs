//! Running under a service manager: finding out whether one started kromad (for
//! `daemon.status`), and telling systemd when kromad is ready and when it stops (`Type=notify`).
//! Without `NOTIFY_SOCKET` the notices are no-ops, so the same code runs by hand and in tests.

use kroma_protocol::daemon::{ServiceManager, Supervision};

/// The launchd job label `kromactl daemon install-service` writes on macOS.
pub const LAUNCHD_LABEL: &str = "org.kroma.kromad";

/// Who started kromad, from what the service managers put in its environment.
///
/// systemd (248 and later) sets `SYSTEMD_EXEC_PID` to the pid it started; a program run from a
/// shell that itself runs in a unit inherits a different pid, so it is not taken for a service.
/// Older systemd sets only `INVOCATION_ID`: kromad then also asks that its cgroup be a
/// `.service`. The unit name is the last part of the cgroup path (`/proc/self/cgroup`). A launchd
/// job runs with `XPC_SERVICE_NAME` set to its label; only Kroma's own label counts (Terminal
/// sets it for every shell).
pub fn detect(
    var: impl Fn(&str) -> Option<String>,
    pid: u32,
    cgroup: Option<&str>,
    socket_activated: bool,
) -> Supervision {
    let unit = cgroup.and_then(service_unit);
    let exec_pid = var("SYSTEMD_EXEC_PID").and_then(|value| value.parse::<u32>().ok());
    let systemd = match exec_pid {
        Some(exec_pid) => exec_pid == pid,
        None => var("INVOCATION_ID").is_some_and(|id| !id.is_empty()) && unit.is_some(),
    };
    if systemd {
        return Supervision {
            manager: Some(ServiceManager::Systemd),
            unit,
            socket_activated,
        };
    }
    if let Some(label) = var("XPC_SERVICE_NAME").filter(|label| label == LAUNCHD_LABEL) {
        return Supervision {
            manager: Some(ServiceManager::Launchd),
            unit: Some(label),
            socket_activated,
        };
    }
    Supervision {
        manager: None,
        unit: None,
        socket_activated,
    }
}

/// The `.service` unit at the end of a cgroup listing (`0::/user.slice/…/kromad.service`).
fn service_unit(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .filter_map(|line| line.rsplit(':').next())
        .filter_map(|path| path.rsplit('/').next())
        .find(|leaf| leaf.ends_with(".service"))
        .map(ToOwned::to_owned)
}

/// Who started this process, read from its environment and `/proc/self/cgroup`.
pub fn this_process(socket_activated: bool) -> Supervision {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok();
    detect(
        |name| std::env::var(name).ok(),
        std::process::id(),
        cgroup.as_deref(),
        socket_activated,
    )
}

/// Tells systemd that kromad serves (`READY=1`).
pub fn notify_ready() {
    notify(Notice::Ready);
}

/// Tells systemd that kromad is stopping (`STOPPING=1`), so a stop it did not ask for is not taken
/// for a crash mid-start.
pub fn notify_stopping() {
    notify(Notice::Stopping);
}

enum Notice {
    Ready,
    Stopping,
}

#[cfg(unix)]
fn notify(notice: Notice) {
    let state = match notice {
        Notice::Ready => sd_notify::NotifyState::Ready,
        Notice::Stopping => sd_notify::NotifyState::Stopping,
    };
    if let Err(err) = sd_notify::notify(&[state]) {
        tracing::warn!(%err, "could not notify the service manager");
    }
}

#[cfg(not(unix))]
fn notify(_: Notice) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    const UNIT_CGROUP: &str =
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/kromad.service\n";
    const SHELL_CGROUP: &str =
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1f2e.scope\n";

    #[test]
    fn a_unit_systemd_started_is_a_service_and_a_shell_inside_one_is_not() {
        let started = detect(
            env(&[("SYSTEMD_EXEC_PID", "42"), ("INVOCATION_ID", "ab12")]),
            42,
            Some(UNIT_CGROUP),
            true,
        );
        assert_eq!(started.manager, Some(ServiceManager::Systemd));
        assert_eq!(started.unit.as_deref(), Some("kromad.service"));
        assert!(started.socket_activated);

        // kromad started from a terminal whose own process systemd started.
        let by_hand = detect(
            env(&[("SYSTEMD_EXEC_PID", "7"), ("INVOCATION_ID", "ab12")]),
            42,
            Some(SHELL_CGROUP),
            false,
        );
        assert_eq!(by_hand, Supervision::default());
    }

    #[test]
    fn older_systemd_is_recognised_by_the_invocation_id_and_a_service_cgroup() {
        let started = detect(
            env(&[("INVOCATION_ID", "ab12")]),
            42,
            Some(UNIT_CGROUP),
            false,
        );
        assert_eq!(started.manager, Some(ServiceManager::Systemd));
        let in_a_scope = detect(
            env(&[("INVOCATION_ID", "ab12")]),
            42,
            Some(SHELL_CGROUP),
            false,
        );
        assert_eq!(in_a_scope.manager, None);
        assert_eq!(detect(env(&[]), 42, Some(UNIT_CGROUP), false).manager, None);
    }

    #[test]
    fn only_kromas_own_launchd_label_counts() {
        let job = detect(env(&[("XPC_SERVICE_NAME", LAUNCHD_LABEL)]), 42, None, false);
        assert_eq!(job.manager, Some(ServiceManager::Launchd));
        assert_eq!(job.unit.as_deref(), Some(LAUNCHD_LABEL));
        let terminal = detect(
            env(&[("XPC_SERVICE_NAME", "application.com.apple.Terminal.1234")]),
            42,
            None,
            false,
        );
        assert_eq!(terminal.manager, None);
    }
}
