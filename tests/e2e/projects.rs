//! Projects through the real client: create, list, show, update, delete, and what each leaves in
//! the event and audit logs.

use kroma_client::ClientError;
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use protocol::project::{CreateParams, DeleteParams, ProjectRef, S3Settings, UpdateParams};

fn create(name: &str) -> CreateParams {
    CreateParams {
        name: name.into(),
        slug: None,
        description: None,
        root: None,
        s3: None,
    }
}

/// The `data.code` of a Kroma error.
fn code(err: ClientError) -> String {
    match err {
        ClientError::Rpc {
            data: Some(data), ..
        } => data.code,
        other => panic!("expected a Kroma error, got {other:?}"),
    }
}

const LAYOUT: &[&str] = &[
    "inputs",
    "references",
    "outputs",
    "runs",
    "background_removed",
    "upscaled",
    "color_corrected",
    "archive/bad",
    "archive/replaced",
    "exports",
    ".kroma",
];

#[tokio::test]
async fn create_makes_the_root_layout_and_refuses_clashes() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let project = client
        .call::<protocol::project::Create>(&CreateParams {
            description: Some("A rainy port city".into()),
            ..create("Night Harbor")
        })
        .await
        .unwrap();
    assert_eq!(project.slug, "night-harbor");
    assert_eq!(project.description, "A rainy port city");
    let root = daemon.data_dir.join("projects/night-harbor");
    assert_eq!(project.root, root.display().to_string());
    for folder in LAYOUT {
        assert!(root.join(folder).is_dir(), "{folder}");
    }
    uuid_like(&project.id);

    let taken = client
        .call::<protocol::project::Create>(&create("Night Harbor"))
        .await
        .unwrap_err();
    assert_eq!(code(taken), "slug_taken");
    let bad = client
        .call::<protocol::project::Create>(&CreateParams {
            slug: Some("Night_Harbor".into()),
            ..create("x")
        })
        .await
        .unwrap_err();
    assert_eq!(code(bad), "invalid_slug");
    let empty = client
        .call::<protocol::project::Create>(&create("   "))
        .await
        .unwrap_err();
    assert_eq!(code(empty), "invalid_name");

    // An explicit root must be absolute and new or empty; a refused create leaves no trace.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("mine.txt"), "keep me").unwrap();
    let occupied = client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some(elsewhere.path().display().to_string()),
            ..create("Occupied")
        })
        .await
        .unwrap_err();
    assert_eq!(code(occupied), "root_not_empty");
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("mine.txt")).unwrap(),
        "keep me"
    );
    let relative = client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some("relative/path".into()),
            ..create("Relative")
        })
        .await
        .unwrap_err();
    assert_eq!(code(relative), "invalid_root");
    let custom_root = elsewhere.path().join("custom");
    let custom = client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some(custom_root.display().to_string()),
            ..create("Custom Root")
        })
        .await
        .unwrap();
    assert_eq!(custom.root, custom_root.display().to_string());
    assert!(custom_root.join("archive/replaced").is_dir());

    // A root inside another project's root would let a purge of one delete the other.
    let nested = client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some(custom_root.join("exports/inner").display().to_string()),
            ..create("Nested")
        })
        .await
        .unwrap_err();
    assert_eq!(code(nested), "root_overlaps");
    let list = client
        .call::<protocol::project::List>(&protocol::NoParams {})
        .await
        .unwrap();
    let slugs: Vec<&str> = list.projects.iter().map(|p| p.slug.as_str()).collect();
    assert_eq!(slugs, ["night-harbor", "custom-root"]);
    assert!(!daemon.data_dir.join("projects/occupied").exists());
}

fn uuid_like(id: &str) {
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");
}

