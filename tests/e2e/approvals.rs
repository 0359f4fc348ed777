//! Approval at its edges, against the real kromad and the fake provider: a one-time code that
//! expired and one used twice (each refusal on record), work proposed again with a dearer model,
//! an instruction whose run failed, a running instruction canceled, and `kromactl instruction confirm` answered on a real terminal.

use std::time::{Duration, Instant};

use kroma_client::Client;
use kroma_fake_provider::{FakeConfig, FakeModel, FakeProvider, Fault};
use kroma_protocol as protocol;
use protocol::instruction::{
    self as wire, Approval, InstructionOutcome, InstructionPayload, InstructionState,
};

use crate::instructions::{FAST, agent, audit, get, propose, set_allowance, settled};
use crate::runs::{KEY, World, error_of, fake, params, setup};

/// The outcomes of the `instruction.confirm_code` calls `agent_name` made, oldest first.
async fn code_tries(client: &Client, agent_name: &str) -> Vec<String> {
    audit(client)
        .await
        .into_iter()
        .filter(|entry| {
            entry.method == "instruction.confirm_code"
                && entry.client.ends_with(&format!("(agent: {agent_name})"))
        })
        .map(|entry| entry.outcome)
        .collect()
}

async fn make_code(person: &Client, id: &str) -> wire::OneTimeCode {
    person
        .call::<wire::Code>(&wire::InstructionRef { id: id.into() })
        .await
        .expect("the person's code")
}

async fn try_code(agent: &Client, id: &str, code: &str) -> Result<wire::Instruction, String> {
    agent
        .call::<wire::ConfirmCode>(&wire::ConfirmCodeParams {
            id: id.into(),
            code: code.into(),
        })
        .await
        .map_err(|err| {
            let message = err.to_string();
            format!("{}: {message}", error_of(Err::<(), _>(err)).code.as_str())
        })
}

#[tokio::test]
async fn an_expired_or_used_code_approves_nothing_and_every_try_is_on_record() {
    let kromad_toml = "[instructions]\ncode_ttl_secs = 1\n";
    let world = World::start(FAST, kromad_toml, fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let voice = agent(&world, "voice").await;
    let proposed = propose(&voice, &scene, 1).await;

    let first = make_code(&person, &proposed.id).await;
    // Wait past the code's life (one second here, ten minutes by default).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = try_code(&voice, &proposed.id, &first.code)
        .await
        .unwrap_err();
    assert!(late.starts_with("invalid_code"), "{late}");
    assert!(late.contains("expired"), "{late}");
    assert_eq!(
        get(&person, &proposed.id).await.state,
        InstructionState::AwaitingConfirmation
    );
    assert_eq!(world.fake.stats().requests, 0, "nothing spent");

    // A fresh code approves it, once; the same code again finds nothing waiting.
    let fresh = make_code(&person, &proposed.id).await;
    let approved = try_code(&voice, &proposed.id, &fresh.code)
        .await
        .expect("approved");
    assert_eq!(approved.approval, Some(Approval::Code));
    let again = try_code(&voice, &proposed.id, &fresh.code)
        .await
        .unwrap_err();
    assert!(again.starts_with("illegal_transition"), "{again}");
    assert_eq!(
        settled(&person, &proposed.id).await.state,
        InstructionState::Done
    );
    assert_eq!(world.fake.stats().requests, 1, "one candidate, once");
    assert_eq!(
        code_tries(&person, "voice").await,
        ["invalid_code", "ok", "illegal_transition"]
    );
}

#[tokio::test]
async fn codes_from_elsewhere_and_locked_codes_are_on_record() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let chat = agent(&world, "chat").await;
    let first = propose(&chat, &scene, 1).await;
    let second = propose(&chat, &scene, 1).await;
    let code = make_code(&person, &first.id).await;
    let other = try_code(&chat, &second.id, &code.code).await.unwrap_err();
    assert!(other.starts_with("invalid_code"), "{other}");
    let wrong = if code.code == "999999" {
        "999998"
    } else {
        "999999"
    };
    for _ in 0..5 {
        try_code(&chat, &first.id, wrong).await.unwrap_err();
    }
    let right = try_code(&chat, &first.id, &code.code).await.unwrap_err();
    assert!(right.starts_with("code_locked"), "{right}");
    assert_eq!(
        code_tries(&person, "chat").await,
        [
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "code_locked",
            "code_locked"
        ]
    );
    assert_eq!(world.fake.stats().requests, 0);
}

/// Run settings with two models the registry does not know, priced by the person.
const TWO_MODELS: &str = "[pricing.\"studio-lite\"]\nlow = 0.01\nmedium = 0.02\nhigh = 0.04\n\
                          [pricing.\"studio-pro\"]\nlow = 0.5\nmedium = 1.0\nhigh = 2.0\n";

/// Settings where a provider call may take 10 s (the fake provider here takes 3 s).
const PATIENT: &str = "[generation]\nretry_base_ms = 10\ntimeout_secs = 10\nmax_attempts = 1\n";

