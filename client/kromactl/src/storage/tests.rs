//! The storage flags as params, and the text of plans, the delete question, progress and
//! reports, as snapshots.

use clap::Parser;

use super::*;

const DESTINATION: &str = "s3://comics/kroma/harbor/";

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: StorageCommand,
}

fn parse(args: &[&str]) -> Result<StorageCommand, clap::Error> {
    Cli::try_parse_from(["storage"].iter().chain(args)).map(|cli| cli.command)
}

#[test]
fn flags_become_params() {
    let Ok(StorageCommand::Plan(args)) = parse(&["plan", "harbor"]) else {
        panic!("plan parses");
    };
    assert_eq!(
        plan_params(args),
        wire::PlanParams {
            project: "harbor".to_owned(),
            what: wire::What::Project,
            direction: wire::Direction::Push,
            delete: false,
        }
    );
    let Ok(StorageCommand::Sync(args)) = parse(&[
        "sync",
        "harbor",
        "--export",
        "e1",
        "--pull",
        "--delete",
        "--dry-run",
        "--yes",
    ]) else {
        panic!("sync parses");
    };
    assert!(args.yes);
    assert_eq!(
        sync_params(args.plan, args.dry_run),
        wire::SyncParams {
            project: "harbor".to_owned(),
            what: wire::What::Export {
                id: "e1".to_owned()
            },
            direction: wire::Direction::Pull,
            delete: true,
            dry_run: true,
            confirmed_deletes: None,
        }
    );
    for refused in [
        &["plan"][..],
        &["plan", "harbor", "--dry-run"],
        &["plan", "harbor", "--export"],
        &["sync", "harbor", "--push"],
    ] {
        assert!(parse(refused).is_err(), "{refused:?}");
    }
}

fn item(op: wire::Op, reason: wire::Reason, path: &str, size: u64) -> wire::PlanItem {
    wire::PlanItem {
        op,
        reason,
        path: path.to_owned(),
        key: format!("kroma/harbor/{path}"),
        size,
    }
}

/// A push of the project folder with an upload of each reason, a delete and a skipped link.
fn push_plan() -> wire::Plan {
    wire::Plan {
        project: "harbor".to_owned(),
        what: wire::What::Project,
        direction: wire::Direction::Push,
        delete: true,
        destination: DESTINATION.to_owned(),
        items: vec![
            item(
                wire::Op::Upload,
                wire::Reason::New,
                "outputs/a.png",
                1_258_291,
            ),
            item(wire::Op::Upload, wire::Reason::Changed, "runs/r1.json", 812),
            item(
                wire::Op::Delete,
                wire::Reason::Gone,
                "outputs/old.png",
                20_480,
            ),
        ],
        unchanged: 40,
        transfer_bytes: 1_259_103,
        kept: 0,
        resumable: 1,
        skipped: vec![wire::Skipped {
            path: "outputs/link.png".to_owned(),
            reason: "symbolic link".to_owned(),
        }],
    }
}

/// A pull of one export without --delete: one download, two files only in the folder.
fn pull_plan() -> wire::Plan {
    wire::Plan {
        project: "harbor".to_owned(),
        what: wire::What::Export {
            id: "e1".to_owned(),
        },
        direction: wire::Direction::Pull,
        delete: false,
        destination: DESTINATION.to_owned(),
        items: vec![item(
            wire::Op::Download,
            wire::Reason::New,
            "exports/harbor-approved-e1.tar.gz",
            3_565_158,
        )],
        unchanged: 0,
        transfer_bytes: 3_565_158,
        kept: 2,
        resumable: 0,
        skipped: vec![],
    }
}

/// Nothing to move: every file the same on both sides.
fn empty_plan() -> wire::Plan {
    wire::Plan {
        items: vec![],
        transfer_bytes: 0,
        resumable: 0,
        skipped: vec![],
        unchanged: 42,
        delete: false,
        kept: 3,
        ..push_plan()
    }
}

fn report(plan: wire::Plan) -> wire::SyncReport {
    wire::SyncReport {
        plan,
        dry_run: false,
        ok: true,
        uploaded: 0,
        downloaded: 0,
        deleted: 0,
        bytes: 0,
        resumed_parts: 0,
        aborted_uploads: 0,
        failed: vec![],
    }
}

#[test]
fn plans_read_as_a_line_per_step_then_the_counts() {
    let mut pull_with_delete = pull_plan();
    pull_with_delete.delete = true;
    pull_with_delete.kept = 0;
    pull_with_delete.items.push(item(
        wire::Op::Delete,
        wire::Reason::Gone,
        "exports/harbor-approved-e1.tar.gz.old",
        1024,
    ));
    let mut dry_run = report(push_plan());
    dry_run.dry_run = true;
    insta::assert_snapshot!(
        [
            text::plan_text(&push_plan()),
            text::plan_text(&pull_plan()),
            text::plan_text(&empty_plan()),
            text::delete_question(&push_plan()),
            text::delete_question(&pull_with_delete),
            text::dry_run_text(&dry_run),
        ]
        .join("\n\n----\n\n")
    );
}

#[test]
fn reports_read_as_counts_then_every_failure() {
    let done = wire::SyncReport {
        uploaded: 2,
        deleted: 1,
        bytes: 1_259_103,
        resumed_parts: 3,
        aborted_uploads: 1,
        ..report(push_plan())
    };
    let failed = wire::SyncReport {
        ok: false,
        uploaded: 1,
        bytes: 812,
        failed: vec![
            wire::Failure {
                path: "outputs/a.png".to_owned(),
                op: wire::Op::Upload,
                code: "AccessDenied".to_owned(),
                message: "Access Denied".to_owned(),
            },
            wire::Failure {
                path: "outputs/old.png".to_owned(),
                op: wire::Op::Delete,
                code: "io".to_owned(),
                message: "permission denied".to_owned(),
            },
        ],
        ..report(push_plan())
    };
    let pulled = wire::SyncReport {
        downloaded: 1,
        bytes: 3_565_158,
        ..report(pull_plan())
    };
    let progress = wire::SyncProgress {
        project: "harbor".to_owned(),
        direction: wire::Direction::Pull,
        done: 3,
        total: 12,
        bytes_done: 1024,
        bytes_total: 4096,
    };
    insta::assert_snapshot!(
        [
            text::report_text(&done),
            text::report_text(&failed),
            text::failed_message(&failed),
            text::report_text(&pulled),
            text::progress_message(&progress),
        ]
        .join("\n\n----\n\n")
    );
}
