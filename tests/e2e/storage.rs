//! S3 sync end to end: the real kromad against a real S3 server (s3s-fs, in this process on
//! 127.0.0.1, checking signatures and checksums). Push, re-plan, changes, dry runs, deletes only
//! when asked, a restore into an empty folder byte for byte, a multipart upload interrupted by
//! SIGKILL and resumed (or aborted when its file changed), one denied object among many, and the
//! errors a person meets: no settings, no keys, wrong keys, no bucket, nothing listening.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_s3_server::{Request, S3Server};
use kroma_tests::Daemon;
use protocol::project::S3Settings;
use protocol::storage::{Direction, Op, Plan, Reason, SyncReport, What};

const ACCESS: &str = "kroma-test-access";
const SECRET: &str = "kroma-test-secret-key";
const BUCKET: &str = "comics";

/// A real S3 server serving a temporary folder, with the bucket made.
struct Store {
    server: S3Server,
    root: tempfile::TempDir,
}

impl Store {
    async fn start() -> Store {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket");
        let server = S3Server::start(root.path(), ACCESS, SECRET)
            .await
            .expect("s3 server");
        Store { server, root }
    }

    /// The file holding an object.
    fn object(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            prefix: "team".into(),
            endpoint: Some(self.server.endpoint()),
            ..S3Settings::bucket(BUCKET)
        }
    }
}

async fn set_secret(client: &Client, name: &str, value: &str) {
    client
        .call::<protocol::secret::Set>(&protocol::secret::SetParams {
            name: name.into(),
            value: value.into(),
        })
        .await
        .expect("secret.set");
}

async fn set_keys(client: &Client) {
    set_secret(client, protocol::storage::DEFAULT_ACCESS_KEY_SECRET, ACCESS).await;
    set_secret(client, protocol::storage::DEFAULT_SECRET_KEY_SECRET, SECRET).await;
}

async fn create_project(client: &Client, s3: Option<S3Settings>) -> protocol::project::Project {
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Noir".into(),
            slug: Some("noir".into()),
            description: None,
            root: None,
            s3,
        })
        .await
        .expect("project.create")
}

/// A running S3 server, a kromad holding its keys, and project `noir` syncing to it.
struct World {
    store: Store,
    daemon: Daemon,
    client: Client,
    root: PathBuf,
}

async fn world() -> World {
    let store = Store::start().await;
    let daemon = Daemon::start();
    let client = daemon.client().await;
    set_keys(&client).await;
    let project = create_project(&client, Some(store.settings())).await;
    World {
        root: PathBuf::from(&project.root),
        store,
        daemon,
        client,
    }
}

async fn plan(client: &Client, direction: Direction, delete: bool) -> Plan {
    client
        .call::<protocol::storage::PlanSync>(&protocol::storage::PlanParams {
            project: "noir".into(),
            what: What::Project,
            direction,
            delete,
        })
        .await
        .expect("storage.plan")
}

async fn sync_what(
    client: &Client,
    what: What,
    direction: Direction,
    delete: bool,
    dry_run: bool,
) -> Result<SyncReport, ClientError> {
    client
        .call::<protocol::storage::Sync>(&protocol::storage::SyncParams {
            project: "noir".into(),
            what,
            direction,
            delete,
            dry_run,
            confirmed_deletes: None,
        })
        .await
}

async fn sync(client: &Client, direction: Direction, delete: bool, dry_run: bool) -> SyncReport {
    sync_what(client, What::Project, direction, delete, dry_run)
        .await
        .expect("storage.sync")
}

fn steps(plan: &Plan) -> Vec<(Op, Reason, &str)> {
    plan.items
        .iter()
        .map(|item| (item.op, item.reason, item.path.as_str()))
        .collect()
}

/// Bytes that differ from file to file and compress badly.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

