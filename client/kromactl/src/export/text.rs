//! What the `export` commands print: the export made, the list, one export, the delete
//! question, and a verification (a line per file that does not match).

use kroma_protocol as protocol;
use protocol::export as wire;

use crate::output;

/// `exported 12 files (3.4 MiB) of harbor to PATH`, then its id and hash.
pub fn created_text(export: &wire::Export) -> String {
    format!(
        "exported {} ({}) of {} to {}\nid:     {}\nsha256: {}",
        files(export.files),
        human_size(export.bytes),
        export.project,
        export.path,
        export.id,
        sha256_text(export)
    )
}

/// The line `export create` prints before it waits for kromad.
pub fn exporting_text(params: &wire::CreateParams) -> String {
    let what = match &params.selection {
        wire::Selection::Approved => "the approved baselines".to_owned(),
        wire::Selection::Run { run } => format!("the winners and record of run {run}"),
        wire::Selection::Assets { assets } if assets.len() == 1 => "1 asset".to_owned(),
        wire::Selection::Assets { assets } => format!("{} assets", assets.len()),
        wire::Selection::Project => "every asset and run record".to_owned(),
    };
    let into = match params.format {
        wire::ExportFormat::TarGz => "a .tar.gz",
        wire::ExportFormat::Folder => "a folder",
    };
    format!("exporting from {}: {what}, as {into}…", params.project)
}

pub fn list_text(list: &wire::ExportList) -> String {
    if list.exports.is_empty() {
        return "no exports; make one with `kromactl export create PROJECT --approved`".to_owned();
    }
    let mut table = output::table(&[
        "id",
        "project",
        "selection",
        "format",
        "files",
        "size",
        "created",
        "path",
    ]);
    for export in &list.exports {
        table.add_row(vec![
            export.id.clone(),
            export.project.clone(),
            selection_text(&export.selection),
            export.format.as_str().to_owned(),
            export.files.to_string(),
            human_size(export.bytes),
            export.created_at.clone(),
            export.path.clone(),
        ]);
    }
    table.to_string()
}

pub fn details_text(export: &wire::Export) -> String {
    output::details(&[
        ("id", export.id.clone()),
        ("project", export.project.clone()),
        ("selection", selection_text(&export.selection)),
        ("format", export.format.as_str().to_owned()),
        ("path", export.path.clone()),
        ("files", export.files.to_string()),
        (
            "size",
            format!("{} ({} bytes)", human_size(export.bytes), export.bytes),
        ),
        ("sha256", sha256_text(export)),
        ("created", export.created_at.clone()),
    ])
    .to_string()
}

/// `Delete export ID, 12 files (3.4 MiB) in the .tar.gz PATH?`
pub fn delete_question(export: &wire::Export) -> String {
    let holder = match export.format {
        wire::ExportFormat::TarGz => "the .tar.gz",
        wire::ExportFormat::Folder => "the folder",
    };
    format!(
        "Delete export {}, {} ({}) in {holder} {}?",
        export.id,
        files(export.files),
        human_size(export.bytes),
        export.path
    )
}

/// `ok: 3 files match the manifest`, or a line per file that does not, then the counts.
pub fn verify_text(report: &wire::VerifyReport) -> String {
    if report.ok {
        return format!("ok: {}", matching(report.checked));
    }
    let mut lines = Vec::new();
    for (label, paths) in [
        ("changed:", &report.changed),
        ("missing:", &report.missing),
        ("extra:", &report.extra),
    ] {
        lines.extend(paths.iter().map(|path| format!("{label:<8} {path}")));
    }
    lines.push(format!("{}; {}", matching(report.checked), counts(report)));
    lines.join("\n")
}

/// The error of a verification that is not ok.
pub fn mismatch_message(report: &wire::VerifyReport) -> String {
    format!("the export does not match its manifest: {}", counts(report))
}

/// `approved`, `run ID`, `3 assets`, `project`.
pub fn selection_text(selection: &wire::Selection) -> String {
    match selection {
        wire::Selection::Approved => "approved".to_owned(),
        wire::Selection::Run { run } => format!("run {run}"),
        wire::Selection::Assets { assets } if assets.len() == 1 => "1 asset".to_owned(),
        wire::Selection::Assets { assets } => format!("{} assets", assets.len()),
        wire::Selection::Project => "project".to_owned(),
    }
}

/// `512 B`, `1.5 KiB`, `3.4 MiB`: binary units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    // Rounded to one decimal, 1023.96 KiB would read 1024.0 KiB: that is 1.0 MiB.
    while (value * 10.0).round() >= 1024.0 * 10.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The hash and what it is of: the archive, or a folder's manifest.
fn sha256_text(export: &wire::Export) -> String {
    match export.format {
        wire::ExportFormat::TarGz => export.sha256.clone(),
        wire::ExportFormat::Folder => format!("{} (of its manifest.json)", export.sha256),
    }
}

/// `1 changed, 0 missing, 2 extra`.
fn counts(report: &wire::VerifyReport) -> String {
    format!(
        "{} changed, {} missing, {} extra",
        report.changed.len(),
        report.missing.len(),
        report.extra.len()
    )
}

/// `1 file matches the manifest`, `3 files match the manifest`.
fn matching(n: u32) -> String {
    if n == 1 {
        "1 file matches the manifest".to_owned()
    } else {
        format!("{n} files match the manifest")
    }
}

/// `1 file`, `12 files`.
fn files(n: u32) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}
