//! `kromactl watch`: the words it parses, the params it sends, and what it prints.

use clap::Parser;

use super::parse::{duration_text, steps_text};
use super::text::{added_text, details_text, list_text, log_text};
use super::*;

fn bg_remove() -> wire::LocalStep {
    wire::LocalStep::BgRemove {
        model: None,
        mask_only: false,
        matting: false,
        background: None,
    }
}

fn upscale(scale: Option<u32>) -> wire::LocalStep {
    wire::LocalStep::Upscale {
        scale,
        model: None,
        tile: None,
    }
}

fn color(profile: &str) -> wire::LocalStep {
    wire::LocalStep::Color {
        profile: profile.to_owned(),
    }
}

#[test]
fn steps_parse_from_a_comma_list() {
    let check = |text: &str, expected: Vec<wire::LocalStep>| {
        assert_eq!(
            parse_steps(text),
            Ok(ChainSteps(expected.clone())),
            "{text}"
        );
    };
    check(
        "bg_remove,upscale:2,color:cinematic_warm",
        vec![bg_remove(), upscale(Some(2)), color("cinematic_warm")],
    );
    check("upscale", vec![upscale(None)]);
    check("upscale:4", vec![upscale(Some(4))]);
    check(
        " bg-remove , colour:my_grade ",
        vec![bg_remove(), color("my_grade")],
    );
    check(
        "color:neutral,color:cold_rain",
        vec![color("neutral"), color("cold_rain")],
    );
}

#[test]
fn bad_steps_say_what_is_wrong() {
    let check = |text: &str, expected: &str| {
        assert_eq!(parse_steps(text), Err(expected.to_owned()), "{text}");
    };
    check(
        "",
        "the chain names no step; the steps are bg_remove, upscale[:2|4] and color:PROFILE, \
         e.g. bg_remove,upscale:2",
    );
    check(
        "bg_remove,,upscale",
        "step 2 of `bg_remove,,upscale` is empty",
    );
    check("upscale,", "step 2 of `upscale,` is empty");
    check(
        "blur",
        "unknown step `blur`; the steps are bg_remove, upscale[:2|4] and color:PROFILE",
    );
    check(
        "upscale:3",
        "`upscale:3`: the scale is 2 or 4, e.g. upscale:2",
    );
    check(
        "upscale:x2",
        "`upscale:x2`: the scale is 2 or 4, e.g. upscale:2",
    );
    check(
        "color",
        "`color` names no profile, e.g. color:cinematic_warm",
    );
    check(
        "color:",
        "`color:` names no profile, e.g. color:cinematic_warm",
    );
    check(
        "bg_remove:u2net",
        "`bg_remove:u2net`: bg_remove takes no value; its settings are --bg-remove-model, \
         --mask-only, --matting and --background",
    );
}

#[test]
fn steps_text_reads_back_as_the_same_steps() {
    for text in [
        "bg_remove",
        "upscale",
        "upscale:2,upscale:4",
        "bg_remove,upscale:2,color:cinematic_warm",
    ] {
        let ChainSteps(steps) = parse_steps(text).unwrap();
        assert_eq!(steps_text(&steps), text);
    }
}

#[test]
fn step_options_go_to_their_steps_or_are_refused() {
    let options = |bg_remove_model: Option<&str>, tile: Option<u32>| StepOptions {
        bg_remove_model: bg_remove_model.map(str::to_owned),
        mask_only: false,
        matting: true,
        background: None,
        upscale_model: None,
        tile,
    };
    let steps = vec![bg_remove(), upscale(Some(2)), color("neutral")];
    assert_eq!(
        with_options(steps.clone(), &options(Some("u2net"), Some(128))),
        Ok(vec![
            wire::LocalStep::BgRemove {
                model: Some("u2net".to_owned()),
                mask_only: false,
                matting: true,
                background: None,
            },
            wire::LocalStep::Upscale {
                scale: Some(2),
                model: None,
                tile: Some(128),
            },
            color("neutral"),
        ])
    );
    assert_eq!(
        with_options(vec![bg_remove()], &options(None, Some(128))),
        Err("--tile is for the upscale step, and --chain has none".to_owned())
    );
    assert_eq!(
        with_options(vec![upscale(None)], &options(None, None)),
        Err("--matting is for the bg_remove step, and --chain has none".to_owned())
    );
}

