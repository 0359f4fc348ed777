//! The bootstrap exchange (J03) through the real daemon: export a prompt, import an AI's answer as
//! a dry run, then for real, in merge and replace modes.

use kroma_client::ClientError;
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use protocol::bootstrap::{ImportMode, ImportParams};
use protocol::knowledge as wire;

fn import(text: &str, mode: ImportMode, dry_run: bool) -> ImportParams {
    ImportParams {
        project: "harbor".into(),
        document: None,
        text: Some(text.into()),
        mode,
        dry_run,
    }
}

#[tokio::test]
async fn export_then_import_an_answer_in_merge_and_replace_modes() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Harbor".into(),
            slug: None,
            description: None,
            root: None,
            s3: None,
        })
        .await
        .unwrap();
    client
        .call::<wire::style_guide::Create>(&wire::StyleGuideCreate {
            project: "harbor".into(),
            name: "Ink".into(),
            instructions: "brush ink".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let export = client
        .call::<protocol::bootstrap::Export>(&wire::ProjectParams {
            project: "harbor".into(),
        })
        .await
        .unwrap();
    assert_eq!(export.schema_version, "kroma.bootstrap.v1");
    assert!(
        export.prompt.contains("brush ink")
            && export.prompt.contains("Return ONLY one JSON object")
    );
    assert_eq!(export.current.style_guides.as_ref().unwrap()[0].name, "Ink");
    assert!(export.schema["properties"]["style_guides"].is_object());

    let answer = r#"Here is the configuration:
```json
{
  "schema_version": "kroma.bootstrap.v1",
  "project": {"description": "A rainy port city at the end of the world"},
  "style_guides": [{"name": "Ink", "lighting": "sodium lamps"}, {"name": "Flashback", "instructions": "sepia, soft focus"}],
  "characters": [{"name": "Mara", "prompt_text": "grey braid, oilskin coat"}],
  "prompt_templates": [{"name": "Establishing", "body": "wide shot of {{place}}", "variables": ["place"]}]
}
```"#;
    let preview = client
        .call::<protocol::bootstrap::Import>(&import(answer, ImportMode::Merge, true))
        .await
        .unwrap();
    assert!(preview.dry_run);
    assert_eq!(preview.style_guides.created, ["Flashback"]);
    assert_eq!(preview.style_guides.updated, ["Ink"]);
    assert_eq!(preview.characters.created, ["Mara"]);
    assert!(preview.project.description_changed);
    let guides = client
        .call::<wire::style_guide::List>(&wire::ProjectParams {
            project: "harbor".into(),
        })
        .await
        .unwrap();
    assert_eq!(guides.style_guides.len(), 1, "a dry run changes nothing");

    let applied = client
        .call::<protocol::bootstrap::Import>(&import(answer, ImportMode::Merge, false))
        .await
        .unwrap();
    assert_eq!(
        applied.style_guides, preview.style_guides,
        "the dry run reported exactly what happened"
    );
    let ink = client
        .call::<wire::style_guide::Get>(&wire::EntityRef {
            project: "harbor".into(),
            id: "ink".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (ink.instructions.as_str(), ink.lighting.as_str()),
        ("brush ink", "sodium lamps")
    );
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "harbor".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        project.description,
        "A rainy port city at the end of the world"
    );
    let rendered = client
        .call::<wire::prompt_template::Render>(&wire::RenderParams {
            project: "harbor".into(),
            id: "establishing".into(),
            vars: [("place".to_owned(), "the harbor".to_owned())].into(),
        })
        .await
        .unwrap();
    assert_eq!(rendered.text, "wide shot of the harbor");

    // Importing the same answer again changes nothing.
    let again = client
        .call::<protocol::bootstrap::Import>(&import(answer, ImportMode::Merge, false))
        .await
        .unwrap();
    assert!(again.style_guides.created.is_empty() && again.style_guides.updated.is_empty());

    // Replace: the characters section becomes exactly the document's.
    let replace = r#"{"characters": [{"name": "Ilo", "description": "dock kid"}]}"#;
    let replaced = client
        .call::<protocol::bootstrap::Import>(&import(replace, ImportMode::Replace, false))
        .await
        .unwrap();
    assert_eq!(replaced.characters.created, ["Ilo"]);
    assert_eq!(replaced.characters.deleted, ["Mara"]);
    assert!(!replaced.style_guides.provided);
    let characters = client
        .call::<wire::character::List>(&wire::ProjectParams {
            project: "harbor".into(),
        })
        .await
        .unwrap();
    let names: Vec<&str> = characters
        .characters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["Ilo"]);

    // A bad answer changes nothing and says why.
    let bad = r#"{"characters": [{"name": "A"}, {"name": "a"}]}"#;
    let err = client
        .call::<protocol::bootstrap::Import>(&import(bad, ImportMode::Replace, false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Rpc { data: Some(ref data), .. } if data.code == "duplicate_name"),
        "{err:?}"
    );
    let characters = client
        .call::<wire::character::List>(&wire::ProjectParams {
            project: "harbor".into(),
        })
        .await
        .unwrap();
    assert_eq!(characters.characters.len(), 1);
    let events = client
        .call::<protocol::events::List>(&protocol::events::ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        events
            .events
            .iter()
            .filter(|e| e.kind == "bootstrap.imported")
            .count(),
        3
    );
}

#[test]
fn bootstrap_from_the_command_line_reads_the_answer_from_stdin() {
    use std::io::Write;
    let daemon = Daemon::start();
    let socket = &daemon.socket;
    assert!(
        kroma_tests::kromactl(socket, &["project", "create", "Cli Boot"])
            .status
            .success()
    );
    let export = kroma_tests::kromactl(socket, &["bootstrap", "export", "cli-boot"]);
    assert!(String::from_utf8_lossy(&export.stdout).contains("JSON Schema of the answer"));
    let mut child = std::process::Command::new(kroma_tests::bin("kromactl"))
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "bootstrap",
            "import",
            "cli-boot",
            "--dry-run",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"characters": [{"name": "Mara"}]}"#)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Mara") && stdout.contains("dry run: nothing was changed"),
        "{stdout}"
    );
}
