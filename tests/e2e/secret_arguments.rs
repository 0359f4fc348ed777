//! A key typed on the command line by mistake is refused and never echoed back: not by
//! `secret set`, not by clap's "unexpected argument" errors of the commands that handle keys,
//! and not anywhere else when the word has a key's shape.

use std::process::Output;

use kroma_tests::kromactl;

const KEY: &str = "sk-proj-Q7vXk29LmRt4WzP0aNc8YdE";

fn check_refused_without_echo(args: &[&str], expected_message: &str) {
    let temp = tempfile::tempdir().unwrap();
    // No daemon: the refusal happens before anything is sent anywhere.
    let output: Output = kromactl(&temp.path().join("kromad.sock"), args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        !stdout.contains("Q7vXk29") && !stderr.contains("Q7vXk29"),
        "{args:?} echoed the key: {stdout}{stderr}"
    );
    assert!(
        stderr.contains(expected_message),
        "{args:?}: expected `{expected_message}` in: {stderr}"
    );
}

#[test]
fn secret_set_refuses_a_value_given_as_an_argument() {
    let refusal = "secret values are never taken as arguments (they end up in shell history); pipe it on stdin or type it at the prompt";
    let value_flag = format!("--value={KEY}");
    for args in [
        &["secret", "set", "openai", KEY][..],
        &["secret", "set", "openai", "--", KEY],
        &["secret", "set", "openai", "--value", KEY],
        &["secret", "set", "openai", &value_flag],
        &["secret", "set", "openai", "first-part", KEY],
        &["--json", "secret", "set", "openai", KEY],
    ] {
        check_refused_without_echo(args, refusal);
    }
    // The key given where the name goes.
    check_refused_without_echo(
        &["secret", "set", KEY],
        "the secret's NAME looks like a key",
    );
}

#[test]
fn parse_errors_hide_what_may_be_a_key() {
    for args in [
        // Commands that handle keys hide whatever clap would quote.
        &["provider", "add", "openai", KEY][..],
        &["secret", "rm", "openai", KEY],
        // Elsewhere, words with a key's shape.
        &["project", "create", "Harbor", KEY],
    ] {
        check_refused_without_echo(args, "<hidden>");
    }
    // A flag name is no secret and stays, so the error still says what was wrong.
    check_refused_without_echo(
        &["provider", "update", "openai", "--key", KEY],
        "unexpected argument '--key' found",
    );
    check_refused_without_echo(
        &["project", "create", "Harbor", &format!("--api-key={KEY}")],
        "unexpected argument '--api-key' found",
    );
}

#[test]
fn flags_after_the_name_still_work() {
    // `--json` after NAME is kromactl's flag, not a value: with no daemon the command gets as far
    // as connecting.
    let temp = tempfile::tempdir().unwrap();
    let output = kromactl(
        &temp.path().join("kromad.sock"),
        &["secret", "set", "openai", "--json"],
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
