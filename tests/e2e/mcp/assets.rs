//! kroma-mcp's asset resources read by the Python MCP SDK (`tests/python/mcp_client.py
//! --scenario assets`) against the real kromad: a project's assets as JSON, an image asset as a
//! bounded PNG thumbnail, a voice recording as its metadata only, and an asset file swapped on
//! disk for a link to a file outside the project refused.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use serde_json::Value;

use crate::runs::World;

/// A tiny WAV file: the RIFF header and a few silent samples.
pub(super) fn write_wav(path: &Path) {
    let mut bytes = b"RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x08\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(path, bytes).expect("wav");
}

/// The folder of project `slug`, as kromad reports it.
pub(super) async fn project_root(world: &World, slug: &str) -> PathBuf {
    let person = world.client().await;
    let project = person
        .call::<protocol::project::Get>(&protocol::project::ProjectRef { slug: slug.into() })
        .await
        .expect("project");
    PathBuf::from(project.root)
}

/// A voice message recorded by the person in project `noir`: its recording's asset id.
async fn record_voice(world: &World) -> String {
    let person = world.client().await;
    let recording = project_root(world, "noir").await.join("take-1.wav");
    write_wav(&recording);
    let session = person
        .call::<protocol::chat::Create>(&protocol::chat::CreateParams {
            project: "noir".into(),
            title: None,
        })
        .await
        .expect("session");
    let message = person
        .call::<protocol::chat::Append>(&protocol::chat::AppendParams {
            session: session.id,
            role: protocol::chat::Role::User,
            text: "the alley, but wetter".into(),
            audio_path: Some(recording.display().to_string()),
        })
        .await
        .expect("voice message");
    message.audio_asset.expect("an audio asset")
}

async fn assets(world: &World, mode: &str) -> Value {
    let socket = super::socket_arg(world);
    super::client(
        &["--mode", mode, "--scenario", "assets"],
        &["--socket", &socket],
    )
    .await
}

/// The asset ids of `seen`'s list, with their kinds.
fn listed(seen: &Value) -> Vec<(String, String)> {
    let list = &seen["assets"][0];
    assert_eq!(list["mime_type"], "application/json", "{list:#}");
    list["json"]["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|asset| {
            (
                asset["id"].as_str().expect("id").to_owned(),
                asset["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect()
}

/// Every image reads as one PNG no larger than a thumbnail; the recording as its metadata.
fn check_reads(seen: &Value, except: Option<&str>) {
    for (id, kind) in listed(seen) {
        if Some(id.as_str()) == except {
            continue;
        }
        let contents = seen["reads"][&id].as_array().expect("contents");
        assert_eq!(contents.len(), 1, "{id}: {contents:#?}");
        let content = &contents[0];
        if kind == "audio" {
            assert_eq!(content["mime_type"], "application/json", "{content:#}");
            assert!(content.get("blob_bytes").is_none(), "no recording bytes");
            assert_eq!(content["json"]["id"], id.as_str());
            assert_eq!(content["json"]["kind"], "audio");
        } else {
            assert_eq!(content["mime_type"], "image/png", "{id}: {content:#}");
            let size = content["size"].as_array().expect("a PNG");
            let longest = size.iter().filter_map(Value::as_u64).max();
            assert!(longest.is_some_and(|side| side <= 512), "{size:?}");
            let bytes = content["blob_bytes"].as_u64().expect("bytes");
            assert!(bytes <= 1024 * 1024, "{bytes}");
        }
    }
}

#[tokio::test]
async fn mcp_asset_resources_are_bounded_thumbnails_or_metadata_and_stay_in_the_project() {
    let (world, scene, run) = super::world_with_a_finished_run().await;
    let audio = record_voice(&world).await;
    // A large candidate is shown at most 512 pixels on its longest side.
    let candidate = &run.jobs[0].candidates[0];
    image::RgbImage::from_fn(1024, 1536, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(candidate.output.as_deref().expect("an output"))
        .expect("replace the candidate with a large image");

    let seen = assets(&world, "legacy").await;
    assert_eq!(seen["protocol_version"], "2025-11-25");
    let templates: Vec<&str> = seen["resource_templates"]
        .as_array()
        .expect("templates")
        .iter()
        .filter_map(|template| template["uriTemplate"].as_str())
        .collect();
    assert_eq!(
        templates,
        [
            "kroma://projects/{slug}",
            "kroma://projects/{slug}/assets",
            "kroma://projects/{slug}/assets/{id}",
            "kroma://runs/{id}",
        ]
    );
    let kinds = listed(&seen);
    let kind_of = |id: &str| {
        kinds
            .iter()
            .find(|(listed, _)| listed == id)
            .map(|(_, kind)| kind.as_str())
    };
    assert_eq!(kind_of(&scene), Some("input"));
    assert_eq!(kind_of(&audio), Some("audio"));
    let generated = candidate.asset.as_deref().expect("an asset");
    assert_eq!(kind_of(generated), Some("generated"));
    check_reads(&seen, None);
    assert_eq!(
        seen["reads"][generated][0]["size"],
        serde_json::json!([341, 512])
    );
    let missing = seen["missing_asset"]["message"].as_str().expect("an error");
    assert!(
        missing.contains("00000000-0000-4000-8000-000000000000"),
        "{missing}"
    );
    assert!(seen["unknown_project"]["message"].is_string());

    // The scene's file replaced by a link to a file outside the project is refused; the rest
    // still reads.
    let root = project_root(&world, "noir").await;
    let scene_path = seen["assets"][0]["json"]["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|asset| asset["id"] == scene.as_str())
        .and_then(|asset| asset["path"].as_str())
        .map(|path| root.join(path))
        .expect("the scene's path");
    let outside = world.folder.join("not-in-the-project.png");
    crate::runs::write_png(&outside, [1, 2, 3]);
    std::fs::remove_file(&scene_path).expect("remove");
    std::os::unix::fs::symlink(&outside, &scene_path).expect("symlink");
    let seen = assets(&world, "2026-07-28").await;
    assert_eq!(seen["protocol_version"], "2026-07-28");
    let refused = seen["reads"][&scene]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("refused: {:#}", seen["reads"][&scene]));
    assert!(
        refused.contains("is outside the project folder"),
        "{refused}"
    );
    check_reads(&seen, Some(&scene));
}
