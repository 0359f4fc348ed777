//! Verifying exports here on real files in a temporary folder (archives built with the `tar`
//! crate as kromad's are: sorted, fixed times and owners), the selection flags, and the text.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use sha2::{Digest, Sha256};

use super::*;

const PNG_A: &[u8] = b"\x89PNG a: the first output";
const RUN_RECORD: &[u8] = br#"{"run":"r1","jobs":[]}"#;

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A manifest listing `files` (path and contents) in the given format.
fn manifest_json(format_version: u32, files: &[(&str, &[u8])]) -> Vec<u8> {
    let manifest = wire::Manifest {
        format_version,
        project: wire::ManifestProject {
            id: "p1".to_owned(),
            slug: "harbor".to_owned(),
            name: "Night Harbor".to_owned(),
        },
        created: "2026-12-06T14:30:00.000Z".to_owned(),
        selection: wire::Selection::Project,
        files: files
            .iter()
            .map(|(path, bytes)| wire::ManifestFile {
                path: (*path).to_owned(),
                size: bytes.len() as u64,
                sha256: sha256(bytes),
                produced_by: wire::ProducedBy::default(),
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&manifest).unwrap()
}

/// The two files every test export lists.
fn listed() -> Vec<(&'static str, &'static [u8])> {
    vec![("files/outputs/a.png", PNG_A), ("runs/r1.json", RUN_RECORD)]
}

/// One entry of a test archive.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    /// A link, device or FIFO: its type and, for links, where it points.
    Special(&'a str, tar::EntryType, &'a str),
}

/// Writes a deterministic `.tar.gz` of `entries`, in order, as kromad writes exports. Names go
/// into the header as they are, so an archive may hold what `tar::Builder` refuses (`../evil`).
fn write_archive(path: &Path, entries: &[Entry]) {
    let file = std::fs::File::create(path).unwrap();
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    for entry in entries {
        let (name, kind, data, link) = match entry {
            Entry::File(name, data) => (*name, tar::EntryType::Regular, *data, None),
            Entry::Dir(name) => (*name, tar::EntryType::Directory, &[][..], None),
            Entry::Special(name, kind, link) => (*name, *kind, &[][..], Some(*link)),
        };
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if let Some(link) = link.filter(|link| !link.is_empty()) {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// A temporary folder, and the archive path in it.
fn archive_in(temp: &tempfile::TempDir, entries: &[Entry]) -> PathBuf {
    let path = temp.path().join("harbor-export.tar.gz");
    write_archive(&path, entries);
    path
}

/// The manifest, then the listed files in path order.
fn intact_entries<'a>(manifest: &'a [u8]) -> Vec<Entry<'a>> {
    let mut entries = vec![Entry::File(wire::MANIFEST, manifest)];
    entries.extend(
        listed()
            .into_iter()
            .map(|(path, bytes)| Entry::File(path, bytes)),
    );
    entries
}

/// The report's lists: `(checked, changed, missing, extra)`.
fn lists(report: &wire::VerifyReport) -> (u32, Vec<&str>, Vec<&str>, Vec<&str>) {
    (
        report.checked,
        strs(&report.changed),
        strs(&report.missing),
        strs(&report.extra),
    )
}

fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

fn error_text(failure: Failure) -> String {
    match failure {
        Failure::Other { message, hint, .. } => format!("{message} (hint: {hint:?})"),
        other => format!("{other:?}"),
    }
}

#[test]
fn an_intact_archive_matches_its_manifest() {
    let temp = tempfile::tempdir().unwrap();
    let manifest = manifest_json(1, &listed());
    let mut entries = intact_entries(&manifest);
    // Folder entries are passed over, and `./` prefixes read as the same paths.
    entries.insert(1, Entry::Dir("files/"));
    entries.push(Entry::Dir("./runs/"));
    let path = archive_in(&temp, &entries);
    let report = local::verify_archive(&path).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(lists(&report), (2, vec![], vec![], vec![]));
    assert_eq!(
        local::target(&path).unwrap(),
        local::Target::Archive(path.clone())
    );
    assert_eq!(text::verify_text(&report), "ok: 2 files match the manifest");
}

#[test]
fn an_archive_names_every_changed_missing_and_extra_file() {
    let temp = tempfile::tempdir().unwrap();
    let manifest = manifest_json(1, &listed());
    // One byte of the PNG tampered with.
    let mut tampered = PNG_A.to_vec();
    tampered[5] ^= 1;
    let path = archive_in(
        &temp,
        &[
            Entry::File(wire::MANIFEST, &manifest),
            Entry::File("files/outputs/a.png", &tampered),
            Entry::File("runs/r1.json", RUN_RECORD),
        ],
    );
    let report = local::verify_archive(&path).unwrap();
    assert!(!report.ok);
    assert_eq!(
        lists(&report),
        (1, vec!["files/outputs/a.png"], vec![], vec![])
    );
    // A file dropped.
    let path = archive_in(
        &temp,
        &[
            Entry::File(wire::MANIFEST, &manifest),
            Entry::File("files/outputs/a.png", PNG_A),
        ],
    );
    let report = local::verify_archive(&path).unwrap();
    assert_eq!(lists(&report), (1, vec![], vec!["runs/r1.json"], vec![]));
    // A file added.
    let mut entries = intact_entries(&manifest);
    entries.push(Entry::File("files/outputs/z.png", b"not listed"));
    let report = local::verify_archive(&archive_in(&temp, &entries)).unwrap();
    assert!(!report.ok);
    assert_eq!(
        lists(&report),
        (2, vec![], vec![], vec!["files/outputs/z.png"])
    );
}

#[test]
fn links_devices_and_paths_out_of_the_export_are_extra_and_nothing_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let manifest = manifest_json(1, &listed());
    let mut entries = intact_entries(&manifest);
    entries.extend([
        Entry::File("../evil", b"outside"),
        Entry::File("/tmp/kroma-evil-absolute", b"outside"),
        Entry::Dir("../evil-folder/"),
        Entry::Special("files/link.png", tar::EntryType::Symlink, "/etc/passwd"),
        Entry::Special(
            "files/hard.png",
            tar::EntryType::Link,
            "files/outputs/a.png",
        ),
        Entry::Special("files/fifo", tar::EntryType::Fifo, ""),
        Entry::Special("files/tty", tar::EntryType::Char, ""),
        // A second copy of a listed path.
        Entry::File("runs/r1.json", RUN_RECORD),
    ]);
    let path = archive_in(&temp, &entries);
    let report = local::verify_archive(&path).unwrap();
    assert!(!report.ok);
    assert_eq!(
        lists(&report),
        (
            2,
            vec![],
            vec![],
            vec![
                "../evil",
                "../evil-folder/",
                "/tmp/kroma-evil-absolute",
                "files/fifo",
                "files/hard.png",
                "files/link.png",
                "files/tty",
                "runs/r1.json",
            ]
        )
    );
    // A link where a listed file should be: the file is missing, the link extra.
    let path = archive_in(
        &temp,
        &[
            Entry::File(wire::MANIFEST, &manifest),
            Entry::Special(
                "files/outputs/a.png",
                tar::EntryType::Symlink,
                "/etc/passwd",
            ),
            Entry::File("runs/r1.json", RUN_RECORD),
        ],
    );
    let report = local::verify_archive(&path).unwrap();
    assert_eq!(
        lists(&report),
        (
            1,
            vec![],
            vec!["files/outputs/a.png"],
            vec!["files/outputs/a.png"]
        )
    );
    // Nothing was written, here or above.
    let names: Vec<_> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["harbor-export.tar.gz"]);
    let above = temp.path().parent().unwrap();
    assert!(!above.join("evil").exists() && !above.join("evil-folder").exists());
    assert!(!Path::new("/tmp/kroma-evil-absolute").exists());
}