#[tokio::test]
async fn update_changes_only_what_is_given_and_validates_s3() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let created = client
        .call::<protocol::project::Create>(&create("Rain City"))
        .await
        .unwrap();
    let s3 = S3Settings {
        prefix: "rain-city/".into(),
        region: Some("eu-west-1".into()),
        endpoint: Some("http://127.0.0.1:9000".into()),
        access_key_secret: Some("rain_key".into()),
        ..S3Settings::bucket("comics-exports")
    };
    let updated = client
        .call::<protocol::project::Update>(&UpdateParams {
            slug: "rain-city".into(),
            name: None,
            description: Some("Neon and puddles".into()),
            s3: Some(Some(s3.clone())),
        })
        .await
        .unwrap();
    assert_eq!(updated.name, "Rain City");
    assert_eq!(updated.description, "Neon and puddles");
    let stored = updated.storage.s3.clone().unwrap();
    assert_eq!(
        stored.prefix, "rain-city",
        "the trailing slash is normalised away"
    );
    assert_eq!(stored.endpoint, s3.endpoint);
    assert_eq!(stored.access_key_secret, s3.access_key_secret);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);

    let bad = client
        .call::<protocol::project::Update>(&UpdateParams {
            slug: "rain-city".into(),
            name: None,
            description: None,
            s3: Some(Some(S3Settings {
                bucket: "Bad_Bucket".into(),
                ..s3.clone()
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(code(bad), "invalid_s3_settings");
    let shown = client
        .call::<protocol::project::Get>(&ProjectRef {
            slug: "rain-city".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        shown.storage.s3, updated.storage.s3,
        "a refused update changes nothing"
    );

    let cleared = client
        .call::<protocol::project::Update>(&UpdateParams {
            slug: "rain-city".into(),
            name: Some("Rain City II".into()),
            description: None,
            s3: Some(None),
        })
        .await
        .unwrap();
    assert_eq!(cleared.storage.s3, None);
    assert_eq!(cleared.name, "Rain City II");
    assert_eq!(cleared.description, "Neon and puddles");

    let missing = client
        .call::<protocol::project::Update>(&UpdateParams {
            slug: "nope".into(),
            name: Some("x".into()),
            description: None,
            s3: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code(missing), "project_not_found");
}

#[tokio::test]
async fn delete_needs_confirmation_and_purges_only_when_asked() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let kept = client
        .call::<protocol::project::Create>(&create("Kept Files"))
        .await
        .unwrap();
    let purged = client
        .call::<protocol::project::Create>(&create("Purged Files"))
        .await
        .unwrap();
    std::fs::write(
        std::path::Path::new(&purged.root).join("inputs/page-01.png"),
        b"png",
    )
    .unwrap();

    let unconfirmed = client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "kept-files".into(),
            confirm: false,
            purge_files: false,
        })
        .await
        .unwrap_err();
    assert_eq!(code(unconfirmed), "confirmation_required");

    let deleted = client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "kept-files".into(),
            confirm: true,
            purge_files: false,
        })
        .await
        .unwrap();
    assert!(!deleted.purged_files);
    assert!(
        std::path::Path::new(&kept.root).join("inputs").is_dir(),
        "files are kept"
    );

    let deleted = client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "purged-files".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .unwrap();
    assert!(deleted.purged_files);
    assert!(!std::path::Path::new(&purged.root).exists());
    let leftovers: Vec<_> = std::fs::read_dir(daemon.data_dir.join("projects"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["kept-files"]);

    let gone = client
        .call::<protocol::project::Get>(&ProjectRef {
            slug: "purged-files".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(gone), "project_not_found");
    // The slug is free again, but the kept folder is not reused blindly.
    let reused = client
        .call::<protocol::project::Create>(&create("Kept Files"))
        .await
        .unwrap_err();
    assert_eq!(code(reused), "root_not_empty");
}

#[tokio::test]
async fn purge_refuses_a_root_that_is_not_marked_as_the_projects() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let project = client
        .call::<protocol::project::Create>(&create("Marked"))
        .await
        .unwrap();
    let root = std::path::Path::new(&project.root);
    std::fs::remove_file(root.join(".kroma/project.json")).unwrap();
    let refused = client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "marked".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .unwrap_err();
    assert_eq!(code(refused), "root_not_owned");
    assert!(root.join("inputs").is_dir());
    // The row deletion was rolled back with it.
    client
        .call::<protocol::project::Get>(&ProjectRef {
            slug: "marked".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn every_change_is_an_event_and_every_mutating_call_is_audited() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    client
        .call::<protocol::project::Create>(&create("Audited"))
        .await
        .unwrap();
    client
        .call::<protocol::project::Create>(&create("Audited"))
        .await
        .unwrap_err();
    client
        .call::<protocol::project::Update>(&UpdateParams {
            slug: "audited".into(),
            name: Some("Audited Again".into()),
            description: None,
            s3: None,
        })
        .await
        .unwrap();
    client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "audited".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .unwrap();
    client
        .call::<protocol::project::List>(&protocol::NoParams {})
        .await
        .unwrap();

    let page = client
        .call::<protocol::events::List>(&protocol::events::ListParams::default())
        .await
        .unwrap();
    let kinds: Vec<&str> = page.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "daemon.started",
            "project.created",
            "project.updated",
            "project.deleted"
        ]
    );
    assert_eq!(page.events[2].data["changed"], serde_json::json!(["name"]));
    assert_eq!(page.last_id, page.events.last().unwrap().id);

    let audit = client
        .call::<protocol::audit::List>(&protocol::audit::ListParams::default())
        .await
        .unwrap();
    let calls: Vec<(&str, &str)> = audit
        .entries
        .iter()
        .map(|e| (e.method.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("project.create", "ok"),
            ("project.create", "slug_taken"),
            ("project.update", "ok"),
            ("project.delete", "ok"),
        ],
        "reads are not audited"
    );
    let own_uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    for entry in &audit.entries {
        assert_eq!(entry.peer_uid, Some(own_uid));
        assert!(
            !entry.client.is_empty() && entry.client != "unknown",
            "{}",
            entry.client
        );
        assert_eq!(entry.params_digest.len(), 64);
    }
    assert_eq!(
        audit.entries[0].params_digest, audit.entries[1].params_digest,
        "same params, same digest"
    );
    let later = client
        .call::<protocol::audit::List>(&protocol::audit::ListParams {
            since: Some(audit.entries[1].id),
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(later.entries.len(), 1);
    assert_eq!(later.entries[0].method, "project.update");
}

/// Links cannot make two projects share files: roots are compared with their links resolved,
/// when a project is created and again before a purge.
#[tokio::test]
async fn linked_roots_never_let_a_purge_reach_another_project() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let folder = tempfile::tempdir().unwrap();
    let base = folder.path().canonicalize().unwrap();
    let alpha_root = base.join("alpha");
    client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some(alpha_root.display().to_string()),
            ..create("Alpha")
        })
        .await
        .unwrap();

    // A link into Alpha's root, to a folder that exists and to one that does not yet.
    std::fs::create_dir(alpha_root.join("exports/bravo")).unwrap();
    std::os::unix::fs::symlink(alpha_root.join("exports/bravo"), base.join("link")).unwrap();
    std::os::unix::fs::symlink(&alpha_root, base.join("alpha-link")).unwrap();
    for root in [
        base.join("link"),
        base.join("alpha-link/new"),
        base.join("link/deeper"),
    ] {
        let refused = client
            .call::<protocol::project::Create>(&CreateParams {
                root: Some(root.display().to_string()),
                ..create("Bravo")
            })
            .await
            .unwrap_err();
        assert_eq!(code(refused), "root_overlaps", "{}", root.display());
    }
    // Nor into the data dir, by a link or directly.
    std::os::unix::fs::symlink(&daemon.data_dir, base.join("data-link")).unwrap();
    for root in [base.join("data-link/logs/x"), daemon.data_dir.join("x")] {
        let refused = client
            .call::<protocol::project::Create>(&CreateParams {
                root: Some(root.display().to_string()),
                ..create("Charlie")
            })
            .await
            .unwrap_err();
        assert_eq!(code(refused), "root_overlaps", "{}", root.display());
    }

    // A root made apart, then moved into Alpha's and linked back from where it was: Alpha's
    // purge is refused and nothing is lost.
    let bravo_root = base.join("bravo");
    let bravo = client
        .call::<protocol::project::Create>(&CreateParams {
            root: Some(bravo_root.display().to_string()),
            ..create("Bravo")
        })
        .await
        .unwrap();
    assert_eq!(bravo.root, bravo_root.display().to_string());
    std::fs::write(bravo_root.join("inputs/page.png"), b"bravo's page").unwrap();
    std::fs::rename(&bravo_root, alpha_root.join("exports/moved-bravo")).unwrap();
    std::os::unix::fs::symlink(alpha_root.join("exports/moved-bravo"), &bravo_root).unwrap();
    let refused = client
        .call::<protocol::project::Delete>(&DeleteParams {
            slug: "alpha".into(),
            confirm: true,
            purge_files: true,
        })
        .await
        .unwrap_err();
    assert_eq!(code(refused), "root_overlaps");
    assert_eq!(
        std::fs::read(bravo_root.join("inputs/page.png")).unwrap(),
        b"bravo's page"
    );
    // Both projects are still there.
    for slug in ["alpha", "bravo"] {
        client
            .call::<protocol::project::Get>(&ProjectRef { slug: slug.into() })
            .await
            .unwrap();
    }
}
