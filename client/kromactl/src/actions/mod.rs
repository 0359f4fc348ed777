//! What an error's `action` asks for, as a person would do it with kromactl: the command to
//! type, or a sentence when no command does it (editing a configuration or settings file).
//!
//! kromad says what to do next as data (`protocol::Action`), naming methods, not programs. The
//! map from a method to the kromactl command that calls it is kromactl's own: [`SPELLINGS`]
//! names each command and how each param becomes a positional argument or a flag. Params
//! kromactl asks for itself (a confirmation, the cost to confirm, a secret's value) are left
//! out; the other params only the human can give (`needs`) show as UPPERCASE placeholders. A
//! method without a command, or a call with a param its command cannot express, is shown as
//! `kromactl rpc call METHOD 'PARAMS'`, which calls any method exactly.

mod spellings;
mod spellings_export;
mod spellings_review;
mod spellings_storage;
#[cfg(test)]
mod tests;

use kroma_protocol as protocol;
use serde_json::Value;
use spellings::SPELLINGS;

/// The command, or the sentence, that does what `action` asks.
pub fn render(action: &protocol::Action) -> String {
    match action {
        protocol::Action::Call(call) => call_command(call),
        protocol::Action::InstallModels { quality: false } => {
            "kromactl local-models install".to_owned()
        }
        protocol::Action::InstallModels { quality: true } => {
            "kromactl local-models install --quality".to_owned()
        }
        protocol::Action::StartDaemon => "kromactl daemon start".to_owned(),
        protocol::Action::EditConfig { key, value } => format!(
            "{} in kromad.toml, then restart kromad",
            assignment(key, value.as_ref())
        ),
        protocol::Action::EditSettings { key, value } => format!(
            "{} in your settings file or the project's .kroma/settings.toml \
             (`kromactl settings show --effective` shows where each value comes from)",
            assignment(key, value.as_ref())
        ),
    }
}

/// How one method is typed on kromactl's command line.
struct Spelling {
    /// The method's wire name, e.g. `run.retry`.
    method: &'static str,
    /// The words after `kromactl`, e.g. `run retry`.
    command: &'static str,
    /// Its params, positional arguments first in their order.
    args: &'static [Arg],
}

/// How one param is typed.
#[derive(Debug, Clone, Copy)]
struct Arg {
    /// The param's name; a param inside an object param is named by its path,
    /// `postprocess.color`.
    param: &'static str,
    form: Form,
    /// The name `--help` shows for the value, and the placeholder when the human must give it.
    placeholder: &'static str,
    /// The command line spells the value's `_` as `-` (`derived_from` is `derived-from`).
    kebab: bool,
    /// The flag that says "none" when the param is null or an empty list (`--clear-s3`).
    clear: Option<&'static str>,
    /// A positional argument the command may go without (`qa`'s paths, or its `--run`).
    optional: bool,
}

