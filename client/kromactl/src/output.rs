//! How kromactl prints: tables and dollar amounts for people, the exact RPC result with `--json`,
//! nothing with `--quiet`, and errors with a hint on stderr.

use comfy_table::{ContentArrangement, Table, presets};
use kroma_client::ClientError;
use kroma_protocol as protocol;
use serde::Serialize;

use crate::{EXIT_NOT_RUNNING, EXIT_SOCKET_NOT_YOURS, EXIT_USAGE, Global};

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    Client(ClientError),
    Usage(String),
    Other {
        message: String,
        hint: Option<String>,
        /// What the hint asks for, from a result of kromad's that is not an error.
        action: Option<protocol::Action>,
    },
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Failure {
        Failure::Client(err)
    }
}

impl Failure {
    pub fn other(message: impl Into<String>, hint: Option<&str>) -> Failure {
        Failure::other_with_action(message, hint, None)
    }

    /// A failure read from a result of kromad's: its hint and the action that does what it says.
    pub fn other_with_action(
        message: impl Into<String>,
        hint: Option<&str>,
        action: Option<&protocol::Action>,
    ) -> Failure {
        Failure::Other {
            message: message.into(),
            hint: hint.map(str::to_owned),
            action: action.cloned(),
        }
    }
}

/// The `hint:` line, then the `  try:` line with the command that does what kromad's action
/// asks; nothing without a hint or an action.
pub fn hint_lines(hint: Option<&str>, action: Option<&protocol::Action>) -> Vec<String> {
    let hint = hint.map(|hint| format!("hint: {hint}"));
    let action = action.map(|action| format!("  try: {}", crate::actions::render(action)));
    hint.into_iter().chain(action).collect()
}

/// Prints a failure on stderr and returns the exit code.
pub fn report(failure: &Failure, json: bool) -> u8 {
    let (text, code) = failure_text(failure, json);
    eprintln!("{text}");
    code
}

/// What [`report`] prints, and the exit code: the message, the hint and the command that does
/// what kromad's action asks; with `--json`, one object whose `data` is kromad's whole error
/// data (the action included).
fn failure_text(failure: &Failure, json: bool) -> (String, u8) {
    let action = match failure {
        Failure::Client(err) => err.action(),
        Failure::Other { action, .. } => action.as_ref(),
        Failure::Usage(_) => None,
    };
    let (message, hint, code) = match failure {
        Failure::Client(err) => (
            err.to_string(),
            err.hint(),
            match err {
                ClientError::NotRunning { .. } => EXIT_NOT_RUNNING,
                ClientError::SocketNotYours { .. } => EXIT_SOCKET_NOT_YOURS,
                _ => 1,
            },
        ),
        Failure::Usage(message) => (message.clone(), Some("see --help".to_owned()), EXIT_USAGE),
        Failure::Other { message, hint, .. } => (message.clone(), hint.clone(), 1),
    };
    if json {
        let data = match failure {
            Failure::Client(ClientError::Rpc { code, data, .. }) => {
                serde_json::json!({ "code": code, "message": message, "data": data })
            }
            _ => match action {
                Some(action) => {
                    serde_json::json!({ "message": message, "hint": hint, "action": action })
                }
                None => serde_json::json!({ "message": message, "hint": hint }),
            },
        };
        return (serde_json::json!({ "error": data }).to_string(), code);
    }
    let mut lines = vec![format!("error: {message}")];
    lines.extend(hint_lines(hint.as_deref(), action));
    (lines.join("\n"), code)
}

/// Prints `value` as JSON with `--json`, else the human form, and nothing with `--quiet`.
pub fn print<T: Serialize>(global: &Global, value: &T, human: impl FnOnce() -> String) {
    if global.quiet {
        return;
    }
    if global.json {
        print_json(value);
    } else {
        println!("{}", human());
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: printing JSON: {err}"),
    }
}

/// `$1.26`; amounts below a cent keep four decimals, `$0.0042`.
pub fn usd(amount: f64) -> String {
    // Adding zero turns -0.0 into 0.0, so nothing prints as `$-0.00`.
    let amount = amount + 0.0;
    if amount != 0.0 && amount.abs() < 0.01 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|title| title.to_uppercase()));
    table
}

