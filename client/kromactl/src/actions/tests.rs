//! The action renderings, each checked against kromactl's own clap tree and the protocol's
//! methods and params.

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
            call(
                "project.update",
                json!({"slug": "harbor", "s3": {
                    "bucket": "comics", "prefix": "", "endpoint": "http://127.0.0.1:9000",
                    "path_style": true, "checksum_mode": "when_supported",
                    "access_key_secret": "minio_id", "secret_key_secret": "minio_key",
                }}),
                &[],
            ),
            "kromactl project update harbor --s3-bucket comics --s3-prefix '' \
             --s3-endpoint http://127.0.0.1:9000 --s3-path-style true \
             --s3-checksum-mode when_supported --s3-access-key-secret minio_id \
             --s3-secret-key-secret minio_key",
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
        (
            call("image_model.list", json!({}), &[]),
            "kromactl image-models list",
        ),
        (
            call("image_model.list", json!({"refresh": "openai"}), &[]),
            "kromactl image-models list --refresh openai",
        ),
        (
            call("local_model.list", json!({}), &[]),
            "kromactl local-models list",
        ),
        (
            call("local_model.list", json!({"verify": true}), &[]),
            "kromactl local-models list --verify",
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
                "run.retry",
                json!({"run": RUN, "only_drifted": true}),
                &["confirm_cost_usd"],
            ),
            "kromactl run retry 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 --only-drifted",
        ),
        (
            call(
                "run.approve",
                json!({"run": RUN, "job": "style_1_harbor", "candidate": 2}),
                &[],
            ),
            "kromactl run approve 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 style_1_harbor 2",
        ),
        (
            call("run.baselines", json!({"project": "harbor"}), &[]),
            "kromactl run baselines harbor",
        ),
        (
            call("run.sheet", json!({"run": RUN, "thumb": 256}), &[]),
            "kromactl run sheet 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 --thumb 256",
        ),
        (
            call(
                "qa.check",
                json!({"paths": ["/p/outputs", "/tmp/a b.png"], "project": "harbor", "max_chroma_delta": 1.5}),
                &[],
            ),
            "kromactl qa /p/outputs '/tmp/a b.png' --project harbor --max-chroma-delta 1.5",
        ),
        (
            call("qa.check", json!({"run": RUN}), &[]),
            "kromactl qa --run 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21",
        ),
        (
            call("qa.check", json!({"asset": "a1", "project": "harbor"}), &[]),
            "kromactl qa --asset a1 --project harbor",
        ),
        (
            call(
                "qa.archive_bad",
                json!({"paths": ["/p/outputs/bad.png"], "into": "/p/rejects"}),
                &[],
            ),
            "kromactl archive-bad /p/outputs/bad.png --into /p/rejects",
        ),
        (
            call(
                "file.inspect",
                json!({"path": "/p/outputs/a.png", "project": "harbor"}),
                &[],
            ),
            "kromactl inspect /p/outputs/a.png --project harbor",
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
        (
            call(
                "instruction.list",
                json!({"project": "harbor", "state": "awaiting_confirmation"}),
                &[],
            ),
            "kromactl instruction list --project harbor --state awaiting_confirmation",
        ),
        (
            call("instruction.get", json!({"id": "i1"}), &[]),
            "kromactl instruction show i1",
        ),
        (
            call(
                "instruction.confirm",
                json!({"id": "i1"}),
                &["confirm_cost_usd"],
            ),
            "kromactl instruction confirm i1",
        ),
        (
            call("instruction.cancel", json!({"id": "i1"}), &[]),
            "kromactl instruction cancel i1",
        ),
        (
            call("instruction.code", json!({"id": "i1"}), &[]),
            "kromactl instruction code i1",
        ),
        (
            call("chat.list", json!({"project": "harbor"}), &[]),
            "kromactl chat list --project harbor",
        ),
        (
            call("chat.log", json!({"session": "s1", "limit": 50}), &[]),
            "kromactl chat log s1 --limit 50",
        ),
        (
            call("agent.allowance_get", json!({}), &[]),
            "kromactl agent allowance show",
        ),
        (
            call(
                "agent.allowance_set",
                json!({"per_instruction_usd": 1.5, "daily_usd": 5}),
                &[],
            ),
            "kromactl agent allowance set --per-instruction 1.5 --daily 5",
        ),
        (call("watch.list", json!({}), &[]), "kromactl watch list"),
        (
            call("watch.get", json!({"rule": "inbox"}), &[]),
            "kromactl watch show inbox",
        ),
        (
            call(
                "watch.update",
                json!({
                    "rule": "inbox", "patterns": ["*.png", "*.tif"], "budget_usd": 5,
                    "settle_ms": 500,
                }),
                &[],
            ),
            "kromactl watch update inbox --pattern '*.png' --pattern '*.tif' --budget 5 \
             --settle 500",
        ),
        (
            call("watch.remove", json!({"rule": "inbox"}), &[]),
            "kromactl watch remove inbox",
        ),
        (
            call("watch.pause", json!({"rule": "inbox"}), &[]),
            "kromactl watch pause inbox",
        ),
        (
            call("watch.resume", json!({"rule": "inbox"}), &[]),
            "kromactl watch resume inbox",
        ),
        (
            call("watch.log", json!({"rule": "inbox", "limit": 20}), &[]),
            "kromactl watch log inbox --limit 20",
        ),
        (
            call(
                "export.create",
                json!({"project": "harbor", "selection": {"kind": "approved"}}),
                &[],
            ),
            "kromactl export create harbor --approved",
        ),
        (
            call(
                "export.create",
                json!({"project": "harbor", "selection": {"kind": "run", "run": RUN}, "format": "folder"}),
                &[],
            ),
            "kromactl export create harbor --run 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 --folder",
        ),
        (
            call(
                "export.create",
                json!({"project": "harbor", "selection": {"kind": "assets", "assets": ["a1", "a2"]}, "format": "tar_gz"}),
                &[],
            ),
            "kromactl export create harbor --asset a1 --asset a2",
        ),
        (
            call(
                "export.create",
                json!({"project": "harbor", "selection": {"kind": "project"}}),
                &[],
            ),
            "kromactl export create harbor --project-all",
        ),
        (
            call("export.list", json!({"project": "harbor"}), &[]),
            "kromactl export list --project harbor",
        ),
        (
            call("export.get", json!({"id": "e1"}), &[]),
            "kromactl export show e1",
        ),
        (
            call("export.verify", json!({"id": "e1"}), &[]),
            "kromactl export verify e1",
        ),
        (
            call("export.delete", json!({"id": "e1"}), &["confirm"]),
            "kromactl export rm e1",
        ),
        (
            call("storage.plan", json!({"project": "harbor"}), &[]),
            "kromactl storage plan harbor",
        ),
        (
            call(
                "storage.plan",
                json!({"project": "harbor", "what": {"kind": "project"}, "direction": "push", "delete": false}),
                &[],
            ),
            "kromactl storage plan harbor",
        ),
        (
            call(
                "storage.sync",
                json!({
                    "project": "harbor", "what": {"kind": "export", "id": "e1"},
                    "direction": "pull", "delete": true, "dry_run": true,
                }),
                &[],
            ),
            "kromactl storage sync harbor --export e1 --pull --delete --dry-run",
        ),
        (
            call("storage.check", json!({"project": "harbor"}), &[]),
            "kromactl doctor",
        ),
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
    // The forms kromad's hints use.
    check(
        &call("provider.update", json!({"name": "openai"}), &["base_url"]),
        "kromactl provider update openai --base-url URL",
    );
    check(
        &call("project.create", json!({"name": "!!!"}), &["slug"]),
        "kromactl project create '!!!' --slug SLUG",
    );
    check(
        &call("style_guide.list", json!({}), &["project"]),
        "kromactl style list PROJECT",
    );
    check(
        &call("asset.list", json!({}), &["project"]),
        "kromactl asset list PROJECT",
    );
    check(
        &call("run.show", json!({}), &["run"]),
        "kromactl run show RUN",
    );
    // `qa` checks paths, a run or an asset: no PATH placeholder beside the other two.
    check(&call("qa.check", json!({}), &["paths"]), "kromactl qa PATH");
    check(
        &call("qa.check", json!({"project": "harbor"}), &["asset"]),
        "kromactl qa --asset ID --project harbor",
    );
    check_unparsed(
        &call(
            "run.approve",
            json!({"run": RUN, "job": "style_1_harbor"}),
            &["candidate"],
        ),
        "kromactl run approve 0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21 style_1_harbor CANDIDATE",
    );
    // The forms a drop-folder rule's hints use.
    check_unparsed(
        &call("watch.update", json!({"rule": "inbox"}), &["budget_usd"]),
        "kromactl watch update inbox --budget USD",
    );
    check(
        &call(
            "watch.update",
            json!({"rule": "inbox", "patterns": []}),
            &[],
        ),
        "kromactl watch update inbox --default-patterns",
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
    // A rule's action, and switches only one way round, have no flag in the table.
    check(
        &call(
            "watch.add",
            json!({"folder": "/in", "action": {"type": "chain", "steps": [{"step": "upscale"}], "output": "/out"}}),
            &[],
        ),
        r#"kromactl rpc call watch.add '{"action":{"output":"/out","steps":[{"step":"upscale"}],"type":"chain"},"folder":"/in"}'"#,
    );
    check(
        &call("watch.update", json!({"rule": "inbox", "poll": false}), &[]),
        r#"kromactl rpc call watch.update '{"poll":false,"rule":"inbox"}'"#,
    );
    // A selection the flags cannot say, or none: the human picks one, no placeholder says which.
    check(
        &call(
            "export.create",
            json!({"project": "harbor", "selection": {"kind": "run"}}),
            &[],
        ),
        r#"kromactl rpc call export.create '{"project":"harbor","selection":{"kind":"run"}}'"#,
    );
    check(
        &call(
            "export.create",
            json!({"project": "harbor", "selection": {"kind": "assets", "assets": []}}),
            &[],
        ),
        r#"kromactl rpc call export.create '{"project":"harbor","selection":{"assets":[],"kind":"assets"}}'"#,
    );
    check(
        &call(
            "export.create",
            json!({"project": "harbor", "selection": {"kind": "approved", "run": RUN}}),
            &[],
        ),
        &format!(
            r#"kromactl rpc call export.create '{{"project":"harbor","selection":{{"kind":"approved","run":"{RUN}"}}}}'"#
        ),
    );
    check(
        &call(
            "export.create",
            json!({"project": "harbor", "selection": {"kind": "scenes"}}),
            &[],
        ),
        r#"kromactl rpc call export.create '{"project":"harbor","selection":{"kind":"scenes"}}'"#,
    );
    check(
        &call(
            "export.create",
            json!({"project": "harbor"}),
            &["selection"],
        ),
        r#"kromactl rpc call export.create '{"project":"harbor","selection":SELECTION}'"#,
    );
    check(
        &call("export.create", json!({"project": "harbor"}), &[]),
        r#"kromactl rpc call export.create '{"project":"harbor"}'"#,
    );
    check(
        &call(
            "qa.check",
            json!({"paths": ["/p"], "enforce_grayscale": false}),
            &[],
        ),
        r#"kromactl rpc call qa.check '{"enforce_grayscale":false,"paths":["/p"]}'"#,
    );
    // An export with more than its id, or a direction of a later kromad.
    check(
        &call(
            "storage.sync",
            json!({"project": "harbor", "what": {"kind": "export", "id": "e1", "only": "a.png"}}),
            &[],
        ),
        r#"kromactl rpc call storage.sync '{"project":"harbor","what":{"id":"e1","kind":"export","only":"a.png"}}'"#,
    );
    check(
        &call(
            "storage.plan",
            json!({"project": "harbor", "direction": "both"}),
            &[],
        ),
        r#"kromactl rpc call storage.plan '{"direction":"both","project":"harbor"}'"#,
    );
    // Values of a shape the command cannot type.
    check(
        &call("project.get", json!({"slug": ["a", "b"]}), &[]),
        r#"kromactl rpc call project.get '{"slug":["a","b"]}'"#,
    );
    check(
        &call("local_model.list", json!({"verify": "yes"}), &[]),
        r#"kromactl rpc call local_model.list '{"verify":"yes"}'"#,
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
        "kromactl local-models install",
    );
    check(
        &protocol::Action::InstallModels { quality: true },
        "kromactl local-models install --quality",
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

/// Methods of the contract kromactl has no command for: agents propose instructions, submit
/// codes, say hello and report what the MCP server refused through the MCP server (or
/// `kromactl rpc call`); and `watch.add`, whose command the table cannot spell.
const UNSPELLED: &[&str] = &[
    "daemon.version",
    "events.subscribe",
    "instruction.create",
    "instruction.confirm_code",
    "agent.hello",
    "agent.refused",
    "chat.create",
    "chat.append",
    // `kromactl watch add` exists, but the table cannot type a rule's action.
    "watch.add",
];

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
    // A new action is `--chain` with `--output`, which the table cannot spell; `poll` and
    // `inputs` are pairs of switches (`--poll`/`--no-poll`, `--keep-inputs`/`--move-inputs`).
    ("watch.update", "action"),
    ("watch.update", "poll"),
    ("watch.update", "inputs"),
    // Switches one way round: `false`, a project's setting turned off, has no flag.
    ("qa.check", "enforce_grayscale"),
    ("qa.check", "fail_on_chroma_exceed"),
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
            if let Form::Variants(variants) = arg.form {
                for (field, _) in variants.iter().filter_map(|variant| variant.field) {
                    let path = format!("{}.{field}", arg.param);
                    assert!(
                        paths.contains(&path),
                        "{}: no param {path}",
                        spelling.method
                    );
                }
            }
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
                    command = command
                        .find_subcommand(word)
                        .unwrap_or_else(|| panic!("{}: no subcommand `{word}`", spelling.method));
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
                Form::Variants(variants) => {
                    for variant in variants {
                        let Some(long) = variant.flag else { continue };
                        let clap_arg = flag(long);
                        let takes_values = clap_arg.get_action().takes_values();
                        assert_eq!(takes_values, variant.field.is_some(), "{long}");
                        if let Some((_, placeholder)) = variant.field {
                            let names = clap_arg.get_value_names().unwrap_or_default();
                            assert_eq!(
                                names.first().map(|name| name.as_str()),
                                Some(placeholder),
                                "{} {long}",
                                spelling.method
                            );
                        }
                    }
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
