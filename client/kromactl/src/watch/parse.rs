//! The words of `kromactl watch`: `--chain` steps (`bg_remove,upscale:2,color:neutral`) and
//! `--settle` durations (`500ms`, `2s`), each with the text that reads back as the same value.

use kroma_protocol as protocol;
use protocol::watch as wire;

use super::ChainSteps;

/// `--chain`: local steps, comma-separated, each `bg_remove`, `upscale`, `upscale:2`,
/// `upscale:4` or `color:PROFILE`; spaces around a step are allowed.
pub fn parse_steps(text: &str) -> Result<ChainSteps, String> {
    const STEPS: &str = "the steps are bg_remove, upscale[:2|4] and color:PROFILE";
    if text.trim().is_empty() {
        return Err(format!(
            "the chain names no step; {STEPS}, e.g. bg_remove,upscale:2"
        ));
    }
    let mut steps = Vec::new();
    for (step_idx, item) in text.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("step {} of `{text}` is empty", step_idx + 1));
        }
        let (name, value) = match item.split_once(':') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (item, None),
        };
        let step = match (name, value) {
            ("bg_remove" | "bg-remove", None) => wire::LocalStep::BgRemove {
                model: None,
                mask_only: false,
                matting: false,
                background: None,
            },
            ("bg_remove" | "bg-remove", Some(_)) => {
                return Err(format!(
                    "`{item}`: bg_remove takes no value; its settings are --bg-remove-model, \
                     --mask-only, --matting and --background"
                ));
            }
            ("upscale", None) => wire::LocalStep::Upscale {
                scale: None,
                model: None,
                tile: None,
            },
            ("upscale", Some(scale @ ("2" | "4"))) => wire::LocalStep::Upscale {
                scale: scale.parse().ok(),
                model: None,
                tile: None,
            },
            ("upscale", Some(_)) => {
                return Err(format!("`{item}`: the scale is 2 or 4, e.g. upscale:2"));
            }
            ("color" | "colour", Some(profile)) if !profile.is_empty() => wire::LocalStep::Color {
                profile: profile.to_owned(),
            },
            ("color" | "colour", _) => {
                return Err(format!(
                    "`{item}` names no profile, e.g. color:cinematic_warm"
                ));
            }
            _ => return Err(format!("unknown step `{item}`; {STEPS}")),
        };
        steps.push(step);
    }
    Ok(ChainSteps(steps))
}

/// Steps as `--chain` takes them: `bg_remove,upscale:2,color:neutral`. Step settings other than
/// the scale are not part of it (`watch show` lists them).
pub fn steps_text(steps: &[wire::LocalStep]) -> String {
    let words: Vec<String> = steps
        .iter()
        .map(|step| match step {
            wire::LocalStep::Upscale {
                scale: Some(scale), ..
            } => format!("upscale:{scale}"),
            wire::LocalStep::Color { profile } => format!("color:{profile}"),
            step => step.name().to_owned(),
        })
        .collect();
    words.join(",")
}

/// `--settle`: `500ms`, `2s`, `1.5s`, `1m`, or a bare number of milliseconds; in milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{text}` is not a duration; write it as 500ms, 2s, 1.5s, 1m or milliseconds, 2000")
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let ms_per_unit: f64 = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        _ => return Err(bad()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ms = value * ms_per_unit;
    let whole = ms.round();
    if (ms - whole).abs() > 1e-6 {
        return Err(format!("`{text}` is not a whole number of milliseconds"));
    }
    // A week is far beyond any settle time kromad takes; it also keeps the cast exact.
    if whole > 604_800_000.0 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(whole as u64)
}

/// Milliseconds as `--settle` takes them, in the largest unit that is exact: `2s`, `500ms`.
pub fn duration_text(ms: u64) -> String {
    if ms != 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms != 0 && ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}