pub fn project_table(projects: &[protocol::project::Project]) -> Table {
    let mut table = table(&["slug", "name", "root", "s3", "created"]);
    for project in projects {
        table.add_row(vec![
            project.slug.clone(),
            project.name.clone(),
            project.root.clone(),
            s3_url(project.storage.s3.as_ref()),
            project.created_at.clone(),
        ]);
    }
    table
}

pub fn project_details(project: &protocol::project::Project) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    let rows = [
        ("slug", project.slug.clone()),
        ("name", project.name.clone()),
        ("description", project.description.clone()),
        ("id", project.id.clone()),
        ("root", project.root.clone()),
        ("s3", s3_url(project.storage.s3.as_ref())),
        (
            "s3 region",
            project
                .storage
                .s3
                .as_ref()
                .and_then(|s3| s3.region.clone())
                .unwrap_or_default(),
        ),
        (
            "s3 endpoint",
            project
                .storage
                .s3
                .as_ref()
                .and_then(|s3| s3.endpoint.clone())
                .unwrap_or_default(),
        ),
        ("created", project.created_at.clone()),
        ("updated", project.updated_at.clone()),
    ];
    for (key, value) in rows {
        table.add_row(vec![format!("{key}:"), value]);
    }
    table
}

fn s3_url(s3: Option<&protocol::project::S3Settings>) -> String {
    match s3 {
        Some(s3) if s3.prefix.is_empty() => format!("s3://{}", s3.bucket),
        Some(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        None => "-".to_owned(),
    }
}

/// One event per line: `id time kind project data`.
pub fn event_line(event: &protocol::events::Event) -> String {
    format!(
        "{:>6}  {}  {:<16} {:<20} {}",
        event.id,
        event.at,
        event.kind,
        event.project.as_deref().unwrap_or("-"),
        event.data
    )
}

pub fn audit_table(entries: &[protocol::audit::AuditEntry]) -> Table {
    let mut table = table(&["id", "at", "uid", "client", "method", "outcome"]);
    for entry in entries {
        table.add_row(vec![
            entry.id.to_string(),
            entry.at.clone(),
            entry
                .peer_uid
                .map_or_else(|| "-".to_owned(), |uid| uid.to_string()),
            entry.client.clone(),
            entry.method.clone(),
            entry.outcome.clone(),
        ]);
    }
    table
}

pub fn asset_table(assets: &[protocol::asset::Asset]) -> Table {
    let mut table = table(&["id", "kind", "size", "format", "path"]);
    for asset in assets {
        table.add_row(vec![
            asset.id.clone(),
            asset.kind.as_str().to_owned(),
            format!("{}×{}", asset.width, asset.height),
            asset.format.clone(),
            asset.path.clone(),
        ]);
    }
    table
}

pub fn asset_details(asset: &protocol::asset::Asset) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    let rows = [
        ("id", asset.id.clone()),
        ("project", asset.project.clone()),
        ("kind", asset.kind.as_str().to_owned()),
        ("path", asset.path.clone()),
        ("size", format!("{}×{}", asset.width, asset.height)),
        ("format", format!("{} ({})", asset.format, asset.mime)),
        ("bytes", asset.bytes.to_string()),
        ("sha256", asset.sha256.clone()),
        ("imported from", asset.original_name.clone()),
        ("created", asset.created_at.clone()),
    ];
    for (key, value) in rows {
        table.add_row(vec![format!("{key}:"), value]);
    }
    table
}

pub fn import_table(results: &[protocol::asset::ImportResult]) -> Table {
    let mut table = table(&["outcome", "file", "asset / reason"]);
    for result in results {
        let outcome = match result.outcome {
            protocol::asset::ImportOutcome::Imported => "imported",
            protocol::asset::ImportOutcome::Existing => "existing",
            protocol::asset::ImportOutcome::Failed => "failed",
        };
        let detail = match (&result.asset, &result.error) {
            (Some(asset), _) => format!("{} {}", asset.id, asset.path),
            (None, Some(error)) => format!("{} ({})", error.message, error.code),
            (None, None) => String::new(),
        };
        table.add_row(vec![outcome.to_owned(), result.path.clone(), detail]);
    }
    table
}