#[test]
fn a_manifest_of_another_format_or_too_large_is_refused_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let manifest = manifest_json(2, &listed());
    let path = archive_in(&temp, &intact_entries(&manifest));
    let refused = error_text(local::verify_archive(&path).unwrap_err());
    assert_eq!(
        refused,
        format!(
            "the manifest.json of {} is format 2; this kromactl reads format 1 (hint: Some(\"verify \
             it with the kromactl of the release that made it, or a newer one\"))",
            path.display()
        )
    );
    // A later format may change every other field: its version is read first.
    let refused = local::parse_manifest(br#"{"format_version": 3, "files": "elsewhere"}"#, &path);
    assert!(error_text(refused.unwrap_err()).contains("is format 3;"));
    let refused = local::parse_manifest(b"[1, 2]", &path);
    assert!(error_text(refused.unwrap_err()).contains("is not a Kroma manifest"));
    // No manifest at all.
    let path = archive_in(&temp, &[Entry::File("runs/r1.json", RUN_RECORD)]);
    assert!(error_text(local::verify_archive(&path).unwrap_err()).contains("has no manifest.json"));
    // A header that announces more than 64 MiB is refused before a byte of it is read.
    let path = temp.path().join("huge.tar.gz");
    let gzip = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gzip);
    let mut header = tar::Header::new_ustar();
    header.set_path(wire::MANIFEST).unwrap();
    header.set_size(local::MAX_MANIFEST_BYTES + 1);
    header.set_cksum();
    builder.get_mut().write_all(header.as_bytes()).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    assert!(error_text(local::verify_archive(&path).unwrap_err()).contains("larger than 64 MiB"));
    // Not a .tar.gz at all.
    let path = temp.path().join("notes.tar.gz");
    std::fs::write(&path, b"plain text").unwrap();
    assert!(error_text(local::verify_archive(&path).unwrap_err()).contains("no gzip header"));
}

