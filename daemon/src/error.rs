//! `Problem`, what went wrong, as plain data: its kind, exact code, message, hint and action.
//! The core returns it and knows nothing of the wire: the JSON-RPC mapping is
//! `server::wire::ToWire`, the store's errors become problems in `store::problems`.
//!
//! A hint is prose for people that names no program; the step it asks for goes next to it as a
//! `protocol::Action` ([`Problem::with_action`], or a [`Hint`] that carries one), which kromactl
//! renders as a command and an MCP server as a tool call.

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};

/// A failed call, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
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

impl Problem {
    /// An error of `kind`, which must be one `code` is documented with ([`ErrorCode::kinds`]):
    /// checked in debug builds, so the tests catch a code sent with the wrong kind.
    pub fn new(kind: ErrorKind, code: ErrorCode, message: impl Into<String>) -> Problem {
        debug_assert!(
            code.kinds().contains(&kind),
            "error code `{code}` is not sent with kind `{kind}`"
        );
        Problem {
            kind,
            code,
            message: message.into(),
            hint: None,
            action: None,
            rpc_code: None,
        }
    }

    pub fn validation(code: ErrorCode, message: impl Into<String>) -> Problem {
        Problem::new(ErrorKind::Validation, code, message)
    }

    /// Sets the hint, and its action when the hint carries one (an action set before stays
    /// otherwise).
    pub fn with_hint(mut self, hint: impl Into<Hint>) -> Problem {
        let hint = hint.into();
        self.hint = Some(hint.text);
        if let Some(action) = hint.action {
            self.action = Some(Box::new(action));
        }
        self
    }

    /// Sets the action: the hint's step as data. It never carries a secret's value, a
    /// confirmation or a cost to confirm: those go in its `needs` (see `protocol::Action::call`).
    pub fn with_action(mut self, action: protocol::Action) -> Problem {
        self.action = Some(Box::new(action));
        self
    }

    pub fn with_rpc_code(mut self, code: i32) -> Problem {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_goes_next_to_its_hint_whichever_is_set_first() {
        let action = protocol::Action::call::<protocol::project::List>([], &[]);
        let err = || Problem::validation(ErrorCode::InvalidSlug, "x");
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
    fn codes_are_written_by_their_wire_names() {
        let cases = [
            (
                Problem::validation(ErrorCode::NotAnImage, "x"),
                "validation",
                "not_an_image",
            ),
            (
                Problem::new(ErrorKind::Provider, ErrorCode::CallLost, "x"),
                "provider",
                "call_lost",
            ),
            (
                Problem::new(ErrorKind::Internal, ErrorCode::TemplateSyntax, "x"),
                "internal",
                "template_syntax",
            ),
            (
                Problem::new(ErrorKind::Validation, ErrorCode::TemplateSyntax, "x"),
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
        let _ = Problem::validation(ErrorCode::ProjectNotFound, "project `x` not found");
    }
}
