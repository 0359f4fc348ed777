//! `ApiError`, the error every handler returns, and its one mapping onto a JSON-RPC error object.
//!
//! A hint is prose for people that names no program; the step it asks for goes next to it as a
//! `protocol::Action` ([`ApiError::with_action`], or a [`Hint`] that carries one), which kromactl
//! renders as a command and an MCP server as a tool call.

use jsonrpsee::types::ErrorObjectOwned;
use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};

use crate::store::StoreError;

/// A failed call, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The exact condition; its wire name is `data.code`.
    pub code: ErrorCode,
    pub message: String,
    pub hint: Option<String>,
    /// What the hint asks for, as data (boxed: most errors have none, and every `Result` of the
    /// daemon carries this type).
    pub action: Option<Box<protocol::Action>>,
    /// Replaces the kind's numeric code; only for the JSON-RPC reserved codes (parse error,
    /// invalid request, method not found) that generic clients recognise.
    pub rpc_code: Option<i32>,
}

impl ApiError {
    /// An error of `kind`, which must be one `code` is documented with ([`ErrorCode::kinds`]):
    /// checked in debug builds, so the tests catch a code sent with the wrong kind.
    pub fn new(kind: ErrorKind, code: ErrorCode, message: impl Into<String>) -> ApiError {
        debug_assert!(
            code.kinds().contains(&kind),
            "error code `{code}` is not sent with kind `{kind}`"
        );
        ApiError {
            kind,
            code,
            message: message.into(),
            hint: None,
            action: None,
            rpc_code: None,
        }
    }

    pub fn validation(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, code, message)
    }

    /// Sets the hint, and its action when the hint carries one (an action set before stays
    /// otherwise).
    pub fn with_hint(mut self, hint: impl Into<Hint>) -> ApiError {
        let hint = hint.into();
        self.hint = Some(hint.text);
        if let Some(action) = hint.action {
            self.action = Some(Box::new(action));
        }
        self
    }

    /// Sets the action: the hint's step as data. It never carries a secret's value, a
    /// confirmation or a cost to confirm: those go in its `needs` (see `protocol::Action::call`).
    pub fn with_action(mut self, action: protocol::Action) -> ApiError {
        self.action = Some(Box::new(action));
        self
    }

    pub fn with_rpc_code(mut self, code: i32) -> ApiError {
        self.rpc_code = Some(code);
        self
    }

    /// The `data` member alone, for per-item results such as one file of an import.
    pub fn to_data(&self) -> protocol::ErrorData {
        protocol::ErrorData {
            hint: self.hint.clone(),
            action: self.action.as_deref().cloned(),
            ..protocol::ErrorData::new(self.kind, self.code, self.message.clone())
        }
    }

    /// The JSON-RPC error object: the kind's numeric code, the message, and `data`.
    pub fn to_rpc(&self) -> ErrorObjectOwned {
        let data = self.to_data();
        ErrorObjectOwned::owned(
            self.rpc_code.unwrap_or(self.kind.code()),
            self.message.clone(),
            Some(data),
        )
    }

    /// The error as a complete JSON-RPC response line for `id` (raw JSON, `null` when unknown).
    pub fn to_response(&self, id: &str) -> String {
        let error = serde_json::to_string(&self.to_rpc()).unwrap_or_else(|_| {
            format!(
                r#"{{"code":{},"message":"internal error"}}"#,
                ErrorKind::Internal.code()
            )
        });
        format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
    }
}

/// A hint with the action that does what it says, for a hint made in one place and attached to an
/// error (or a result) in another: a provider's refusal, the local models' install hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub text: String,
    pub action: Option<protocol::Action>,
}

impl Hint {
    pub fn new(text: impl Into<String>, action: protocol::Action) -> Hint {
        Hint {
            text: text.into(),
            action: Some(action),
        }
    }

