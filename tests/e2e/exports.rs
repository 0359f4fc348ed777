//! Exports end to end against the real kromad: a run's winners and records, approved
//! baselines, assets and a whole project packed as `.tar.gz` or a folder with a manifest;
//! byte-identical archives for the same selection; verification that names a tampered, missing
//! or extra file; deletion that needs a confirmation.

use std::path::Path;
use std::time::Duration;

use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::export::{Export, ExportFormat, Selection};

use crate::runs::{
    World, create, error_of, fake, finished_and_recorded as finished, params, setup, start,
};

const FAST: &str = "[generation]\nretry_base_ms = 10\ntimeout_secs = 5\nmax_attempts = 2\n";

async fn export(client: &Client, selection: Selection, format: ExportFormat) -> Export {
    client
        .call::<protocol::export::Create>(&protocol::export::CreateParams {
            project: "noir".into(),
            selection,
            format,
        })
        .await
        .expect("export")
}

async fn verify(client: &Client, id: &str) -> protocol::export::VerifyReport {
    client
        .call::<protocol::export::Verify>(&protocol::export::ExportRef { id: id.into() })
        .await
        .expect("verify")
}

/// The entry names of a `.tar.gz`, in order.
fn entries(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).expect("archive");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .expect("entries")
        .map(|entry| {
            entry
                .expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_pack_winners_and_records_deterministically_and_verify_names_tampering() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let empty = client
        .call::<protocol::export::Create>(&protocol::export::CreateParams {
            project: "noir".into(),
            selection: Selection::Approved,
            format: ExportFormat::TarGz,
        })
        .await;
    assert_eq!(error_of(empty).code, "empty_export", "nothing approved yet");

    let detail = create(&client, params(vec![scene.clone()], 2)).await;
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    let winner = done.jobs[0].winner.expect("winner");
    let selection = Selection::Run {
        run: done.run.id.clone(),
    };

    let before = crate::runs::last_event_id(&client).await;
    let first = export(&client, selection.clone(), ExportFormat::TarGz).await;
    assert!(first.path.ends_with(".tar.gz") && first.path.contains("/exports/"));
    let progress: Vec<protocol::export::ExportProgress> =
        crate::runs::events_since(&client, before)
            .await
            .iter()
            .filter_map(|event| event.payload::<protocol::export::ExportProgress>())
            .map(|payload| payload.expect("an export.progress payload"))
            .collect();
    let last = progress.last().expect("export.progress events");
    assert_eq!(last.phase, protocol::export::ExportPhase::Packing);
    assert_eq!((last.done, last.total), (2, 2));
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(last.target, first.path);
    assert_eq!(first.files, 2, "the winner and the run record");
    let names = entries(Path::new(&first.path));
    let winner_output = done.jobs[0].candidates[winner as usize - 1]
        .output
        .clone()
        .expect("output");
    let winner_name = Path::new(&winner_output)
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        names,
        vec![
            "manifest.json".to_owned(),
            format!("files/outputs/{winner_name}"),
            format!("runs/{}.json", done.run.id),
        ]
    );
    let second = export(&client, selection.clone(), ExportFormat::TarGz).await;
    assert_ne!(first.id, second.id);
    assert_ne!(first.path, second.path);
    assert_eq!(
        first.sha256, second.sha256,
        "the same selection, the same bytes"
    );
    assert_eq!(
        std::fs::read(&first.path).expect("first"),
        std::fs::read(&second.path).expect("second")
    );
    let report = verify(&client, &first.id).await;
    assert!(report.ok && report.checked == 2, "{report:?}");

    // A folder export of the same selection holds the same manifest; tampering shows by name.
    let folder = export(&client, selection, ExportFormat::Folder).await;
    let root = Path::new(&folder.path);
    let manifest: protocol::export::Manifest =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).expect("manifest"))
            .expect("a manifest");
    assert_eq!(manifest.project.slug, "noir");
    assert_eq!(manifest.files.len(), 2);
    let image = &manifest.files[0];
    assert_eq!(image.produced_by.kind, "generated");
    assert_eq!(
        image.produced_by.provenance.get("run").map(String::as_str),
        Some(done.run.id.as_str()),
        "the file's provenance is in the manifest"
    );
    assert!(verify(&client, &folder.id).await.ok);
    let tampered = root.join(&image.path);
    let mut bytes = std::fs::read(&tampered).expect("file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tampered, bytes).expect("tamper");
    std::fs::write(root.join("files/extra.txt"), b"not listed").expect("extra");
    std::fs::remove_file(root.join(&manifest.files[1].path)).expect("remove the record");
    let report = verify(&client, &folder.id).await;
    assert!(!report.ok);
    assert_eq!(report.changed, vec![image.path.clone()]);
    assert_eq!(report.missing, vec![manifest.files[1].path.clone()]);
    assert_eq!(report.extra, vec!["files/extra.txt".to_owned()]);

    // Approved baselines and the whole project.
    client
        .call::<protocol::run::Approve>(&protocol::run::ApproveParams {
            run: done.run.id.clone(),
            job: done.jobs[0].key.clone(),
            candidate: winner,
        })
        .await
        .expect("approve");
    let approved = export(&client, Selection::Approved, ExportFormat::TarGz).await;
    assert_eq!(approved.files, 2);
    let whole = export(&client, Selection::Project, ExportFormat::TarGz).await;
    assert_eq!(whole.files, 4, "the scene, two candidates, the run record");

    // Deleting needs a confirmation, then takes the file and the row.
    let unconfirmed = client
        .call::<protocol::export::Delete>(&protocol::export::DeleteParams {
            id: first.id.clone(),
            confirm: false,
        })
        .await;
    assert_eq!(error_of(unconfirmed).code, "confirmation_required");
    client
        .call::<protocol::export::Delete>(&protocol::export::DeleteParams {
            id: first.id.clone(),
            confirm: true,
        })
        .await
        .expect("delete");
    assert!(!Path::new(&first.path).exists());
    assert!(
        Path::new(&second.path).exists(),
        "another export's file stays"
    );
    let listed = client
        .call::<protocol::export::List>(&protocol::export::ListParams {
            project: Some("noir".into()),
        })
        .await
        .expect("list");
    assert_eq!(listed.exports.len(), 4);
    let gone = client
        .call::<protocol::export::Get>(&protocol::export::ExportRef { id: first.id })
        .await;
    assert_eq!(error_of(gone).code, "export_not_found");
}

