//! What several commands share besides printing (which is `output.rs`): asking on the terminal,
//! agreeing to spend, amounts in USD, absolute paths for kromad, and finding the kromad binary
//! to start.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

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

/// The most a person agrees to spend on something that may cost up to `max_usd`: `max_cost`
/// with `yes`, else what they answer on the terminal to `question(amount)`. `refused` is the
/// error when they say no.
pub fn agree_to_spend(
    max_usd: f64,
    yes: bool,
    max_cost: Option<f64>,
    question: impl FnOnce(f64) -> String,
    refused: &str,
) -> Result<f64, Failure> {
    if let Some(max_cost) = max_cost
        && max_cost + 1e-9 < max_usd
    {
        return Err(Failure::other(
            format!(
                "--max-cost {} is below the most this can cost, {}",
                crate::output::usd(max_cost),
                crate::output::usd(max_usd)
            ),
            Some(&format!(
                "pass --max-cost {} or more",
                max_cost_text(max_usd)
            )),
        ));
    }
    if let (true, Some(max_cost)) = (yes, max_cost) {
        return Ok(max_cost);
    }
    let amount = max_cost.unwrap_or(max_usd);
    let question = question(amount);
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{question} needs an answer, but stdin is not a terminal; pass `--yes --max-cost {}`",
            max_cost_text(amount)
        )));
    }
    if !confirm(&question)? {
        return Err(Failure::other(
            refused,
            Some("pass --yes --max-cost USD to skip the question"),
        ));
    }
    Ok(amount)
}

/// `amount` as a number for `--max-cost`: the shortest decimal of two or four places that is not
/// below it, because the daemon refuses a confirmation below the run's maximum.
pub fn max_cost_text(amount: f64) -> String {
    let covers = |text: &str| text.parse::<f64>().is_ok_and(|parsed| parsed >= amount);
    for places in [2, 4] {
        let text = format!("{amount:.places$}");
        if covers(&text) {
            return text;
        }
    }
    let text = format!("{:.4}", (amount * 10_000.0).ceil() / 10_000.0);
    if covers(&text) {
        return text;
    }
    // Always parses back to exactly `amount`.
    amount.to_string()
}

/// `--max-cost`: a positive amount in USD; a leading `$` is allowed.
pub fn parse_usd(text: &str) -> Result<f64, String> {
    let amount: f64 = text
        .strip_prefix('$')
        .unwrap_or(text)
        .parse()
        .map_err(|_| format!("`{text}` is not an amount in USD, e.g. 1.50"))?;
    if !amount.is_finite() || amount <= 0.0 {
        return Err(format!("the amount must be above 0, not `{text}`"));
    }
    Ok(amount)
}

/// An amount that may be nothing (an allowance, a rule's budget): 0 or more USD; a leading `$`
/// is allowed.
pub fn parse_usd_or_zero(text: &str) -> Result<f64, String> {
    let amount: f64 = text
        .strip_prefix('$')
        .unwrap_or(text)
        .parse()
        .map_err(|_| format!("`{text}` is not an amount in USD, e.g. 1.50"))?;
    if !amount.is_finite() || amount < 0.0 {
        return Err(format!("the amount must be 0 or more, not `{text}`"));
    }
    Ok(amount)
}

/// `path` made absolute against the current directory, as kromad needs it (it does not share
/// our working directory); `.` components are dropped, `..` and symbolic links are kept.
pub fn absolute(path: &Path) -> Result<String, Failure> {
    std::path::absolute(path)
        .map(|path| path.display().to_string())
        .map_err(|err| Failure::other(format!("making {} absolute: {err}", path.display()), None))
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

/// A progress bar of bytes on stderr for long work kromad reports in events; hidden with
/// `--quiet`, `--json` or when stderr is not a terminal.
pub fn byte_bar(global: &crate::Global) -> indicatif::ProgressBar {
    if global.quiet || global.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_cost_text_never_falls_below_the_amount() {
        let cases = [
            (1.26, "1.26"),
            (0.29, "0.29"),
            (1.2345, "1.2345"),
            (1.23456, "1.2346"),
            (1.23444, "1.2345"),
            (0.1 + 0.2, "0.3001"),
            (0.0042, "0.0042"),
            (3.0, "3.00"),
        ];
        for (amount, expected) in cases {
            let text = max_cost_text(amount);
            assert_eq!(text, expected, "{amount}");
            assert!(text.parse::<f64>().unwrap() >= amount, "{amount}");
        }
        for cents in 0..10_000 {
            let amount = f64::from(cents) * 0.0137;
            assert!(max_cost_text(amount).parse::<f64>().unwrap() >= amount);
        }
    }

    #[test]
    fn parse_usd_takes_positive_amounts() {
        assert_eq!(parse_usd("1.50"), Ok(1.5));
        assert_eq!(parse_usd("$2"), Ok(2.0));
        for bad in ["", "abc", "0", "-1", "nan", "inf", "1,50"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_usd_or_zero_also_takes_nothing() {
        assert_eq!(parse_usd_or_zero("0"), Ok(0.0));
        assert_eq!(parse_usd_or_zero("$5"), Ok(5.0));
        assert_eq!(
            parse_usd_or_zero("-1"),
            Err("the amount must be 0 or more, not `-1`".to_owned())
        );
        assert_eq!(
            parse_usd_or_zero("five"),
            Err("`five` is not an amount in USD, e.g. 1.50".to_owned())
        );
    }
}
