//! What the `storage` commands print: a plan (where to, a line per step, what is left alone and
//! the counts), the question before deletes, the progress bar's message, and a sync's report
//! with every failure.

use kroma_protocol as protocol;
use protocol::storage as wire;

use crate::export::text::human_size;

/// Paths longer than this are not padded to line up the sizes after them.
const MAX_PATH_COLUMN: usize = 60;

/// `push harbor (the project folder) to s3://…`, a line per step (deletes in capitals), the
/// entries left out and why, then the counts.
pub fn plan_text(plan: &wire::Plan) -> String {
    let mut lines = vec![heading(plan)];
    let width = plan
        .items
        .iter()
        .map(|item| item.path.chars().count())
        .filter(|width| *width <= MAX_PATH_COLUMN)
        .max()
        .unwrap_or(0);
    for item in &plan.items {
        let (op, side) = match (item.op, plan.direction) {
            (wire::Op::Upload, _) => ("upload", ""),
            (wire::Op::Download, _) => ("download", ""),
            (wire::Op::Delete, wire::Direction::Push) => ("DELETE", "  (from the bucket)"),
            (wire::Op::Delete, wire::Direction::Pull) => ("DELETE", "  (from the folder)"),
        };
        let reason = match item.reason {
            wire::Reason::New => "new",
            wire::Reason::Changed => "changed",
            wire::Reason::Gone => "gone",
        };
        lines.push(format!(
            "{op:<8}  {reason:<7}  {path:<width$}  {size}{side}",
            path = item.path,
            size = human_size(item.size),
        ));
    }
    for skipped in &plan.skipped {
        lines.push(format!("skipped   {} ({})", skipped.path, skipped.reason));
    }
    lines.push(summary(plan));
    lines.join("\n")
}

/// The plan a dry run returned, and that nothing changed.
pub fn dry_run_text(report: &wire::SyncReport) -> String {
    format!("{}\ndry run: nothing changed", plan_text(&report.plan))
}

/// `Delete 3 objects (20.0 KiB) under s3://… that the project folder no longer has?`
pub fn delete_question(plan: &wire::Plan) -> String {
    let deletes: Vec<&wire::PlanItem> = plan
        .items
        .iter()
        .filter(|item| item.op == wire::Op::Delete)
        .collect();
    let bytes = deletes.iter().map(|item| item.size).sum();
    let n = deletes.len();
    match plan.direction {
        wire::Direction::Push => format!(
            "Delete {} ({}) under {} that {} no longer has?",
            count(n, "object", "objects"),
            human_size(bytes),
            plan.destination,
            source_name(plan)
        ),
        wire::Direction::Pull => format!(
            "Delete {} ({}) from {}'s folder that {} no longer has?",
            count(n, "file", "files"),
            human_size(bytes),
            plan.project,
            plan.destination
        ),
    }
}

/// The progress bar's message: `uploading 3/12 files`.
pub fn progress_message(step: &wire::SyncProgress) -> String {
    let verb = match step.direction {
        wire::Direction::Push => "uploading",
        wire::Direction::Pull => "downloading",
    };
    format!("{verb} {}/{} files", step.done, step.total)
}

/// What a sync did: where, the counts and bytes, resumed and aborted uploads, then a line per
/// failure (the error after it says how many).
pub fn report_text(report: &wire::SyncReport) -> String {
    let plan = &report.plan;
    let (done, moved) = match plan.direction {
        wire::Direction::Push => (
            format!("pushed {} to {}", source_name(plan), plan.destination),
            format!("{} uploaded", report.uploaded),
        ),
        wire::Direction::Pull => (
            format!("pulled {} from {}", source_name(plan), plan.destination),
            format!("{} downloaded", report.downloaded),
        ),
    };
    let mut lines = vec![format!(
        "{done}: {moved}, {} deleted, {} moved",
        report.deleted,
        human_size(report.bytes)
    )];
    let mut uploads = Vec::new();
    if report.resumed_parts > 0 {
        uploads.push(format!(
            "{} of unfinished uploads already in the bucket, not sent again",
            count(report.resumed_parts as usize, "part", "parts")
        ));
    }
    if report.aborted_uploads > 0 {
        uploads.push(format!(
            "{} aborted (its file changed or went away)",
            count(
                report.aborted_uploads as usize,
                "unfinished upload",
                "unfinished uploads"
            )
        ));
    }
    if !uploads.is_empty() {
        lines.push(uploads.join("; "));
    }
    for failure in &report.failed {
        lines.push(format!(
            "FAILED  {:<8}  {}: {}: {}",
            op_name(failure.op),
            failure.path,
            failure.code,
            failure.message
        ));
    }
    lines.join("\n")
}

/// The error of a sync with failures: `the sync did not finish: 2 of 5 steps failed; …`.
pub fn failed_message(report: &wire::SyncReport) -> String {
    format!(
        "the sync did not finish: {} of {} failed; the others went on",
        report.failed.len(),
        count(report.plan.items.len(), "step", "steps")
    )
}

/// `push harbor (the project folder) to s3://…`, `pull export E1 of harbor from s3://…`.
fn heading(plan: &wire::Plan) -> String {
    let delete = if plan.delete { ", with --delete" } else { "" };
    match plan.direction {
        wire::Direction::Push => {
            format!("push {} to {}{delete}", source_name(plan), plan.destination)
        }
        wire::Direction::Pull => format!(
            "pull {} from {}{delete}",
            source_name(plan),
            plan.destination
        ),
    }
}

/// `harbor's folder`, or `export E1 of harbor`.
fn source_name(plan: &wire::Plan) -> String {
    match &plan.what {
        wire::What::Project => format!("{}'s folder", plan.project),
        wire::What::Export { id } => format!("export {id} of {}", plan.project),
    }
}

/// `2 to upload (1.2 MiB), 1 to delete from the bucket, 40 unchanged, …`, or `nothing to do: …`.
fn summary(plan: &wire::Plan) -> String {
    let n_transfers = plan
        .items
        .iter()
        .filter(|item| item.op != wire::Op::Delete)
        .count();
    let n_deletes = plan.items.len() - n_transfers;
    let (verb, side) = match plan.direction {
        wire::Direction::Push => ("upload", "the bucket"),
        wire::Direction::Pull => ("download", "the folder"),
    };
    let mut parts = Vec::new();
    if n_transfers > 0 {
        parts.push(format!(
            "{n_transfers} to {verb} ({})",
            human_size(plan.transfer_bytes)
        ));
    }
    if n_deletes > 0 {
        parts.push(format!("{n_deletes} to delete from {side}"));
    }
    parts.push(format!("{} unchanged", plan.unchanged));
    if plan.kept > 0 {
        parts.push(format!(
            "{} only in {side}, kept (--delete is off)",
            plan.kept
        ));
    }
    if plan.resumable > 0 {
        parts.push(format!(
            "{} to resume",
            count(
                plan.resumable as usize,
                "unfinished upload",
                "unfinished uploads"
            )
        ));
    }
    if !plan.skipped.is_empty() {
        parts.push(format!("{} skipped", plan.skipped.len()));
    }
    let counts = parts.join(", ");
    if plan.items.is_empty() {
        format!("nothing to do: {counts}")
    } else {
        counts
    }
}

fn op_name(op: wire::Op) -> &'static str {
    match op {
        wire::Op::Upload => "upload",
        wire::Op::Download => "download",
        wire::Op::Delete => "delete",
    }
}

/// `1 file`, `12 files`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
