//! `kroma-mcp --http`: MCP over streamable HTTP behind a bearer token, driven by the Python MCP
//! SDK in both eras, and raw requests that must be refused (no or wrong token, a browser
//! `Origin`, a foreign `Host`, an oversized body). The token is made once, kept 0600 in the
//! config folder, reused after a restart and never written to the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kroma_protocol as protocol;
use kroma_tests::Daemon;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `kroma-mcp --http`, killed when dropped.
pub(super) struct HttpServer {
    _child: tokio::process::Child,
    pub(super) url: String,
    /// Everything it wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

fn kroma_mcp(socket: &Path, config_home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(kroma_tests::bin("kroma-mcp"));
    command
        .arg("--socket")
        .arg(socket)
        .env("XDG_CONFIG_HOME", config_home)
        .env("KROMA_MCP_LOG", "info")
        .env_remove("KROMA_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `kroma-mcp --http 127.0.0.1:0` and waits for the line that says where it serves.
pub(super) async fn start_http(socket: &Path, config_home: &Path) -> HttpServer {
    let mut child = kroma_mcp(socket, config_home)
        .args(["--http", "127.0.0.1:0"])
        .spawn()
        .expect("spawn kroma-mcp");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let stderr = Arc::new(Mutex::new(String::new()));
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read stderr")
                .expect("kroma-mcp says where it serves before exiting");
            stderr.lock().expect("lock").push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("serving MCP at ").nth(1) {
                return rest.split(';').next().expect("a URL").to_owned();
            }
        }
    })
    .await
    .expect("kroma-mcp starts within 20 s");
    let collected = Arc::clone(&stderr);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            collected
                .lock()
                .expect("lock")
                .push_str(&format!("{line}\n"));
        }
    });
    HttpServer {
        _child: child,
        url,
        stderr,
    }
}

async fn python_http(url: &str, token_file: &Path, scenario: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mcp_http_client.py");
    let output = tokio::process::Command::new(super::python())
        .arg(&script)
        .args(["--url", url, "--scenario", scenario, "--token-file"])
        .arg(token_file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the Python client finishes within 2 minutes")
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}\n{stderr}"))
}

fn statuses(refusals: &Value) -> Vec<(String, u64)> {
    refusals
        .as_object()
        .expect("an object")
        .iter()
        .map(|(name, answer)| (name.clone(), answer["status"].as_u64().expect("a status")))
        .collect()
}

#[tokio::test]
async fn http_serves_both_eras_behind_a_token_and_refuses_everything_else() {
    let daemon = Daemon::start();
    daemon
        .client()
        .await
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Noir".into(),
            slug: Some("noir".into()),
            description: None,
            root: None,
            s3: None,
        })
        .await
        .expect("project");
    let config_home = tempfile::tempdir().expect("temp");
    let token_file: PathBuf = config_home.path().join("kroma/mcp-token");
    let server = start_http(&daemon.socket, config_home.path()).await;
    assert!(server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/mcp"));
    let token = std::fs::read_to_string(&token_file).expect("the token file");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let eras = python_http(&server.url, &token_file, "eras").await;
    for (mode, version) in [
        ("legacy", "2025-11-25"),
        ("2026-07-28", "2026-07-28"),
        ("auto", "2026-07-28"),
    ] {
        let seen = &eras[mode];
        assert_eq!(seen["protocol_version"], version, "{mode}: {seen:#}");
        assert_eq!(seen["tools"].as_array().map(Vec::len), Some(17), "{seen:#}");
        assert_eq!(seen["list_projects"]["is_error"], false);
        assert_eq!(
            seen["list_projects"]["structured"]["projects"][0]["slug"],
            "noir"
        );
    }

    let refusals = python_http(&server.url, &token_file, "refusals").await;
    let expected = [
        ("browser_origin", 403),
        ("foreign_host", 403),
        ("good", 200),
        ("no_token", 401),
        ("not_bearer", 401),
        ("oversized", 413),
        ("wrong_token", 401),
    ];
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(name, status)| (name.to_string(), *status))
        .collect();
    assert_eq!(statuses(&refusals), expected, "{refusals:#}");
    // Each refusal is in kromad's audit log, under kroma-mcp's agent connection.
    let audit = crate::instructions::audit(&daemon.client().await).await;
    let mut refused: Vec<(&str, &str)> = audit
        .iter()
        .filter(|entry| entry.method == "mcp.http")
        .map(|entry| (entry.client.as_str(), entry.outcome.as_str()))
        .collect();
    refused.sort();
    let who = "kroma-mcp (agent: refused HTTP request)";
    assert_eq!(
        refused,
        [
            (who, "body_too_large"),
            (who, "foreign_host"),
            (who, "foreign_origin"),
            (who, "no_token"),
            (who, "wrong_token"),
            (who, "wrong_token"),
        ],
        "{audit:#?}"
    );

    let log = server.stderr.lock().expect("lock").clone();
    assert!(log.contains(&token_file.display().to_string()), "{log}");
    assert!(!log.contains(token.trim()), "the token is never logged");

    // A second start reuses the token.
    drop(server);
    let again = start_http(&daemon.socket, config_home.path()).await;
    assert_eq!(
        std::fs::read_to_string(&token_file).expect("the token file"),
        token
    );
    let refusals = python_http(&again.url, &token_file, "refusals").await;
    assert_eq!(refusals["good"]["status"], 200);
}

#[test]
fn http_refuses_an_address_other_machines_reach_unless_bind_is_given() {
    let config_home = tempfile::tempdir().expect("temp");
    let output = std::process::Command::new(kroma_tests::bin("kroma-mcp"))
        .args([
            "--socket",
            "/nonexistent/kromad.sock",
            "--http",
            "0.0.0.0:0",
        ])
        .env("XDG_CONFIG_HOME", config_home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kroma-mcp");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0.0.0.0:0 is not a loopback address") && stderr.contains("--bind"),
        "{stderr}"
    );
    assert!(
        !config_home.path().join("kroma/mcp-token").exists(),
        "no token is made for a refused start"
    );
}