/// The lineage as lines: the assets, then the links between them.
pub fn lineage_text(graph: &protocol::asset::LineageGraph) -> String {
    let mut text = asset_table(&graph.assets).to_string();
    if graph.links.is_empty() {
        text.push_str("\n(no links)");
    }
    for link in &graph.links {
        text.push_str(&format!(
            "\n{} {} {}",
            link.from,
            link.relation.as_str(),
            link.to
        ));
    }
    text
}

/// `key: value` lines.
pub fn details(rows: &[(&str, String)]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    for (key, value) in rows {
        table.add_row(vec![format!("{key}:"), value.clone()]);
    }
    table
}

/// A list of named things: name, id and one more column.
pub fn named_table(extra: &str, rows: &[(String, String, String)]) -> Table {
    let mut table = table(&["name", "id", extra]);
    for (name, id, more) in rows {
        table.add_row(vec![name.clone(), id.clone(), more.clone()]);
    }
    table
}

/// The change summary of a bootstrap import, a line per section.
pub fn bootstrap_summary(summary: &protocol::bootstrap::ImportSummary) -> String {
    let mut table = table(&["section", "created", "updated", "deleted", "unchanged"]);
    let names = |names: &[String]| {
        if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(", ")
        }
    };
    for (label, section) in [
        ("style guides", &summary.style_guides),
        ("characters", &summary.characters),
        ("prompt templates", &summary.prompt_templates),
    ] {
        if !section.provided {
            table.add_row(vec![
                label.to_owned(),
                "(not in the document: kept)".to_owned(),
            ]);
            continue;
        }
        table.add_row(vec![
            label.to_owned(),
            names(&section.created),
            names(&section.updated),
            names(&section.deleted),
            names(&section.unchanged),
        ]);
    }
    let mut text = table.to_string();
    if summary.project.name_changed || summary.project.description_changed {
        text.push_str("\nproject: ");
        let mut parts = Vec::new();
        if summary.project.name_changed {
            parts.push("name");
        }
        if summary.project.description_changed {
            parts.push("description");
        }
        text.push_str(&format!("{} changed", parts.join(" and ")));
    }
    text.push_str(if summary.dry_run {
        "\ndry run: nothing was changed"
    } else {
        "\napplied"
    });
    text
}

