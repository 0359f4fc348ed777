//! How `kromactl watch` prints rules and their journals for people: the list table, one rule's
//! details with what to do about its state, and the files a rule took.

use kroma_protocol as protocol;
use protocol::watch as wire;

use super::parse::{duration_text, steps_text};
use crate::output::{self, usd};

pub(super) fn state_text(state: wire::RuleState) -> &'static str {
    match state {
        wire::RuleState::Watching => "watching",
        wire::RuleState::Paused => "paused",
        wire::RuleState::BudgetSpent => "budget_spent",
        wire::RuleState::Failing => "failing",
    }
}

/// What the rule does with each file, on one line.
fn action_text(action: &wire::WatchAction) -> String {
    match action {
        wire::WatchAction::Pipeline { plan } => {
            format!("run in {} ({} stage)", plan.project, plan.stage.as_str())
        }
        wire::WatchAction::Chain { steps, output } => {
            format!("{} → {output}", steps_text(steps))
        }
    }
}

/// The run settings a pipeline rule names; the rest come from the settings in force.
fn plan_settings_text(plan: &protocol::run::PlanParams) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut named = |label: &str, value: &Option<String>| {
        if let Some(value) = value {
            parts.push(format!("{label} {value}"));
        }
    };
    named("provider", &plan.provider);
    named("model", &plan.model);
    named("size", &plan.size);
    named("quality", &plan.quality);
    named("style guide", &plan.style_guide);
    named("time", &plan.time);
    named("weather", &plan.weather);
    if let Some(template) = &plan.template {
        parts.push(format!("template {}", template.name));
    }
    if let Some(candidates) = plan.candidates {
        parts.push(format!("{candidates} candidates"));
    }
    if !plan.characters.is_empty() {
        parts.push(format!("characters {}", plan.characters.join(", ")));
    }
    if !plan.style_refs.is_empty() {
        parts.push(format!("style refs {}", plan.style_refs.join(", ")));
    }
    if let Some(postprocess) = &plan.postprocess {
        if let Some(bg_remove) = postprocess.bg_remove {
            parts.push(format!("bg_remove {bg_remove}"));
        }
        if let Some(upscale) = postprocess.upscale {
            parts.push(format!("upscale {upscale}"));
        }
        if let Some(color) = &postprocess.color {
            parts.push(format!("color {color:?}"));
        }
    }
    if parts.is_empty() {
        "all from the settings in force".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The settings of a chain's steps beyond the `--chain` text, or `None` when there are none.
fn step_settings_text(steps: &[wire::LocalStep]) -> Option<String> {
    let mut parts = Vec::new();
    for step in steps {
        match step {
            wire::LocalStep::BgRemove {
                model,
                mask_only,
                matting,
                background,
            } => {
                let mut settings = Vec::new();
                settings.extend(model.as_ref().map(|model| format!("model {model}")));
                settings.extend(mask_only.then(|| "mask only".to_owned()));
                settings.extend(matting.then(|| "matting".to_owned()));
                settings.extend(background.as_ref().map(|color| format!("on {color}")));
                if !settings.is_empty() {
                    parts.push(format!("bg_remove: {}", settings.join(", ")));
                }
            }
            wire::LocalStep::Upscale { model, tile, .. } => {
                let mut settings = Vec::new();
                settings.extend(model.as_ref().map(|model| format!("model {model}")));
                settings.extend(tile.map(|tile| format!("tile {tile}")));
                if !settings.is_empty() {
                    parts.push(format!("upscale: {}", settings.join(", ")));
                }
            }
            wire::LocalStep::Color { .. } => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn patterns_text(patterns: &[String]) -> String {
    if patterns.is_empty() {
        format!("{} (default)", wire::DEFAULT_PATTERNS.join(" "))
    } else {
        patterns.join(" ")
    }
}

fn budget_text(rule: &wire::WatchRule) -> String {
    match rule.action {
        wire::WatchAction::Chain { .. } => "none needed: local steps cost nothing".to_owned(),
        wire::WatchAction::Pipeline { .. } if rule.budget_usd == 0.0 => format!(
            "{} spent; none: every paid file waits for a person",
            usd(rule.spent_usd)
        ),
        wire::WatchAction::Pipeline { .. } => {
            format!("{} spent of {}", usd(rule.spent_usd), usd(rule.budget_usd))
        }
    }
}

fn counts_text(counts: &wire::WatchCounts) -> String {
    format!(
        "{} seen: {} running, {} done, {} failed; {} duplicates skipped",
        counts.seen, counts.running, counts.done, counts.failed, counts.duplicate
    )
}

/// What to do about a rule's state, when there is something to do.
pub(super) fn state_hint(rule: &wire::WatchRule) -> Vec<String> {
    let name = &rule.name;
    match rule.state {
        wire::RuleState::Watching => Vec::new(),
        wire::RuleState::Paused => vec![format!(
            "hint: resume it with `kromactl watch resume {name}`"
        )],
        wire::RuleState::BudgetSpent => vec![format!(
            "hint: paid files wait for a person: raise the budget with `kromactl watch update \
             {name} --budget USD`, or confirm them one by one (`kromactl instruction list --state \
             awaiting_confirmation`)"
        )],
        wire::RuleState::Failing => match &rule.last_error {
            Some(error) => output::hint_lines(error.hint.as_deref(), error.action.as_ref()),
            None => Vec::new(),
        },
    }
}

pub(super) fn added_text(rule: &wire::WatchRule) -> String {
    let mut lines = vec![
        format!(
            "added rule {}: {} → {}",
            rule.name,
            rule.folder,
            action_text(&rule.action)
        ),
        format!("state: {}", state_text(rule.state)),
    ];
    if matches!(rule.action, wire::WatchAction::Pipeline { .. }) && rule.budget_usd == 0.0 {
        lines.push(format!(
            "each file becomes an instruction that waits for a person (`kromactl instruction \
             list`); `kromactl watch update {} --budget USD` lets files run without asking",
            rule.name
        ));
    }
    lines.extend(state_hint(rule));
    lines.push(format!(
        "follow the files it takes with `kromactl watch log {}`",
        rule.name
    ));
    lines.join("\n")
}

pub(super) fn list_text(rules: &[wire::WatchRule]) -> String {
    if rules.is_empty() {
        return "no drop folders; add one with `kromactl watch add FOLDER --project PROJECT` or \
                `kromactl watch add FOLDER --chain STEPS --output DIR`"
            .to_owned();
    }
    let mut table = output::table(&[
        "name",
        "state",
        "folder",
        "action",
        "seen",
        "running",
        "done",
        "failed",
        "dup",
        "spent/budget",
        "last error",
    ]);
    for rule in rules {
        let counts = &rule.counts;
        table.add_row(vec![
            rule.name.clone(),
            state_text(rule.state).to_owned(),
            rule.folder.clone(),
            action_text(&rule.action),
            counts.seen.to_string(),
            counts.running.to_string(),
            counts.done.to_string(),
            counts.failed.to_string(),
            counts.duplicate.to_string(),
            match rule.action {
                wire::WatchAction::Pipeline { .. } => {
                    format!("{}/{}", usd(rule.spent_usd), usd(rule.budget_usd))
                }
                wire::WatchAction::Chain { .. } => "-".to_owned(),
            },
            rule.last_error
                .as_ref()
                .map(|error| error.message.clone())
                .unwrap_or_default(),
        ]);
    }
    table.to_string()
}

pub(super) fn details_text(rule: &wire::WatchRule) -> String {
    let mut rows = vec![
        ("name", rule.name.clone()),
        ("id", rule.id.clone()),
        ("state", state_text(rule.state).to_owned()),
        ("folder", rule.folder.clone()),
    ];
    match &rule.action {
        wire::WatchAction::Pipeline { plan } => {
            rows.push(("action", action_text(&rule.action)));
            rows.push(("run settings", plan_settings_text(plan)));
        }
        wire::WatchAction::Chain { steps, output } => {
            rows.push(("action", format!("chain {}", steps_text(steps))));
            if let Some(settings) = step_settings_text(steps) {
                rows.push(("step settings", settings));
            }
            rows.push(("output", output.clone()));
        }
    }
    rows.extend([
        ("patterns", patterns_text(&rule.patterns)),
        (
            "detection",
            format!(
                "{}, settle {}",
                if rule.poll {
                    "polling"
                } else {
                    "OS notifications"
                },
                duration_text(rule.settle_ms)
            ),
        ),
        (
            "inputs",
            match rule.inputs {
                wire::Inputs::Move => "moved to processing/, then done/, failed/ or duplicates/",
                wire::Inputs::Keep => "left where they land",
            }
            .to_owned(),
        ),
        ("budget", budget_text(rule)),
        ("files", counts_text(&rule.counts)),
    ]);
    if let Some(error) = &rule.last_error {
        rows.push(("last error", error.message.clone()));
    }
    rows.extend([
        ("created", rule.created_at.clone()),
        ("updated", rule.updated_at.clone()),
    ]);
    let mut lines = vec![output::details(&rows).to_string()];
    lines.extend(state_hint(rule));
    lines.join("\n")
}

/// What became of a file: its chain's output, its instruction and run, or what it duplicates.
fn file_result(file: &wire::WatchFile) -> String {
    if let Some(output) = &file.output {
        return output.clone();
    }
    if let Some(original) = &file.duplicate_of {
        return format!("duplicate of {original}");
    }
    let parts: Vec<String> = [
        file.instruction
            .as_ref()
            .map(|id| format!("instruction {id}")),
        file.run.as_ref().map(|id| format!("run {id}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join(", ")
}

pub(super) fn log_text(log: &wire::WatchLog) -> String {
    let rule = &log.rule;
    if log.files.is_empty() {
        return format!(
            "rule {} has taken no files yet ({}, {})",
            rule.name,
            state_text(rule.state),
            rule.folder
        );
    }
    let mut table = output::table(&["time", "name", "state", "result", "reason"]);
    for file in &log.files {
        table.add_row(vec![
            file.updated_at.clone(),
            file.name.clone(),
            file.state.as_str().to_owned(),
            file_result(file),
            file.reason.clone().unwrap_or_default(),
        ]);
    }
    let mut text = format!(
        "{} ({}): {}\n\n{table}",
        rule.name,
        state_text(rule.state),
        counts_text(&rule.counts)
    );
    let waiting: Vec<&str> = log
        .files
        .iter()
        .filter(|file| file.state == wire::FileState::Waiting)
        .filter_map(|file| file.instruction.as_deref())
        .collect();
    if let [first, ..] = waiting.as_slice() {
        let files = if waiting.len() == 1 {
            "1 file waits".to_owned()
        } else {
            format!("{} files wait", waiting.len())
        };
        text.push_str(&format!(
            "\n\nhint: {files} for a person; read and approve with `kromactl instruction confirm \
             {first}`"
        ));
    }
    text
}
