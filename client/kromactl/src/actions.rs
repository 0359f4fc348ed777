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

use kroma_protocol as protocol;
use serde_json::Value;

/// The command, or the sentence, that does what `action` asks.
pub fn render(action: &protocol::Action) -> String {
    match action {
        protocol::Action::Call(call) => call_command(call),
        protocol::Action::InstallModels { quality: false } => "kromactl models install".to_owned(),
        protocol::Action::InstallModels { quality: true } => {
            "kromactl models install --quality".to_owned()
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
}

const fn arg(param: &'static str, form: Form, placeholder: &'static str) -> Arg {
    Arg {
        param,
        form,
        placeholder,
        kebab: false,
        clear: None,
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
}

/// The params of `run.plan` (`run.create` has them too, flattened), then `$more`.
macro_rules! plan_args {
    ($($more:expr),*) => {
        [
            positional("project", "PROJECT"),
            positionals("scenes", "SCENE"),
            flag("stage", "--stage", "STAGE"),
            repeated("style_refs", "--style-ref", "REF"),
            repeated("characters", "--character", "CHARACTER"),
            flag("style_guide", "--style-guide", "GUIDE"),
            object("template"),
            flag("template.name", "--template", "TEMPLATE"),
            pairs("template.vars", "--var"),
            flag("time", "--time", "TIME"),
            flag("weather", "--weather", "WEATHER"),
            flag("candidates", "--candidates", "N"),
            flag("provider", "--provider", "NAME"),
            flag("model", "--model", "MODEL"),
            flag("size", "--size", "WxH"),
            flag("quality", "--quality", "QUALITY"),
            object("postprocess"),
            flag("postprocess.bg_remove", "--bg-remove", "BOOL"),
            flag("postprocess.upscale", "--upscale", "SCALE"),
            flag("postprocess.color", "--color", "PROFILE"),
            $($more,)*
        ]
    };
}

/// The commands of a project's knowledge family (`style`, `character`, ...): list, show, rm.
macro_rules! knowledge_spellings {
    ($family:literal, $command:literal) => {
        [
            Spelling {
                method: concat!($family, ".list"),
                command: concat!($command, " list"),
                args: &[positional("project", "PROJECT")],
            },
            Spelling {
                method: concat!($family, ".get"),
                command: concat!($command, " show"),
                args: &[positional("project", "PROJECT"), positional("id", "ID")],
            },
            Spelling {
                method: concat!($family, ".delete"),
                command: concat!($command, " rm"),
                args: &[
                    positional("project", "PROJECT"),
                    positional("id", "ID"),
                    asked("confirm"),
                ],
            },
        ]
    };
}

const S3_ARGS: [Arg; 5] = [
    object("s3"),
    flag("s3.bucket", "--s3-bucket", "BUCKET"),
    flag("s3.prefix", "--s3-prefix", "PREFIX"),
    flag("s3.region", "--s3-region", "REGION"),
    flag("s3.endpoint", "--s3-endpoint", "URL"),
];

/// Every method kromactl has a command for. `daemon.version` has none (`kromactl --version` is
/// kromactl's own); it and any method added later go through `kromactl rpc call`.
static SPELLINGS: &[&[Spelling]] = &[
    &[
        Spelling {
            method: "daemon.status",
            command: "daemon status",
            args: &[],
        },
        Spelling {
            method: "daemon.shutdown",
            command: "daemon stop",
            args: &[],
        },
        Spelling {
            method: "daemon.check",
            command: "doctor",
            args: &[],
        },
        Spelling {
            method: "project.create",
            command: "project create",
            args: &[
                positional("name", "NAME"),
                flag("slug", "--slug", "SLUG"),
                flag("description", "--description", "DESCRIPTION"),
                flag("root", "--root", "DIR"),
                S3_ARGS[0],
                S3_ARGS[1],
                S3_ARGS[2],
                S3_ARGS[3],
                S3_ARGS[4],
            ],
        },
        Spelling {
            method: "project.list",
            command: "project list",
            args: &[],
        },
        Spelling {
            method: "project.get",
            command: "project show",
            args: &[positional("slug", "SLUG")],
        },
        Spelling {
            method: "project.update",
            command: "project update",
            args: &[
                positional("slug", "SLUG"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                S3_ARGS[0].or_clear("--clear-s3"),
                S3_ARGS[1],
                S3_ARGS[2],
                S3_ARGS[3],
                S3_ARGS[4],
            ],
        },
        Spelling {
            method: "project.delete",
            command: "project rm",
            args: &[
                positional("slug", "SLUG"),
                asked("confirm"),
                switch("purge_files", "--purge-files"),
            ],
        },
        Spelling {
            method: "style_guide.create",
            command: "style create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("instructions", "--instructions", "INSTRUCTIONS"),
                flag("palette", "--palette", "PALETTE"),
                flag("line", "--line", "LINE"),
                flag("lighting", "--lighting", "LIGHTING"),
                flag("notes", "--notes", "NOTES"),
                repeated("reference_assets", "--reference", "ASSET"),
                switch("is_default", "--default"),
            ],
        },
        Spelling {
            method: "style_guide.update",
            command: "style update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("instructions", "--instructions", "INSTRUCTIONS"),
                flag("palette", "--palette", "PALETTE"),
                flag("line", "--line", "LINE"),
                flag("lighting", "--lighting", "LIGHTING"),
                flag("notes", "--notes", "NOTES"),
                repeated("reference_assets", "--reference", "ASSET").or_clear("--clear-references"),
                switch("is_default", "--default"),
            ],
        },
        Spelling {
            method: "character.create",
            command: "character create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("prompt_text", "--prompt", "PROMPT_TEXT"),
                flag("identity_notes", "--identity-notes", "IDENTITY_NOTES"),
                repeated("reference_assets", "--reference", "ASSET"),
            ],
        },
        Spelling {
            method: "character.update",
            command: "character update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("prompt_text", "--prompt", "PROMPT_TEXT"),
                flag("identity_notes", "--identity-notes", "IDENTITY_NOTES"),
                repeated("reference_assets", "--reference", "ASSET").or_clear("--clear-references"),
            ],
        },
        Spelling {
            method: "reference_set.create",
            command: "refset create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "reference_set.update",
            command: "refset update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "reference_set.add_item",
            command: "refset add",
            args: &[
                positional("project", "PROJECT"),
                positional("set", "SET"),
                positional("asset", "ASSET"),
                flag("role", "--role", "ROLE"),
                flag("weight", "--weight", "WEIGHT"),
                flag("notes", "--notes", "NOTES"),
            ],
        },
        Spelling {
            method: "reference_set.remove_item",
            command: "refset remove",
            args: &[
                positional("project", "PROJECT"),
                positional("set", "SET"),
                positional("asset", "ASSET"),
            ],
        },
        Spelling {
            method: "prompt_template.create",
            command: "template create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("body", "--body", "BODY"),
                repeated("variables", "--var", "NAME"),
            ],
        },
        Spelling {
            method: "prompt_template.update",
            command: "template update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("body", "--body", "BODY"),
                repeated("variables", "--var", "NAME").or_clear("--clear-vars"),
            ],
        },
        Spelling {
            method: "prompt_template.render",
            command: "template render",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                pairs("vars", "--var"),
            ],
        },
        Spelling {
            method: "bootstrap.export",
            command: "bootstrap export",
            args: &[positional("project", "PROJECT")],
        },
        Spelling {
            method: "bootstrap.import",
            command: "bootstrap import",
            args: &[
                positional("project", "PROJECT"),
                arg("text", Form::FileContent, "FILE"),
                flag("mode", "--mode", "MODE"),
                switch("dry_run", "--dry-run"),
            ],
        },
        Spelling {
            method: "secret.set",
            command: "secret set",
            args: &[positional("name", "NAME"), asked("value")],
        },
        Spelling {
            method: "secret.list",
            command: "secret list",
            args: &[],
        },
        Spelling {
            method: "secret.delete",
            command: "secret rm",
            args: &[positional("name", "NAME"), asked("confirm")],
        },
        Spelling {
            method: "secret.test",
            command: "secret test",
            args: &[positional("name", "NAME")],
        },
        Spelling {
            method: "provider.create",
            command: "provider add",
            args: &[
                positional("name", "NAME"),
                flag("kind", "--kind", "KIND").kebab(),
                flag("base_url", "--base-url", "URL"),
                flag("default_model", "--default-model", "MODEL"),
                flag("organization", "--organization", "ORGANIZATION"),
                flag("secret", "--secret", "SECRET"),
                switch("honors_idempotency_key", "--honors-idempotency-key"),
            ],
        },
        Spelling {
            method: "provider.list",
            command: "provider list",
            args: &[],
        },
        Spelling {
            method: "provider.get",
            command: "provider show",
            args: &[positional("name", "NAME")],
        },
        Spelling {
            method: "provider.update",
            command: "provider update",
            args: &[
                positional("name", "NAME"),
                flag("base_url", "--base-url", "URL"),
                flag("default_model", "--default-model", "MODEL"),
                flag("organization", "--organization", "ORGANIZATION"),
                flag("secret", "--secret", "SECRET"),
                flag("honors_idempotency_key", "--honors-idempotency-key", "BOOL"),
            ],
        },
        Spelling {
            method: "provider.delete",
            command: "provider rm",
            args: &[positional("name", "NAME"), asked("confirm")],
        },
        Spelling {
            method: "provider.check",
            command: "provider check",
            args: &[positional("name", "NAME")],
        },
        // `kromactl events` pages through every event after `--since`; a page's `limit` has no
        // flag.
        Spelling {
            method: "events.list",
            command: "events",
            args: &[flag("since", "--since", "ID")],
        },
        Spelling {
            method: "asset.import",
            command: "asset import",
            args: &[
                positional("project", "PROJECT"),
                positionals("paths", "PATHS"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "asset.list",
            command: "asset list",
            args: &[
                positional("project", "PROJECT"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "asset.get",
            command: "asset show",
            args: &[positional("project", "PROJECT"), positional("id", "ID")],
        },
        Spelling {
            method: "asset.delete",
            command: "asset rm",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                asked("confirm"),
            ],
        },
        Spelling {
            method: "asset.link",
            command: "asset link",
            args: &[
                positional("project", "PROJECT"),
                positional("from", "FROM"),
                positional("relation", "RELATION").kebab(),
                positional("to", "TO"),
            ],
        },
        Spelling {
            method: "asset.lineage",
            command: "asset lineage",
            args: &[positional("project", "PROJECT"), positional("id", "ID")],
        },
        Spelling {
            method: "audit.list",
            command: "audit list",
            args: &[
                flag("since", "--since", "ID"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "settings.effective",
            command: "settings show --effective",
            args: &[flag("project", "--project", "PROJECT")],
        },
        Spelling {
            method: "model.list",
            command: "model list",
            args: &[flag("refresh", "--refresh", "PROVIDER")],
        },
        Spelling {
            method: "models.list",
            command: "models list",
            args: &[switch("verify", "--verify")],
        },
        Spelling {
            method: "run.plan",
            command: "run plan",
            args: &plan_args!(),
        },
        Spelling {
            method: "run.create",
            command: "run create",
            args: &plan_args!(switch("dry_run", "--dry-run")),
        },
        // `run start` and `run retry` show the most the run can cost and ask to confirm it.
        Spelling {
            method: "run.start",
            command: "run start",
            args: &[positional("plan_id", "RUN"), asked("confirm_cost_usd")],
        },
        Spelling {
            method: "run.list",
            command: "run list",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("status", "--status", "STATUS"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "run.show",
            command: "run show",
            args: &[positional("run", "RUN")],
        },
        Spelling {
            method: "run.cancel",
            command: "run cancel",
            args: &[positional("run", "RUN")],
        },
        Spelling {
            method: "run.retry",
            command: "run retry",
            args: &[
                positional("run", "RUN"),
                switch("only_failed", "--only-failed"),
                asked("confirm_cost_usd"),
            ],
        },
        Spelling {
            method: "cost.summary",
            command: "cost",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("since", "--since", "DATE"),
            ],
        },
        Spelling {
            method: "postprocess.color",
            command: "color",
            args: &[
                positionals("paths", "PATHS"),
                flag("profile", "--profile", "PROFILE"),
                flag("output_dir", "--output", "DIR"),
            ],
        },
        Spelling {
            method: "postprocess.bg_remove",
            command: "bg-remove",
            args: &[
                positionals("paths", "PATHS"),
                flag("output_dir", "--output", "DIR"),
                flag("model", "--model", "MODEL"),
                switch("mask_only", "--mask-only"),
                switch("matting", "--matting"),
                flag("background", "--background", "#RRGGBB"),
            ],
        },
        Spelling {
            method: "postprocess.upscale",
            command: "upscale",
            args: &[
                positionals("paths", "PATHS"),
                flag("output_dir", "--output", "DIR"),
                flag("scale", "--scale", "SCALE"),
                flag("model", "--model", "MODEL"),
                flag("tile", "--tile", "TILE"),
            ],
        },
        Spelling {
            method: "rpc.discover",
            command: "rpc schema",
            args: &[],
        },
    ],
    &knowledge_spellings!("style_guide", "style"),
    &knowledge_spellings!("character", "character"),
    &knowledge_spellings!("reference_set", "refset"),
    &knowledge_spellings!("prompt_template", "template"),
];

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
                // Positional arguments are required: one kromad left out is for the human too.
                None if needed || matches!(arg.form, Form::Positional | Form::Positionals) => {
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
            _ => return None,
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
            Form::Object => return None,
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
fn shell_word(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::{CommandFactory, Parser};
    use serde_json::json;

    use super::*;

    fn call(method: &str, params: Value, needs: &[&str]) -> protocol::Action {
        let Value::Object(params) = params else {
            panic!("params are an object: {params}");
        };
        protocol::Action::Call(protocol::action::MethodCall {
            method: method.to_owned(),
            params,
            needs: needs.iter().map(|need| need.to_string()).collect(),
        })
    }

    /// `action` renders as `expected`, and a kromactl command line rendered parses with
    /// kromactl's own clap tree (optional switches given, placeholders as values).
    fn check(action: &protocol::Action, expected: &str) {
        let rendered = render(action);
        assert_eq!(rendered, expected, "{action:?}");
        if let Some(command) = rendered.strip_prefix("kromactl ") {
            let words = shell_split(command).into_iter().map(|word| {
                word.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            });
            let parsed =
                crate::Cli::try_parse_from(std::iter::once("kromactl".to_owned()).chain(words));
            if let Err(err) = parsed {
                panic!("`{rendered}` does not parse: {err}");
            }
        }
    }

    /// `action` renders as `expected`, a command line with a placeholder where clap takes only
    /// certain values.
    fn check_unparsed(action: &protocol::Action, expected: &str) {
        assert_eq!(render(action), expected, "{action:?}");
    }

    /// Splits a line as a POSIX shell does for the words [`shell_word`] writes.
    fn shell_split(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                ' ' => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                    }
                    in_word = false;
                }
                '\'' => {
                    in_word = true;
                    for quoted in chars.by_ref() {
                        if quoted == '\'' {
                            break;
                        }
                        word.push(quoted);
                    }
                }
                '\\' => {
                    in_word = true;
                    word.extend(chars.next());
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    const RUN: &str = "0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21";

    /// One case per spelling, with every param it types where that is short; the cases are
    /// data, so the list below is also the table of every mapping.
    fn cases() -> Vec<(protocol::Action, String)> {
        let cases: Vec<(protocol::Action, &str)> = vec![
            (
                call("daemon.status", json!({}), &[]),
                "kromactl daemon status",
            ),
            (
                call("daemon.shutdown", json!({}), &[]),
                "kromactl daemon stop",
            ),
            (call("daemon.check", json!({}), &[]), "kromactl doctor"),
            (
                call(
                    "project.create",
                    json!({
                        "name": "Night Harbor", "slug": "harbor", "description": "Rain at the docks",
                        "root": "/home/ada/comics/harbor",
                        "s3": {"bucket": "comics", "prefix": "harbor/", "region": "eu-west-1", "endpoint": "http://127.0.0.1:9000"},
                    }),
                    &[],
                ),
                "kromactl project create 'Night Harbor' --slug harbor --description 'Rain at the docks' \
                 --root /home/ada/comics/harbor --s3-bucket comics --s3-prefix harbor/ \
                 --s3-region eu-west-1 --s3-endpoint http://127.0.0.1:9000",
            ),
            (
                call("project.list", json!({}), &[]),
                "kromactl project list",
            ),
            (
                call("project.get", json!({"slug": "harbor"}), &[]),
                "kromactl project show harbor",
            ),
            (
                call(
                    "project.update",
                    json!({"slug": "harbor", "name": "Harbor", "description": "", "s3": null}),
                    &[],
                ),
                "kromactl project update harbor --name Harbor --description '' --clear-s3",
            ),
            (
                call(
                    "project.update",
                    json!({"slug": "harbor", "s3": {"bucket": "comics"}}),
                    &[],
                ),
                "kromactl project update harbor --s3-bucket comics",
            ),
            (
                call("project.delete", json!({"slug": "harbor"}), &["confirm"]),
                "kromactl project rm harbor",
            ),
            (
                call(
                    "project.delete",
                    json!({"slug": "harbor", "purge_files": true}),
                    &["confirm"],
                ),
                "kromactl project rm harbor --purge-files",
            ),
            (
                call(
                    "style_guide.create",
                    json!({
                        "project": "harbor", "name": "Ink", "instructions": "inked, flat colour",
                        "palette": "teal", "line": "bold", "lighting": "night", "notes": "n",
                        "reference_assets": ["a1", "a2"], "is_default": true,
                    }),
                    &[],
                ),
                "kromactl style create harbor Ink --instructions 'inked, flat colour' \
                 --palette teal --line bold --lighting night --notes n --reference a1 \
                 --reference a2 --default",
            ),
            (
                call("style_guide.list", json!({"project": "harbor"}), &[]),
                "kromactl style list harbor",
            ),
            (
                call(
                    "style_guide.get",
                    json!({"project": "harbor", "id": "Ink"}),
                    &[],
                ),
                "kromactl style show harbor Ink",
            ),
            (
                call(
                    "style_guide.update",
                    json!({
                        "project": "harbor", "id": "Ink", "name": "Ink 2", "instructions": "i",
                        "palette": "p", "line": "l", "lighting": "g", "notes": "n",
                        "reference_assets": [], "is_default": true,
                    }),
                    &[],
                ),
                "kromactl style update harbor Ink --name 'Ink 2' --instructions i --palette p \
                 --line l --lighting g --notes n --clear-references --default",
            ),
            (
                call(
                    "style_guide.delete",
                    json!({"project": "harbor", "id": "Ink"}),
                    &["confirm"],
                ),
                "kromactl style rm harbor Ink",
            ),
            (
                call(
                    "character.create",
                    json!({
                        "project": "harbor", "name": "Mara", "description": "a pilot",
                        "prompt_text": "Mara, 30", "identity_notes": "scar", "reference_assets": ["a1"],
                    }),
                    &[],
                ),
                "kromactl character create harbor Mara --description 'a pilot' \
                 --prompt 'Mara, 30' --identity-notes scar --reference a1",
            ),
            (
                call("character.list", json!({"project": "harbor"}), &[]),
                "kromactl character list harbor",
            ),
            (
                call(
                    "character.get",
                    json!({"project": "harbor", "id": "Mara"}),
                    &[],
                ),
                "kromactl character show harbor Mara",
            ),
            (
                call(
                    "character.update",
                    json!({
                        "project": "harbor", "id": "Mara", "name": "Mara V", "description": "d",
                        "prompt_text": "p", "identity_notes": "i", "reference_assets": ["a3"],
                    }),
                    &[],
                ),
                "kromactl character update harbor Mara --name 'Mara V' --description d \
                 --prompt p --identity-notes i --reference a3",
            ),
            (
                call(
                    "character.delete",
                    json!({"project": "harbor", "id": "Mara"}),
                    &["confirm"],
                ),
                "kromactl character rm harbor Mara",
            ),
            (
                call(
                    "reference_set.create",
                    json!({"project": "harbor", "name": "Docks", "description": "d", "kind": "scene"}),
                    &[],
                ),
                "kromactl refset create harbor Docks --description d --kind scene",
            ),
            (
                call("reference_set.list", json!({"project": "harbor"}), &[]),
                "kromactl refset list harbor",
            ),
            (
                call(
                    "reference_set.get",
                    json!({"project": "harbor", "id": "Docks"}),
                    &[],
                ),
                "kromactl refset show harbor Docks",
            ),
            (
                call(
                    "reference_set.update",
                    json!({"project": "harbor", "id": "Docks", "name": "Piers", "description": "", "kind": "lighting"}),
                    &[],
                ),
                "kromactl refset update harbor Docks --name Piers --description '' --kind lighting",
            ),
            (
                call(
                    "reference_set.delete",
                    json!({"project": "harbor", "id": "Docks"}),
                    &["confirm"],
                ),
                "kromactl refset rm harbor Docks",
            ),
            (
                call(
                    "reference_set.add_item",
                    json!({"project": "harbor", "set": "Docks", "asset": "a1", "role": "face-front", "weight": 2.5, "notes": "n"}),
                    &[],
                ),
                "kromactl refset add harbor Docks a1 --role face-front --weight 2.5 --notes n",
            ),
            (
                call(
                    "reference_set.remove_item",
                    json!({"project": "harbor", "set": "Docks", "asset": "a1"}),
                    &[],
                ),
                "kromactl refset remove harbor Docks a1",
            ),
            (
                call(
                    "prompt_template.create",
                    json!({"project": "harbor", "name": "Rain", "body": "{{mood}} rain", "variables": ["mood"]}),
                    &[],
                ),
                "kromactl template create harbor Rain --body '{{mood}} rain' --var mood",
            ),
            (
                call("prompt_template.list", json!({"project": "harbor"}), &[]),
                "kromactl template list harbor",
            ),
            (
                call(
                    "prompt_template.get",
                    json!({"project": "harbor", "id": "Rain"}),
                    &[],
                ),
                "kromactl template show harbor Rain",
            ),
            (
                call(
                    "prompt_template.update",
                    json!({"project": "harbor", "id": "Rain", "name": "Drizzle", "body": "rain", "variables": []}),
                    &[],
                ),
                "kromactl template update harbor Rain --name Drizzle --body rain --clear-vars",
            ),
            (
                call(
                    "prompt_template.delete",
                    json!({"project": "harbor", "id": "Rain"}),
                    &["confirm"],
                ),
                "kromactl template rm harbor Rain",
            ),
            (
                call(
                    "prompt_template.render",
                    json!({"project": "harbor", "id": "Rain", "vars": {"mood": "grim", "light": "low sun"}}),
                    &[],
                ),
                "kromactl template render harbor Rain --var 'light=low sun' --var mood=grim",
            ),
            (
                call("bootstrap.export", json!({"project": "harbor"}), &[]),
                "kromactl bootstrap export harbor",
            ),
            (
                call(
                    "bootstrap.import",
                    json!({"project": "harbor", "mode": "replace", "dry_run": true}),
                    &["text"],
                ),
                "kromactl bootstrap import harbor FILE --mode replace --dry-run",
            ),
            (
                call("secret.set", json!({"name": "openai"}), &["value"]),
                "kromactl secret set openai",
            ),
            (call("secret.list", json!({}), &[]), "kromactl secret list"),
            (
                call("secret.delete", json!({"name": "openai"}), &["confirm"]),
                "kromactl secret rm openai",
            ),
            (
                call("secret.test", json!({"name": "openai"}), &[]),
                "kromactl secret test openai",
            ),
            (
                call(
                    "provider.create",
                    json!({"name": "openai", "kind": "openai"}),
                    &[],
                ),
                "kromactl provider add openai --kind openai",
            ),
            (
                call(
                    "provider.create",
                    json!({
                        "name": "local", "kind": "openai_compatible", "base_url": "http://127.0.0.1:8080/v1",
                        "default_model": "gpt-image-2", "organization": "org-1", "secret": "local-key",
                        "honors_idempotency_key": true,
                    }),
                    &[],
                ),
                "kromactl provider add local --kind openai-compatible --base-url http://127.0.0.1:8080/v1 \
                 --default-model gpt-image-2 --organization org-1 --secret local-key \
                 --honors-idempotency-key",
            ),
            (
                call("provider.list", json!({}), &[]),
                "kromactl provider list",
            ),
            (
                call("provider.get", json!({"name": "openai"}), &[]),
                "kromactl provider show openai",
            ),
            (
                call(
                    "provider.update",
                    json!({
                        "name": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-image-2",
                        "organization": "", "secret": "openai-2", "honors_idempotency_key": false,
                    }),
                    &[],
                ),
                "kromactl provider update openai --base-url https://api.openai.com/v1 \
                 --default-model gpt-image-2 --organization '' --secret openai-2 \
                 --honors-idempotency-key false",
            ),
            (
                call("provider.delete", json!({"name": "openai"}), &["confirm"]),
                "kromactl provider rm openai",
            ),
            (
                call("provider.check", json!({"name": "openai"}), &[]),
                "kromactl provider check openai",
            ),
            (
                call("events.list", json!({"since": 42}), &[]),
                "kromactl events --since 42",
            ),
            (
                call(
                    "asset.import",
                    json!({"project": "harbor", "paths": ["/home/ada/scans", "/home/ada/a b.png"], "kind": "reference"}),
                    &[],
                ),
                "kromactl asset import harbor /home/ada/scans '/home/ada/a b.png' --kind reference",
            ),
            (
                call("asset.list", json!({"project": "harbor"}), &[]),
                "kromactl asset list harbor",
            ),
            (
                call(
                    "asset.list",
                    json!({"project": "harbor", "kind": "color_corrected"}),
                    &[],
                ),
                "kromactl asset list harbor --kind color_corrected",
            ),
            (
                call("asset.get", json!({"project": "harbor", "id": "a1"}), &[]),
                "kromactl asset show harbor a1",
            ),
            (
                call(
                    "asset.delete",
                    json!({"project": "harbor", "id": "a1"}),
                    &["confirm"],
                ),
                "kromactl asset rm harbor a1",
            ),
            (
                call(
                    "asset.link",
                    json!({"project": "harbor", "from": "a2", "to": "a1", "relation": "derived_from"}),
                    &[],
                ),
                "kromactl asset link harbor a2 derived-from a1",
            ),
            (
                call(
                    "asset.lineage",
                    json!({"project": "harbor", "id": "a1"}),
                    &[],
                ),
                "kromactl asset lineage harbor a1",
            ),
            (
                call("audit.list", json!({"since": 10, "limit": 20}), &[]),
                "kromactl audit list --since 10 --limit 20",
            ),
            (
                call("settings.effective", json!({}), &[]),
                "kromactl settings show --effective",
            ),
            (
                call("settings.effective", json!({"project": "harbor"}), &[]),
                "kromactl settings show --effective --project harbor",
            ),
            (call("model.list", json!({}), &[]), "kromactl model list"),
            (
                call("model.list", json!({"refresh": "openai"}), &[]),
                "kromactl model list --refresh openai",
            ),
            (call("models.list", json!({}), &[]), "kromactl models list"),
            (
                call("models.list", json!({"verify": true}), &[]),
                "kromactl models list --verify",
            ),
            (
                call(
                    "run.plan",
                    json!({
                        "project": "harbor", "stage": "time", "scenes": ["a1", "/home/ada/scenes"],
                        "style_refs": ["Docks"], "characters": ["Mara"], "style_guide": "Ink",
                        "template": {"name": "Rain", "vars": {"mood": "grim"}}, "time": "night",
                        "weather": "rain", "candidates": 2, "provider": "openai", "model": "gpt-image-2",
                        "size": "1024x1536", "quality": "high",
                        "postprocess": {"bg_remove": true, "upscale": 4, "color": "neutral"},
                    }),
                    &[],
                ),
                "kromactl run plan harbor a1 /home/ada/scenes --stage time --style-ref Docks \
                 --character Mara --style-guide Ink --template Rain --var mood=grim --time night \
                 --weather rain --candidates 2 --provider openai --model gpt-image-2 \
                 --size 1024x1536 --quality high --bg-remove true --upscale 4 --color neutral",
            ),
            (
                call(
                    "run.create",
                    json!({"project": "harbor", "scenes": ["a1"], "postprocess": {"color": ""}, "dry_run": true}),
                    &[],
                ),
                "kromactl run create harbor a1 --color '' --dry-run",
            ),
            (
                call("run.start", json!({"plan_id": RUN}), &["confirm_cost_usd"]),
                "kromactl run start 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
            ),
            (
                call(
                    "run.list",
                    json!({"project": "harbor", "status": "dry_run", "limit": 5}),
                    &[],
                ),
                "kromactl run list --project harbor --status dry_run --limit 5",
            ),
            (
                call("run.show", json!({"run": RUN}), &[]),
                "kromactl run show 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
            ),
            (
                call("run.cancel", json!({"run": RUN}), &[]),
                "kromactl run cancel 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
            ),
            (
                call("run.retry", json!({"run": RUN}), &["confirm_cost_usd"]),
                "kromactl run retry 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
            ),
            (
                call(
                    "run.retry",
                    json!({"run": RUN, "only_failed": true}),
                    &["confirm_cost_usd"],
                ),
                "kromactl run retry 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 --only-failed",
            ),
            (
                call(
                    "cost.summary",
                    json!({"project": "harbor", "since": "2026-05-01"}),
                    &[],
                ),
                "kromactl cost --project harbor --since 2026-05-01",
            ),
            (
                call(
                    "postprocess.color",
                    json!({"paths": ["/tmp/a.png"], "profile": "cinematic_warm", "output_dir": "/tmp/out"}),
                    &[],
                ),
                "kromactl color /tmp/a.png --profile cinematic_warm --output /tmp/out",
            ),
            (
                call(
                    "postprocess.bg_remove",
                    json!({
                        "paths": ["/tmp/a.png", "/tmp/b"], "output_dir": "/tmp/out", "model": "u2net",
                        "mask_only": false, "matting": true, "background": "#ffffff",
                    }),
                    &[],
                ),
                "kromactl bg-remove /tmp/a.png /tmp/b --output /tmp/out --model u2net --matting \
                 --background '#ffffff'",
            ),
            (
                call(
                    "postprocess.upscale",
                    json!({"paths": ["/tmp/a.png"], "output_dir": "/tmp/out", "scale": 2, "model": "realesr-general-x4v3", "tile": 128}),
                    &[],
                ),
                "kromactl upscale /tmp/a.png --output /tmp/out --scale 2 \
                 --model realesr-general-x4v3 --tile 128",
            ),
            (call("rpc.discover", json!({}), &[]), "kromactl rpc schema"),
        ];
        cases
            .into_iter()
            .map(|(action, expected)| (action, expected.to_owned()))
            .collect()
    }

    #[test]
    fn every_spelling_renders_as_its_command() {
        let cases = cases();
        for (action, expected) in &cases {
            check(action, expected);
        }
        let tested: BTreeSet<&str> = cases
            .iter()
            .filter_map(|(action, _)| match action {
                protocol::Action::Call(call) => Some(call.method.as_str()),
                _ => None,
            })
            .collect();
        let spelled: BTreeSet<&str> = spellings().map(|spelling| spelling.method).collect();
        assert_eq!(tested, spelled, "every spelling has a case");
    }

    #[test]
    fn needs_kromactl_does_not_ask_for_show_as_placeholders() {
        check(
            &call("run.retry", json!({}), &["run", "confirm_cost_usd"]),
            "kromactl run retry RUN",
        );
        check(
            &call("secret.set", json!({}), &["name", "value"]),
            "kromactl secret set NAME",
        );
        // A required positional argument kromad left out is for the human too.
        check(
            &call("project.get", json!({}), &[]),
            "kromactl project show SLUG",
        );
        check_unparsed(
            &call("provider.create", json!({"name": "openai"}), &["kind"]),
            "kromactl provider add openai --kind KIND",
        );
        check(
            &call(
                "project.delete",
                json!({"slug": "harbor"}),
                &["confirm", "purge_files"],
            ),
            "kromactl project rm harbor [--purge-files]",
        );
        check(
            &call(
                "postprocess.bg_remove",
                json!({"paths": ["/tmp/a.png"]}),
                &["background"],
            ),
            "kromactl bg-remove /tmp/a.png --background '#RRGGBB'",
        );
        check(
            &call(
                "prompt_template.render",
                json!({"project": "harbor", "id": "Rain"}),
                &["vars"],
            ),
            "kromactl template render harbor Rain --var NAME=VALUE",
        );
        check(
            &call("run.plan", json!({"project": "harbor"}), &[]),
            "kromactl run plan harbor SCENE",
        );
        // A confirmation kromad filled in anyway is still asked for.
        check(
            &call(
                "asset.delete",
                json!({"project": "harbor", "id": "a1", "confirm": true}),
                &[],
            ),
            "kromactl asset rm harbor a1",
        );
    }

    #[test]
    fn what_a_command_cannot_say_goes_through_rpc_call() {
        // No command calls daemon.version.
        check(
            &call("daemon.version", json!({}), &[]),
            "kromactl rpc call daemon.version",
        );
        // A method of a later kromad.
        check(
            &call("run.pause", json!({"run": RUN}), &["reason"]),
            &format!(r#"kromactl rpc call run.pause '{{"run":"{RUN}","reason":REASON}}'"#),
        );
        // Params the command has no flag for.
        check(
            &call("events.list", json!({"since": 42, "limit": 10}), &[]),
            r#"kromactl rpc call events.list '{"limit":10,"since":42}'"#,
        );
        check(
            &call(
                "reference_set.create",
                json!({"project": "harbor", "name": "Docks", "items": [{"asset": "a1"}]}),
                &[],
            ),
            r#"kromactl rpc call reference_set.create '{"items":[{"asset":"a1"}],"name":"Docks","project":"harbor"}'"#,
        );
        check(
            &call(
                "bootstrap.import",
                json!({"project": "harbor", "text": "{}"}),
                &[],
            ),
            r#"kromactl rpc call bootstrap.import '{"project":"harbor","text":"{}"}'"#,
        );
        check(
            &call(
                "run.plan",
                json!({"project": "harbor", "scenes": ["a1"], "postprocess": {"sharpen": true}}),
                &[],
            ),
            r#"kromactl rpc call run.plan '{"postprocess":{"sharpen":true},"project":"harbor","scenes":["a1"]}'"#,
        );
        // Values of a shape the command cannot type.
        check(
            &call("project.get", json!({"slug": ["a", "b"]}), &[]),
            r#"kromactl rpc call project.get '{"slug":["a","b"]}'"#,
        );
        check(
            &call("models.list", json!({"verify": "yes"}), &[]),
            r#"kromactl rpc call models.list '{"verify":"yes"}'"#,
        );
        check(
            &call("project.create", json!({"name": "x"}), &["s3"]),
            r#"kromactl rpc call project.create '{"name":"x","s3":S3}'"#,
        );
        // Quotes in values survive the shell.
        check(
            &call("rpc.discover", json!({"why": "it's new"}), &[]),
            r#"kromactl rpc call rpc.discover '{"why":"it'\''s new"}'"#,
        );
        // A secret is never asked for on a command line.
        check(
            &call(
                "secret.set",
                json!({"name": "openai", "store": "file"}),
                &["value"],
            ),
            r#"call secret.set with {"name":"openai","store":"file"} plus value (a secret: never put it on a command line)"#,
        );
    }

    #[test]
    fn steps_outside_kromad() {
        check(
            &protocol::Action::InstallModels { quality: false },
            "kromactl models install",
        );
        check(
            &protocol::Action::InstallModels { quality: true },
            "kromactl models install --quality",
        );
        check(&protocol::Action::StartDaemon, "kromactl daemon start");
        check(
            &protocol::Action::EditConfig {
                key: "limits.max_image_pixels".to_owned(),
                value: Some(json!(100_000_000)),
            },
            "set limits.max_image_pixels = 100000000 in kromad.toml, then restart kromad",
        );
        check(
            &protocol::Action::EditConfig {
                key: "secrets.store".to_owned(),
                value: Some(json!("file")),
            },
            r#"set secrets.store = "file" in kromad.toml, then restart kromad"#,
        );
        check(
            &protocol::Action::EditConfig {
                key: "limits.request_timeout_secs".to_owned(),
                value: None,
            },
            "choose a value for limits.request_timeout_secs in kromad.toml, then restart kromad",
        );
        check(
            &protocol::Action::EditSettings {
                key: "generation.model".to_owned(),
                value: Some(json!("gpt-image-2")),
            },
            "set generation.model = \"gpt-image-2\" in your settings file or the project's \
             .kroma/settings.toml (`kromactl settings show --effective` shows where each value \
             comes from)",
        );
        check(
            &protocol::Action::EditSettings {
                key: "prompts".to_owned(),
                value: Some(json!({"time_dusk": "at \"dusk\"", "two words": [1, true]})),
            },
            "set prompts = { time_dusk = \"at \\\"dusk\\\"\", \"two words\" = [1, true] } in your \
             settings file or the project's .kroma/settings.toml (`kromactl settings show \
             --effective` shows where each value comes from)",
        );
        check(
            &protocol::Action::EditSettings {
                key: "generation.quality".to_owned(),
                value: Some(Value::Null),
            },
            "choose a value for generation.quality in your settings file or the project's \
             .kroma/settings.toml (`kromactl settings show --effective` shows where each value \
             comes from)",
        );
    }

    /// Methods of the contract kromactl has no command for.
    const UNSPELLED: &[&str] = &["daemon.version", "events.subscribe"];

    #[test]
    fn every_method_in_the_map_is_in_the_contract_and_every_method_is_decided() {
        let contract: BTreeSet<&str> = protocol::openrpc::method_infos()
            .iter()
            .map(|info| info.name)
            .collect();
        let mut spelled = BTreeSet::new();
        for spelling in spellings() {
            assert!(
                contract.contains(spelling.method),
                "{} is not a method of the contract (renamed?)",
                spelling.method
            );
            assert!(spelled.insert(spelling.method), "{} twice", spelling.method);
        }
        let unspelled: BTreeSet<&str> = UNSPELLED.iter().copied().collect();
        assert!(unspelled.is_subset(&contract), "{unspelled:?}");
        let decided: BTreeSet<&str> = spelled.union(&unspelled).copied().collect();
        assert_eq!(
            decided, contract,
            "a method is neither spelled nor in UNSPELLED"
        );
        assert_eq!(secret_fields("secret.set"), ["value"]);
        assert!(secret_fields("secret.delete").is_empty());
    }

    /// Params of the contract a command does not type (an action giving one goes through
    /// `rpc call`).
    const UNTYPED_PARAMS: &[(&str, &str)] = &[
        ("events.list", "limit"),
        ("reference_set.create", "items"),
        ("reference_set.update", "items"),
        ("bootstrap.import", "document"),
    ];

    /// Every param path of `method`'s params in the OpenRPC document: `postprocess`,
    /// `postprocess.color`, ...
    fn param_paths(document: &Value, method: &str) -> BTreeSet<String> {
        fn properties<'a>(document: &'a Value, schema: &'a Value) -> Vec<(&'a String, &'a Value)> {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                return properties(document, &document["components"]["schemas"][name]);
            }
            let mut found: Vec<(&String, &Value)> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|fields| fields.iter().collect())
                .unwrap_or_default();
            for combinator in ["anyOf", "oneOf", "allOf"] {
                for part in schema
                    .get(combinator)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    found.extend(properties(document, part));
                }
            }
            found
        }
        fn walk(document: &Value, prefix: &str, schema: &Value, paths: &mut BTreeSet<String>) {
            for (name, field) in properties(document, schema) {
                let path = format!("{prefix}{name}");
                walk(document, &format!("{path}."), field, paths);
                paths.insert(path);
            }
        }
        let methods = document["methods"].as_array().expect("a method list");
        let described = methods
            .iter()
            .find(|described| described["name"] == method)
            .unwrap_or_else(|| panic!("{method} is in the document"));
        let mut paths = BTreeSet::new();
        for param in described["params"].as_array().expect("a param list") {
            let name = param["name"].as_str().expect("a name");
            walk(document, &format!("{name}."), &param["schema"], &mut paths);
            paths.insert(name.to_owned());
        }
        paths
    }

    #[test]
    fn every_param_in_the_map_is_a_param_of_its_method() {
        let document = protocol::openrpc::document("test");
        for spelling in spellings() {
            let paths = param_paths(&document, spelling.method);
            for arg in spelling.args {
                assert!(
                    paths.contains(arg.param),
                    "{}: no param {} in {paths:?}",
                    spelling.method,
                    arg.param
                );
            }
            for path in paths.iter().filter(|path| !path.contains('.')) {
                let typed = spelling.arg(path).is_some()
                    || UNTYPED_PARAMS.contains(&(spelling.method, path.as_str()));
                assert!(typed, "{}: param {path} has no argument", spelling.method);
            }
        }
    }

    /// The positional value names of a subcommand, in order, and its long flags.
    fn clap_arguments(command: &clap::Command) -> (Vec<String>, Vec<&clap::Arg>) {
        let value_name = |arg: &clap::Arg| match arg.get_value_names() {
            Some([name, ..]) => name.to_string(),
            _ => arg.get_id().as_str().to_uppercase(),
        };
        let mut positionals: Vec<&clap::Arg> = command
            .get_positionals()
            .filter(|arg| !arg.is_hide_set())
            .collect();
        positionals.sort_by_key(|arg| arg.get_index());
        let positionals = positionals.into_iter().map(value_name).collect();
        let flags = command
            .get_arguments()
            .filter(|arg| arg.get_long().is_some())
            .collect();
        (positionals, flags)
    }

    #[test]
    fn every_spelling_follows_the_clap_tree() {
        let cli = crate::Cli::command();
        for spelling in spellings() {
            let mut command = &cli;
            let mut fixed_flags = Vec::new();
            for word in spelling.command.split(' ') {
                match word.strip_prefix("--") {
                    Some(flag) => fixed_flags.push(flag),
                    None => {
                        command = command.find_subcommand(word).unwrap_or_else(|| {
                            panic!("{}: no subcommand `{word}`", spelling.method)
                        });
                    }
                }
            }
            let (clap_positionals, clap_flags) = clap_arguments(command);
            let flag = |long: &str| {
                let long = long.trim_start_matches("--");
                clap_flags
                    .iter()
                    .find(|arg| arg.get_long() == Some(long))
                    .unwrap_or_else(|| panic!("{}: no flag --{long}", spelling.method))
            };
            for fixed in fixed_flags {
                assert!(!flag(fixed).get_action().takes_values(), "{fixed}");
            }
            let positionals: Vec<&str> = spelling
                .args
                .iter()
                .filter(|arg| {
                    matches!(
                        arg.form,
                        Form::Positional | Form::Positionals | Form::FileContent
                    )
                })
                .map(|arg| arg.placeholder)
                .collect();
            assert_eq!(positionals, clap_positionals, "{}", spelling.method);
            for arg in spelling.args {
                match arg.form {
                    Form::Flag(long) | Form::Repeated(long) | Form::Pairs(long) => {
                        let clap_arg = flag(long);
                        assert!(clap_arg.get_action().takes_values(), "{long}");
                        let names = clap_arg.get_value_names().unwrap_or_default();
                        let name = names.first().map_or_else(
                            || clap_arg.get_id().as_str().to_uppercase(),
                            |name| name.to_string(),
                        );
                        assert_eq!(arg.placeholder, name, "{} {long}", spelling.method);
                        let repeats = matches!(clap_arg.get_action(), clap::ArgAction::Append);
                        assert_eq!(
                            repeats,
                            !matches!(arg.form, Form::Flag(_)),
                            "{} {long}",
                            spelling.method
                        );
                    }
                    Form::Switch(long) => {
                        assert!(!flag(long).get_action().takes_values(), "{long}");
                    }
                    Form::Positional
                    | Form::Positionals
                    | Form::FileContent
                    | Form::Object
                    | Form::Asked => {}
                }
                if let Some(clear) = arg.clear {
                    assert!(!flag(clear).get_action().takes_values(), "{clear}");
                }
            }
        }
    }

    #[test]
    fn shell_words_come_back_as_written() {
        for text in [
            "plain",
            "two words",
            "it's",
            "#ffffff",
            "",
            "a'b'c",
            "~/x",
            "$HOME",
            "a\\b",
        ] {
            let word = shell_word(text);
            assert_eq!(shell_split(&word), [text], "{word}");
        }
        assert_eq!(shell_word("/home/ada/a-b_c.png"), "/home/ada/a-b_c.png");
        assert_eq!(shell_word("light=low sun"), "'light=low sun'");
    }
}
