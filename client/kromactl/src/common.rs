//! What several commands share besides printing (which is `output.rs`): asking on the terminal,
//! and finding the kromad binary to start.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::output::Failure;

/// Asks on the terminal; without one there is nobody to ask, so the answer is an error.
pub fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{question} needs an answer, but stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|err| Failure::other(format!("reading the answer: {err}"), None))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `--kromad`, else the `kromad` next to this executable, else the one on PATH.
pub fn kromad_binary(explicit: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let name = format!("kromad{}", std::env::consts::EXE_SUFFIX);
    if let Ok(exe) = std::env::current_exe()
        && let Some(sibling) = exe.parent().map(|dir| dir.join(&name))
        && sibling.is_file()
    {
        return Ok(sibling);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .find(|path| path.is_file())
        })
        .ok_or_else(|| {
            Failure::other(
                "cannot find the kromad binary",
                Some("install it next to kromactl or on PATH, or pass --kromad PATH"),
            )
        })
}
