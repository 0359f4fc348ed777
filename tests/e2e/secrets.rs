//! Secrets against real stores: the Secret Service (a throwaway GNOME keyring started by
//! `packaging/test.sh`), the encrypted file store and environment overrides. Afterwards every
//! place a value could leak to is searched for it.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_tests::{Daemon, bin};

const VALUE: &str = "sk-kroma-leak-check-5f0c2a9e77";

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "the secret tests need a Secret Service: run the suite with `bash packaging/test.sh`"
    );
}

fn code(err: ClientError) -> String {
    match err {
        ClientError::Rpc {
            data: Some(data), ..
        } => data.code,
        other => panic!("expected a Kroma error, got {other:?}"),
    }
}

async fn set(
    client: &Client,
    name: &str,
    value: &str,
) -> Result<protocol::secret::SecretInfo, ClientError> {
    client
        .call::<protocol::secret::Set>(&protocol::secret::SetParams {
            name: name.into(),
            value: value.into(),
        })
        .await
}

async fn test(client: &Client, name: &str) -> protocol::secret::TestResult {
    client
        .call::<protocol::secret::Test>(&protocol::secret::SecretRef { name: name.into() })
        .await
        .unwrap()
}

/// Sets a secret with `kromactl secret set NAME`, the value piped on stdin.
fn set_with_kromactl(socket: &Path, name: &str, value: &str) -> std::process::Output {
    let mut child = std::process::Command::new(bin("kromactl"))
        .args(["--socket", socket.to_str().unwrap(), "secret", "set", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Every file below `folder` whose bytes contain `needle`.
pub fn files_containing(folder: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![folder.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file()
                && std::fs::read(&path)
                    .unwrap()
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn the_keyring_store_keeps_values_across_restarts_and_nothing_leaks() {
    require_session_bus();
    let temp = tempfile::tempdir().unwrap();
    let env = [("RUST_LOG", "trace")];
    let daemon = Daemon::start_with_env(temp.path(), &[], &env);
    let client = daemon.client().await;
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.secret_store.kind, "keyring");
    assert!(
        status.secret_store.available,
        "{:?}",
        status.secret_store.problem
    );

    let info = set(&client, "openai", VALUE).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.store.as_str()),
        ("openai", "keyring")
    );
    let output = set_with_kromactl(&daemon.socket, "replicate", VALUE);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));

    let result = test(&client, "openai").await;
    assert!(result.ok && result.store == "keyring", "{result:?}");
    assert_eq!(
        code(set(&client, "bad name!", "x").await.unwrap_err()),
        "invalid_secret_name"
    );
    assert_eq!(
        code(set(&client, "empty", "").await.unwrap_err()),
        "invalid_secret_value"
    );
    drop(client);
    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(status.success());

    // The value lives in the keyring, not in kromad's memory: a new daemon reads it back.
    let daemon = Daemon::start_with_env(temp.path(), &[], &env);
    let client = daemon.client().await;
    assert!(test(&client, "openai").await.ok);
    assert!(test(&client, "replicate").await.ok);
    let list = client
        .call::<protocol::secret::List>(&protocol::NoParams {})
        .await
        .unwrap();
    let names: Vec<&str> = list.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["openai", "replicate"]);
    for args in [
        &["secret", "list"][..],
        &["--json", "secret", "list"],
        &["--json", "daemon", "status"],
        &["secret", "test", "openai"],
    ] {
        let output = kroma_tests::kromactl(&daemon.socket, args);
        assert!(output.status.success(), "{args:?}");
        printed.push_str(&String::from_utf8_lossy(&output.stdout));
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    let deleted = client
        .call::<protocol::secret::Delete>(&protocol::secret::DeleteParams {
            name: "openai".into(),
            confirm: true,
        })
        .await
        .unwrap();
    assert_eq!(deleted.name, "openai");
    let gone = test(&client, "openai").await;
    assert!(!gone.ok && gone.message.contains("not set"), "{gone:?}");
    let again = client
        .call::<protocol::secret::Delete>(&protocol::secret::DeleteParams {
            name: "openai".into(),
            confirm: true,
        })
        .await
        .unwrap_err();
    assert_eq!(code(again), "secret_not_found");

    // Nothing anywhere holds the value: not the database, its WAL, the logs (at trace level),
    // the events, the audit log or anything kromactl printed.
    let events = client
        .call::<protocol::events::List>(&protocol::events::ListParams::default())
        .await
        .unwrap();
    let audit = client
        .call::<protocol::audit::List>(&protocol::audit::ListParams::default())
        .await
        .unwrap();
    assert!(events.events.iter().any(|e| e.kind == "secret.changed"));
    assert!(audit.entries.iter().any(|e| e.method == "secret.set"));
    let replies = format!(
        "{}{}",
        serde_json::to_string(&events).unwrap(),
        serde_json::to_string(&audit).unwrap()
    );
    assert!(!replies.contains(VALUE), "an RPC answer leaks the value");
    assert!(
        !printed.contains(VALUE),
        "kromactl printed the value: {printed}"
    );
    drop(client);
    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(files_containing(temp.path(), VALUE), Vec::<String>::new());
    assert!(
        !files_containing(&temp.path().join("data/logs"), "secret.set").is_empty(),
        "the logs were searched"
    );
}