    /// The text and the action apart, for the `hint` and `action` fields of a result.
    pub fn parts(hint: Option<Hint>) -> (Option<String>, Option<protocol::Action>) {
        hint.map_or((None, None), |hint| (Some(hint.text), hint.action))
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Hint {
        Hint { text, action: None }
    }
}

impl From<&str> for Hint {
    fn from(text: &str) -> Hint {
        Hint::from(text.to_owned())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match &err {
            StoreError::ProjectNotFound(slug) => ApiError::new(
                ErrorKind::NotFound,
                ErrorCode::ProjectNotFound,
                format!("project `{slug}` not found"),
            )
            .with_hint(Hint::new(
                "the project list shows the projects that exist",
                protocol::Action::call::<protocol::project::List>([], &[]),
            )),
            StoreError::SlugTaken(slug) => ApiError::new(
                ErrorKind::Conflict,
                ErrorCode::SlugTaken,
                format!("a project with slug `{slug}` already exists"),
            )
            .with_hint("pick another name or pass a different slug"),
            StoreError::AssetNotFound(id) => ApiError::new(
                ErrorKind::NotFound,
                ErrorCode::AssetNotFound,
                format!("asset `{id}` not found in this project"),
            )
            .with_hint(Hint::new(
                "the project's asset list shows its assets",
                protocol::Action::call::<protocol::asset::List>([], &["project"]),
            )),
            StoreError::LinkExists => ApiError::new(
                ErrorKind::Conflict,
                ErrorCode::LinkExists,
                "these assets are already linked this way",
            ),
            StoreError::EntityNotFound { what, key } => ApiError::new(
                ErrorKind::NotFound,
                ErrorCode::NotFound,
                format!("{what} `{key}` not found in this project"),
            )
            .with_hint(listing(what)),
            StoreError::NameTaken { what, name } => ApiError::new(
                ErrorKind::Conflict,
                ErrorCode::NameTaken,
                format!("a {what} named `{name}` already exists in this project"),
            )
            .with_hint("names are unique per project, ignoring case; pick another"),
            StoreError::NewerSchema { .. } => {
                ApiError::new(ErrorKind::Infra, ErrorCode::NewerSchema, err.to_string())
                    .with_hint("upgrade kromad to the version that wrote this database")
            }
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sqlite(_)
            | StoreError::Corrupt(_)
            | StoreError::Task(_) => {
                ApiError::new(ErrorKind::Infra, ErrorCode::DatabaseError, err.to_string())
                    .with_hint("check the disk and the kromad log; the request was not applied")
            }
        }
    }
}

/// Where the names of `what` (a [`StoreError::EntityNotFound`] thing) are listed.
fn listing(what: &str) -> Hint {
    use protocol::Action;
    use protocol::knowledge as wire;
    let (text, action) = match what {
        "style guide" => (
            "list the project's style guides to see their names",
            Action::call::<wire::style_guide::List>([], &["project"]),
        ),
        "character" => (
            "list the project's characters to see their names",
            Action::call::<wire::character::List>([], &["project"]),
        ),
        "reference set" => (
            "list the project's reference sets to see their names",
            Action::call::<wire::reference_set::List>([], &["project"]),
        ),
        "prompt template" => (
            "list the project's prompt templates to see their names",
            Action::call::<wire::prompt_template::List>([], &["project"]),
        ),
        "provider" => (
            "the provider list shows the provider accounts that exist",
            Action::call::<protocol::provider::List>([], &[]),
        ),
        "candidate" => (
            "a run's details list its candidates",
            Action::call::<protocol::run::Show>([], &["run"]),
        ),
        "run" => (
            "the run list shows the runs that exist",
            Action::call::<protocol::run::List>([], &[]),
        ),
        other => return format!("list the {other}s to see their names").into(),
    };
    Hint::new(text, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_line_carries_kind_code_and_hint() {
        let err = ApiError::validation(ErrorCode::InvalidSlug, "slug `A` is invalid")
            .with_hint("use a-z");
        let line: serde_json::Value = serde_json::from_str(&err.to_response("7")).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": 7,
                "error": {
                    "code": -32602,
                    "message": "slug `A` is invalid",
                    "data": {"kind": "validation", "code": "invalid_slug", "message": "slug `A` is invalid", "hint": "use a-z"}
                }
            })
        );
    }

    #[test]
    fn an_action_goes_next_to_its_hint_whichever_is_set_first() {
        let action = protocol::Action::call::<protocol::project::List>([], &[]);
        let err = || ApiError::validation(ErrorCode::InvalidSlug, "x");
        for err in [
            err().with_action(action.clone()).with_hint("use a-z"),
            err().with_hint("use a-z").with_action(action.clone()),
            err().with_hint(Hint::new("use a-z", action.clone())),
        ] {
            let data = err.to_data();
            assert_eq!(data.hint.as_deref(), Some("use a-z"));
            assert_eq!(data.action.as_ref(), Some(&action));
        }
    }

    #[test]
    fn a_missing_entity_names_the_list_that_has_it() {
        let method = |what: &'static str| {
            let err = ApiError::from(StoreError::EntityNotFound {
                what,
                key: "x".into(),
            });
            match err.action.map(|action| *action) {
                Some(protocol::Action::Call(call)) => (call.method, call.needs),
                other => panic!("{what}: {other:?}"),
            }
        };
        let project = vec!["project".to_owned()];
        assert_eq!(
            method("style guide"),
            ("style_guide.list".into(), project.clone())
        );
        assert_eq!(
            method("character"),
            ("character.list".into(), project.clone())
        );
        assert_eq!(
            method("reference set"),
            ("reference_set.list".into(), project.clone())
        );
        assert_eq!(
            method("prompt template"),
            ("prompt_template.list".into(), project)
        );
        assert_eq!(method("provider"), ("provider.list".into(), vec![]));
        assert_eq!(method("run"), ("run.list".into(), vec![]));
        assert_eq!(
            method("candidate"),
            ("run.show".into(), vec!["run".to_owned()])
        );
    }

    /// The error a store failure becomes has the expected code, sent with one of its kinds.
    fn check_store(err: StoreError, expected: ErrorCode) {
        let what = err.to_string();
        let api = ApiError::from(err);
        assert_eq!(api.code, expected, "{what}");
        assert!(api.code.kinds().contains(&api.kind), "{what}");
        assert_eq!(api.to_data().code(), Some(expected), "{what}");
    }

    #[test]
    fn store_errors_keep_their_codes_and_kinds() {
        check_store(
            StoreError::ProjectNotFound("x".into()),
            ErrorCode::ProjectNotFound,
        );
        check_store(StoreError::SlugTaken("x".into()), ErrorCode::SlugTaken);
        check_store(
            StoreError::AssetNotFound("a1".into()),
            ErrorCode::AssetNotFound,
        );
        check_store(StoreError::LinkExists, ErrorCode::LinkExists);
        check_store(
            StoreError::EntityNotFound {
                what: "style guide",
                key: "Ink".into(),
            },
            ErrorCode::NotFound,
        );
        check_store(
            StoreError::NameTaken {
                what: "character",
                name: "Mara".into(),
            },
            ErrorCode::NameTaken,
        );
        check_store(
            StoreError::NewerSchema {
                path: "/data/kroma.db".into(),
                found: 9,
                supported: 8,
            },
            ErrorCode::NewerSchema,
        );
        check_store(StoreError::Corrupt("x".into()), ErrorCode::DatabaseError);
        check_store(StoreError::Task("x".into()), ErrorCode::DatabaseError);
    }

    #[test]
    fn codes_are_written_by_their_wire_names() {
        let cases = [
            (
                ApiError::validation(ErrorCode::NotAnImage, "x"),
                "validation",
                "not_an_image",
            ),
            (
                ApiError::new(ErrorKind::Provider, ErrorCode::CallLost, "x"),
                "provider",
                "call_lost",
            ),
            (
                ApiError::new(ErrorKind::Internal, ErrorCode::TemplateSyntax, "x"),
                "internal",
                "template_syntax",
            ),
            (
                ApiError::new(ErrorKind::Validation, ErrorCode::TemplateSyntax, "x"),
                "validation",
                "template_syntax",
            ),
        ];
        for (err, kind, code) in cases {
            let data = serde_json::to_value(err.to_data()).unwrap();
            assert_eq!(
                data,
                serde_json::json!({"kind": kind, "code": code, "message": "x"})
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "error code `project_not_found` is not sent with kind `validation`")]
    fn a_code_with_a_kind_it_is_not_sent_with_is_a_bug() {
        let _ = ApiError::validation(ErrorCode::ProjectNotFound, "project `x` not found");
    }
}
