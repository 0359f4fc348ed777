//! `provider.*` handlers.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::provider::{CheckResult, CheckStatus, Provider, ProviderKind};

use crate::Daemon;
use crate::error::Problem;
use crate::providers::{self, Account};
use crate::store::providers::{self as rows, ProviderRow};
use crate::store::{NewEvent, StoreError};

const DEFAULT_MODEL: &str = "gpt-image-2";

fn parse_name(name: &str) -> Result<String, Problem> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(Problem::validation(
            ErrorCode::InvalidProviderName,
            format!("provider name `{name}` must match [a-z0-9][a-z0-9_-]{{0,63}}"),
        ))
    }
}

fn parse_base_url(url: &str) -> Result<String, Problem> {
    let parsed = url::Url::parse(url).map_err(|err| {
        Problem::validation(
            ErrorCode::InvalidBaseUrl,
            format!("base URL `{url}` is not a URL: {err}"),
        )
        .with_hint("e.g. https://api.openai.com/v1")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Problem::validation(
            ErrorCode::InvalidBaseUrl,
            format!("base URL `{url}` must be http:// or https:// with a host"),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Problem::validation(
            ErrorCode::InvalidBaseUrl,
            "the base URL must not carry credentials; put the key in a secret",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn parse_text(field: &str, value: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(Problem::validation(
            ErrorCode::InvalidParams,
            format!("`{field}` must be 1 to 200 characters without control characters"),
        ));
    }
    Ok(value.to_owned())
}

fn to_proto(row: &ProviderRow) -> Result<Provider, Problem> {
    let kind = serde_json::from_value(serde_json::Value::String(row.kind.clone()))
        .map_err(|_| Problem::from(StoreError::Corrupt(format!("provider kind `{}`", row.kind))))?;
    Ok(Provider {
        name: row.name.clone(),
        kind,
        base_url: row.base_url.clone(),
        default_model: row.default_model.clone(),
        organization: row.organization.clone(),
        secret: row.secret_name.clone(),
        honors_idempotency_key: row.honors_idempotency_key,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    })
}

fn changed(name: &str, action: protocol::events::Change, at: String) -> NewEvent {
    NewEvent::of(
        at,
        None,
        &protocol::events::ProviderChanged {
            name: name.to_owned(),
            action,
        },
    )
}

pub async fn create(
    daemon: Arc<Daemon>,
    params: protocol::provider::CreateParams,
) -> Result<Provider, Problem> {
    let name = parse_name(&params.name)?;
    let base_url = match (params.kind, params.base_url.as_deref()) {
        (_, Some(url)) => parse_base_url(url)?,
        (ProviderKind::Openai, None) => protocol::provider::OPENAI_BASE_URL.to_owned(),
        (ProviderKind::OpenaiCompatible, None) => {
            return Err(Problem::validation(
                ErrorCode::InvalidBaseUrl,
                "an openai_compatible provider needs a base URL",
            )
            .with_hint("pass base_url, e.g. http://127.0.0.1:8080/v1"));
        }
    };
    let at = daemon.clock.now();
    let row = ProviderRow {
        secret_name: super::secrets::parse_name(params.secret.as_deref().unwrap_or(&name))?,
        name,
        kind: params.kind.as_str().to_owned(),
        base_url,
        default_model: parse_text(
            "default_model",
            params.default_model.as_deref().unwrap_or(DEFAULT_MODEL),
        )?,
        organization: params
            .organization
            .as_deref()
            .map(|org| parse_text("organization", org))
            .transpose()?,
        honors_idempotency_key: params.honors_idempotency_key,
        created_at: at.clone(),
        updated_at: at.clone(),
    };
    let row = daemon
        .store
        .write(move |tx| {
            rows::insert(tx, &row)?;
            Ok::<_, StoreError>((
                row.clone(),
                vec![changed(&row.name, protocol::events::Change::Created, at)],
            ))
        })
        .await?;
    to_proto(&row)
}

pub async fn update(
    daemon: Arc<Daemon>,
    params: protocol::provider::UpdateParams,
) -> Result<Provider, Problem> {
    let name = parse_name(&params.name)?;
    let base_url = params.base_url.as_deref().map(parse_base_url).transpose()?;
    let default_model = params
        .default_model
        .as_deref()
        .map(|model| parse_text("default_model", model))
        .transpose()?;
    let organization = match params.organization.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(org) => Some(Some(parse_text("organization", org)?)),
    };
    let secret = params
        .secret
        .as_deref()
        .map(super::secrets::parse_name)
        .transpose()?;
    let honors = params.honors_idempotency_key;
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            let mut row = rows::get(tx, &name)?;
            row.base_url = base_url.unwrap_or(row.base_url);
            row.default_model = default_model.unwrap_or(row.default_model);
            row.organization = organization.unwrap_or(row.organization);
            row.secret_name = secret.unwrap_or(row.secret_name);
            row.honors_idempotency_key = honors.unwrap_or(row.honors_idempotency_key);
            row.updated_at = at.clone();
            rows::update(tx, &row)?;
            Ok::<_, StoreError>((
                row.clone(),
                vec![changed(&row.name, protocol::events::Change::Updated, at)],
            ))
        })
        .await?;
    to_proto(&row)
}

pub async fn get(
    daemon: Arc<Daemon>,
    params: protocol::provider::ProviderRef,
) -> Result<Provider, Problem> {
    let name = parse_name(&params.name)?;
    to_proto(
        &daemon
            .store
            .read(move |conn| rows::get(conn, &name))
            .await?,
    )
}

pub async fn list(
    daemon: Arc<Daemon>,
    _: protocol::NoParams,
) -> Result<protocol::provider::ProviderList, Problem> {
    let rows = daemon.store.read(rows::list).await?;
    Ok(protocol::provider::ProviderList {
        providers: rows.iter().map(to_proto).collect::<Result<_, _>>()?,
    })
}

pub async fn delete(
    daemon: Arc<Daemon>,
    params: protocol::provider::DeleteParams,
) -> Result<Provider, Problem> {
    let name = parse_name(&params.name)?;
    if !params.confirm {
        return Err(super::unconfirmed_delete::<protocol::provider::Delete>(
            &format!("provider `{name}`"),
            [("name", name.as_str().into())],
        ));
    }
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            let row = rows::get(tx, &name)?;
            rows::delete(tx, &name)?;
            Ok::<_, StoreError>((
                row.clone(),
                vec![changed(&row.name, protocol::events::Change::Deleted, at)],
            ))
        })
        .await?;
    to_proto(&row)
}

