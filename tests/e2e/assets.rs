//! Assets through the real daemon: importing real image files (and bad ones), content addressing,
//! links and lineage, deletion.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use protocol::asset::{AssetKind, ImportOutcome, ImportParams, Relation};

fn write_image(path: &Path, width: u32, height: u32, format: image::ImageFormat, seed: u8) {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([x as u8 ^ seed, y as u8, seed])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A PNG whose header claims a size the daemon must refuse, with almost no data behind it.
fn write_png_header(path: &Path, width: u32, height: u32) {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let idat = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[]),
    ] {
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        bytes.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

async fn project(client: &Client, name: &str) -> protocol::project::Project {
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: name.into(),
            slug: None,
            description: None,
            root: None,
            s3: None,
        })
        .await
        .unwrap()
}

async fn import(
    client: &Client,
    project: &str,
    paths: &[&Path],
    kind: AssetKind,
) -> protocol::asset::ImportReport {
    client
        .call::<protocol::asset::Import>(&ImportParams {
            project: project.into(),
            paths: paths
                .iter()
                .map(|path| path.display().to_string())
                .collect(),
            kind,
        })
        .await
        .unwrap()
}

fn project_files(root: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from(root)];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with(".kroma/project.json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn import_copies_checks_and_deduplicates_real_images() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let comic = project(&client, "Harbor").await;
    let pictures = tempfile::tempdir().unwrap();
    let page = pictures.path().join("page 01.png");
    write_image(&page, 64, 40, image::ImageFormat::Png, 1);
    let photo = pictures.path().join("ref.jpg");
    write_image(&photo, 30, 20, image::ImageFormat::Jpeg, 2);
    let original = std::fs::read(&page).unwrap();

    let report = import(&client, "harbor", &[&page, &photo], AssetKind::Input).await;
    assert_eq!((report.imported, report.existing, report.failed), (2, 0, 0));
    let first = report.results[0].asset.clone().unwrap();
    assert_eq!(
        (first.width, first.height, first.format.as_str()),
        (64, 40, "png")
    );
    assert_eq!(first.original_name, "page 01.png");
    assert!(first.path.starts_with("inputs/page_01-"), "{}", first.path);
    let second = report.results[1].asset.clone().unwrap();
    assert_eq!(
        (second.format.as_str(), second.mime.as_str()),
        ("jpeg", "image/jpeg")
    );

    // The copy holds the same bytes; the original is untouched and still in place.
    let copy = Path::new(&comic.root).join(&first.path);
    assert_eq!(std::fs::read(&copy).unwrap(), original);
    assert_eq!(std::fs::read(&page).unwrap(), original);
    assert_eq!(first.bytes, original.len() as u64);

    // Same bytes again, under another name and kind: the existing asset comes back.
    let renamed = pictures.path().join("copy-of-page.png");
    std::fs::copy(&page, &renamed).unwrap();
    let again = import(&client, "harbor", &[&renamed], AssetKind::Reference).await;
    assert_eq!(again.results[0].outcome, ImportOutcome::Existing);
    assert_eq!(again.results[0].asset.as_ref().unwrap().id, first.id);
    assert_eq!(project_files(&comic.root).len(), 2);

    let references = pictures.path().join("refs");
    std::fs::create_dir(&references).unwrap();
    write_image(
        &references.join("face.webp"),
        16,
        16,
        image::ImageFormat::WebP,
        3,
    );
    let report = import(&client, "harbor", &[&references], AssetKind::Reference).await;
    let face = report.results[0].asset.clone().unwrap();
    assert!(face.path.starts_with("references/face-"), "{}", face.path);
    assert_eq!(face.format, "webp");

    let list = client
        .call::<protocol::asset::List>(&protocol::asset::ListParams {
            project: "harbor".into(),
            kind: Some(AssetKind::Reference),
        })
        .await
        .unwrap();
    assert_eq!(list.assets, std::slice::from_ref(&face));
    let shown = client
        .call::<protocol::asset::Get>(&protocol::asset::AssetRef {
            project: "harbor".into(),
            id: face.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(shown, face);
}

#[tokio::test]
async fn bad_files_fail_one_by_one_naming_the_file_and_leave_nothing_behind() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let comic = project(&client, "Strict").await;
    let folder = tempfile::tempdir().unwrap();
    let good = folder.path().join("a-good.png");
    write_image(&good, 20, 20, image::ImageFormat::Png, 9);
    let text = folder.path().join("b-notes.png");
    std::fs::write(&text, "this is not a picture").unwrap();
    let truncated = folder.path().join("c-truncated.png");
    let whole = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let huge = folder.path().join("d-huge.png");
    write_png_header(&huge, 40_000, 40_000);
    let outside = tempfile::tempdir().unwrap();
    write_image(
        &outside.path().join("elsewhere.png"),
        8,
        8,
        image::ImageFormat::Png,
        4,
    );
    std::os::unix::fs::symlink(
        outside.path().join("elsewhere.png"),
        folder.path().join("e-link.png"),
    )
    .unwrap();
    let missing = folder.path().join("never-there.png");
    let climbing = format!("{}/../x.png", folder.path().display());

    let report = client
        .call::<protocol::asset::Import>(&ImportParams {
            project: "strict".into(),
            paths: vec![
                folder.path().display().to_string(),
                missing.display().to_string(),
                climbing,
            ],
            kind: AssetKind::Input,
        })
        .await
        .unwrap();
    let outcomes: Vec<(String, ImportOutcome, Option<String>)> = report
        .results
        .iter()
        .map(|result| {
            let name = Path::new(&result.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                name,
                result.outcome,
                result.error.as_ref().map(|error| error.code.clone()),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a-good.png".into(), ImportOutcome::Imported, None),
            (
                "b-notes.png".into(),
                ImportOutcome::Failed,
                Some("not_an_image".into())
            ),
            (
                "c-truncated.png".into(),
                ImportOutcome::Failed,
                Some("image_damaged".into())
            ),
            (
                "d-huge.png".into(),
                ImportOutcome::Failed,
                Some("image_too_large".into())
            ),
            (
                "e-link.png".into(),
                ImportOutcome::Failed,
                Some("path_escape".into())
            ),
            (
                "never-there.png".into(),
                ImportOutcome::Failed,
                Some("file_not_found".into())
            ),
            (
                "x.png".into(),
                ImportOutcome::Failed,
                Some("path_escape".into())
            ),
        ]
    );
    for result in &report.results[1..] {
        let error = result.error.as_ref().unwrap();
        let name = Path::new(&result.path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            error.message.contains(&name),
            "the error names the file: {}",
            error.message
        );
    }
    assert_eq!(report.failed, 6);
    // Only the good file was copied; no temporary or partial file is left.
    let files = project_files(&comic.root);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("a-good-")
    );

    let refused = client
        .call::<protocol::asset::Import>(&ImportParams {
            project: "strict".into(),
            paths: vec![good.display().to_string()],
            kind: AssetKind::Generated,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Rpc { data: Some(ref data), .. } if data.code == "kind_not_importable")
    );
    let no_project = client
        .call::<protocol::asset::Import>(&ImportParams {
            project: "nope".into(),
            paths: vec![good.display().to_string()],
            kind: AssetKind::Input,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(no_project, ClientError::Rpc { data: Some(ref data), .. } if data.code == "project_not_found")
    );
}

#[tokio::test]
async fn links_form_a_lineage_and_deleting_an_asset_removes_its_links_and_copy() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let comic = project(&client, "Graph").await;
    let folder = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for seed in 0..4 {
        let path = folder.path().join(format!("{seed}.png"));
        write_image(&path, 8, 8, image::ImageFormat::Png, seed);
        let report = import(&client, "graph", &[&path], AssetKind::Input).await;
        ids.push(report.results[0].asset.clone().unwrap());
    }
    let link = |from: usize, relation: Relation, to: usize| {
        let client = &client;
        let (from, to) = (ids[from].id.clone(), ids[to].id.clone());
        async move {
            client
                .call::<protocol::asset::Link>(&protocol::asset::LinkParams {
                    project: "graph".into(),
                    from,
                    to,
                    relation,
                })
                .await
        }
    };
    link(1, Relation::DerivedFrom, 0).await.unwrap();
    link(2, Relation::DerivedFrom, 1).await.unwrap();
    link(3, Relation::MaskFor, 2).await.unwrap();
    // A cycle does not trap the walk.
    link(0, Relation::VariantOf, 2).await.unwrap();
    let twice = link(1, Relation::DerivedFrom, 0).await.unwrap_err();
    assert!(
        matches!(twice, ClientError::Rpc { data: Some(ref data), .. } if data.code == "link_exists")
    );
    let own = link(1, Relation::DerivedFrom, 1).await.unwrap_err();
    assert!(
        matches!(own, ClientError::Rpc { data: Some(ref data), .. } if data.code == "self_link")
    );

    let graph = client
        .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef {
            project: "graph".into(),
            id: ids[1].id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(graph.root, ids[1].id);
    assert_eq!(graph.assets.len(), 4);
    assert_eq!(graph.assets[0].id, ids[1].id, "the root comes first");
    assert_eq!(graph.links.len(), 4);

    let deleted = client
        .call::<protocol::asset::Delete>(&protocol::asset::DeleteParams {
            project: "graph".into(),
            id: ids[2].id.clone(),
            confirm: true,
        })
        .await
        .unwrap();
    assert_eq!(deleted.links_removed, 3);
    assert!(!Path::new(&comic.root).join(&ids[2].path).exists());
    let graph = client
        .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef {
            project: "graph".into(),
            id: ids[1].id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(graph.assets.len(), 2);
    let unconfirmed = client
        .call::<protocol::asset::Delete>(&protocol::asset::DeleteParams {
            project: "graph".into(),
            id: ids[0].id.clone(),
            confirm: false,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(unconfirmed, ClientError::Rpc { data: Some(ref data), .. } if data.code == "confirmation_required")
    );

    // Deleting the project (with files) takes its assets along.
    client
        .call::<protocol::project::Delete>(&protocol::project::DeleteParams {
            slug: "graph".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .unwrap();
    project(&client, "Graph").await;
    let list = client
        .call::<protocol::asset::List>(&protocol::asset::ListParams {
            project: "graph".into(),
            kind: None,
        })
        .await
        .unwrap();
    assert!(list.assets.is_empty());
}

#[test]
fn kromactl_imports_relative_paths_and_reports_failures_with_exit_1() {
    let daemon = Daemon::start();
    let socket = &daemon.socket;
    assert!(
        kroma_tests::kromactl(socket, &["project", "create", "Cli Pics"])
            .status
            .success()
    );
    let folder = tempfile::tempdir().unwrap();
    write_image(
        &folder.path().join("one.png"),
        10,
        10,
        image::ImageFormat::Png,
        5,
    );
    std::fs::write(folder.path().join("two.png"), "nope").unwrap();
    let output = std::process::Command::new(kroma_tests::bin("kromactl"))
        .current_dir(folder.path())
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "asset",
            "import",
            "cli-pics",
            "one.png",
            "two.png",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("imported") && stdout.contains("not_an_image"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 imported, 0 already there, 1 failed"),
        "{stdout}"
    );
    let list = kroma_tests::kromactl(socket, &["--json", "asset", "list", "cli-pics"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["assets"].as_array().unwrap().len(), 1);
}