/// Where a param goes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// One positional argument.
    Positional,
    /// Positional arguments, one per item of a list.
    Positionals,
    /// `--flag VALUE`.
    Flag(&'static str),
    /// `--flag VALUE` once per item of a list.
    Repeated(&'static str),
    /// `--flag NAME=VALUE` once per entry of an object.
    Pairs(&'static str),
    /// `--flag` when the param is true.
    Switch(&'static str),
    /// An object whose fields are params of their own; only `clear` types it as a whole.
    Object,
    /// Text kromactl reads from a file (or stdin): a placeholder when needed, never typed.
    FileContent,
    /// kromactl asks for it itself: a confirmation, the cost to confirm, a secret's value.
    Asked,
    /// One of several spellings, picked by the value (a string) or by an object's `kind`.
    Variants(&'static [Variant]),
}

/// One spelling of a [`Form::Variants`] param.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Variant {
    /// The value, or the object's `kind`: `folder`, `run`.
    kind: &'static str,
    /// The flag that says it; `None` for the default, said by saying nothing.
    flag: Option<&'static str>,
    /// The object's field the flag types (once per item of a list), and its placeholder.
    field: Option<(&'static str, &'static str)>,
}

impl Variant {
    /// The value said by saying nothing.
    const fn default(kind: &'static str) -> Variant {
        Variant {
            kind,
            flag: None,
            field: None,
        }
    }

    /// The value said by a switch.
    const fn switch(kind: &'static str, flag: &'static str) -> Variant {
        Variant {
            kind,
            flag: Some(flag),
            field: None,
        }
    }

    /// The object of this `kind` said by a flag typing its `field`.
    const fn typed(
        kind: &'static str,
        flag: &'static str,
        field: &'static str,
        placeholder: &'static str,
    ) -> Variant {
        Variant {
            kind,
            flag: Some(flag),
            field: Some((field, placeholder)),
        }
    }
}

const fn arg(param: &'static str, form: Form, placeholder: &'static str) -> Arg {
    Arg {
        param,
        form,
        placeholder,
        kebab: false,
        clear: None,
        optional: false,
    }
}

const fn positional(param: &'static str, placeholder: &'static str) -> Arg {
    arg(param, Form::Positional, placeholder)
}

const fn positionals(param: &'static str, placeholder: &'static str) -> Arg {
    arg(param, Form::Positionals, placeholder)
}

const fn flag(param: &'static str, flag: &'static str, placeholder: &'static str) -> Arg {
    arg(param, Form::Flag(flag), placeholder)
}

const fn repeated(param: &'static str, flag: &'static str, placeholder: &'static str) -> Arg {
    arg(param, Form::Repeated(flag), placeholder)
}

const fn pairs(param: &'static str, flag: &'static str) -> Arg {
    arg(param, Form::Pairs(flag), "NAME=VALUE")
}

const fn switch(param: &'static str, flag: &'static str) -> Arg {
    arg(param, Form::Switch(flag), "")
}

const fn object(param: &'static str) -> Arg {
    arg(param, Form::Object, "")
}

const fn asked(param: &'static str) -> Arg {
    arg(param, Form::Asked, "")
}

const fn variants(param: &'static str, variants: &'static [Variant]) -> Arg {
    arg(param, Form::Variants(variants), "")
}

impl Arg {
    const fn kebab(self) -> Arg {
        Arg {
            kebab: true,
            ..self
        }
    }

    const fn or_clear(self, flag: &'static str) -> Arg {
        Arg {
            clear: Some(flag),
            ..self
        }
    }

    const fn optional(self) -> Arg {
        Arg {
            optional: true,
            ..self
        }
    }
}

/// Every spelling, in table order.
fn spellings() -> impl Iterator<Item = &'static Spelling> {
    SPELLINGS.iter().flat_map(|group| group.iter())
}

/// The kromactl command for `call`: its own command when it has one that expresses every
/// param, else `kromactl rpc call`.
fn call_command(call: &protocol::action::MethodCall) -> String {
    spellings()
        .find(|spelling| spelling.method == call.method)
        .and_then(|spelling| spelling.command_line(call))
        .unwrap_or_else(|| rpc_call(call))
}

impl Spelling {
    /// The command line, or `None` when a param or a need has no spelling here.
    fn command_line(&self, call: &protocol::action::MethodCall) -> Option<String> {
        if !self.covers(&call.params, "") {
            return None;
        }
        let mut words = vec!["kromactl".to_owned()];
        words.extend(self.command.split(' ').map(str::to_owned));
        for need in &call.needs {
            self.arg(need)?;
        }
        for arg in self.args {
            let needed = call.needs.iter().any(|need| need == arg.param);
            match lookup(&call.params, arg.param) {
                Some(value) => arg.push_value(value, &mut words)?,
                // Positional arguments and choices are required: one kromad left out is for the
                // human too (a choice has no placeholder, so that is `rpc call`).
                None if needed
                    || (!arg.optional
                        && matches!(
                            arg.form,
                            Form::Positional | Form::Positionals | Form::Variants(_)
                        )) =>
                {
                    arg.push_placeholder(&mut words)?;
                }
                None => {}
            }
        }
        Some(words.join(" "))
    }

    fn arg(&self, param: &str) -> Option<&Arg> {
        self.args.iter().find(|arg| arg.param == param)
    }

    /// Whether every param in `params` (below `prefix`) has an argument.
    fn covers(&self, params: &serde_json::Map<String, Value>, prefix: &str) -> bool {
        params.iter().all(|(name, value)| {
            let path = format!("{prefix}{name}");
            match (self.arg(&path), value) {
                (Some(arg), Value::Object(fields)) if arg.form == Form::Object => {
                    self.covers(fields, &format!("{path}."))
                }
                (Some(_), _) => true,
                (None, _) => false,
            }
        })
    }
}

impl Arg {
    /// Adds the words for `value`; `None` when the command line cannot say it.
    fn push_value(&self, value: &Value, words: &mut Vec<String>) -> Option<()> {
        let empty = match value {
            Value::Null => true,
            Value::Array(items) => items.is_empty(),
            _ => false,
        };
        if let (true, Some(clear)) = (empty, self.clear) {
            words.push(clear.to_owned());
            return Some(());
        }
        match (self.form, value) {
            (Form::Asked, _) => {}
            // Its fields are arguments of their own.
            (Form::Object, Value::Object(_)) => {}
            (Form::Positional, value) => words.push(self.word(value)?),
            (Form::Positionals, Value::Array(items)) if !items.is_empty() => {
                for item in items {
                    words.push(self.word(item)?);
                }
            }
            (Form::Flag(flag), value) => {
                let word = self.word(value)?;
                words.extend([flag.to_owned(), word]);
            }
            (Form::Repeated(flag), Value::Array(items)) => {
                for item in items {
                    let word = self.word(item)?;
                    words.extend([flag.to_owned(), word]);
                }
            }
            (Form::Pairs(flag), Value::Object(entries)) => {
                for (name, value) in entries {
                    let pair = format!("{name}={}", scalar_text(value)?);
                    words.extend([flag.to_owned(), shell_word(&pair)]);
                }
            }
            (Form::Switch(flag), Value::Bool(on)) => {
                if *on {
                    words.push(flag.to_owned());
                }
            }
            (Form::Variants(variants), value) => self.push_variant(variants, value, words)?,
            _ => return None,
        }
        Some(())
    }

    /// Adds the words of the variant `value` is: a string names it, an object by its `kind`,
    /// and the object may hold nothing but the field its flag types.
    fn push_variant(
        &self,
        variants: &[Variant],
        value: &Value,
        words: &mut Vec<String>,
    ) -> Option<()> {
        let (kind, fields) = match value {
            Value::String(kind) => (kind.as_str(), None),
            Value::Object(fields) => (fields.get("kind")?.as_str()?, Some(fields)),
            _ => return None,
        };
        let variant = variants.iter().find(|variant| variant.kind == kind)?;
        let typed =
            |name: &String| name == "kind" || variant.field.is_some_and(|(field, _)| field == name);
        if fields.is_some_and(|fields| !fields.keys().all(typed)) {
            return None;
        }
        match (variant.flag, variant.field) {
            (None, _) => {}
            (Some(flag), None) => words.push(flag.to_owned()),
            (Some(flag), Some((field, _))) => {
                let items = match fields?.get(field)? {
                    Value::Array(items) => items.as_slice(),
                    single => std::slice::from_ref(single),
                };
                if items.is_empty() {
                    return None;
                }
                for item in items {
                    let word = self.word(item)?;
                    words.extend([flag.to_owned(), word]);
                }
            }
        }
        Some(())
    }

    /// Adds the words that ask the human for this param.
    fn push_placeholder(&self, words: &mut Vec<String>) -> Option<()> {
        let placeholder = shell_word(self.placeholder);
        match self.form {
            Form::Asked => {}
            Form::Positional | Form::Positionals | Form::FileContent => words.push(placeholder),
            Form::Flag(flag) | Form::Repeated(flag) | Form::Pairs(flag) => {
                words.extend([flag.to_owned(), placeholder]);
            }
            Form::Switch(flag) => words.push(format!("[{flag}]")),
            // The human picks one: no placeholder says which.
            Form::Object | Form::Variants(_) => return None,
        }
        Some(())
    }

    /// One value as one shell word.
    fn word(&self, value: &Value) -> Option<String> {
        let text = scalar_text(value)?;
        let text = if self.kebab {
            text.replace('_', "-")
        } else {
            text
        };
        Some(shell_word(&text))
    }
}

/// The value at `path` (`postprocess.color`) in `params`.
fn lookup<'a>(params: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut names = path.split('.');
    let mut value = params.get(names.next()?)?;
    for name in names {
        value = value.as_object()?.get(name)?;
    }
    Some(value)
}

/// A string, number or boolean as text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(on) => Some(on.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `kromactl rpc call METHOD 'PARAMS'`, the needs as placeholders in the params. A secret is
/// never shown, nor asked for on a command line: a call that needs one is described instead.
fn rpc_call(call: &protocol::action::MethodCall) -> String {
    let secret_fields = secret_fields(&call.method);
    let params: serde_json::Map<String, Value> = call
        .params
        .iter()
        .filter(|(name, _)| !secret_fields.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut needs: Vec<&str> = call
        .needs
        .iter()
        .map(String::as_str)
        .filter(|need| !params.contains_key(*need))
        .collect();
    for secret in secret_fields {
        if call.params.contains_key(*secret) && !needs.contains(secret) {
            needs.push(secret);
        }
    }
    let secrets: Vec<&str> = needs
        .iter()
        .copied()
        .filter(|need| secret_fields.contains(need))
        .collect();
    if !secrets.is_empty() {
        return format!(
            "call {} with {} plus {} (a secret: never put it on a command line)",
            call.method,
            Value::Object(params),
            secrets.join(", ")
        );
    }
    let fields: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(name.as_str())))
        .chain(
            needs
                .iter()
                .map(|need| format!("{}:{}", Value::from(*need), need.to_uppercase())),
        )
        .collect();
    if fields.is_empty() {
        format!("kromactl rpc call {}", shell_word(&call.method))
    } else {
        format!(
            "kromactl rpc call {} {}",
            shell_word(&call.method),
            shell_word(&format!("{{{}}}", fields.join(",")))
        )
    }
}

