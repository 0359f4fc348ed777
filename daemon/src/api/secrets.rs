//! `secret.*` handlers. The value of `secret.set` goes from the params straight to the store on a
//! blocking thread; it is never logged, audited (see `SECRET_FIELDS`), evented or returned.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::secret::SecretInfo;
use protocol::{ErrorCode, ErrorKind};

use crate::Daemon;
use crate::error::Problem;
use crate::secrets::SecretError;
use crate::store::secrets::{self as rows, SecretRow};
use crate::store::{NewEvent, StoreError};

/// Longest secret value accepted.
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Checks a secret name against [`protocol::secret::NAME_RULE`].
pub(super) fn parse_name(name: &str) -> Result<String, Problem> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        // Not repeated back: a name that breaks the rule is often a key pasted in its place.
        Err(Problem::validation(
            ErrorCode::InvalidSecretName,
            format!(
                "the secret name given ({} characters, not shown: it may be a key) must match {}",
                name.chars().count(),
                protocol::secret::NAME_RULE
            ),
        )
        .with_hint("name the secret, e.g. `openai`, and give the key as its value"))
    }
}

pub fn secret_error(err: SecretError) -> Problem {
    match &err {
        SecretError::Unavailable { .. } => Problem::new(ErrorKind::Infra, ErrorCode::SecretStoreUnavailable, err.to_string())
            .with_hint("start the keyring (e.g. gnome-keyring), or set secrets.store = \"file\" in kromad.toml; daemon.status shows the store")
            .with_action(protocol::Action::EditConfig { key: "secrets.store".to_owned(), value: Some("file".into()) }),
        SecretError::NotFound(name) => Problem::new(ErrorKind::NotFound, ErrorCode::SecretNotFound, err.to_string())
            .with_hint(format!("set secret `{name}`"))
            .with_action(protocol::Action::call::<protocol::secret::Set>([("name", name.as_str().into())], &[])),
        SecretError::Store(_) => Problem::new(ErrorKind::Infra, ErrorCode::SecretStoreFailed, err.to_string())
            .with_hint("check the secret store (keyring unlocked? key file readable?) and retry"),
    }
}

fn info(daemon: &Daemon, row: &SecretRow) -> SecretInfo {
    SecretInfo {
        name: row.name.clone(),
        store: row.store.clone(),
        updated_at: Some(row.updated_at.clone()),
        env_override: daemon.secrets.env_override(&row.name),
    }
}

fn changed(name: &str, action: protocol::events::SecretChange, at: String) -> NewEvent {
    NewEvent::of(
        at,
        None,
        &protocol::events::SecretChanged {
            name: name.to_owned(),
            action,
        },
    )
}

pub async fn set(
    daemon: Arc<Daemon>,
    params: protocol::secret::SetParams,
) -> Result<SecretInfo, Problem> {
    let name = parse_name(&params.name)?;
    if params.value.is_empty() || params.value.len() > MAX_VALUE_BYTES {
        return Err(Problem::validation(
            ErrorCode::InvalidSecretValue,
            format!("a secret value must be 1 to {MAX_VALUE_BYTES} bytes"),
        ));
    }
    let secrets = daemon.secrets.get().await;
    let store = secrets.kind();
    let value = params.value;
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            // The row and the value change together: if the store refuses, the row is rolled back.
            let row = rows::put(tx, &name, store, &at)?;
            secrets.set(&name, &value).map_err(secret_error)?;
            Ok::<_, Problem>((
                row,
                vec![changed(&name, protocol::events::SecretChange::Set, at)],
            ))
        })
        .await?;
    Ok(info(&daemon, &row))
}

pub async fn list(
    daemon: Arc<Daemon>,
    _: protocol::NoParams,
) -> Result<protocol::secret::SecretList, Problem> {
    let rows = daemon.store.read(rows::list).await?;
    let mut secrets: Vec<SecretInfo> = rows.iter().map(|row| info(&daemon, row)).collect();
    for name in daemon.secrets.env_names() {
        if !rows
            .iter()
            .any(|row| crate::secrets::env_key(&row.name) == name)
        {
            secrets.push(SecretInfo {
                name: name.to_owned(),
                store: "env".to_owned(),
                updated_at: None,
                env_override: true,
            });
        }
    }
    Ok(protocol::secret::SecretList {
        store: daemon.secrets.get().await.status(),
        secrets,
    })
}

pub async fn delete(
    daemon: Arc<Daemon>,
    params: protocol::secret::DeleteParams,
) -> Result<SecretInfo, Problem> {
    let name = parse_name(&params.name)?;
    if !params.confirm {
        return Err(super::unconfirmed_delete::<protocol::secret::Delete>(
            &format!("secret `{name}`"),
            [("name", name.as_str().into())],
        ));
    }
    let secrets = daemon.secrets.get().await;
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            let row = rows::get(tx, &name)?
                .ok_or_else(|| secret_error(SecretError::NotFound(name.clone())))?;
            rows::delete(tx, &name)?;
            secrets.delete(&name).map_err(secret_error)?;
            Ok::<_, Problem>((
                row,
                vec![changed(&name, protocol::events::SecretChange::Deleted, at)],
            ))
        })
        .await?;
    Ok(info(&daemon, &row))
}

pub async fn test(
    daemon: Arc<Daemon>,
    params: protocol::secret::SecretRef,
) -> Result<protocol::secret::TestResult, Problem> {
    let name = parse_name(&params.name)?;
    let secrets = daemon.secrets.get().await;
    let probe_name = name.clone();
    let outcome = tokio::task::spawn_blocking(move || secrets.test(&probe_name))
        .await
        .map_err(|err| Problem::from(StoreError::Task(err.to_string())))?;
    Ok(match outcome {
        Ok(store) => protocol::secret::TestResult {
            name,
            store: store.to_owned(),
            ok: true,
            message: format!("kromad can read it from the {store} store"),
        },
        Err(err) => protocol::secret::TestResult {
            name,
            store: daemon.secrets.get().await.kind().to_owned(),
            ok: false,
            message: secret_error(err).message,
        },
    })
}