pub async fn check(
    daemon: Arc<Daemon>,
    params: protocol::provider::ProviderRef,
) -> Result<CheckResult, Problem> {
    let name = parse_name(&params.name)?;
    let row = daemon
        .store
        .read(move |conn| rows::get(conn, &name))
        .await?;
    let secrets = daemon.secrets.get().await;
    let secret_name = row.secret_name.clone();
    let key = tokio::task::spawn_blocking(move || secrets.get(&secret_name))
        .await
        .map_err(|err| Problem::from(StoreError::Task(err.to_string())))?;
    let key = match key {
        Ok((key, _store)) => key,
        Err(err) => {
            let err = super::secrets::secret_error(err);
            return Ok(CheckResult {
                name: row.name.clone(),
                ok: false,
                status: CheckStatus::NoKey,
                message: format!("no key for provider `{}`: {}", row.name, err.message),
                hint: Some(format!("store the key in secret `{}`", row.secret_name)),
                action: Some(protocol::Action::call::<protocol::secret::Set>(
                    [("name", row.secret_name.as_str().into())],
                    &[],
                )),
                models: None,
                elapsed_ms: 0,
            });
        }
    };
    let account = Account {
        name: &row.name,
        base_url: &row.base_url,
        organization: row.organization.as_deref(),
    };
    let result = providers::check(
        daemon.http()?,
        &account,
        &row.secret_name,
        &key,
        daemon.secrets.scrubber(),
    )
    .await;
    tracing::info!(provider = %row.name, status = ?result.status, elapsed_ms = result.elapsed_ms, "provider check");
    Ok(result)
}
