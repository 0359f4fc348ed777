//! `kromactl doctor`: every check kroma needs, one line each, with a fix for each failure: the
//! daemon, socket, database, secret store, disk, local models, providers and each project's S3
//! bucket.

use std::path::Path;

use kroma_client::Client;
use kroma_protocol as protocol;
use serde::Serialize;

use crate::Global;
use crate::output::{Failure, print};

/// Below this much free space in the data dir, doctor fails.
const MIN_FREE_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// What kromad's hint asks for, as data.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<protocol::Action>,
}

fn check(name: &str, ok: bool, detail: String, hint: Option<&str>) -> Check {
    Check {
        name: name.to_owned(),
        ok,
        detail,
        hint: if ok { None } else { hint.map(str::to_owned) },
        action: None,
    }
}

impl Check {
    /// The same check with kromad's action for its hint (kept only when the check failed).
    fn with_action(self, action: Option<&protocol::Action>) -> Check {
        Check {
            action: action.filter(|_| !self.ok).cloned(),
            ..self
        }
    }
}

pub async fn run(global: &Global, socket: &Path) -> Result<(), Failure> {
    let mut checks = Vec::new();
    let client = match Client::connect(socket).await {
        Ok(client) => match client
            .call::<protocol::daemon::Version>(&protocol::NoParams {})
            .await
        {
            Ok(version) => {
                checks.push(check(
                    "daemon",
                    true,
                    format!("kromad {} answers at {}", version.version, socket.display()),
                    None,
                ));
                Some(client)
            }
            Err(err) => {
                let hint = err.hint();
                let restart = "restart it: kromactl daemon stop; kromactl daemon start";
                let hint = hint.as_deref().unwrap_or(restart);
                checks.push(
                    check("daemon", false, err.to_string(), Some(hint)).with_action(err.action()),
                );
                None
            }
        },
        Err(err) => {
            checks.push(check(
                "daemon",
                false,
                err.to_string(),
                err.hint().as_deref(),
            ));
            None
        }
    };
    checks.push(socket_check(socket));
    if let Some(client) = &client {
        daemon_checks(client, &mut checks).await;
    }
    let report = Report {
        ok: checks.iter().all(|check| check.ok),
        checks,
    };
    print(global, &report, || {
        let mut text = String::new();
        for check in &report.checks {
            text.push_str(&format!(
                "{} {:<16} {}\n",
                if check.ok { "ok  " } else { "FAIL" },
                check.name,
                check.detail
            ));
            if let Some(hint) = &check.hint {
                text.push_str(&format!("     {:<16} fix: {hint}\n", ""));
            }
            if let Some(action) = &check.action {
                let command = crate::actions::render(action);
                text.push_str(&format!("     {:<16} try: {command}\n", ""));
            }
        }
        text.trim_end().to_owned()
    });
    if report.ok {
        Ok(())
    } else {
        let failed = report.checks.iter().filter(|check| !check.ok).count();
        Err(Failure::other(
            format!("{failed} check(s) failed"),
            Some("each failing line above says how to fix it"),
        ))
    }
}

fn socket_check(socket: &Path) -> Check {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        match std::fs::metadata(socket) {
            Err(err) => check(
                "socket",
                false,
                format!("{}: {err}", socket.display()),
                Some("start the daemon with `kromactl daemon start`"),
            ),
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                let own = meta.uid() == nix::unistd::geteuid().as_raw();
                let ok = own && mode & 0o077 == 0;
                check(
                    "socket",
                    ok,
                    format!(
                        "{} mode {mode:o}, {}",
                        socket.display(),
                        if own {
                            "owned by you"
                        } else {
                            "owned by another user"
                        }
                    ),
                    Some(
                        "stop the daemon and start it again as yourself; kromad creates the socket 0600",
                    ),
                )
            }
        }
    }
    #[cfg(not(unix))]
    {
        check(
            "socket",
            true,
            format!("named pipe {}", socket.display()),
            None,
        )
    }
}