/// Every regular file under `root` (links not followed), relative and `/`-separated.
fn tree(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path().strip_prefix(root).unwrap().to_owned();
                files.push(rel.display().to_string());
            }
        }
    }
    files.sort();
    files
}

fn error_code(err: ClientError) -> (String, String) {
    match err {
        ClientError::Rpc {
            data: Some(data), ..
        } => (data.code, data.hint.unwrap_or_default()),
        other => panic!("expected a Kroma error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_plan_change_delete_and_restore_into_an_empty_folder() {
    let World {
        store,
        daemon: _daemon,
        client,
        root,
    } = world().await;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (index, path) in [
        "outputs/a.png",
        "outputs/b.png",
        "inputs/scene 1.jpg",
        "runs/r1.json",
        "references/deep/er/c.png",
    ]
    .into_iter()
    .enumerate()
    {
        files.insert(path.into(), noise(index as u64, 1000 + index * 777));
    }
    files.insert("inputs/empty.txt".into(), Vec::new());
    for (path, bytes) in &files {
        write(&root, path, bytes);
    }
    std::os::unix::fs::symlink("/etc", root.join("inputs/etc")).unwrap();
    let on_disk: Vec<String> = tree(&root)
        .into_iter()
        .filter(|path| path != ".kroma/project.json")
        .collect();

    let first = plan(&client, Direction::Push, false).await;
    assert_eq!(first.destination, format!("s3://{BUCKET}/team/noir/"));
    assert_eq!(first.items.len(), on_disk.len(), "{first:#?}");
    assert!(
        first
            .items
            .iter()
            .all(|item| item.op == Op::Upload && item.reason == Reason::New)
    );
    assert!(
        first
            .items
            .iter()
            .all(|item| item.key == format!("team/noir/{}", item.path))
    );
    assert!(
        first.skipped.iter().any(|s| s.path == "inputs/etc"),
        "the link is left alone: {:?}",
        first.skipped
    );
    assert!(
        !first
            .items
            .iter()
            .any(|item| item.path == ".kroma/project.json"),
        "the project's marker never leaves"
    );

    let dry = sync(&client, Direction::Push, false, true).await;
    assert!(dry.dry_run && dry.ok);
    assert_eq!(dry.plan.items.len(), first.items.len());
    assert_eq!(
        store.server.count(Request::PutObject),
        0,
        "a dry run sends nothing"
    );
    assert!(!store.object("team").exists());

    let pushed = sync(&client, Direction::Push, false, false).await;
    assert!(pushed.ok, "{:?}", pushed.failed);
    assert_eq!(pushed.uploaded as usize, on_disk.len());
    for (path, bytes) in &files {
        assert_eq!(
            &std::fs::read(store.object(&format!("team/noir/{path}"))).unwrap(),
            bytes
        );
    }
    let again = plan(&client, Direction::Push, false).await;
    assert!(again.items.is_empty(), "{:?}", again.items);
    assert_eq!(again.unchanged as usize, on_disk.len());

    // Same size, other bytes: found by the sha256, not the size.
    let changed = noise(99, files["outputs/a.png"].len());
    write(&root, "outputs/a.png", &changed);
    files.insert("outputs/a.png".into(), changed);
    write(&root, "outputs/d.png", b"new file");
    files.insert("outputs/d.png".into(), b"new file".to_vec());
    std::fs::remove_file(root.join("outputs/b.png")).unwrap();
    files.remove("outputs/b.png");
    let keeping = plan(&client, Direction::Push, false).await;
    assert_eq!(
        steps(&keeping),
        vec![
            (Op::Upload, Reason::Changed, "outputs/a.png"),
            (Op::Upload, Reason::New, "outputs/d.png"),
        ]
    );
    assert_eq!(
        keeping.kept, 1,
        "b.png stays on the bucket unless deletes are asked for"
    );
    let deleting = plan(&client, Direction::Push, true).await;
    assert_eq!(
        steps(&deleting).last(),
        Some(&(Op::Delete, Reason::Gone, "outputs/b.png"))
    );

    let puts = store.server.count(Request::PutObject);
    let pushed = sync(&client, Direction::Push, false, false).await;
    assert_eq!((pushed.uploaded, pushed.deleted), (2, 0));
    assert_eq!(
        store.server.count(Request::PutObject),
        puts + 2,
        "only the two changed files"
    );
    assert!(store.object("team/noir/outputs/b.png").exists());
    let unconfirmed = client
        .call::<protocol::storage::Sync>(&protocol::storage::SyncParams {
            project: "noir".into(),
            what: What::Project,
            direction: Direction::Push,
            delete: true,
            dry_run: false,
            confirmed_deletes: Some(vec!["outputs/other.png".into()]),
        })
        .await
        .expect("storage.sync");
    assert_eq!(
        (unconfirmed.deleted, unconfirmed.plan.kept),
        (0, 1),
        "only confirmed deletes happen"
    );
    assert!(store.object("team/noir/outputs/b.png").exists());
    let pushed = sync(&client, Direction::Push, true, false).await;
    assert_eq!((pushed.uploaded, pushed.deleted), (0, 1));
    assert!(!store.object("team/noir/outputs/b.png").exists());

    // The machine is lost: the project comes back in an empty folder and is pulled.
    client
        .call::<protocol::project::Delete>(&protocol::project::DeleteParams {
            slug: "noir".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .expect("project.delete");
    assert!(!root.exists());
    let project = create_project(&client, Some(store.settings())).await;
    let root = PathBuf::from(&project.root);
    let pulled = sync(&client, Direction::Pull, false, false).await;
    assert!(pulled.ok, "{:?}", pulled.failed);
    for (path, bytes) in &files {
        assert_eq!(&std::fs::read(root.join(path)).unwrap(), bytes, "{path}");
    }
    let restored = plan(&client, Direction::Pull, true).await;
    assert!(restored.items.is_empty(), "{:?}", restored.items);
    let leftovers: Vec<String> = tree(&root)
        .into_iter()
        .filter(|path| path.contains(".kroma-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A pull that finds a local change keeps the local file in archive/replaced/.
    write(&root, "outputs/d.png", b"edited!!");
    let pulled = sync(&client, Direction::Pull, false, false).await;
    assert_eq!(pulled.downloaded, 1);
    assert_eq!(
        std::fs::read(root.join("outputs/d.png")).unwrap(),
        b"new file"
    );
    let archived = std::fs::read_dir(root.join("archive/replaced"))
        .unwrap()
        .count();
    assert_eq!(archived, 1);
}

/// Waits for the server to hold a part and for kromad to have journaled the part it let through
/// (parts go up four at a time, so the held one can arrive before the first is acknowledged).
async fn held(store: &Store, data_dir: &Path) {
    tokio::time::timeout(Duration::from_secs(60), store.server.wait_until_held())
        .await
        .expect("the upload reached the held part");
    let database = data_dir.join("kroma.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let journaled: i64 = rusqlite::Connection::open_with_flags(
            &database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|db| {
            db.query_row("SELECT count(*) FROM storage_upload_parts", [], |row| {
                row.get(0)
            })
        })
        .unwrap_or(0);
        if journaled >= 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no part was journaled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_killed_halfway_is_resumed_and_one_whose_file_changed_is_aborted() {
    let store = Store::start().await;
    let folder = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(folder.path(), &[]);
    let client = daemon.client().await;
    set_keys(&client).await;
    let project = create_project(&client, Some(store.settings())).await;
    let root = PathBuf::from(&project.root);
    // 8 + 8 + 4 MiB parts.
    let big = noise(7, 20 * 1024 * 1024);
    write(&root, "outputs/page.tif", &big);

    store.server.hold_parts_after(1);
    let interrupted = tokio::spawn({
        let client = daemon.client().await;
        async move { sync(&client, Direction::Push, false, false).await }
    });
    held(&store, &daemon.data_dir).await;
    daemon.kill_hard();
    let _ = interrupted.await;
    store.server.release();
    assert!(!store.object("team/noir/outputs/page.tif").exists());

    let daemon = Daemon::start_in(folder.path(), &[]);
    let client = daemon.client().await;
    let planned = plan(&client, Direction::Push, false).await;
    assert_eq!(planned.resumable, 1, "{planned:?}");
    let resumed = sync(&client, Direction::Push, false, false).await;
    assert!(resumed.ok, "{:?}", resumed.failed);
    assert_eq!((resumed.uploaded, resumed.resumed_parts), (1, 1));
    // Parts go up four at a time: whichever reached the store first (8 or 4 MiB) is not sent
    // again.
    let first = store.server.parts_uploaded()[0];
    let first_len = if first == 3 { 4 } else { 8 } * 1024 * 1024;
    assert_eq!(
        resumed.bytes,
        20 * 1024 * 1024 - first_len,
        "part {first} was not sent again"
    );
    assert_eq!(store.server.count(Request::CreateMultipartUpload), 1);
    let mut uploaded = store.server.parts_uploaded();
    uploaded.sort();
    assert_eq!(uploaded, vec![1, 2, 3], "each part sent once");
    assert_eq!(
        std::fs::read(store.object("team/noir/outputs/page.tif")).unwrap(),
        big
    );
    assert!(plan(&client, Direction::Push, false).await.items.is_empty());

    // Interrupted again, and the file changes before the next sync: the old upload is aborted.
    let other = noise(8, 20 * 1024 * 1024);
    write(&root, "outputs/page.tif", &other);
    store.server.hold_parts_after(1);
    let interrupted = tokio::spawn({
        let client = daemon.client().await;
        async move { sync(&client, Direction::Push, false, false).await }
    });
    held(&store, &daemon.data_dir).await;
    daemon.kill_hard();
    let _ = interrupted.await;
    store.server.release();
    let newest = noise(9, 20 * 1024 * 1024);
    write(&root, "outputs/page.tif", &newest);
    let daemon = Daemon::start_in(folder.path(), &[]);
    let client = daemon.client().await;
    let pushed = sync(&client, Direction::Push, false, false).await;
    assert!(pushed.ok, "{:?}", pushed.failed);
    assert_eq!(pushed.resumed_parts, 0);
    assert_eq!(store.server.count(Request::AbortMultipartUpload), 1);
    assert_eq!(store.server.count(Request::CreateMultipartUpload), 3);
    assert_eq!(
        std::fs::read(store.object("team/noir/outputs/page.tif")).unwrap(),
        newest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_denied_object_fails_alone_and_the_report_names_it() {
    let World {
        store,
        daemon: _daemon,
        client,
        root,
    } = world().await;
    for index in 0..6u64 {
        write(&root, &format!("outputs/p{index}.png"), &noise(index, 4000));
    }
    store.server.deny(BUCKET, "team/noir/outputs/p3.png");
    let report = sync(&client, Direction::Push, false, false).await;
    assert!(!report.ok);
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].path, "outputs/p3.png");
    assert_eq!(report.failed[0].code, "AccessDenied");
    assert_eq!(report.uploaded as usize, report.plan.items.len() - 1);
    assert!(store.object("team/noir/outputs/p5.png").exists());
    let left = plan(&client, Direction::Push, false).await;
    assert_eq!(
        steps(&left),
        vec![(Op::Upload, Reason::New, "outputs/p3.png")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_syncs_alone_to_where_the_project_sync_puts_it() {
    let store = Store::start().await;
    let daemon = Daemon::start();
    let client = daemon.client().await;
    set_keys(&client).await;
    let project = create_project(&client, Some(store.settings())).await;
    let images = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for index in 0..2u8 {
        let path = images.path().join(format!("in{index}.png"));
        image::RgbImage::from_pixel(8, 8, image::Rgb([index * 90, 20, 30]))
            .save(&path)
            .unwrap();
        paths.push(path.display().to_string());
    }
    client
        .call::<protocol::asset::Import>(&protocol::asset::ImportParams {
            project: "noir".into(),
            paths,
            kind: protocol::asset::AssetKind::Input,
        })
        .await
        .expect("asset.import");
    let export = client
        .call::<protocol::export::Create>(&protocol::export::CreateParams {
            project: "noir".into(),
            selection: protocol::export::Selection::Project,
            format: protocol::export::ExportFormat::TarGz,
        })
        .await
        .expect("export.create");
    let rel = export
        .path
        .strip_prefix(&format!("{}/", project.root))
        .expect("the export is in the project folder")
        .to_owned();
    let what = What::Export {
        id: export.id.clone(),
    };
    let report = sync_what(&client, what.clone(), Direction::Push, false, false)
        .await
        .expect("storage.sync");
    assert_eq!(report.uploaded, 1, "{:?}", report.plan.items);
    assert_eq!(
        std::fs::read(store.object(&format!("team/noir/{rel}"))).unwrap(),
        std::fs::read(&export.path).unwrap()
    );
    let whole = plan(&client, Direction::Push, false).await;
    assert!(
        !whole.items.iter().any(|item| item.path == rel),
        "the project's own sync finds the export there already"
    );
    let missing = sync_what(
        &client,
        What::Export {
            id: "no-such-export".into(),
        },
        Direction::Push,
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(missing).0, "export_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong_and_how_to_fix_it() {
    let store = Store::start().await;
    let daemon = Daemon::start();
    let client = daemon.client().await;
    create_project(&client, None).await;
    let check = |client: Client| async move {
        client
            .call::<protocol::storage::Check>(&protocol::storage::CheckParams {
                project: "noir".into(),
            })
            .await
    };
    let (code, hint) = error_code(check(daemon.client().await).await.unwrap_err());
    assert_eq!(code, "s3_not_configured");
    assert!(hint.contains("bucket"), "{hint}");

    let update = |s3: S3Settings| {
        let client = &client;
        async move {
            client
                .call::<protocol::project::Update>(&protocol::project::UpdateParams {
                    slug: "noir".into(),
                    name: None,
                    description: None,
                    s3: Some(Some(s3)),
                })
                .await
                .expect("project.update");
        }
    };
    update(store.settings()).await;
    let (code, hint) = error_code(check(daemon.client().await).await.unwrap_err());
    assert_eq!(code, "s3_credentials_missing");
    assert!(
        hint.contains("s3_access_key_id") && hint.contains("s3_secret_access_key"),
        "{hint}"
    );

    set_secret(&client, "s3_access_key_id", ACCESS).await;
    set_secret(&client, "s3_secret_access_key", "not-the-secret").await;
    let (code, hint) = error_code(check(daemon.client().await).await.unwrap_err());
    assert_eq!(code, "s3_auth_failed");
    assert!(hint.contains("s3_secret_access_key"), "{hint}");
    let planned = client
        .call::<protocol::storage::PlanSync>(&protocol::storage::PlanParams {
            project: "noir".into(),
            what: What::Project,
            direction: Direction::Push,
            delete: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(planned).0, "s3_auth_failed");

    set_secret(&client, "s3_secret_access_key", SECRET).await;
    let fine = check(daemon.client().await).await.expect("storage.check");
    assert_eq!(fine.destination, format!("s3://{BUCKET}/team/noir/"));

    update(S3Settings {
        bucket: "no-such-bucket".into(),
        ..store.settings()
    })
    .await;
    let (code, _) = error_code(check(daemon.client().await).await.unwrap_err());
    assert_eq!(code, "s3_no_such_bucket");
    let pushed = sync_what(&client, What::Project, Direction::Push, false, false)
        .await
        .unwrap_err();
    assert_eq!(error_code(pushed).0, "s3_no_such_bucket");
    assert!(
        !store.root.path().join("no-such-bucket").exists(),
        "a push never makes the bucket"
    );

    update(S3Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        ..store.settings()
    })
    .await;
    let (code, hint) = error_code(check(daemon.client().await).await.unwrap_err());
    assert_eq!(code, "s3_unreachable");
    assert!(hint.contains("network"), "{hint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_own_checksums_work_too_when_chosen() {
    let store = Store::start().await;
    let daemon = Daemon::start();
    let client = daemon.client().await;
    set_keys(&client).await;
    let settings = S3Settings {
        checksum_mode: protocol::project::ChecksumMode::WhenSupported,
        ..store.settings()
    };
    let project = create_project(&client, Some(settings)).await;
    let root = PathBuf::from(&project.root);
    let small = noise(1, 300_000);
    let big = noise(2, 17 * 1024 * 1024);
    write(&root, "outputs/small.png", &small);
    write(&root, "outputs/big.tif", &big);
    let pushed = sync(&client, Direction::Push, false, false).await;
    assert!(pushed.ok, "{:?}", pushed.failed);
    assert_eq!(
        std::fs::read(store.object("team/noir/outputs/big.tif")).unwrap(),
        big
    );
    std::fs::remove_file(root.join("outputs/small.png")).unwrap();
    std::fs::remove_file(root.join("outputs/big.tif")).unwrap();
    let pulled = sync(&client, Direction::Pull, false, false).await;
    assert!(pulled.ok, "{:?}", pulled.failed);
    assert_eq!(pulled.downloaded, 2);
    assert_eq!(
        std::fs::read(root.join("outputs/small.png")).unwrap(),
        small
    );
    assert_eq!(std::fs::read(root.join("outputs/big.tif")).unwrap(), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kromactl_plans_syncs_asks_before_deleting_and_doctor_checks_the_bucket() {
    let store = Store::start().await;
    let daemon = Daemon::start();
    let socket = daemon.socket.clone();
    let client = daemon.client().await;
    set_keys(&client).await;
    let endpoint = store.server.endpoint();
    let created = kroma_tests::kromactl(
        &socket,
        &[
            "project",
            "create",
            "Noir",
            "--s3-bucket",
            BUCKET,
            "--s3-prefix",
            "team",
            "--s3-endpoint",
            &endpoint,
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project.get");
    let root = PathBuf::from(&project.root);
    write(&root, "outputs/a.png", &noise(1, 2000));
    write(&root, "outputs/b.png", &noise(2, 3000));

    let planned = kroma_tests::kromactl(&socket, &["storage", "plan", "noir"]);
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(planned.status.success());
    assert!(text.contains("s3://comics/team/noir/"), "{text}");
    assert!(text.contains("upload    new      outputs/a.png"), "{text}");

    let pushed = kroma_tests::kromactl(&socket, &["--json", "storage", "sync", "noir"]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let report: SyncReport = serde_json::from_slice(&pushed.stdout).expect("a JSON report");
    assert_eq!(report.uploaded, 2);

    std::fs::remove_file(root.join("outputs/b.png")).unwrap();
    let refused = kroma_tests::kromactl(&socket, &["storage", "sync", "noir", "--delete"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "no terminal to ask, no --yes"
    );
    assert!(
        store.object("team/noir/outputs/b.png").exists(),
        "nothing was deleted"
    );
    let deleted = kroma_tests::kromactl(&socket, &["storage", "sync", "noir", "--delete", "--yes"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    assert!(!store.object("team/noir/outputs/b.png").exists());

    write(&root, "outputs/c.png", &noise(3, 100));
    store.server.deny(BUCKET, "team/noir/outputs/c.png");
    let failed = kroma_tests::kromactl(&socket, &["--json", "storage", "sync", "noir"]);
    assert_eq!(failed.status.code(), Some(1));
    let report: SyncReport = serde_json::from_slice(&failed.stdout).expect("the report first");
    assert_eq!(report.failed[0].path, "outputs/c.png");

    let doctor = kroma_tests::kromactl(&socket, &["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    let line = text
        .lines()
        .find(|line| line.contains("s3 noir"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("s3://comics/team/noir/"), "{line}");
    set_secret(&client, "s3_secret_access_key", "wrong").await;
    let doctor = kroma_tests::kromactl(&socket, &["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success());
    assert!(
        text.contains("FAIL s3 noir") && text.contains("kromactl secret set s3_access_key_id"),
        "{text}"
    );
}

/// `kromactl bench sync` runs end to end on a small load; timings are reported, not asserted.
#[test]
fn the_sync_bench_measures_kromad_against_the_sdk() {
    let temp = tempfile::tempdir().expect("temp");
    let output = kroma_tests::kromactl(
        &temp.path().join("unused.sock"),
        &[
            "--json",
            "bench",
            "sync",
            "--files",
            "3",
            "--size-mb",
            "0.05",
            "--rounds",
            "1",
            "--kromad",
            kroma_tests::bin("kromad").to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["files"], serde_json::json!(3), "{report}");
    assert!(
        report["median"]["ratio"]
            .as_f64()
            .is_some_and(|ratio| ratio > 0.0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_export_at_once_and_sync_only_when_a_person_approves_and_never_delete() {
    use protocol::instruction::{
        self as wire, Approval, InstructionOutcome, InstructionPayload, InstructionState,
    };
    let World {
        store,
        daemon,
        client: person,
        root,
    } = world().await;
    let page = root.join("inputs/page.png");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([40, 40, 40]))
        .save(&page)
        .unwrap();
    person
        .call::<protocol::asset::Import>(&protocol::asset::ImportParams {
            project: "noir".into(),
            paths: vec![page.display().to_string()],
            kind: protocol::asset::AssetKind::Input,
        })
        .await
        .expect("asset.import");
    let agent = daemon.client().await;
    agent
        .call::<wire::Hello>(&wire::HelloParams {
            client_name: "sync-agent".into(),
        })
        .await
        .expect("hello");
    let ask = |payload: InstructionPayload| {
        let agent = &agent;
        async move {
            agent
                .call::<wire::Create>(&wire::CreateParams {
                    project: "noir".into(),
                    objective: "back the pages up".into(),
                    source_text: Some("put everything in the bucket".into()),
                    message: None,
                    payload,
                })
                .await
        }
    };
    let sync_params = |dry_run: bool, delete: bool| protocol::storage::SyncParams {
        project: "noir".into(),
        what: What::Project,
        direction: Direction::Push,
        delete,
        dry_run,
        confirmed_deletes: None,
    };

    let export = ask(InstructionPayload::Export(protocol::export::CreateParams {
        project: "noir".into(),
        selection: protocol::export::Selection::Project,
        format: protocol::export::ExportFormat::TarGz,
    }))
    .await
    .expect("an export");
    assert_eq!(export.approval, Some(Approval::Free));
    let exported = crate::instructions::settled(&agent, &export.id).await;
    assert_eq!(exported.state, InstructionState::Done, "{exported:#?}");
    let Some(InstructionOutcome::Export { export }) = exported.outcome else {
        panic!("no export: {exported:#?}");
    };
    assert!(Path::new(&export.path).is_file());

    let dry = ask(InstructionPayload::StorageSync(sync_params(true, false)))
        .await
        .expect("a dry run");
    let dry = crate::instructions::settled(&agent, &dry.id).await;
    let Some(InstructionOutcome::StorageSync { report }) = dry.outcome else {
        panic!("no report: {dry:#?}");
    };
    assert!(report.dry_run && !report.plan.items.is_empty());
    assert_eq!(
        store.server.count(Request::PutObject),
        0,
        "a dry run sends nothing"
    );

    let refused = ask(InstructionPayload::StorageSync(sync_params(false, true)))
        .await
        .unwrap_err();
    assert_eq!(
        error_code(refused).0,
        "invalid_instruction",
        "agents never delete"
    );
    let direct = agent
        .call::<protocol::storage::Sync>(&sync_params(false, false))
        .await
        .unwrap_err();
    assert_eq!(error_code(direct).0, "not_for_agents");

    let proposed = ask(InstructionPayload::StorageSync(sync_params(false, false)))
        .await
        .expect("a sync");
    assert_eq!(proposed.state, InstructionState::AwaitingConfirmation);
    let why = proposed.waiting_for.clone().unwrap_or_default();
    assert!(
        why.contains("upload") && why.contains("s3://comics/team/noir/") && why.contains("person"),
        "{why}"
    );
    let self_approved = agent
        .call::<wire::Confirm>(&wire::ConfirmParams {
            id: proposed.id.clone(),
            confirm_cost_usd: 0.0,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(self_approved).0, "not_for_agents");
    assert_eq!(
        store.server.count(Request::PutObject),
        0,
        "nothing moves before a person says so"
    );
    person
        .call::<wire::Confirm>(&wire::ConfirmParams {
            id: proposed.id.clone(),
            confirm_cost_usd: 0.0,
        })
        .await
        .expect("a person confirms");
    let synced = crate::instructions::settled(&agent, &proposed.id).await;
    assert_eq!(synced.state, InstructionState::Done, "{synced:#?}");
    let Some(InstructionOutcome::StorageSync { report }) = synced.outcome else {
        panic!("no report: {synced:#?}");
    };
    assert!(report.ok && report.uploaded >= 2, "{report:?}");
    assert!(store.object("team/noir/inputs/page.png").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sync_instruction_stops_when_canceled_and_the_next_sync_resumes_it() {
    use protocol::instruction::{self as wire, InstructionPayload, InstructionState};
    let World {
        store,
        daemon,
        client: person,
        root,
    } = world().await;
    let big = noise(5, 20 * 1024 * 1024);
    write(&root, "outputs/page.tif", &big);
    let agent = daemon.client().await;
    agent
        .call::<wire::Hello>(&wire::HelloParams {
            client_name: "sync-agent".into(),
        })
        .await
        .expect("hello");
    let proposed = agent
        .call::<wire::Create>(&wire::CreateParams {
            project: "noir".into(),
            objective: "back up the page".into(),
            source_text: None,
            message: None,
            payload: InstructionPayload::StorageSync(protocol::storage::SyncParams {
                project: "noir".into(),
                what: What::Project,
                direction: Direction::Push,
                delete: false,
                dry_run: false,
                confirmed_deletes: None,
            }),
        })
        .await
        .expect("a sync");
    store.server.hold_parts_after(1);
    person
        .call::<wire::Confirm>(&wire::ConfirmParams {
            id: proposed.id.clone(),
            confirm_cost_usd: 0.0,
        })
        .await
        .expect("a person confirms");
    held(&store, &daemon.data_dir).await;
    let canceled = agent
        .call::<wire::Cancel>(&wire::InstructionRef {
            id: proposed.id.clone(),
        })
        .await
        .expect("instruction.cancel");
    assert_eq!(canceled.state, InstructionState::Canceled, "{canceled:#?}");
    store.server.release();
    assert!(!store.object("team/noir/outputs/page.tif").exists());

    let resumed = sync(&person, Direction::Push, false, false).await;
    assert!(resumed.ok, "{:?}", resumed.failed);
    assert_eq!(
        resumed.resumed_parts, 1,
        "the part sent before the cancel is not sent again"
    );
    assert_eq!(
        std::fs::read(store.object("team/noir/outputs/page.tif")).unwrap(),
        big
    );
}
