//! A kromad of a benchmark's own: started on a folder of its own (socket, data dir, and the
//! config and settings files the bench writes there), ready once it answers, asked to stop at
//! the end and killed if it has not within 10 s. `bench rpc` starts its own, to time the cold
//! start with a raw connection.

use std::path::Path;
use std::time::{Duration, Instant};

use kroma_client::Client;
use kroma_protocol as protocol;

use crate::output::Failure;

pub struct BenchKromad {
    child: std::process::Child,
    /// Connected without the client's reply budget (benches read large reports).
    pub client: Client,
}

impl BenchKromad {
    /// Starts `kromad` in `folder` with the config and settings files given (written there by
    /// the bench, so nothing of this user's set-up changes what is measured), and `env`.
    pub async fn start(
        kromad: &Path,
        folder: &Path,
        config: Option<&Path>,
        settings: &Path,
        env: &[(&str, &str)],
    ) -> Result<BenchKromad, Failure> {
        std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
        let socket = folder.join("kromad.sock");
        let mut command = std::process::Command::new(kromad);
        command
            .arg("--socket")
            .arg(&socket)
            .arg("--data-dir")
            .arg(folder.join("data"))
            .arg("--settings")
            .arg(settings)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command.spawn().map_err(|err| {
            Failure::other(
                format!("starting {}: {err}", kromad.display()),
                Some("pass --kromad PATH"),
            )
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = Client::connect_unbounded(&socket).await
                && client
                    .call::<protocol::daemon::Version>(&protocol::NoParams {})
                    .await
                    .is_ok()
            {
                return Ok(BenchKromad { child, client });
            }
            if let Ok(Some(exit)) = child.try_wait() {
                return Err(Failure::other(
                    format!("kromad exited ({exit}) before it was ready"),
                    None,
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::other("kromad did not answer within 10 s", None));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The most memory kromad has held (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> Result<f64, Failure> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|err| failure("reading kromad's /proc status (Linux only)", err))?;
        let kb: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| Failure::other("no VmHWM in kromad's /proc status", None))?;
        Ok(kb / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = self
            .client
            .call::<protocol::daemon::Shutdown>(&protocol::NoParams {})
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while matches!(self.child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn failure(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::other(format!("{what}: {err}"), None)
}