/// The secret fields of `method`, from the contract's method list.
fn secret_fields(method: &str) -> &'static [&'static str] {
    macro_rules! secret_fields_of {
        (methods: [$($method:ty),* $(,)?], subscriptions: [$($subscription:ty),* $(,)?] $(,)?) => {
            [$((
                <$method as protocol::Method>::NAME,
                <$method as protocol::Method>::SECRET_FIELDS,
            )),*]
        };
    }
    protocol::for_each_method!(secret_fields_of)
        .into_iter()
        .find(|(name, _)| *name == method)
        .map(|(_, fields)| fields)
        .unwrap_or_default()
}

/// `key = value` in TOML, or "choose a value for `key`" when kromad names none.
fn assignment(key: &str, value: Option<&Value>) -> String {
    match value.and_then(toml_value) {
        Some(value) => format!("set {key} = {value}"),
        None => format!("choose a value for {key}"),
    }
}

/// A JSON value as a TOML value; `None` for null, which TOML has no spelling for.
fn toml_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        // A JSON string is a TOML basic string: both escape `"`, `\` and control characters.
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(toml_value).collect();
            Some(format!("[{}]", items?.join(", ")))
        }
        Value::Object(fields) => {
            let fields: Option<Vec<String>> = fields
                .iter()
                .map(|(name, value)| Some(format!("{} = {}", toml_key(name), toml_value(value)?)))
                .collect();
            Some(format!("{{ {} }}", fields?.join(", ")))
        }
    }
}

fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        Value::from(name).to_string()
    }
}

/// `text` as one word for a POSIX shell: as it is when that is safe, else in single quotes.
pub(crate) fn shell_word(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if safe {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