/// (A price that rose between proposal and approval: `instructions.rs`,
/// `a_plan_that_changed_after_approval_goes_back_to_the_person`.)
#[tokio::test]
async fn work_proposed_again_with_a_dearer_model_waits_for_a_person() {
    let settings = format!("{FAST}{TWO_MODELS}");
    let mut models = FakeConfig::default().models;
    for id in ["studio-lite", "studio-pro"] {
        models.push(FakeModel {
            id: id.into(),
            shutdown_date: None,
        });
    }
    let provider = FakeProvider::start(FakeConfig {
        key: KEY.into(),
        render_size: Some((32, 48)),
        models,
        ..FakeConfig::default()
    })
    .await
    .expect("the fake provider");
    let world = World::start(&settings, "", provider).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let chat = agent(&world, "chat").await;
    // A cheap model's run is approved and runs; the same work with a dearer model is new work.
    let cheap = propose_with_model(&chat, &scene, "studio-lite").await;
    person
        .call::<wire::Confirm>(&wire::ConfirmParams {
            id: cheap.id.clone(),
            confirm_cost_usd: cheap.max_cost_usd,
        })
        .await
        .expect("confirm the cheap one");
    assert_eq!(
        settled(&person, &cheap.id).await.state,
        InstructionState::Done
    );
    let dear = propose_with_model(&chat, &scene, "studio-pro").await;
    assert!(
        dear.max_cost_usd > cheap.max_cost_usd,
        "{cheap:#?} {dear:#?}"
    );
    assert_eq!(dear.state, InstructionState::AwaitingConfirmation);
    assert_eq!(dear.approval, None);
    assert_eq!(
        world.fake.stats().requests,
        1,
        "the cheap run's call; the dear one spent nothing"
    );
}

async fn propose_with_model(agent: &Client, scene: &str, model: &str) -> wire::Instruction {
    let mut plan = params(vec![scene.to_owned()], 1);
    plan.model = Some(model.into());
    agent
        .call::<wire::Create>(&wire::CreateParams {
            project: "noir".into(),
            objective: format!("the alley with {model}"),
            source_text: None,
            message: None,
            payload: InstructionPayload::PipelineRun(Box::new(plan)),
        })
        .await
        .expect("create")
}

#[tokio::test]
async fn an_instruction_whose_run_failed_ends_failed_with_the_reason() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let chat = agent(&world, "chat").await;
    let max = propose(&chat, &scene, 1).await.max_cost_usd;
    set_allowance(&person, max, max * 10.0, max * 10.0).await;
    // The provider refuses the key: nothing is billed and the run cannot go on.
    world.fake.push_fault(Fault::Status { status: 401 });
    let proposed = propose(&chat, &scene, 1).await;
    assert_eq!(proposed.approval, Some(Approval::Allowance));
    let ended = settled(&person, &proposed.id).await;
    assert_eq!(ended.state, InstructionState::Failed, "{ended:#?}");
    match &ended.outcome {
        Some(InstructionOutcome::Run { status, .. }) => assert_eq!(status.as_str(), "failed"),
        other => panic!("a failed run as the outcome: {other:?}"),
    }
    assert_eq!(world.fake.stats().billed, 0);
}

#[tokio::test]
async fn canceling_a_running_instruction_cancels_its_run() {
    let world = World::start(PATIENT, "", fake(Duration::from_secs(3)).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let chat = agent(&world, "chat").await;
    let max = propose(&chat, &scene, 3).await.max_cost_usd;
    set_allowance(&person, max, max * 10.0, max * 10.0).await;
    let proposed = propose(&chat, &scene, 3).await;
    assert_eq!(proposed.approval, Some(Approval::Allowance));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&person, &proposed.id).await.state != InstructionState::Running {
        assert!(Instant::now() < deadline, "never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let canceled = chat
        .call::<wire::Cancel>(&wire::InstructionRef {
            id: proposed.id.clone(),
        })
        .await
        .expect("cancel");
    let ended = settled(&person, &canceled.id).await;
    assert_eq!(ended.state, InstructionState::Canceled, "{ended:#?}");
    let Some(InstructionOutcome::Run { run, .. }) = &ended.outcome else {
        panic!("the run it started: {ended:#?}");
    };
    let detail = person
        .call::<protocol::run::Show>(&protocol::run::RunRef { run: run.clone() })
        .await
        .expect("run");
    assert_eq!(detail.run.status.as_str(), "canceled", "{detail:#?}");
    // Calls already made finish (and are paid for); nothing beyond the approval is spent.
    let Some(InstructionOutcome::Run { spent_usd, .. }) = &ended.outcome else {
        unreachable!()
    };
    assert!(*spent_usd <= proposed.max_cost_usd + 1e-9, "{ended:#?}");
}

#[tokio::test]
async fn kromactl_asks_on_a_terminal_and_approves_only_on_yes() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let chat = agent(&world, "chat").await;
    let proposed = propose(&chat, &scene, 1).await;
    let socket = world.socket().display().to_string();
    let confirm = ["--socket", &socket, "instruction", "confirm", &proposed.id];

    let declined = crate::python::on_a_terminal(&confirm, "n").await;
    assert_ne!(declined.status, 0, "{declined:?}");
    assert!(
        declined.output.contains("Draw the alley at night"),
        "{declined:?}"
    );
    assert!(declined.output.contains("agent \"chat\""), "{declined:?}");
    assert!(declined.output.contains("[y/N]"), "{declined:?}");
    assert!(
        declined.output.contains("not approved; nothing was spent"),
        "{declined:?}"
    );
    assert_eq!(
        get(&person, &proposed.id).await.state,
        InstructionState::AwaitingConfirmation
    );

    let approved = crate::python::on_a_terminal(&confirm, "y").await;
    assert_eq!(approved.status, 0, "{approved:?}");
    let done = settled(&person, &proposed.id).await;
    assert_eq!(done.state, InstructionState::Done);
    assert_eq!(done.approval, Some(Approval::Terminal));
    assert_eq!(world.fake.stats().requests, 1);
}