/// `kromactl export` against the real kromad, and `export verify` on a copy with no kromad.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kromactl_exports_and_verifies_a_copy_without_kromad() {
    use crate::runs::kromactl;
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let detail = create(&client, params(vec![scene], 1)).await;
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    let socket = world.socket();

    let created = kromactl(
        &socket,
        &["--json", "export", "create", "noir", "--run", &done.run.id],
    )
    .await;
    assert!(created.status.success(), "{created:?}");
    let export: Export = serde_json::from_slice(&created.stdout).expect("json");
    let listed = kromactl(&socket, &["export", "list", "--project", "noir"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&export.id[..8]));

    // A copy elsewhere, checked with no kromad to talk to.
    let elsewhere = tempfile::tempdir().expect("temp");
    let copy = elsewhere.path().join("package.tar.gz");
    std::fs::copy(&export.path, &copy).expect("copy");
    let nowhere = elsewhere.path().join("no-kromad.sock");
    let copy_arg = copy.display().to_string();
    let intact = kroma_tests::kromactl(&nowhere, &["export", "verify", &copy_arg]);
    assert_eq!(intact.status.code(), Some(0), "{intact:?}");
    assert!(String::from_utf8_lossy(&intact.stdout).contains("ok"));
    let mut bytes = std::fs::read(&copy).expect("copy");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&copy, bytes).expect("damage");
    let damaged = kroma_tests::kromactl(&nowhere, &["export", "verify", &copy_arg]);
    assert_eq!(damaged.status.code(), Some(1), "{damaged:?}");

    let by_id = kromactl(&socket, &["export", "verify", &export.id]).await;
    assert_eq!(by_id.status.code(), Some(0), "{by_id:?}");
    let removed = kromactl(&socket, &["export", "rm", &export.id, "--yes"]).await;
    assert!(removed.status.success(), "{removed:?}");
    assert!(!Path::new(&export.path).exists());
}