/// Writes a folder export of the two listed files and its manifest.
fn folder_export(temp: &tempfile::TempDir, manifest: &[u8]) -> PathBuf {
    let root = temp.path().join("harbor-export");
    for (path, bytes) in listed() {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    std::fs::write(root.join(wire::MANIFEST), manifest).unwrap();
    root
}

#[test]
fn a_folder_export_is_verified_the_same_way() {
    let temp = tempfile::tempdir().unwrap();
    let root = folder_export(&temp, &manifest_json(1, &listed()));
    assert_eq!(
        local::target(&root).unwrap(),
        local::Target::Folder(root.clone())
    );
    let report = local::verify_folder(&root).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(lists(&report), (2, vec![], vec![], vec![]));
    // Empty folders are passed over.
    std::fs::create_dir_all(root.join("files/empty")).unwrap();
    assert!(local::verify_folder(&root).unwrap().ok);
    // One byte changed, one file gone, one added.
    let mut tampered = PNG_A.to_vec();
    tampered[0] ^= 1;
    std::fs::write(root.join("files/outputs/a.png"), tampered).unwrap();
    std::fs::remove_file(root.join("runs/r1.json")).unwrap();
    std::fs::write(root.join("files/outputs/z.png"), b"not listed").unwrap();
    let report = local::verify_folder(&root).unwrap();
    assert!(!report.ok);
    assert_eq!(
        lists(&report),
        (
            0,
            vec!["files/outputs/a.png"],
            vec!["runs/r1.json"],
            vec!["files/outputs/z.png"]
        )
    );
}

#[cfg(unix)]
#[test]
fn a_link_in_a_folder_export_is_extra_and_never_followed() {
    let temp = tempfile::tempdir().unwrap();
    let root = folder_export(&temp, &manifest_json(1, &listed()));
    // A link where a listed file was, pointing at a copy of it, and a link to a folder outside.
    let outside = temp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.png"), PNG_A).unwrap();
    std::fs::remove_file(root.join("files/outputs/a.png")).unwrap();
    std::os::unix::fs::symlink(outside.join("a.png"), root.join("files/outputs/a.png")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("files/elsewhere")).unwrap();
    nix::unistd::mkfifo(&root.join("runs/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let report = local::verify_folder(&root).unwrap();
    assert_eq!(
        lists(&report),
        (
            1,
            vec![],
            vec!["files/outputs/a.png"],
            vec!["files/elsewhere", "files/outputs/a.png", "runs/pipe"]
        )
    );
    // A manifest that is a link is refused, not followed.
    std::fs::rename(root.join(wire::MANIFEST), outside.join(wire::MANIFEST)).unwrap();
    std::os::unix::fs::symlink(outside.join(wire::MANIFEST), root.join(wire::MANIFEST)).unwrap();
    let refused = error_text(local::verify_folder(&root).unwrap_err());
    assert!(refused.contains("is not a regular file"), "{refused}");
}

#[test]
fn a_folder_manifest_of_another_format_or_too_large_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let root = folder_export(&temp, &manifest_json(2, &listed()));
    let refused = error_text(local::verify_folder(&root).unwrap_err());
    assert!(
        refused.contains("is format 2; this kromactl reads format 1"),
        "{refused}"
    );
    // Sparse: the size alone refuses it.
    let manifest = std::fs::File::create(root.join(wire::MANIFEST)).unwrap();
    manifest.set_len(local::MAX_MANIFEST_BYTES + 1).unwrap();
    let refused = error_text(local::verify_folder(&root).unwrap_err());
    assert!(refused.contains("larger than 64 MiB"), "{refused}");
    std::fs::remove_file(root.join(wire::MANIFEST)).unwrap();
    let refused = error_text(local::verify_folder(&root).unwrap_err());
    assert!(refused.contains("has no manifest.json"), "{refused}");
}

#[test]
fn what_is_not_here_is_an_export_id_unless_it_reads_as_a_path() {
    let id = "0b7e5a9c-3f64-4a43-9d1e-0c4f3b8a7e21";
    assert_eq!(
        local::target(Path::new(id)).unwrap(),
        local::Target::Id(id.to_owned())
    );
    for path in [
        "/no/such/export",
        "exports/harbor",
        "harbor.tar.gz",
        "./harbor",
    ] {
        let refused = error_text(local::target(Path::new(path)).unwrap_err());
        assert!(refused.contains("does not exist"), "{path}: {refused}");
    }
}

fn parse(args: &[&str]) -> Result<wire::CreateParams, String> {
    let cli = crate::Cli::try_parse_from(
        ["kromactl", "export", "create", "harbor"]
            .iter()
            .chain(args),
    )
    .map_err(|err| err.to_string())?;
    let crate::Command::Export(ExportCommand::Create(args)) = cli.command else {
        panic!("not export create");
    };
    create_params(args).map_err(|err| format!("{err:?}"))
}

#[test]
fn exactly_one_selection_and_the_format() {
    let params = parse(&["--approved"]).unwrap();
    assert_eq!(
        (params.project.as_str(), &params.selection, params.format),
        (
            "harbor",
            &wire::Selection::Approved,
            wire::ExportFormat::TarGz
        )
    );
    let params = parse(&["--run", "r1", "--folder"]).unwrap();
    assert_eq!(
        (&params.selection, params.format),
        (
            &wire::Selection::Run {
                run: "r1".to_owned()
            },
            wire::ExportFormat::Folder
        )
    );
    let params = parse(&["--asset", "a1", "--asset", "a2"]).unwrap();
    assert_eq!(
        params.selection,
        wire::Selection::Assets {
            assets: vec!["a1".to_owned(), "a2".to_owned()]
        }
    );
    assert_eq!(
        parse(&["--project-all"]).unwrap().selection,
        wire::Selection::Project
    );
    for refused in [
        &[][..],
        &["--folder"],
        &["--approved", "--project-all"],
        &["--run", "r1", "--asset", "a1"],
    ] {
        assert!(parse(refused).is_err(), "{refused:?}");
    }
}

fn export(format: wire::ExportFormat, selection: wire::Selection) -> wire::Export {
    wire::Export {
        id: "6f1c2d3e-0000-4000-8000-000000000001".to_owned(),
        project: "harbor".to_owned(),
        selection,
        format,
        path: "/home/ada/comics/harbor/exports/harbor-approved-6f1c2d3e.tar.gz".to_owned(),
        files: 12,
        bytes: 3_565_158,
        sha256: "9f".repeat(32),
        created_at: "2026-12-06T14:30:00.000Z".to_owned(),
    }
}

#[test]
fn exports_read_as_a_table_details_and_a_verification_per_file() {
    let archive = export(wire::ExportFormat::TarGz, wire::Selection::Approved);
    let mut folder = export(
        wire::ExportFormat::Folder,
        wire::Selection::Assets {
            assets: vec!["a1".to_owned(), "a2".to_owned()],
        },
    );
    folder.id = "6f1c2d3e-0000-4000-8000-000000000002".to_owned();
    folder.path = "/home/ada/comics/harbor/exports/harbor-assets-6f1c2d3e".to_owned();
    folder.files = 1;
    folder.bytes = 812;
    let list = wire::ExportList {
        exports: vec![archive.clone(), folder.clone()],
    };
    let params = wire::CreateParams {
        project: "harbor".to_owned(),
        selection: wire::Selection::Run {
            run: "r1".to_owned(),
        },
        format: wire::ExportFormat::TarGz,
    };
    let mismatch = wire::VerifyReport {
        ok: false,
        checked: 1,
        missing: vec!["runs/r1.json".to_owned()],
        extra: vec!["../evil".to_owned(), "files/z.png".to_owned()],
        changed: vec!["files/outputs/a.png".to_owned()],
    };
    let one = wire::VerifyReport {
        ok: true,
        checked: 1,
        ..wire::VerifyReport::default()
    };
    insta::assert_snapshot!(
        [
            text::exporting_text(&params),
            text::created_text(&archive),
            text::created_text(&folder),
            text::list_text(&list),
            text::list_text(&wire::ExportList { exports: vec![] }),
            text::details_text(&folder),
            text::delete_question(&archive),
            text::verify_text(&one),
            text::verify_text(&mismatch),
            text::mismatch_message(&mismatch),
        ]
        .join("\n\n----\n\n")
    );
}

#[test]
fn sizes_read_in_binary_units() {
    let cases = [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1_048_575, "1.0 MiB"),
        (3_565_158, "3.4 MiB"),
        (5 * 1024 * 1024 * 1024, "5.0 GiB"),
        (u64::MAX, "16.0 EiB"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(text::human_size(bytes), expected, "{bytes}");
    }
}
