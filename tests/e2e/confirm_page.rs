//! The confirmation page in a real headless Chromium (`tests/python/confirm_page.py`, Selenium
//! with the OS's chromedriver): it shows the plan (model, candidates, prompt, the scene's image)
//! and cost, Confirm works once, Decline cancels, a replayed POST and a cross-origin POST are
//! refused, and forged `Origin` and `Host` headers are refused; each answer is audited.

use std::time::Duration;

use kroma_protocol as protocol;
use protocol::instruction::{self as wire, Approval, InstructionState};

use crate::instructions::{FAST, agent, get, propose, settled};
use crate::runs::{World, fake, setup};

#[tokio::test]
async fn a_person_confirms_on_the_page_once_and_forgeries_are_refused() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let agent = agent(&world, "voice").await;
    let guarded = propose(&agent, &scene, 1).await;
    let confirmed = propose(&agent, &scene, 1).await;
    let declined = propose(&agent, &scene, 1).await;
    let url = |instruction: &wire::Instruction| {
        instruction
            .confirm_url
            .clone()
            .expect("a waiting instruction names its page")
    };
    let prompt = confirmed.plan.as_ref().expect("plan").jobs[0]
        .prompt
        .clone();
    let expected: String = prompt.chars().take(40).collect();
    let model = confirmed.plan.as_ref().expect("plan").model.clone();

    let python = crate::mcp::python();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/confirm_page.py");
    let (guarded_url, confirmed_url, declined_url) =
        (url(&guarded), url(&confirmed), url(&declined));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([
                &guarded_url,
                &confirmed_url,
                &expected,
                &declined_url,
                &model,
            ])
            .output()
            .expect("python runs")
    })
    .await
    .expect("task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("confirmation page ok"),
        "{stdout}\n{stderr}"
    );

    let still = get(&person, &guarded.id).await;
    assert_eq!(still.state, InstructionState::AwaitingConfirmation);
    let done = settled(&person, &confirmed.id).await;
    assert_eq!(done.state, InstructionState::Done, "{done:#?}");
    assert_eq!(done.approval, Some(Approval::Page));
    assert_eq!(
        done.confirm_url, None,
        "a page is only for a waiting instruction"
    );
    assert_eq!(world.fake.stats().requests, 1, "one instruction, one call");
    let declined = get(&person, &declined.id).await;
    assert_eq!(declined.state, InstructionState::Canceled, "{declined:#?}");
    assert_eq!(declined.approval, None);

    let audit = crate::instructions::audit(&person).await;
    let outcomes: Vec<&str> = audit
        .iter()
        .filter(|entry| entry.client == "confirmation page")
        .map(|entry| entry.outcome.as_str())
        .collect();
    for outcome in ["foreign_origin", "foreign_host", "stale_page", "ok"] {
        assert!(outcomes.contains(&outcome), "{outcome} in {outcomes:?}");
    }
    let answers: Vec<(&str, &str)> = audit
        .iter()
        .filter(|entry| entry.client == "confirmation page" && entry.outcome == "ok")
        .map(|entry| (entry.method.as_str(), entry.outcome.as_str()))
        .collect();
    assert_eq!(answers, [("page.decline", "ok"), ("page.confirm", "ok")]);
}