fn parsed(words: &str) -> WatchCommand {
    let words = std::iter::once("kromactl").chain(words.split(' '));
    match crate::Cli::try_parse_from(words) {
        Ok(crate::Cli {
            command: crate::Command::Watch(command),
            ..
        }) => command,
        Ok(other) => panic!("not a watch command: {other:?}"),
        Err(err) => panic!("does not parse: {err}"),
    }
}

fn cwd() -> String {
    std::env::current_dir().unwrap().display().to_string()
}

/// The params of `watch add` typed as `words`, as JSON; or the usage error.
fn add(words: &str) -> Result<serde_json::Value, String> {
    let WatchCommand::Add(args) = parsed(words) else {
        panic!("not watch add: {words}");
    };
    match add_params(*args) {
        Ok(params) => Ok(serde_json::to_value(params).unwrap()),
        Err(Failure::Usage(message)) => Err(message),
        Err(other) => panic!("{other:?}"),
    }
}

/// The params of `watch update` typed as `words`, as JSON; or the usage error.
fn update(words: &str, current: Option<&wire::WatchRule>) -> Result<serde_json::Value, String> {
    let WatchCommand::Update(args) = parsed(words) else {
        panic!("not watch update: {words}");
    };
    match update_params_from(args, current) {
        Ok(params) => Ok(serde_json::to_value(params).unwrap()),
        Err(Failure::Usage(message)) => Err(message),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn add_sends_a_pipeline_or_a_chain_with_absolute_folders() {
    use serde_json::json;
    let cwd = cwd();
    assert_eq!(
        add(
            "watch add inbox --project harbor --quality high --budget 5 --settle 500ms \
             --pattern *.png --pattern *.tif --name drop"
        ),
        Ok(json!({
            "name": "drop",
            "folder": format!("{cwd}/inbox"),
            "action": {"type": "pipeline", "plan": {
                "project": "harbor", "stage": "style", "scenes": [], "quality": "high",
            }},
            "patterns": ["*.png", "*.tif"],
            "budget_usd": 5.0,
            "poll": false,
            "settle_ms": 500,
            "inputs": "move",
        }))
    );
    assert_eq!(
        add(
            "watch add ./scans --chain bg_remove,upscale:2 --output ../out --tile 128 \
             --poll --keep-inputs"
        ),
        Ok(json!({
            "folder": format!("{cwd}/scans"),
            "action": {"type": "chain", "output": format!("{cwd}/../out"), "steps": [
                {"step": "bg_remove", "mask_only": false, "matting": false},
                {"step": "upscale", "scale": 2, "tile": 128},
            ]},
            "budget_usd": 0.0,
            "poll": true,
            "inputs": "keep",
        }))
    );
    assert_eq!(
        add("watch add /in --chain color:neutral --output /out --tile 128"),
        Err("--tile is for the upscale step, and --chain has none".to_owned())
    );
}

#[test]
fn add_refuses_mixed_or_missing_actions() {
    for words in [
        "watch add /in",
        "watch add /in --project harbor --chain upscale --output /out",
        "watch add /in --chain upscale --output /out --quality high",
        "watch add /in --chain upscale --output /out --stage time",
        "watch add /in --chain upscale",
        "watch add /in --project harbor --output /out",
        "watch add /in --project harbor --tile 64",
        "watch add /in --project harbor --budget -1",
    ] {
        // clap refuses most; the rest are refused before anything is sent.
        let words_iter = std::iter::once("kromactl").chain(words.split(' '));
        if let Ok(crate::Cli {
            command: crate::Command::Watch(WatchCommand::Add(args)),
            ..
        }) = crate::Cli::try_parse_from(words_iter)
        {
            assert!(
                matches!(add_params(*args), Err(Failure::Usage(_))),
                "{words}"
            );
        }
    }
}

fn chain_rule() -> wire::WatchRule {
    wire::WatchRule {
        id: "r1".to_owned(),
        name: "scans".to_owned(),
        folder: "/in".to_owned(),
        action: wire::WatchAction::Chain {
            steps: vec![upscale(Some(4))],
            output: "/out".to_owned(),
        },
        patterns: Vec::new(),
        budget_usd: 0.0,
        spent_usd: 0.0,
        poll: false,
        settle_ms: 2_000,
        inputs: wire::Inputs::Move,
        state: wire::RuleState::Watching,
        counts: wire::WatchCounts::default(),
        last_error: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[test]
fn update_sends_only_what_changes() {
    use serde_json::json;
    assert_eq!(
        update(
            "watch update scans --budget 0 --no-poll --move-inputs --settle 2s",
            None
        ),
        Ok(json!({
            "rule": "scans", "budget_usd": 0.0, "poll": false, "inputs": "move",
            "settle_ms": 2000,
        }))
    );
    assert_eq!(
        update(
            "watch update scans --default-patterns --keep-inputs --poll",
            None
        ),
        Ok(json!({"rule": "scans", "patterns": [], "inputs": "keep", "poll": true}))
    );
    assert_eq!(
        update("watch update scans --pattern *.png", None),
        Ok(json!({"rule": "scans", "patterns": ["*.png"]}))
    );
    // Half a chain keeps the other half of the rule's.
    assert_eq!(
        update(
            "watch update scans --chain color:neutral",
            Some(&chain_rule())
        ),
        Ok(json!({"rule": "scans", "action": {
            "type": "chain", "steps": [{"step": "color", "profile": "neutral"}],
            "output": "/out",
        }}))
    );
    assert_eq!(
        update(
            "watch update scans --output /elsewhere",
            Some(&chain_rule())
        ),
        Ok(json!({"rule": "scans", "action": {
            "type": "chain", "steps": [{"step": "upscale", "scale": 4}],
            "output": "/elsewhere",
        }}))
    );
    let mut pipeline = chain_rule();
    pipeline.action = wire::WatchAction::Pipeline {
        plan: Box::new(protocol::run::PlanParams {
            project: "harbor".to_owned(),
            ..protocol::run::PlanParams::default()
        }),
    };
    assert_eq!(
        update("watch update scans --chain upscale", Some(&pipeline)),
        Err(
            "rule scans runs a pipeline; pass both --chain STEPS and --output DIR to make \
             it a chain"
                .to_owned()
        )
    );
    assert_eq!(
        update("watch update scans", None),
        Err(
            "nothing to change; pass --pattern, --budget, --poll, --settle, --keep-inputs, \
             --chain or --output (see `kromactl watch update --help`)"
                .to_owned()
        )
    );
}

#[test]
fn rules_and_their_files_read_as_tables() {
    let mut budget_spent = chain_rule();
    budget_spent.name = "inbox".to_owned();
    budget_spent.action = wire::WatchAction::Pipeline {
        plan: Box::new(protocol::run::PlanParams {
            project: "harbor".to_owned(),
            quality: Some("high".to_owned()),
            candidates: Some(2),
            ..protocol::run::PlanParams::default()
        }),
    };
    budget_spent.state = wire::RuleState::BudgetSpent;
    budget_spent.budget_usd = 5.0;
    budget_spent.spent_usd = 4.8;
    budget_spent.counts = wire::WatchCounts {
        seen: 12,
        running: 2,
        done: 9,
        failed: 1,
        duplicate: 3,
    };
    let mut failing = chain_rule();
    failing.state = wire::RuleState::Failing;
    failing.poll = true;
    failing.inputs = wire::Inputs::Keep;
    failing.settle_ms = 500;
    failing.patterns = vec!["*.tif".to_owned()];
    failing.action = wire::WatchAction::Chain {
        steps: vec![
            wire::LocalStep::BgRemove {
                model: Some("u2net".to_owned()),
                mask_only: false,
                matting: true,
                background: None,
            },
            upscale(Some(2)),
        ],
        output: "/out".to_owned(),
    };
    failing.last_error = Some(protocol::ErrorData {
        kind: protocol::ErrorKind::NotFound,
        code: "watch_folder_gone".to_owned(),
        message: "the folder /in is gone".to_owned(),
        hint: Some("create it again, or remove the rule".to_owned()),
        action: None,
    });
    let file = |name: &str, state: wire::FileState| wire::WatchFile {
        id: format!("f-{name}"),
        rule: "r1".to_owned(),
        name: name.to_owned(),
        path: format!("/in/done/{name}"),
        sha256: String::new(),
        state,
        instruction: None,
        run: None,
        output: None,
        duplicate_of: None,
        reason: None,
        seen_at: "2026-12-06T10:00:00Z".to_owned(),
        updated_at: "2026-12-06T10:00:05Z".to_owned(),
    };
    let log = wire::WatchLog {
        rule: budget_spent.clone(),
        files: vec![
            wire::WatchFile {
                instruction: Some("i-2".to_owned()),
                reason: Some("the rule's budget is spent".to_owned()),
                ..file("b.png", wire::FileState::Waiting)
            },
            wire::WatchFile {
                instruction: Some("i-1".to_owned()),
                run: Some("run-1".to_owned()),
                ..file("a.png", wire::FileState::Done)
            },
            wire::WatchFile {
                duplicate_of: Some("f-a.png".to_owned()),
                ..file("a copy.png", wire::FileState::Duplicate)
            },
            wire::WatchFile {
                output: Some("/out/c.png".to_owned()),
                ..file("c.png", wire::FileState::Done)
            },
            wire::WatchFile {
                reason: Some("not an image".to_owned()),
                ..file("d.png", wire::FileState::Failed)
            },
        ],
    };
    let rules = [budget_spent.clone(), failing.clone()];
    insta::assert_snapshot!(
        [
            list_text(&rules),
            list_text(&[]),
            details_text(&budget_spent),
            details_text(&failing),
            added_text(&chain_rule()),
            log_text(&log),
            log_text(&wire::WatchLog {
                rule: chain_rule(),
                files: Vec::new(),
            }),
        ]
        .join("\n\n----\n\n")
    );
}

#[test]
fn durations_parse_to_milliseconds() {
    let check = |text: &str, expected: u64| {
        assert_eq!(parse_duration_ms(text), Ok(expected), "{text}");
    };
    check("500ms", 500);
    check("2s", 2_000);
    check("1.5s", 1_500);
    check("1.1s", 1_100);
    check("0.25s", 250);
    check("1m", 60_000);
    check("10min", 600_000);
    check("2000", 2_000);
    check(" 750 ms ", 750);
    check("0", 0);
}

#[test]
fn bad_durations_say_how_to_write_one() {
    let how = "write it as 500ms, 2s, 1.5s, 1m or milliseconds, 2000";
    for text in [
        "", "s", "2h", "-1s", "1,5s", "two", ".5s", "5.s", "1.2.3s", "2 s s",
    ] {
        assert_eq!(
            parse_duration_ms(text),
            Err(format!("`{text}` is not a duration; {how}")),
            "{text}"
        );
    }
    assert_eq!(
        parse_duration_ms("1.5ms"),
        Err("`1.5ms` is not a whole number of milliseconds".to_owned())
    );
    assert_eq!(
        parse_duration_ms("0.0001s"),
        Err("`0.0001s` is not a whole number of milliseconds".to_owned())
    );
    assert_eq!(
        parse_duration_ms("99999999999m"),
        Err("`99999999999m` is too long".to_owned())
    );
}

#[test]
fn duration_text_reads_back_as_the_same_duration() {
    for (ms, text) in [
        (0, "0ms"),
        (100, "100ms"),
        (1_500, "1500ms"),
        (2_000, "2s"),
        (90_000, "90s"),
        (600_000, "10m"),
    ] {
        assert_eq!(duration_text(ms), text);
        assert_eq!(parse_duration_ms(text), Ok(ms));
    }
}
