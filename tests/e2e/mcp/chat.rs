//! kroma-mcp's chat tools driven by the Python MCP SDK (`tests/python/mcp_instructions.py
//! --scenario chat`) against the real kromad: a voice agent starts a chat, records what the
//! person said with its recording, proposes the work as an instruction of that message, and
//! reads the chat back with the instruction under the message. What the person said stays
//! data, in structured content only; a recording outside the project is refused.

use serde_json::Value;

use super::assets::{project_root, write_wav};
use super::instructions::{CLIENT, INJECTION, Transport, agent, error_text, ok, world};

/// The text blocks of a tool result: kroma-mcp's own summary, never the message's text.
fn summary(result: &Value) -> String {
    let texts = result["texts"].as_array().expect("texts");
    assert_eq!(texts.len(), 1, "one summary: {texts:#?}");
    let text = texts[0].as_str().expect("text").to_owned();
    assert!(
        !text.contains("SYSTEM"),
        "the message's text is data: {text}"
    );
    text
}

#[tokio::test]
async fn mcp_a_voice_agent_keeps_the_chat_and_the_instruction_shows_under_its_message() {
    let (world, scene) = world().await;
    let socket = world.socket().display().to_string();
    let recording = project_root(&world, "noir").await.join("take-1.wav");
    write_wav(&recording);
    let outside = world.folder.join("not-in-the-project.wav");
    write_wav(&outside);
    let seen = agent(
        &[
            "--mode",
            "2026-07-28",
            "--scenario",
            "chat",
            "--elicitation",
            "none",
            "--scene",
            &scene,
            "--recording",
            &recording.display().to_string(),
            "--outside",
            &outside.display().to_string(),
        ],
        Transport::Stdio(&["--socket", &socket]),
        None,
    )
    .await;
    let tools = seen["tools"].as_array().expect("tools");
    for name in ["start_chat", "record_message", "read_chat"] {
        assert!(tools.iter().any(|tool| tool == name), "{name}: {tools:#?}");
    }

    let session = ok(&seen["start_chat"]);
    let session_id = session["id"].as_str().expect("session id");
    assert_eq!(session["project"], "noir");
    assert_eq!(session["title"], "Night alley");
    assert!(summary(&seen["start_chat"]).contains(session_id));

    let refused = error_text(&seen["record_outside"]);
    assert!(refused.contains("outside"), "{refused}");

    let message = ok(&seen["record_message"]);
    let message_id = message["id"].as_str().expect("message id");
    assert_eq!(message["role"], "user");
    assert_eq!(
        message["text"],
        format!("make me the alley scene, two takes. {INJECTION}")
    );
    let audio = message["audio_asset"].as_str().expect("an audio asset");
    let recorded = summary(&seen["record_message"]);
    assert!(
        recorded.contains(message_id) && recorded.contains(audio),
        "{recorded}"
    );

    let submitted = ok(&seen["submit"]);
    assert_eq!(submitted["next"], "waiting_for_person", "{submitted:#}");
    let instruction = &submitted["instruction"];
    assert_eq!(instruction["message"], message_id);
    assert_eq!(instruction["requested_by"]["client_name"], CLIENT);
    ok(&seen["record_reply"]);

    let log = ok(&seen["read_chat"]);
    assert_eq!(log["session"]["id"], session_id);
    let messages = log["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages
        .iter()
        .filter_map(|message| message["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant"],
        "the refused message was not kept"
    );
    assert_eq!(messages[0]["id"], message_id);
    assert_eq!(messages[0]["audio_asset"], audio);
    let instructions = log["instructions"].as_array().expect("instructions");
    assert_eq!(instructions.len(), 1, "{instructions:#?}");
    assert_eq!(instructions[0]["id"], instruction["id"]);
    assert_eq!(instructions[0]["message"], message_id);
    assert_eq!(instructions[0]["state"], "awaiting_confirmation");
    let read = summary(&seen["read_chat"]);
    assert!(read.contains("2 of its 2 messages"), "{read}");
    assert_eq!(world.fake.stats().requests, 0, "nothing spent");
}