async fn daemon_checks(client: &Client, checks: &mut Vec<Check>) {
    match client
        .call::<protocol::daemon::Check>(&protocol::NoParams {})
        .await
    {
        Err(err) => checks.push(
            check("health", false, err.to_string(), err.hint().as_deref())
                .with_action(err.action()),
        ),
        Ok(health) => {
            checks.push(check(
                "database",
                health.database_integrity == "ok",
                format!(
                    "schema version {}, integrity {}",
                    health.schema_version, health.database_integrity
                ),
                Some("stop kromad and restore kroma.db from a backup"),
            ));
            let store = &health.secret_store;
            let (ok, detail) = match (&store.problem, &health.secret_round_trip) {
                (Some(problem), _) => (
                    false,
                    format!(
                        "{} ({}): not available: {problem}",
                        store.kind, store.detail
                    ),
                ),
                (None, Some(Err(problem))) => (
                    false,
                    format!("{} ({}): {problem}", store.kind, store.detail),
                ),
                (None, _) => (
                    true,
                    format!(
                        "{} ({}): a probe value round-tripped",
                        store.kind, store.detail
                    ),
                ),
            };
            checks.push(check(
                "secret store",
                ok,
                detail,
                Some("start a keyring (e.g. gnome-keyring) or set secrets.store = \"file\" in kromad.toml"),
            ));
            match health.data_dir_free_bytes {
                Some(free) => checks.push(check(
                    "disk",
                    free >= MIN_FREE_BYTES,
                    format!(
                        "{:.1} GiB free in {}",
                        free as f64 / (1024.0 * 1024.0 * 1024.0),
                        health.data_dir
                    ),
                    Some("free some space: generated images and exports need room"),
                )),
                None => checks.push(check(
                    "disk",
                    true,
                    format!("free space of {} unknown on this OS", health.data_dir),
                    None,
                )),
            }
        }
    }
    match client
        .call::<protocol::local_model::List>(&protocol::local_model::ListParams { verify: true })
        .await
    {
        Err(err) => checks.push(check("local models", false, err.to_string(), None)),
        Ok(local) => {
            let detail = if local.ok {
                let names: Vec<&str> = local.models.iter().map(|m| m.name.as_str()).collect();
                format!("{} in {}", names.join(", "), local.dir)
            } else {
                local.problem.clone().unwrap_or_default()
            };
            checks.push(
                check("local models", local.ok, detail, local.hint.as_deref())
                    .with_action(local.action.as_ref()),
            );
        }
    }
    match client
        .call::<protocol::provider::List>(&protocol::NoParams {})
        .await
    {
        Err(err) => checks.push(check("providers", false, err.to_string(), None)),
        Ok(list) if list.providers.is_empty() => checks.push(check(
            "providers",
            true,
            "none configured yet (kromactl provider add openai)".to_owned(),
            None,
        )),
        Ok(list) => {
            for provider in list.providers {
                let name = format!("provider {}", provider.name);
                match client
                    .call::<protocol::provider::Check>(&protocol::provider::ProviderRef {
                        name: provider.name,
                    })
                    .await
                {
                    Ok(result) => checks.push(
                        check(&name, result.ok, result.message, result.hint.as_deref())
                            .with_action(result.action.as_ref()),
                    ),
                    Err(err) => checks.push(
                        check(&name, false, err.to_string(), err.hint().as_deref())
                            .with_action(err.action()),
                    ),
                }
            }
        }
    }
    storage_checks(client, checks).await;
}

/// One line per project with S3 settings: `storage.check` reached the bucket with its keys, or
/// kromad's error; projects without S3 settings have nothing to check.
async fn storage_checks(client: &Client, checks: &mut Vec<Check>) {
    let projects = match client
        .call::<protocol::project::List>(&protocol::NoParams {})
        .await
    {
        Ok(list) => list.projects,
        Err(err) => {
            checks.push(check("s3", false, err.to_string(), err.hint().as_deref()));
            return;
        }
    };
    for project in projects.into_iter().filter(|p| p.storage.s3.is_some()) {
        let name = format!("s3 {}", project.slug);
        match client
            .call::<protocol::storage::Check>(&protocol::storage::CheckParams {
                project: project.slug,
            })
            .await
        {
            Ok(report) => checks.push(check(
                &name,
                true,
                format!("{} answers and the keys work", report.destination),
                None,
            )),
            Err(err) => checks.push(
                check(&name, false, err.to_string(), err.hint().as_deref())
                    .with_action(err.action()),
            ),
        }
    }
}