pub fn secret_list(list: &protocol::secret::SecretList) -> String {
    let store = &list.store;
    let mut text = match &store.problem {
        None => format!("secret store: {} ({})", store.kind, store.detail),
        Some(problem) => format!(
            "secret store: {} ({}) NOT AVAILABLE: {problem}",
            store.kind, store.detail
        ),
    };
    if list.secrets.is_empty() {
        text.push_str("\nno secrets; add one with `kromactl secret set NAME`");
        return text;
    }
    let mut table = table(&["name", "store", "updated", "env override"]);
    for secret in &list.secrets {
        table.add_row(vec![
            secret.name.clone(),
            secret.store.clone(),
            secret.updated_at.clone().unwrap_or_else(|| "-".to_owned()),
            if secret.env_override {
                "yes".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    text.push('\n');
    text.push_str(&table.to_string());
    text
}

pub fn provider_table(providers: &[protocol::provider::Provider]) -> Table {
    let mut table = table(&[
        "name",
        "kind",
        "base url",
        "model",
        "secret",
        "idempotency keys",
    ]);
    for p in providers {
        table.add_row(vec![
            p.name.clone(),
            p.kind.as_str().to_owned(),
            p.base_url.clone(),
            p.default_model.clone(),
            p.secret.clone(),
            if p.honors_idempotency_key {
                "honoured"
            } else {
                "-"
            }
            .to_owned(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn no_key(action: Option<protocol::Action>) -> Failure {
        let mut data = protocol::ErrorData::new(
            protocol::ErrorKind::Provider,
            protocol::ErrorCode::NoKey,
            "the key of provider `openai` (secret `openai`) cannot be read",
        )
        .with_hint("store the key in secret `openai`, then start the run again");
        data.action = action;
        Failure::Client(ClientError::Rpc {
            code: protocol::ErrorKind::Provider.code(),
            message: data.message.clone(),
            data: Some(Box::new(data)),
        })
    }

    #[test]
    fn an_error_shows_its_hint_then_the_command_of_its_action() {
        let store_key =
            protocol::Action::call::<protocol::secret::Set>([("name", json!("openai"))], &[]);
        let (text, code) = failure_text(&no_key(Some(store_key.clone())), false);
        assert_eq!(
            text,
            "error: the key of provider `openai` (secret `openai`) cannot be read\n\
             hint: store the key in secret `openai`, then start the run again\n\
             \x20 try: kromactl secret set openai"
        );
        assert_eq!(code, 1);
        // Without an action, what kromactl printed before.
        let (text, _) = failure_text(&no_key(None), false);
        assert_eq!(
            text,
            "error: the key of provider `openai` (secret `openai`) cannot be read\n\
             hint: store the key in secret `openai`, then start the run again"
        );
        // With --json, kromad's data as it came, the action in it.
        let (text, code) = failure_text(&no_key(Some(store_key)), true);
        let printed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            printed,
            json!({"error": {
                "code": -32004,
                "message": "the key of provider `openai` (secret `openai`) cannot be read",
                "data": {
                    "kind": "provider",
                    "code": "no_key",
                    "message": "the key of provider `openai` (secret `openai`) cannot be read",
                    "hint": "store the key in secret `openai`, then start the run again",
                    "action": {"type": "call", "method": "secret.set", "params": {"name": "openai"}, "needs": ["value"]},
                },
            }})
        );
        assert_eq!(code, 1);
    }

    #[test]
    fn a_failure_read_from_a_result_shows_the_command_of_its_action() {
        let install = protocol::Action::InstallModels { quality: false };
        let failure = Failure::other_with_action(
            "u2netp is Missing at /m/u2netp.onnx",
            Some("install the local runtime and models"),
            Some(&install),
        );
        assert_eq!(
            failure_text(&failure, false),
            (
                "error: u2netp is Missing at /m/u2netp.onnx\n\
                 hint: install the local runtime and models\n\
                 \x20 try: kromactl local-models install"
                    .to_owned(),
                1
            )
        );
        let (text, _) = failure_text(&failure, true);
        let printed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            printed,
            json!({"error": {
                "message": "u2netp is Missing at /m/u2netp.onnx",
                "hint": "install the local runtime and models",
                "action": {"type": "install_models", "quality": false},
            }})
        );
    }

    #[test]
    fn failures_of_kromactl_itself_keep_their_form() {
        let cases = [
            (
                Failure::Usage("params must be a JSON object".to_owned()),
                "error: params must be a JSON object\nhint: see --help",
                EXIT_USAGE,
            ),
            (
                Failure::other("not deleted", Some("pass --yes to skip the question")),
                "error: not deleted\nhint: pass --yes to skip the question",
                1,
            ),
            (
                Failure::other("reading stdin: broken pipe", None),
                "error: reading stdin: broken pipe",
                1,
            ),
        ];
        for (failure, expected, code) in cases {
            assert_eq!(failure_text(&failure, false), (expected.to_owned(), code));
        }
        let (text, _) = failure_text(&Failure::other("not deleted", None), true);
        assert_eq!(text, r#"{"error":{"hint":null,"message":"not deleted"}}"#);
    }

    #[test]
    fn usd_keeps_four_decimals_below_a_cent() {
        let cases = [
            (0.0, "$0.00"),
            (-0.0, "$0.00"),
            (0.0042, "$0.0042"),
            (0.00999, "$0.0100"),
            (0.01, "$0.01"),
            (0.42, "$0.42"),
            (1.5, "$1.50"),
            (12.345, "$12.35"),
            (1234.0, "$1234.00"),
        ];
        for (amount, expected) in cases {
            assert_eq!(usd(amount), expected, "{amount}");
        }
    }
}
