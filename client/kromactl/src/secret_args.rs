//! Secret values typed on the command line by mistake: kromactl never takes them, and never
//! echoes them back in an error, where they would land in terminal scrollback and logs.
//!
//! `secret set NAME VALUE` is refused by `commands.rs` without showing VALUE. Any other parse
//! error goes through [`parse_or_exit`], which hides the arguments clap would quote when they are
//! given to the commands that handle keys (`secret`, `provider`; flag names stay) or look like a
//! key anywhere.

use std::ffi::OsString;

use clap::Parser;
use clap::error::{ContextKind, ContextValue};

use crate::Cli;

/// What `secret set` says to a value given as an argument, without repeating it.
pub const VALUE_ON_COMMAND_LINE: &str = "secret values are never taken as arguments (they end up in shell history); pipe it on stdin or type it at the prompt";

/// What stands in for a hidden argument in an error.
const HIDDEN: &str = "<hidden>";

/// Parses the command line like `Cli::parse`, except that a parse error never shows an argument
/// that may be a secret.
pub fn parse_or_exit() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let err = match Cli::try_parse_from(&args) {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    let args: Vec<String> = args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let Some(text) = redact(&err.render().to_string(), &args, &quoted_arguments(&err)) else {
        err.exit();
    };
    eprint!("{text}");
    eprintln!(
        "note: an argument is shown as {HIDDEN} in case it is a secret; {VALUE_ON_COMMAND_LINE} \
         of `kromactl secret set NAME`"
    );
    std::process::exit(err.exit_code());
}

/// Whether a command-line word has the shape of an API key or a bearer token.
pub fn looks_like_key(word: &str) -> bool {
    let word = word.trim();
    if word.len() >= 8
        && word
            .get(..7)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer "))
    {
        return true;
    }
    if word.len() >= 12 && (word.starts_with("sk-") || word.starts_with("sk_")) {
        return true;
    }
    // Long random-looking tokens: letters of both cases and digits, no spaces, no dots (so file
    // names and most paths are not taken for keys).
    word.len() >= 32
        && !word.starts_with(['/', '~', '-'])
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | '='))
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
}

/// The arguments a clap error quotes back.
fn quoted_arguments(err: &clap::Error) -> Vec<String> {
    let mut quoted = Vec::new();
    for kind in [ContextKind::InvalidArg, ContextKind::InvalidValue] {
        match err.get(kind) {
            Some(ContextValue::String(value)) => quoted.push(value.clone()),
            Some(ContextValue::Strings(values)) => quoted.extend(values.iter().cloned()),
            _ => {}
        }
    }
    quoted
}

/// The parse error `text` of `args` (which quotes `quoted`) with possible secrets hidden, or
/// `None` when it shows none. For the commands that handle keys, every argument clap quotes is
/// hidden except flag names; anywhere, every argument (or `--flag=` value) with a key's shape.
fn redact(text: &str, args: &[String], quoted: &[String]) -> Option<String> {
    let handles_keys = args
        .iter()
        .skip(1)
        .any(|arg| arg == "secret" || arg == "provider");
    let mut redacted = text.to_owned();
    if handles_keys {
        for word in quoted.iter().filter(|word| !is_flag_name(word)) {
            redacted = redacted
                .replace(&format!("'{word}'"), &format!("'{HIDDEN}'"))
                .replace(&format!("'-- {word}'"), &format!("'-- {HIDDEN}'"));
        }
    }
    let mut keys: Vec<&str> = args
        .iter()
        .skip(1)
        .flat_map(|arg| {
            [
                arg.as_str(),
                arg.split_once('=').map_or("", |(_, value)| value),
            ]
        })
        .filter(|word| looks_like_key(word))
        .collect();
    // Longest first, so a key inside another does not leave the rest of the longer one showing.
    keys.sort_by_key(|word| std::cmp::Reverse(word.len()));
    for key in keys {
        redacted = redacted.replace(key, HIDDEN);
    }
    (redacted != text).then_some(redacted)
}

/// `--name` or `-n`: a flag's name, which says nothing secret.
fn is_flag_name(word: &str) -> bool {
    match word.strip_prefix("--") {
        Some(name) => {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        None => word.len() == 2 && word.starts_with('-') && word != "--",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        for (word, expected) in [
            ("sk-abc123", false),
            ("sk-abc1234567", true),
            ("sk-proj-Zx81kLmN0pQrS7tUvWx", true),
            ("sk_live_51HxYzAbCdEf", true),
            ("Bearer abc.def", true),
            ("bearer xyz", true),
            ("AIzaSyD4k9mQ2xLr7Tv0bWc8nYe3uHj5pK1oZ6s", true),
            ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true),
            ("openai", false),
            ("night-harbor", false),
            ("night_harbor_2024_final_cover_v2", false),
            ("/home/ana/pictures/Harbor2024/Final_Cover_V2", false),
            ("Harbor2024_final_cover_page_V2.png", false),
            ("--base-url", false),
            ("", false),
            ("ünïcödé wörds ärë fïnë", false),
        ] {
            assert_eq!(looks_like_key(word), expected, "{word:?}");
        }
    }

    fn check(args: &[&str], error: &str, quoted: &[&str], expected: Option<&str>) {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let quoted: Vec<String> = quoted.iter().map(|word| (*word).to_owned()).collect();
        assert_eq!(
            redact(error, &args, &quoted).as_deref(),
            expected,
            "{args:?}"
        );
    }

    #[test]
    fn what_is_hidden() {
        // Commands that handle keys: whatever clap quotes, except flag names.
        check(
            &["kromactl", "provider", "add", "openai", "hunter2"],
            "error: unexpected argument 'hunter2' found\n",
            &["hunter2"],
            Some("error: unexpected argument '<hidden>' found\n"),
        );
        check(
            &["kromactl", "--json", "secret", "list", "-hunter2"],
            "error: unexpected argument '-hunter2' found\n  tip: to pass '-hunter2' as a value, use '-- -hunter2'\n",
            &["-hunter2"],
            Some(
                "error: unexpected argument '<hidden>' found\n  tip: to pass '<hidden>' as a value, use '-- <hidden>'\n",
            ),
        );
        check(
            &[
                "kromactl", "provider", "update", "openai", "--key", "hunter2",
            ],
            "error: unexpected argument '--key' found\n",
            &["--key"],
            None,
        );
        // A short word is replaced only where clap quotes it.
        check(
            &["kromactl", "secret", "rm", "openai", "e"],
            "error: unexpected argument 'e' found\nUsage: kromactl secret rm\n",
            &["e"],
            Some("error: unexpected argument '<hidden>' found\nUsage: kromactl secret rm\n"),
        );
        // Elsewhere: only what looks like a key, including a `--flag=` value.
        check(
            &["kromactl", "project", "show", "a", "b"],
            "error: unexpected argument 'b' found\n",
            &["b"],
            None,
        );
        check(
            &[
                "kromactl",
                "project",
                "create",
                "X",
                "--key=sk-abcdef123456",
            ],
            "error: unexpected argument '--key=sk-abcdef123456' found\n",
            &["--key=sk-abcdef123456"],
            Some("error: unexpected argument '--key=<hidden>' found\n"),
        );
        check(
            &[
                "kromactl",
                "project",
                "create",
                "X",
                "--key=sk-abcdef123456",
            ],
            "error: unexpected argument '--key' found\n",
            &["--key"],
            None,
        );
    }
}
