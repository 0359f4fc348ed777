//! kroma-mcp's tasks (the MCP tasks extension) driven by the Python MCP SDK
//! (`tests/python/mcp_tasks.py`) against the real kromad and the fake provider. A 2026-07-28
//! client that declares the extension gets a task from `submit_instruction` and
//! `confirm_with_code`; the task follows the instruction (working while it waits for a person,
//! completed with the report once done) and `tasks/cancel` cancels the instruction. A 2025-11-25
//! client that lists the extension gets no task. The person makes the code, as in
//! `tests/e2e/mcp/instructions.rs`; clients that do not declare tasks are the other tests'.

use protocol::instruction as wire;
use serde_json::Value;

use super::instructions::{Person, Transport, python_agent, world};
use kroma_protocol as protocol;

#[tokio::test]
async fn mcp_tasks_follow_instructions_to_the_end_and_cancel_them() {
    let (world, scene) = world().await;
    let socket = world.socket().display().to_string();
    let person = Person {
        world: &world,
        client: world.client().await,
    };
    let seen = python_agent(
        "mcp_tasks.py",
        &["--mode", "2026-07-28", "--scene", &scene],
        Transport::Stdio(&["--socket", &socket]),
        Some(&person),
    )
    .await;
    assert_eq!(seen["protocol_version"], "2026-07-28");

    // The waiting instruction is a task at once, working while it waits for a person.
    let submit = &seen["submit"];
    assert_eq!(submit["resultType"], "task", "{submit:#}");
    assert_eq!(submit["status"], "working", "{submit:#}");
    assert_eq!(submit["ttlMs"], 1_800_000);
    assert_eq!(submit["pollIntervalMs"], 1000);
    let waits = submit["statusMessage"].as_str().expect("a status message");
    assert!(
        waits.contains("waits for a person to approve up to $"),
        "{waits}"
    );
    assert_eq!(seen["waiting"]["status"], "working", "{seen:#}");

    // The person's code approves it; both tasks end completed with the report of a done run.
    assert_eq!(seen["confirm"]["resultType"], "task", "{seen:#}");
    for name in ["confirm_final", "submit_final"] {
        let task = &seen[name];
        assert_eq!(task["status"], "completed", "{name}: {task:#}");
        let report = &task["result"]["structuredContent"];
        assert_eq!(report["next"], "done", "{name}: {task:#}");
        assert_eq!(
            report["instruction"]["approval"], "code",
            "{name}: {task:#}"
        );
        assert_eq!(report["progress"]["finished"], 2, "{name}: {task:#}");
    }
    assert_eq!(world.fake.stats().requests, 2, "two candidates, once");

    // `tasks/cancel` cancels the instruction; the task ends cancelled.
    assert!(seen["cancel"].get("protocol_error").is_none(), "{seen:#}");
    let canceled = &seen["canceled_final"];
    assert_eq!(canceled["status"], "cancelled", "{canceled:#}");
    let instructions = seen["instructions"].as_array().expect("instructions");
    let states: Vec<&str> = instructions
        .iter()
        .map(|instruction| instruction["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states, ["canceled", "done"], "{instructions:#?}");
    let canceled_id = instructions[0]["id"].as_str().expect("id");
    let stored = person
        .client
        .call::<wire::Get>(&wire::InstructionRef {
            id: canceled_id.into(),
        })
        .await
        .expect("instruction");
    assert_eq!(stored.state, wire::InstructionState::Canceled);
    assert_eq!(stored.approval, None, "canceling approves nothing");

    let unknown: &Value = &seen["unknown_task"]["protocol_error"];
    assert_eq!(unknown["code"], -32602, "{seen:#}");
}

/// 2025-11-25 has no task results (`resultType` came with 2026-07-28): a client of that era that
/// lists the extension anyway gets the answer every client without tasks gets, which it can read.
#[tokio::test]
async fn mcp_a_2025_11_25_client_that_lists_the_tasks_extension_gets_no_task() {
    let (world, scene) = world().await;
    let socket = world.socket().display().to_string();
    let seen = python_agent(
        "mcp_tasks.py",
        &["--mode", "legacy", "--scene", &scene],
        Transport::Stdio(&["--socket", &socket]),
        None,
    )
    .await;
    assert_eq!(seen["protocol_version"], "2025-11-25");
    let submit = &seen["submit"];
    assert!(submit.get("resultType").is_none(), "{submit:#}");
    assert!(submit.get("taskId").is_none(), "{submit:#}");
    assert_eq!(submit["isError"], false, "{submit:#}");
    let report = &submit["structuredContent"];
    assert_eq!(report["next"], "waiting_for_person", "{submit:#}");
    assert_eq!(report["instruction"]["state"], "awaiting_confirmation");
    assert_eq!(world.fake.stats().requests, 0, "nothing spent");
}
