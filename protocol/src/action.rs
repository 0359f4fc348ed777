//! Actions: what a caller can do next, as data instead of a command line.
//!
//! kromad's hints are prose for people and name no program. Next to a hint, an [`Action`] says
//! the same for programs: `kromactl` renders it as a command (its method-to-command map is its
//! own), an MCP server as a tool call, or as a request to the human when only the human can do
//! it. Most actions are calls of a method of this contract; the rest are steps outside kromad's
//! API (installing the local models, editing a configuration file).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::Method;

/// What to do next, as data.
///
/// Clients must tolerate action types they do not know: they show the prose hint instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Call a method of this contract.
    Call(MethodCall),
    /// Install the local runtime and models. The installer runs outside kromad, as the user.
    InstallModels {
        /// Also the opt-in quality models.
        #[serde(default)]
        quality: bool,
    },
    /// Start a kromad of one's own: the one that answered serves another user.
    StartDaemon,
    /// Change a key of kromad's configuration file (`kromad.toml`), then restart kromad.
    EditConfig {
        /// The dotted key, e.g. `limits.max_image_pixels`.
        key: String,
        /// The value to set, when kromad knows a good one; otherwise the human picks it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
    /// Change a run setting in the user's or the project's settings file (`settings.effective`
    /// shows where each value comes from).
    EditSettings {
        /// The dotted key, e.g. `generation.model`.
        key: String,
        /// The value to set, when kromad knows a good one; otherwise the human picks it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
}

/// A call of one method of this contract, with the params known so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MethodCall {
    /// The method's wire name, e.g. `run.retry`.
    pub method: String,
    /// The params kromad knows, by name. Never a secret's value and never a confirmation.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The params only the human can give: a secret's value, `confirm`, `confirm_cost_usd`, or
    /// a choice kromad cannot make for them. A client asks for these; an agent must not make
    /// them up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
}

impl Action {
    /// A call of `M` with the `params` kromad knows and the `needs` left to the human. A param
    /// that is one of `M`'s secret fields is never carried: it is dropped from `params`, and
    /// every secret field of `M` is in `needs`.
    pub fn call<'a, M: Method>(
        params: impl IntoIterator<Item = (&'a str, serde_json::Value)>,
        needs: &[&str],
    ) -> Action {
        let params = params
            .into_iter()
            .filter(|(name, _)| !M::SECRET_FIELDS.contains(name))
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let mut all_needs: Vec<String> = needs.iter().map(|&name| name.to_owned()).collect();
        for &secret in M::SECRET_FIELDS {
            if !needs.contains(&secret) {
                all_needs.push(secret.to_owned());
            }
        }
        Action::Call(MethodCall {
            method: M::NAME.to_owned(),
            params,
            needs: all_needs,
        })
    }
}

/// Reads an optional action, one of a type this version does not know as absent, so the answer
/// around it still reads (`#[serde(deserialize_with = "crate::action::known")]`).
pub(crate) fn known<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Action>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(action: Action, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&action).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Action>(expected).unwrap(), action);
    }

    #[test]
    fn actions_on_the_wire() {
        check(
            Action::call::<crate::run::Retry>([("run", json!("0b7e"))], &["confirm_cost_usd"]),
            json!({"type": "call", "method": "run.retry", "params": {"run": "0b7e"}, "needs": ["confirm_cost_usd"]}),
        );
        check(
            Action::call::<crate::project::List>([], &[]),
            json!({"type": "call", "method": "project.list"}),
        );
        check(
            Action::InstallModels { quality: true },
            json!({"type": "install_models", "quality": true}),
        );
        check(Action::StartDaemon, json!({"type": "start_daemon"}));
        check(
            Action::EditConfig {
                key: "secrets.store".to_owned(),
                value: Some(json!("file")),
            },
            json!({"type": "edit_config", "key": "secrets.store", "value": "file"}),
        );
        check(
            Action::EditSettings {
                key: "generation.model".to_owned(),
                value: None,
            },
            json!({"type": "edit_settings", "key": "generation.model"}),
        );
    }

    #[test]
    fn a_call_never_carries_a_secret() {
        let action = Action::call::<crate::secret::Set>(
            [
                ("name", json!("openai")),
                ("value", json!("sk-not-for-the-wire")),
            ],
            &[],
        );
        assert_eq!(
            serde_json::to_value(&action).unwrap(),
            json!({"type": "call", "method": "secret.set", "params": {"name": "openai"}, "needs": ["value"]}),
        );
        let asked = Action::call::<crate::secret::Set>([("name", json!("openai"))], &["value"]);
        assert_eq!(asked, action);
    }

    #[test]
    fn an_action_of_a_later_type_in_a_result_reads_as_absent() {
        let local: crate::local_model::LocalModels = serde_json::from_value(json!({
            "dir": "/m", "installed": false, "models": [], "ok": false, "hint": "install them",
            "action": {"type": "from_a_later_version"},
        }))
        .unwrap();
        assert_eq!(
            (local.hint.as_deref(), local.action),
            (Some("install them"), None)
        );
    }

    #[test]
    fn a_call_with_fields_added_later_still_parses() {
        let action: Action = serde_json::from_value(json!({
            "type": "call", "method": "run.show", "params": {"run": "r"}, "why": "a later field",
        }))
        .unwrap();
        assert_eq!(
            action,
            Action::call::<crate::run::Show>([("run", json!("r"))], &[])
        );
    }
}