#[tokio::test]
async fn the_file_store_is_encrypted_and_chosen_explicitly() {
    let temp = tempfile::tempdir().unwrap();
    let key = temp.path().join("secrets.key");
    let config = temp.path().join("kromad.toml");
    std::fs::write(
        &config,
        format!(
            "[secrets]\nstore = \"file\"\nkey_file = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    // No session bus at all: the file store does not need one.
    let env = [("DBUS_SESSION_BUS_ADDRESS", "")];
    let daemon = Daemon::start_with_env(temp.path(), &args, &env);
    let client = daemon.client().await;
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.secret_store.kind, "file");
    assert!(status.secret_store.available);
    assert_eq!(set(&client, "openai", VALUE).await.unwrap().store, "file");
    drop(client);
    assert!(
        tokio::task::spawn_blocking(move || daemon.terminate())
            .await
            .unwrap()
            .success()
    );

    let daemon = Daemon::start_with_env(temp.path(), &args, &env);
    let client = daemon.client().await;
    let result = test(&client, "openai").await;
    assert!(result.ok && result.store == "file", "{result:?}");
    assert!(temp.path().join("data/secrets.age").is_file());
    drop(client);
    drop(daemon);
    assert_eq!(files_containing(temp.path(), VALUE), Vec::<String>::new());
}

#[tokio::test]
async fn environment_variables_override_and_an_unavailable_keyring_is_never_replaced() {
    let temp = tempfile::tempdir().unwrap();
    let env = [
        (
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/kroma-test-bus",
        ),
        ("KROMA_SECRET_OPENAI", VALUE),
    ];
    let daemon = Daemon::start_with_env(temp.path(), &[], &env);
    let client = daemon.client().await;
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.secret_store.kind, "keyring");
    assert!(!status.secret_store.available);
    assert!(status.secret_store.problem.is_some());

    let result = test(&client, "openai").await;
    assert!(result.ok && result.store == "env", "{result:?}");
    let list = client
        .call::<protocol::secret::List>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(list.secrets.len(), 1);
    assert_eq!(
        (
            list.secrets[0].name.as_str(),
            list.secrets[0].store.as_str()
        ),
        ("OPENAI", "env")
    );

    let refused = set(&client, "other", "value").await.unwrap_err();
    let (hint, action) = match &refused {
        ClientError::Rpc {
            data: Some(data), ..
        } => (data.hint.clone().unwrap_or_default(), data.action.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(refused), "secret_store_unavailable");
    assert!(hint.contains("secrets.store"), "{hint}");
    assert_eq!(
        action,
        Some(protocol::Action::EditConfig {
            key: "secrets.store".into(),
            value: Some("file".into())
        })
    );
    assert!(
        !temp.path().join("data/secrets.age").exists(),
        "no silent fallback to a file"
    );
    let list = client
        .call::<protocol::secret::List>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(list.secrets.len(), 1, "a refused set leaves no row behind");
    let status_text = String::from_utf8_lossy(
        &kroma_tests::kromactl(&daemon.socket, &["daemon", "status"]).stdout,
    )
    .into_owned();
    assert!(status_text.contains("NOT AVAILABLE"), "{status_text}");
}
