//! Store tests on a real SQLite file.

use super::*;

fn open_temp() -> (tempfile::TempDir, Store) {
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open(&temp.path().join("kroma.db")).unwrap();
    (temp, store)
}

#[test]
fn schema_matches_snapshot() {
    let (_temp, store) = open_temp();
    let conn = store.inner.lock();
    let mut statement = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name",
        )
        .unwrap();
    let schema: Vec<String> = statement
        .query_map([], |row| {
            Ok(format!(
                "-- {} {}\n{}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    insta::assert_snapshot!(schema.join("\n\n"));
}

#[test]
fn a_database_from_a_newer_kromad_is_refused_untouched() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("kroma.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).err().expect("refused");
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer kromad"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("kroma.db");
    drop(Store::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
    let version: u32 = store
        .inner
        .lock()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, Store::schema_version());
}

fn new_project(slug: &str) -> NewProject {
    NewProject {
        id: format!("id-{slug}"),
        slug: slug.to_owned(),
        name: slug.to_uppercase(),
        description: String::new(),
        root: format!("/p/{slug}"),
        s3: None,
        at: "2026-01-01T00:00:00Z".to_owned(),
    }
}

#[tokio::test]
async fn slugs_are_unique_and_deletes_cascade() {
    let (_temp, store) = open_temp();
    let insert = |slug: &'static str| {
        store.write(move |tx| {
            Ok::<_, StoreError>((insert_project(tx, &new_project(slug))?, Vec::new()))
        })
    };
    insert("a").await.unwrap();
    assert!(matches!(insert("a").await, Err(StoreError::SlugTaken(slug)) if slug == "a"));
    let s3 = crate::projects::rules::S3Settings {
        bucket: "comics".into(),
        prefix: "a".into(),
        region: None,
        endpoint: None,
        path_style: Some(true),
        checksum_mode: kroma_protocol::project::ChecksumMode::WhenSupported,
        access_key_secret: Some("minio_key".into()),
        secret_key_secret: None,
    };
    let changes = ProjectChanges {
        s3: Some(Some(s3.clone())),
        ..ProjectChanges::default()
    };
    let updated = store
        .write(move |tx| {
            Ok::<_, StoreError>((
                update_project(tx, "a", &changes, "2026-01-02T00:00:00Z")?,
                Vec::new(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(updated.s3, Some(s3));
    assert_eq!(updated.updated_at, "2026-01-02T00:00:00Z");
    store
        .write(|tx| Ok::<_, StoreError>((delete_project(tx, "a")?, Vec::new())))
        .await
        .unwrap();
    let storage_rows: i64 = store
        .inner
        .lock()
        .query_row("SELECT count(*) FROM project_storage", [], |row| row.get(0))
        .unwrap();
    assert_eq!(storage_rows, 0);
    assert!(matches!(
        store.read(|conn| get_project(conn, "a")).await,
        Err(StoreError::ProjectNotFound(_))
    ));
}

#[tokio::test]
async fn event_ids_increase_across_reopen_and_a_failed_write_emits_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("kroma.db");
    let event = |kind| NewEvent {
        at: "2026-01-01T00:00:00Z".into(),
        kind,
        project: None,
        data: serde_json::json!({}),
    };
    let store = Store::open(&path).unwrap();
    let mut live = store.subscribe();
    store
        .append_events(vec![event("a"), event("b")])
        .await
        .unwrap();
    let failed = store
        .write(move |tx| {
            insert_project(tx, &new_project("x"))?;
            Err::<((), Vec<NewEvent>), _>(StoreError::Corrupt("forced".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(live.recv().await.unwrap().kind, "a");
    assert_eq!(live.recv().await.unwrap().kind, "b");
    assert!(live.try_recv().is_err());
    drop(store);

    let store = Store::open(&path).unwrap();
    store.append_events(vec![event("c")]).await.unwrap();
    let (events, last_id) = store.read(|conn| list_events(conn, 0, 10)).await.unwrap();
    let ids: Vec<u64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(last_id, 3);
    let (after_two, _) = store.read(|conn| list_events(conn, 2, 10)).await.unwrap();
    assert_eq!(after_two.len(), 1);
    assert!(store.read(list_projects).await.unwrap().is_empty());
}

/// What the log holds for typed payloads: the `data` column, byte for byte as kromad wrote it
/// before payloads were typed (keys sorted, optional fields absent, `postprocess.file`'s nulls
/// kept).
#[tokio::test]
async fn typed_payloads_are_stored_as_plain_sorted_json() {
    use protocol::events::{CandidateFailed, PostprocessFile, RunProgress, RunStarted};
    let (_temp, store) = open_temp();
    let at = || "2026-01-01T00:00:00.000Z".to_owned();
    let started = RunStarted {
        run: "r1".into(),
        retry: false,
        candidates: 6,
        chains: None,
        confirmed_cost_usd: 1.0,
        max_cost_usd: 0.75,
    };
    let retried = RunStarted {
        retry: true,
        candidates: 2,
        chains: Some(0),
        ..started.clone()
    };
    let progress = RunProgress {
        run: "r1".into(),
        jobs: 3,
        jobs_done: 1,
        candidates: 6,
        succeeded: 2,
        failed: 1,
        spent_usd: 0.08,
        eta_secs: None,
    };
    let failed = CandidateFailed {
        run: "r1".into(),
        job: "style_1".into(),
        index: 3,
        status: protocol::run::CandidateStatus::Unknown,
        error: protocol::ErrorData::new(
            protocol::ErrorKind::Provider,
            protocol::ErrorCode::CallLost,
            "lost",
        ),
        cost_usd: Some(0.04),
    };
    let file = PostprocessFile {
        step: protocol::postprocess::Step::Upscale,
        input: "/tmp/a.png".into(),
        output: Some("/tmp/a_x4.png".into()),
        error: None,
        done: 1,
        total: 3,
    };
    store
        .append_events(vec![
            NewEvent::of(at(), Some("p".into()), &started),
            NewEvent::of(at(), Some("p".into()), &retried),
            NewEvent::of(at(), Some("p".into()), &progress),
            NewEvent::of(at(), Some("p".into()), &failed),
            NewEvent::of(at(), None, &file),
        ])
        .await
        .unwrap();
    let conn = store.inner.lock();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT kind, data FROM events ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        (
            "run.started",
            r#"{"candidates":6,"confirmed_cost_usd":1.0,"max_cost_usd":0.75,"run":"r1"}"#,
        ),
        (
            "run.started",
            r#"{"candidates":2,"chains":0,"confirmed_cost_usd":1.0,"max_cost_usd":0.75,"retry":true,"run":"r1"}"#,
        ),
        (
            "run.progress",
            r#"{"candidates":6,"failed":1,"jobs":3,"jobs_done":1,"run":"r1","spent_usd":0.08,"succeeded":2}"#,
        ),
        (
            "candidate.failed",
            r#"{"cost_usd":0.04,"error":{"code":"call_lost","kind":"provider","message":"lost"},"index":3,"job":"style_1","run":"r1","status":"unknown"}"#,
        ),
        (
            "postprocess.file",
            r#"{"done":1,"error":null,"input":"/tmp/a.png","output":"/tmp/a_x4.png","step":"upscale","total":3}"#,
        ),
    ];
    let rows: Vec<(&str, &str)> = rows
        .iter()
        .map(|(kind, data)| (kind.as_str(), data.as_str()))
        .collect();
    assert_eq!(rows, expected);
}
