//! The kromactl command line is a contract: its help texts are snapshots, so a change shows up as
//! a diff in review.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kromactl"))
        .args(args)
        .arg("--help")
        .env_remove("KROMA_SOCKET")
        .env_remove("KROMA_DATA_DIR")
        .env("COLUMNS", "100")
        .output()
        .expect("run kromactl");
    assert!(output.status.success(), "{args:?}");
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

#[test]
fn help_texts_match_snapshots() {
    let commands: &[&[&str]] = &[
        &[],
        &["daemon"],
        &["daemon", "start"],
        &["daemon", "stop"],
        &["project"],
        &["project", "create"],
        &["project", "update"],
        &["project", "rm"],
        &["asset", "import"],
        &["style", "create"],
        &["character", "create"],
        &["refset", "add"],
        &["template", "create"],
        &["bootstrap", "import"],
        &["secret", "set"],
        &["provider", "add"],
        &["provider", "update"],
        &["run"],
        &["run", "plan"],
        &["run", "create"],
        &["run", "start"],
        &["run", "watch"],
        &["run", "list"],
        &["run", "show"],
        &["run", "cancel"],
        &["run", "retry"],
        &["run", "approve"],
        &["run", "baselines"],
        &["run", "sheet"],
        &["cost"],
        &["settings", "show"],
        &["image-models", "list"],
        &["doctor"],
        &["events"],
        &["audit", "list"],
        &["rpc", "call"],
        &["color"],
        &["bg-remove"],
        &["upscale"],
        &["qa"],
        &["archive-bad"],
        &["inspect"],
        &["watch"],
        &["watch", "add"],
        &["watch", "list"],
        &["watch", "show"],
        &["watch", "update"],
        &["watch", "remove"],
        &["watch", "pause"],
        &["watch", "resume"],
        &["watch", "log"],
        &["export"],
        &["export", "create"],
        &["export", "list"],
        &["export", "show"],
        &["export", "verify"],
        &["export", "rm"],
        &["storage"],
        &["storage", "plan"],
        &["storage", "sync"],
        &["local-models", "list"],
        &["local-models", "install"],
        &["bench", "rpc"],
        &["bench", "runs"],
        &["bench", "postprocess"],
        &["bench", "watch"],
        &["bench", "qa"],
        &["bench", "sync"],
        &["dev", "fake-provider"],
        &["dev", "s3-server"],
    ];
    for args in commands {
        let name = if args.is_empty() {
            "kromactl".to_owned()
        } else {
            format!("kromactl {}", args.join(" "))
        };
        insta::assert_snapshot!(name.replace(' ', "_"), help(args), &name);
    }
}

#[test]
fn the_old_model_spellings_still_work_and_stay_hidden() {
    assert_eq!(help(&["model", "list"]), help(&["image-models", "list"]));
    assert_eq!(help(&["models", "list"]), help(&["local-models", "list"]));
    let top = help(&[]);
    assert!(top.contains("image-models") && top.contains("local-models"));
    assert!(
        !top.contains("\n  model ") && !top.contains("\n  models "),
        "{top}"
    );
}
