//! Runs end to end against the fake provider (a real HTTP server on 127.0.0.1 speaking the OpenAI
//! Images API): planning, dry runs, spend confirmation, budgets under concurrent starts, every
//! provider failure mode, cancel and retry, and crash recovery with `kill -9`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use kroma_tests::fake_provider::{FakeConfig, FakeProvider, Fault};
use protocol::run::{CandidateStatus, PlanParams, RunDetail, RunStatus, RunSummary};

pub const KEY: &str = "sk-fake-run-key-0042";

/// A daemon whose secret `fake` holds the fake provider's key, with run settings `settings`
/// (written to the user settings file) and kromad config `config`.
pub struct World {
    daemon: Option<Daemon>,
    /// Extra environment for every kromad this world starts.
    env: Vec<(&'static str, &'static str)>,
    pub fake: FakeProvider,
    pub folder: PathBuf,
    _temp: tempfile::TempDir,
}

pub async fn fake(latency: Duration) -> FakeProvider {
    FakeProvider::start(FakeConfig {
        key: KEY.into(),
        render_size: Some((32, 48)),
        latency,
        ..FakeConfig::default()
    })
    .await
    .expect("start the fake provider")
}

impl World {
    pub async fn start(settings: &str, config: &str, fake: FakeProvider) -> World {
        World::start_with_env(settings, config, fake, &[]).await
    }

    pub async fn start_with_env(
        settings: &str,
        config: &str,
        fake: FakeProvider,
        env: &[(&'static str, &'static str)],
    ) -> World {
        let temp = tempfile::tempdir().expect("temp dir");
        let folder = temp.path().to_owned();
        std::fs::write(folder.join("config.toml"), settings).expect("settings");
        std::fs::write(folder.join("kromad.toml"), config).expect("config");
        let daemon = Some(start_daemon(&folder, env));
        World {
            daemon,
            env: env.to_vec(),
            fake,
            folder,
            _temp: temp,
        }
    }

    pub async fn client(&self) -> Client {
        self.daemon.as_ref().expect("running").client().await
    }

    pub fn socket(&self) -> PathBuf {
        self.daemon.as_ref().expect("running").socket.clone()
    }

    /// Kills kromad with SIGKILL and starts it again on the same data dir.
    pub fn restart_hard(&mut self) {
        self.kill_hard();
        self.daemon = Some(start_daemon(&self.folder, &self.env));
    }

    /// Kills kromad with SIGKILL.
    pub fn kill_hard(&mut self) {
        if let Some(old) = self.daemon.take() {
            old.kill_hard();
        }
    }

    /// Stops kromad with SIGTERM (a graceful stop) and waits for it.
    pub fn stop(&mut self) {
        if let Some(old) = self.daemon.take() {
            old.terminate();
        }
    }

    pub fn start_again(&mut self) {
        self.daemon = Some(start_daemon(&self.folder, &self.env));
    }

    pub fn database(&self) -> PathBuf {
        self.folder.join("data").join("kroma.db")
    }
}

fn start_daemon(folder: &Path, extra_env: &[(&str, &str)]) -> Daemon {
    let config = folder.join("kromad.toml");
    let settings = folder.join("config.toml");
    let mut env = vec![
        ("KROMA_SECRET_FAKE", KEY),
        ("KROMA_SETTINGS", settings.to_str().expect("utf-8 path")),
    ];
    env.extend_from_slice(extra_env);
    Daemon::start_with_env(
        folder,
        &["--config", config.to_str().expect("utf-8 path")],
        &env,
    )
}

/// A provider account `fake` on the fake server and a project `noir` with one scene asset.
pub async fn setup(client: &Client, fake: &FakeProvider, honors_idempotency_key: bool) -> String {
    client
        .call::<protocol::provider::Create>(&protocol::provider::CreateParams {
            name: "fake".into(),
            kind: protocol::provider::ProviderKind::OpenaiCompatible,
            base_url: Some(fake.base_url()),
            default_model: Some("gpt-image-2".into()),
            organization: None,
            secret: Some("fake".into()),
            honors_idempotency_key,
        })
        .await
        .expect("provider");
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Noir".into(),
            slug: Some("noir".into()),
            description: None,
            root: None,
            s3: None,
        })
        .await
        .expect("project");
    let scene = tempfile::tempdir()
        .expect("temp")
        .keep()
        .join("alley night.png");
    write_png(&scene, [40, 60, 80]);
    let report = client
        .call::<protocol::asset::Import>(&protocol::asset::ImportParams {
            project: "noir".into(),
            paths: vec![scene.display().to_string()],
            kind: protocol::asset::AssetKind::Input,
        })
        .await
        .expect("import");
    report.results[0].asset.as_ref().expect("asset").id.clone()
}

/// A second project, `second`, beside `noir`.
async fn create_second_project(client: &Client) {
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Second".into(),
            slug: Some("second".into()),
            description: None,
            root: None,
            s3: None,
        })
        .await
        .expect("project");
}

pub fn write_png(path: &Path, rgb: [u8; 3]) {
    let image = image::RgbImage::from_pixel(8, 8, image::Rgb(rgb));
    image.save(path).expect("write png");
}

pub fn params(scenes: Vec<String>, candidates: u32) -> PlanParams {
    PlanParams {
        project: "noir".into(),
        scenes,
        candidates: Some(candidates),
        provider: Some("fake".into()),
        size: Some("64x96".into()),
        quality: Some("low".into()),
        ..PlanParams::default()
    }
}

pub async fn create(client: &Client, params: PlanParams) -> RunDetail {
    client
        .call::<protocol::run::Create>(&protocol::run::CreateParams {
            plan: params,
            dry_run: false,
        })
        .await
        .expect("create")
}

pub async fn start(client: &Client, detail: &RunDetail) -> Result<RunSummary, ClientError> {
    client
        .call::<protocol::run::Start>(&protocol::run::StartParams {
            plan_id: detail.run.id.clone(),
            confirm_cost_usd: detail.plan.cost.max_usd,
        })
        .await
}

pub async fn show(client: &Client, id: &str) -> RunDetail {
    client
        .call::<protocol::run::Show>(&protocol::run::RunRef { run: id.into() })
        .await
        .expect("show")
}

/// Polls until the run is finished.
pub async fn finished(client: &Client, id: &str) -> RunDetail {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = show(client, id).await;
        if !detail.run.status.is_active() && detail.run.status != RunStatus::Planned {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} did not finish: {detail:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until the run is finished and its record says so: the record is rewritten just after
/// the run's end is committed, so a test that reads or exports it waits for that too.
pub async fn finished_and_recorded(client: &Client, id: &str) -> RunDetail {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = finished(client, id).await;
        let recorded = std::fs::read(&detail.run.record)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|record| record["run"]["status"] == detail.run.status.as_str());
        if recorded {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "run {id}: its record never said it ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn last_event_id(client: &Client) -> u64 {
    client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: None,
            limit: Some(1),
        })
        .await
        .expect("events")
        .last_id
}

pub async fn events_since(client: &Client, since: u64) -> Vec<protocol::events::Event> {
    client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: Some(since),
            limit: Some(1000),
        })
        .await
        .expect("events")
        .events
}

pub fn error_of(result: Result<impl std::fmt::Debug, ClientError>) -> protocol::ErrorData {
    match result {
        Err(ClientError::Rpc {
            data: Some(data), ..
        }) => *data,
        other => panic!("expected an error with data, got {other:?}"),
    }
}

const FAST: &str = "[generation]\nretry_base_ms = 10\ntimeout_secs = 2\nmax_attempts = 3\n";

#[tokio::test]
async fn a_run_plans_confirms_generates_records_and_costs() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    client
        .call::<protocol::knowledge::style_guide::Create>(&protocol::knowledge::StyleGuideCreate {
            project: "noir".into(),
            name: "ink".into(),
            instructions: "Heavy ink and cross-hatching".into(),
            is_default: true,
            ..Default::default()
        })
        .await
        .expect("style guide");

    let plan = client
        .call::<protocol::run::PlanRun>(&params(vec![scene.clone()], 2))
        .await
        .expect("plan");
    assert_eq!(world.fake.stats().requests, 0, "planning makes no call");
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].key, "style_1_alley_night");
    assert!(
        plan.jobs[0]
            .prompt
            .contains("Style: Heavy ink and cross-hatching.")
    );
    assert_eq!(plan.cost.calls, 2);

    let detail = create(&client, params(vec![scene.clone()], 2)).await;
    assert_eq!(detail.run.status, RunStatus::Planned);
    assert!(
        Path::new(&detail.run.record).is_file(),
        "record written at create"
    );

    let low = client
        .call::<protocol::run::Start>(&protocol::run::StartParams {
            plan_id: detail.run.id.clone(),
            confirm_cost_usd: detail.plan.cost.max_usd / 2.0,
        })
        .await;
    let err = error_of(low);
    assert_eq!(
        (err.kind, err.code.as_str()),
        (protocol::ErrorKind::Policy, "confirmation_too_low")
    );
    assert!(
        err.message
            .contains(&format!("{:.4}", detail.plan.cost.max_usd)),
        "{}",
        err.message
    );
    assert_eq!(world.fake.stats().requests, 0);

    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    assert_eq!(done.run.succeeded, 2);
    let stats = world.fake.stats();
    assert_eq!(stats.billed, 2);
    assert!(
        stats
            .calls
            .iter()
            .all(|call| call.endpoint == "edits" && call.images == 1)
    );
    assert!(
        stats
            .calls
            .iter()
            .all(|call| call.prompt.contains("Heavy ink"))
    );

    let mut total = 0.0;
    for candidate in &done.jobs[0].candidates {
        let output = candidate.output.as_ref().expect("output");
        assert!(output.ends_with(&format!(
            "outputs/style_1_alley_night__c{}-{}.png",
            candidate.index,
            &done.run.id[..8]
        )));
        let bytes = std::fs::read(output).expect("output file");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("kroma:run"), "provenance chunks");
        assert!(text.contains(&done.run.id));
        let decoded = image::load_from_memory(&bytes).expect("a real image");
        assert_eq!((decoded.width(), decoded.height()), (32, 48));
        let lineage = client
            .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef {
                project: "noir".into(),
                id: candidate.asset.clone().expect("asset"),
            })
            .await
            .expect("lineage");
        let json = serde_json::to_string(&lineage).expect("json");
        assert!(
            json.contains(&scene) && json.contains("derived_from"),
            "{json}"
        );
        total += candidate.cost_usd.expect("cost");
    }
    let costs = client
        .call::<protocol::cost::Summary>(&protocol::cost::SummaryParams {
            project: Some("noir".into()),
            since: None,
        })
        .await
        .expect("cost");
    assert_eq!(costs.calls, 2);
    assert!((costs.usd - total).abs() < 1e-6);
    assert!(
        (costs.usd_from_usage - costs.usd).abs() < 1e-9,
        "usage gave the cost"
    );
    assert!(
        costs.usd <= done.plan.cost.max_usd,
        "actual within the estimate"
    );
    assert_eq!(costs.reserved_usd, 0.0);

    let record = std::fs::read_to_string(&done.run.record).expect("record");
    let record: serde_json::Value = serde_json::from_str(&record).expect("json");
    assert_eq!(record["run"]["status"], "done");
    assert_eq!(record["plan"]["jobs"][0]["key"], "style_1_alley_night");
    assert!(!record.to_string().contains(KEY), "no secret in the record");

    let again = start(&client, &detail).await;
    assert_eq!(error_of(again).code, "already_started");
}

#[tokio::test]
async fn dry_runs_record_without_network_and_settings_say_where_values_come_from() {
    let world = World::start(
        "[generation]\nquality = \"medium\"\n",
        "",
        fake(Duration::ZERO).await,
    )
    .await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let dry = client
        .call::<protocol::run::Create>(&protocol::run::CreateParams {
            plan: PlanParams {
                quality: None,
                ..params(vec![scene.clone()], 1)
            },
            dry_run: true,
        })
        .await
        .expect("dry run");
    assert_eq!(dry.run.status, RunStatus::DryRun);
    assert_eq!(dry.plan.quality, "medium", "from the user settings");
    assert!(Path::new(&dry.run.record).is_file());
    assert_eq!(error_of(start(&client, &dry).await).code, "dry_run");
    assert_eq!(world.fake.stats().requests, 0);

    let effective = client
        .call::<protocol::settings::Effective>(&protocol::settings::EffectiveParams {
            project: Some("noir".into()),
        })
        .await
        .expect("effective");
    let quality = effective
        .settings
        .iter()
        .find(|s| s.key == "generation.quality")
        .expect("listed");
    assert_eq!(quality.value, "medium");
    assert!(quality.source.starts_with("user:"), "{}", quality.source);

    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project");
    let project_settings = Path::new(&project.root).join(".kroma/settings.toml");
    std::fs::write(&project_settings, "[generation]\nqualty = \"low\"\n").expect("write");
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&params(vec![scene.clone()], 1))
            .await,
    );
    assert!(err.message.contains("qualty"), "{}", err.message);
    assert!(err.message.contains("settings.toml"), "{}", err.message);
    std::fs::write(&project_settings, "[generation]\nmodel = \"gpt-image-1\"\n").expect("write");
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&params(vec![scene], 1))
            .await,
    );
    assert_eq!(err.code, "model_retired");
    assert!(err.message.contains("gpt-image-2"), "{}", err.message);
}

#[tokio::test]
async fn budgets_hold_when_runs_start_concurrently() {
    let world = World::start(FAST, "", fake(Duration::from_millis(50)).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let mut details = Vec::new();
    for _ in 0..6 {
        details.push(create(&client, params(vec![scene.clone()], 1)).await);
    }
    let per_run = details[0].plan.cost.max_usd;
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project");
    // Room for two runs and a half.
    std::fs::write(
        Path::new(&project.root).join(".kroma/settings.toml"),
        format!("[budget]\nproject_usd = {}\n", per_run * 2.5),
    )
    .expect("budget");
    let mut clients = Vec::new();
    for _ in &details {
        clients.push(world.client().await);
    }
    let starts = futures::future::join_all(
        details
            .iter()
            .zip(&clients)
            .map(|(detail, client)| start(client, detail)),
    )
    .await;
    let started = starts.iter().filter(|result| result.is_ok()).count();
    assert_eq!(started, 2, "{starts:?}");
    for result in starts.into_iter().filter(|result| result.is_err()) {
        let err = error_of(result);
        assert_eq!(
            (err.kind, err.code.as_str()),
            (protocol::ErrorKind::Policy, "budget_exceeded")
        );
    }
    for detail in &details {
        let shown = show(&client, &detail.run.id).await;
        if shown.run.status != RunStatus::Planned {
            finished(&client, &detail.run.id).await;
        }
    }
    let costs = client
        .call::<protocol::cost::Summary>(&protocol::cost::SummaryParams::default())
        .await
        .expect("cost");
    assert!(costs.usd <= per_run * 2.5 + 1e-9);
    assert_eq!(world.fake.stats().billed, 2);
}

/// One single-candidate run per fault, in order; answers each run's finished detail.
async fn run_with(
    client: &Client,
    fake: &FakeProvider,
    scene: &str,
    fault: Option<Fault>,
) -> RunDetail {
    if let Some(fault) = fault {
        fake.push_fault(fault);
    }
    let detail = create(client, params(vec![scene.to_owned()], 1)).await;
    start(client, &detail).await.expect("start");
    finished(client, &detail.run.id).await
}

#[tokio::test]
async fn provider_failures_end_in_the_right_state_with_a_reason() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let candidate = |detail: &RunDetail| detail.jobs[0].candidates[0].clone();

    let unauthorized = run_with(
        &client,
        &world.fake,
        &scene,
        Some(Fault::Status { status: 401 }),
    )
    .await;
    let c = candidate(&unauthorized);
    assert_eq!(
        (c.status, c.attempts),
        (CandidateStatus::Failed, 1),
        "no retry on 4xx"
    );
    let error = c.error.expect("reason");
    assert_eq!(error.code, "provider_auth");
    assert!(error.hint.expect("hint").contains("store the right key"));
    // The call that stores a key; which secret and the key itself are the human's to give.
    match error.action {
        Some(protocol::Action::Call(call)) => {
            assert_eq!(
                (call.method.as_str(), call.needs),
                ("secret.set", vec!["name".to_owned(), "value".to_owned()])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(unauthorized.run.status, RunStatus::Failed);

    let throttled = run_with(
        &client,
        &world.fake,
        &scene,
        Some(Fault::RateLimit {
            retry_after_secs: 1,
        }),
    )
    .await;
    let c = candidate(&throttled);
    assert_eq!((c.status, c.attempts), (CandidateStatus::Succeeded, 2));

    world.fake.push_fault(Fault::Status { status: 500 });
    world.fake.push_fault(Fault::Status { status: 503 });
    let recovered = run_with(
        &client,
        &world.fake,
        &scene,
        Some(Fault::Status { status: 502 }),
    )
    .await;
    let c = candidate(&recovered);
    assert_eq!(
        (c.status, c.attempts),
        (CandidateStatus::Failed, 3),
        "max_attempts = 3"
    );
    assert_eq!(c.error.expect("reason").code, "provider_unavailable");
    assert_eq!(c.cost_usd, None, "5xx is not billed");

    let malformed = run_with(&client, &world.fake, &scene, Some(Fault::MalformedJson)).await;
    let c = candidate(&malformed);
    assert_eq!(
        (c.status, c.attempts),
        (CandidateStatus::Failed, 1),
        "billed answers are not re-sent"
    );
    assert_eq!(c.error.expect("reason").code, "bad_answer");
    assert!(c.cost_usd.expect("billed") > 0.0);

    let not_image = run_with(&client, &world.fake, &scene, Some(Fault::NotAnImage)).await;
    let c = candidate(&not_image);
    assert_eq!(c.status, CandidateStatus::Failed);
    assert!(c.error.expect("reason").message.contains("unusable"));

    let empty = run_with(&client, &world.fake, &scene, Some(Fault::Empty)).await;
    assert_eq!(candidate(&empty).status, CandidateStatus::Failed);

    // A stall longer than timeout_secs: the provider may have billed; OpenAI-style providers
    // (no idempotency keys) are never called again automatically.
    let lost = run_with(&client, &world.fake, &scene, Some(Fault::Stall { secs: 4 })).await;
    let c = candidate(&lost);
    assert_eq!((c.status, c.attempts), (CandidateStatus::Unknown, 1));
    assert_eq!(c.error.expect("reason").code, "call_lost");
    assert!(c.cost_usd.is_some(), "counted against the budgets");

    let stats = world.fake.stats();
    assert!(
        stats.billed_by_key.values().all(|billed| *billed == 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_panic_in_a_candidates_task_settles_it_with_a_reason_and_the_daemon_goes_on() {
    // Debug builds panic after the provider answered when this is set (runner.rs,
    // `debug_panic_point`): the call was billed and its result never stored.
    let world = World::start_with_env(
        FAST,
        "",
        fake(Duration::ZERO).await,
        &[("KROMA_DEBUG_PANIC_AFTER_CALL", "1")],
    )
    .await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let detail = create(&client, params(vec![scene.clone()], 2)).await;
    start(&client, &detail).await.expect("start");
    let ended = finished(&client, &detail.run.id).await;
    assert_eq!(
        ended.run.status,
        RunStatus::Failed,
        "the run is closed, not stuck"
    );
    for candidate in &ended.jobs[0].candidates {
        assert_eq!(
            candidate.status,
            CandidateStatus::Unknown,
            "may have been billed"
        );
        let error = candidate.error.clone().expect("a reason");
        assert_eq!(error.code, "internal");
        assert!(error.message.contains("panicked"), "{}", error.message);
        assert!(
            candidate.cost_usd.is_some(),
            "its estimate counts against the budgets"
        );
    }
    // Nothing is left `calling` for the next start to find, and kromad still serves.
    let calling = sql_json(
        &world.database(),
        "SELECT count(*) FROM run_candidates WHERE status = 'calling'",
    );
    assert_eq!(calling, serde_json::json!([[0]]));
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await;
    assert!(status.is_ok(), "{status:?}");
}

#[tokio::test]
async fn idempotent_providers_are_called_again_after_a_lost_answer_without_paying_twice() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, true).await;
    let detail = run_with(&client, &world.fake, &scene, Some(Fault::Stall { secs: 4 })).await;
    let c = &detail.jobs[0].candidates[0];
    assert_eq!(
        (c.status, c.attempts),
        (CandidateStatus::Succeeded, 2),
        "{detail:#?}"
    );
    let stats = world.fake.stats();
    assert_eq!((stats.billed, stats.replays), (1, 1));
}

#[tokio::test]
async fn cancel_stops_between_calls_and_retry_redoes_only_what_did_not_succeed() {
    let world = World::start(
        FAST,
        "[runs]\nprovider_calls = 1\n",
        fake(Duration::from_millis(300)).await,
    )
    .await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let detail = create(&client, params(vec![scene.clone()], 4)).await;
    start(&client, &detail).await.expect("start");
    // Wait for the first call to be in flight, then cancel.
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.fake.stats().requests == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let canceling = client
        .call::<protocol::run::Cancel>(&protocol::run::RunRef {
            run: detail.run.id.clone(),
        })
        .await
        .expect("cancel");
    assert!(matches!(
        canceling.status,
        RunStatus::Canceling | RunStatus::Canceled
    ));
    let canceled = finished(&client, &detail.run.id).await;
    assert_eq!(canceled.run.status, RunStatus::Canceled);
    let statuses: Vec<CandidateStatus> = canceled.jobs[0]
        .candidates
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(
        statuses[0],
        CandidateStatus::Succeeded,
        "the call in flight finished and was recorded"
    );
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == CandidateStatus::Canceled),
        "{statuses:?}"
    );
    assert_eq!(world.fake.stats().billed, 1);

    let nothing = client
        .call::<protocol::run::Retry>(&protocol::run::RetryParams {
            run: detail.run.id.clone(),
            only_drifted: false,
            only_failed: true,
            confirm_cost_usd: 10.0,
        })
        .await;
    assert_eq!(error_of(nothing).code, "nothing_to_retry");
    let low = client
        .call::<protocol::run::Retry>(&protocol::run::RetryParams {
            run: detail.run.id.clone(),
            only_drifted: false,
            only_failed: false,
            confirm_cost_usd: 0.0,
        })
        .await;
    assert_eq!(error_of(low).code, "confirmation_too_low");
    client
        .call::<protocol::run::Retry>(&protocol::run::RetryParams {
            run: detail.run.id.clone(),
            only_drifted: false,
            only_failed: false,
            confirm_cost_usd: detail.plan.cost.max_usd,
        })
        .await
        .expect("retry");
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done);
    assert_eq!(
        world.fake.stats().billed,
        4,
        "the first candidate was not called again"
    );
}

#[tokio::test]
async fn progress_events_tell_the_story_of_a_run() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let before = last_event_id(&client).await;
    let detail = create(&client, params(vec![scene], 2)).await;
    start(&client, &detail).await.expect("start");
    finished(&client, &detail.run.id).await;
    let events = events_since(&client, before).await;
    let kinds: Vec<&str> = events
        .iter()
        .filter(|event| event.data["run"] == detail.run.id.as_str())
        .map(|event| event.kind.as_str())
        .collect();
    for kind in [
        "run.created",
        "run.started",
        "job.started",
        "candidate.started",
        "candidate.finished",
        "run.progress",
        "job.finished",
        "run.finished",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(kinds.last(), Some(&"run.finished"));
    let progress = events
        .iter()
        .rfind(|event| event.kind == "run.progress")
        .expect("progress");
    assert_eq!(progress.data["succeeded"], 2);
    assert!(progress.data["spent_usd"].as_f64().expect("spend") > 0.0);
}

#[tokio::test]
async fn kill_9_at_random_points_loses_nothing_and_pays_nothing_twice() {
    let mut world = World::start(
        FAST,
        "[runs]\nprovider_calls = 2\n",
        fake(Duration::from_millis(100)).await,
    )
    .await;
    let scene = {
        let client = world.client().await;
        setup(&client, &world.fake, true).await
    };
    let mut ids = Vec::new();
    {
        let client = world.client().await;
        for _ in 0..100 {
            let detail = create(&client, params(vec![scene.clone()], 1)).await;
            ids.push(detail.run.id.clone());
        }
        for id in &ids {
            client
                .call::<protocol::run::Start>(&protocol::run::StartParams {
                    plan_id: id.clone(),
                    confirm_cost_usd: 1.0,
                })
                .await
                .expect("start");
        }
    }
    // Kill at pseudo-random moments while the queue drains.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills_with_work_left = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(30 + seed % 200)).await;
        let active = world
            .client()
            .await
            .call::<protocol::run::List>(&protocol::run::ListParams {
                status: Some(RunStatus::Running),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("list")
            .runs
            .len();
        if active > 0 {
            kills_with_work_left += 1;
        }
        world.restart_hard();
    }
    assert!(
        kills_with_work_left >= 3,
        "the kills must hit a busy queue to prove anything ({kills_with_work_left} did)"
    );
    let client = world.client().await;
    let mut succeeded = 0;
    for id in &ids {
        let detail = finished(&client, id).await;
        assert_eq!(detail.run.status, RunStatus::Done, "{detail:#?}");
        succeeded += detail.run.succeeded;
        let output = detail.jobs[0].candidates[0].output.clone().expect("output");
        assert!(Path::new(&output).is_file());
    }
    assert_eq!(succeeded, 100);
    let stats = world.fake.stats();
    assert!(
        stats.billed_by_key.values().all(|billed| *billed == 1),
        "a key was billed twice: {:?}",
        stats.billed_by_key
    );
    assert_eq!(stats.billed, 100, "one paid call per candidate");
    let costs = client
        .call::<protocol::cost::Summary>(&protocol::cost::SummaryParams::default())
        .await
        .expect("cost");
    assert_eq!(costs.calls, 100, "one cost event per paid call");
    // A kill between a run's end and its record write left that record stale; the next start
    // rewrites it.
    world.restart_hard();
    let client = world.client().await;
    for id in &ids {
        finished_and_recorded(&client, id).await;
    }
}

#[tokio::test]
async fn a_call_lost_to_kill_9_is_unknown_never_repaid_silently_and_retry_pays_once_more() {
    let mut world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let scene = {
        let client = world.client().await;
        setup(&client, &world.fake, false).await
    };
    let id = {
        let client = world.client().await;
        world.fake.push_fault(Fault::Stall { secs: 1 });
        let detail = create(&client, params(vec![scene], 1)).await;
        start(&client, &detail).await.expect("start");
        detail.run.id
    };
    // kill -9 while the provider holds the call it has billed: waiting only for the request to
    // arrive could kill kromad before its body was sent, a call no provider bills.
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.fake.stats().billed == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    world.restart_hard();
    let client = world.client().await;
    let lost = finished(&client, &id).await;
    let candidate = &lost.jobs[0].candidates[0];
    assert_eq!(candidate.status, CandidateStatus::Unknown, "{lost:#?}");
    let error = candidate.error.clone().expect("reason");
    assert_eq!(error.code, "call_lost");
    assert!(error.hint.expect("hint").contains("retrying the run"));
    match error.action {
        Some(protocol::Action::Call(call)) => {
            assert_eq!(call.method, "run.retry");
            assert_eq!(call.params["run"], id.as_str(), "the action names this run");
            assert_eq!(
                call.needs,
                ["confirm_cost_usd"],
                "a person confirms the cost"
            );
        }
        other => panic!("call_lost's action: {other:?}"),
    }
    assert!(candidate.cost_usd.is_some(), "held against the budgets");
    // The stalled call finishes at the provider and is billed; kromad never re-sent it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(world.fake.stats().requests, 1);

    client
        .call::<protocol::run::Retry>(&protocol::run::RetryParams {
            run: id.clone(),
            only_drifted: false,
            only_failed: false,
            confirm_cost_usd: lost.plan.cost.max_usd,
        })
        .await
        .expect("retry");
    let done = finished(&client, &id).await;
    assert_eq!(done.run.status, RunStatus::Done);
    let stats = world.fake.stats();
    assert_eq!(stats.billed_by_key.len(), 2, "the retry used a new key");
    assert!(stats.billed_by_key.values().all(|billed| *billed == 1));
}

/// Runs `kromactl` on a blocking thread, so the in-process fake provider keeps serving.
pub async fn kromactl(socket: &Path, args: &[&str]) -> std::process::Output {
    let socket = socket.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kroma_tests::kromactl(&socket, &args)
    })
    .await
    .expect("kromactl thread")
}

#[tokio::test]
async fn kromactl_plans_creates_confirms_watches_and_reports() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    let socket = world.socket();
    let scenes = tempfile::tempdir().expect("temp");
    write_png(&scenes.path().join("pier.png"), [200, 10, 10]);
    std::fs::write(scenes.path().join("notes.txt"), "not a scene").expect("write");
    let folder = scenes.path().display().to_string();
    let common = ["--provider", "fake", "--size", "64x96", "--quality", "low"];

    let mut args = vec!["--json", "run", "plan", "noir", folder.as_str()];
    args.extend(common);
    let out = kromactl(&socket, &args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: protocol::run::Plan = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(
        plan.jobs.len(),
        1,
        "the folder's one image, not its text file"
    );
    assert_eq!(plan.jobs[0].key, "style_1_pier");

    let mut args = vec!["--json", "run", "create", "noir", folder.as_str()];
    args.extend(common);
    let out = kromactl(&socket, &args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let detail: RunDetail = serde_json::from_slice(&out.stdout).expect("run JSON");
    let id = detail.run.id.clone();
    assert!(
        detail.plan.jobs[0].input_images[0].asset.is_some(),
        "create imports path scenes as assets"
    );

    let out = kromactl(&socket, &["run", "start", &id]).await;
    assert_eq!(out.status.code(), Some(2), "no terminal, no --yes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes --max-cost"));
    assert_eq!(world.fake.stats().requests, 0);

    let max = format!("{}", detail.plan.cost.max_usd);
    let out = kromactl(
        &socket,
        &["--json", "run", "start", &id, "--yes", "--max-cost", &max],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| event["kind"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("run.finished"),
        "{stdout}"
    );
    assert_eq!(world.fake.stats().billed, 1);

    let out = kromactl(&socket, &["run", "list", "--project", "noir"]).await;
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&id[..8]) && listed.contains("done"),
        "{listed}"
    );
    let out = kromactl(&socket, &["run", "show", &id]).await;
    assert!(out.status.success());
    let out = kromactl(&socket, &["--json", "cost", "--project", "noir"]).await;
    let costs: protocol::cost::CostSummary =
        serde_json::from_slice(&out.stdout).expect("cost JSON");
    assert_eq!(costs.calls, 1);
    let out = kromactl(
        &socket,
        &["settings", "show", "--effective", "--project", "noir"],
    )
    .await;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("generation.retry_base_ms") && shown.contains("user:"),
        "{shown}"
    );
    let out = kromactl(&socket, &["image-models", "list"]).await;
    let models = String::from_utf8_lossy(&out.stdout);
    assert!(
        models.contains("gpt-image-1") && models.contains("retired"),
        "{models}"
    );
}

#[tokio::test]
async fn the_runs_benchmark_measures_both_sides() {
    let kromad = kroma_tests::bin("kromad");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(kroma_tests::bin("kromactl"))
            .args([
                "--json",
                "bench",
                "runs",
                "--candidates",
                "3",
                "--parallel",
                "2",
            ])
            .args(["--latency-ms", "1", "--kromad"])
            .arg(kromad)
            .output()
            .expect("kromactl bench runs")
    })
    .await
    .expect("thread");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["candidates"], 3);
    assert!(report["overhead"]["kroma_ms"].as_f64().expect("kroma") > 0.0);
    assert!(report["overhead"]["direct_ms"].as_f64().expect("direct") > 0.0);
    assert_eq!(report["throughput"][0]["parallel"], 2);
    assert!(report["throughput"][0]["ratio"].as_f64().expect("ratio") > 0.0);
}

/// Runs SQL on the daemon's database with Python's sqlite3 (the daemon must be stopped).
fn sql(database: &Path, statements: &str) {
    let script = "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\ndb.executescript(sys.argv[2])\ndb.commit()\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(database)
        .arg(statements)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows of a query on the daemon's database, as a JSON array of arrays.
fn sql_json(database: &Path, query: &str) -> serde_json::Value {
    let script = "import json, sqlite3, sys\nprint(json.dumps(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall()))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(database)
        .arg(query)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON rows")
}

#[tokio::test]
async fn a_result_stored_before_a_crash_is_recorded_from_its_file_not_paid_again() {
    let mut world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let (id, cost) = {
        let client = world.client().await;
        let scene = setup(&client, &world.fake, false).await;
        let detail = create(&client, params(vec![scene], 1)).await;
        start(&client, &detail).await.expect("start");
        let done = finished(&client, &detail.run.id).await;
        let cost = done.jobs[0].candidates[0].cost_usd.expect("cost");
        (detail.run.id, cost)
    };
    // Put the books back to the moment between renaming the output into place and committing
    // its row: the file is there, the database still says `calling`.
    world.kill_hard();
    let jobs = sql_json(
        &world.database(),
        "SELECT job_key, endpoint, candidates, input_images FROM run_jobs",
    );
    assert_eq!(
        jobs[0][0], "style_1_alley_night",
        "jobs are rows too: {jobs}"
    );
    assert_eq!(jobs[0][1], "edits");
    assert!(
        jobs[0][3]
            .as_str()
            .expect("json")
            .contains("\"role\":\"scene\"")
    );
    sql(
        &world.database(),
        "DELETE FROM cost_events;
         DELETE FROM assets WHERE kind = 'generated';
         UPDATE run_candidates SET status = 'calling', asset_id = NULL, output_path = NULL,
                finished_at = NULL, reserved_usd = 0.05;
         UPDATE runs SET status = 'running', finished_at = NULL;",
    );
    world.start_again();
    let client = world.client().await;
    let recovered = finished(&client, &id).await;
    assert_eq!(recovered.run.status, RunStatus::Done, "{recovered:#?}");
    let candidate = &recovered.jobs[0].candidates[0];
    assert_eq!(candidate.status, CandidateStatus::Succeeded);
    assert_eq!(
        candidate.cost_usd,
        Some(cost),
        "the cost comes from the file's provenance"
    );
    assert!(candidate.asset.is_some());
    assert_eq!(world.fake.stats().billed, 1, "never called again");
    let costs = client
        .call::<protocol::cost::Summary>(&protocol::cost::SummaryParams::default())
        .await
        .expect("cost");
    assert_eq!(costs.calls, 1);
}

#[tokio::test]
async fn models_refresh_from_the_provider_and_retired_ones_cannot_be_planned() {
    let fake = FakeProvider::start(FakeConfig {
        key: KEY.into(),
        render_size: Some((32, 48)),
        models: vec![
            kroma_tests::fake_provider::FakeModel {
                id: "gpt-image-2".into(),
                shutdown_date: Some("2026-01-01".into()),
            },
            kroma_tests::fake_provider::FakeModel {
                id: "gpt-image-3".into(),
                shutdown_date: None,
            },
        ],
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let world = World::start(FAST, "", fake).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    client
        .call::<protocol::run::PlanRun>(&params(vec![scene.clone()], 1))
        .await
        .expect("gpt-image-2 is active in the built-in registry");
    let listed = client
        .call::<protocol::image_model::List>(&protocol::image_model::ListParams {
            refresh: Some("fake".into()),
        })
        .await
        .expect("refresh");
    let two = listed
        .models
        .iter()
        .find(|m| m.id == "gpt-image-2")
        .expect("listed");
    assert_eq!(two.lifecycle, protocol::image_model::Lifecycle::Retired);
    assert_eq!(two.source, "provider:fake");
    assert!(
        listed.models.iter().any(|m| m.id == "gpt-image-3"),
        "new models are listed"
    );
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&params(vec![scene.clone()], 1))
            .await,
    );
    assert_eq!(err.code, "model_retired");
    assert!(err.message.contains("2026-01-01"), "{}", err.message);
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&PlanParams {
                model: Some("gpt-image-3".into()),
                ..params(vec![scene], 1)
            })
            .await,
    );
    assert_eq!(
        err.code, "unpriced_model",
        "a model without prices cannot be capped"
    );
}

#[tokio::test]
async fn runs_of_several_projects_execute_together() {
    let world = World::start(FAST, "", fake(Duration::from_millis(100)).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    create_second_project(&client).await;
    let file = tempfile::tempdir().expect("temp").keep().join("dock.png");
    write_png(&file, [1, 2, 3]);
    let first = create(&client, params(vec![scene], 2)).await;
    let second = create(
        &client,
        PlanParams {
            project: "second".into(),
            ..params(vec![file.display().to_string()], 2)
        },
    )
    .await;
    let before = last_event_id(&client).await;
    start(&client, &first).await.expect("start");
    start(&client, &second).await.expect("start");
    let a = finished(&client, &first.run.id).await;
    let b = finished(&client, &second.run.id).await;
    assert_eq!(
        (a.run.status, b.run.status),
        (RunStatus::Done, RunStatus::Done)
    );
    assert_eq!(
        (a.run.project.as_str(), b.run.project.as_str()),
        ("noir", "second")
    );
    // With four provider-call slots, the second project's calls start while the first
    // project's are still in flight, not after them.
    let events = events_since(&client, before).await;
    let first_id = |kind: &str, run: &str| {
        events
            .iter()
            .find(|event| event.kind == kind && event.data["run"] == run)
            .map(|event| event.id)
            .expect("event")
    };
    assert!(
        first_id("candidate.started", &second.run.id)
            < first_id("candidate.finished", &first.run.id)
    );
}

/// Provider-call slots are shared between projects and runs: a one-call run started behind a
/// twelve-call run gets the next free slot instead of waiting for all twelve to be sent.
#[tokio::test]
async fn a_small_run_is_not_held_behind_a_large_one() {
    let world = World::start(
        FAST,
        "[runs]\nprovider_calls = 2\n",
        fake(Duration::from_millis(300)).await,
    )
    .await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    create_second_project(&client).await;
    let scenes = tempfile::tempdir().expect("temp").keep();
    let large_scenes: Vec<String> = (0..2)
        .map(|index| {
            let path = scenes.join(format!("street-{index}.png"));
            write_png(&path, [index, 2, 3]);
            path.display().to_string()
        })
        .collect();
    let small_scene = scenes.join("dock.png");
    write_png(&small_scene, [9, 9, 9]);
    let large = create(&client, params(large_scenes, 6)).await;
    let small = create(
        &client,
        PlanParams {
            project: "second".into(),
            ..params(vec![small_scene.display().to_string()], 1)
        },
    )
    .await;
    let before = last_event_id(&client).await;
    start(&client, &large).await.expect("start");
    start(&client, &small).await.expect("start");
    let a = finished(&client, &large.run.id).await;
    let b = finished(&client, &small.run.id).await;
    assert_eq!(
        (a.run.status, b.run.status),
        (RunStatus::Done, RunStatus::Done)
    );
    let events = events_since(&client, before).await;
    let finished_at = |run: &str| {
        events
            .iter()
            .find(|event| event.kind == "run.finished" && event.data["run"] == run)
            .map(|event| event.id)
            .expect("run.finished")
    };
    // Oldest-first scheduling would send all twelve calls first: the small run would finish
    // after the large one.
    assert!(
        finished_at(&small.run.id) < finished_at(&large.run.id),
        "the one-call run waited behind the twelve-call run"
    );
}

#[tokio::test]
async fn the_colour_step_runs_after_generation_and_resumes_after_a_crash() {
    let mut world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let with_color = |color: &str| PlanParams {
        postprocess: Some(protocol::run::PostprocessParams {
            color: Some(color.to_owned()),
            ..Default::default()
        }),
        ..params(vec![scene.clone()], 2)
    };
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&with_color("sepia"))
            .await,
    );
    assert!(err.message.contains("postprocess.color"), "{}", err.message);
    assert!(err.message.contains("request"), "{}", err.message);

    let detail = create(&client, with_color("cold_rain")).await;
    assert_eq!(detail.plan.postprocess, vec!["color:cold_rain".to_owned()]);
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    for candidate in &done.jobs[0].candidates {
        assert_eq!(candidate.postprocess.as_deref(), Some("done"));
        let generated = candidate.output.clone().expect("generated");
        let final_output = candidate.final_output.clone().expect("final");
        assert!(
            final_output.contains("/color_corrected/") && final_output.ends_with("_cold_rain.png")
        );
        let bytes = std::fs::read(&final_output).expect("final file");
        let text = String::from_utf8_lossy(&bytes);
        use sha2::Digest as _;
        let source_sha = format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(&generated).expect("generated"))
        );
        assert!(text.contains("kroma:source_sha256") && text.contains(&source_sha));
        assert!(text.contains("kroma:step") && text.contains("cold_rain"));
        let (a, b) = (
            image::open(&generated).expect("generated image"),
            image::open(&final_output).expect("final image"),
        );
        assert_eq!((a.width(), a.height()), (b.width(), b.height()));
        let lineage = client
            .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef {
                project: "noir".into(),
                id: candidate.final_asset.clone().expect("final asset"),
            })
            .await
            .expect("lineage");
        let json = serde_json::to_string(&lineage).expect("json");
        assert!(
            json.contains(candidate.asset.as_deref().expect("asset")),
            "{json}"
        );
        assert!(json.contains("color_corrected"), "{json}");
    }
    // A stop between writing a colour output and recording it: the next start records it from
    // the file, without calling the provider again.
    drop(client);
    world.kill_hard();
    sql(
        &world.database(),
        "UPDATE run_candidates SET postprocess = 'pending', final_asset_id = NULL, final_path = NULL;
         DELETE FROM assets WHERE kind = 'color_corrected';
         UPDATE runs SET status = 'running', finished_at = NULL;",
    );
    world.start_again();
    let client = world.client().await;
    let recovered = finished(&client, &detail.run.id).await;
    assert_eq!(recovered.run.status, RunStatus::Done, "{recovered:#?}");
    assert!(
        recovered.jobs[0]
            .candidates
            .iter()
            .all(|c| c.postprocess.as_deref() == Some("done") && c.final_asset.is_some())
    );
    assert_eq!(world.fake.stats().billed, 2);
    let archived = world.folder.join("data/projects/noir/archive/replaced");
    let replaced: Vec<String> = std::fs::read_dir(&archived)
        .expect("archive")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        replaced.is_empty(),
        "the outputs in place were taken, not replaced: {replaced:?}"
    );
}

#[tokio::test]
async fn a_failed_chain_keeps_the_paid_image_and_retry_runs_it_again_for_free() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project");
    // A file where the step's folder should be: the colour step cannot write.
    let folder = Path::new(&project.root).join("color_corrected");
    std::fs::remove_dir_all(&folder).expect("remove folder");
    std::fs::write(&folder, "in the way").expect("block");

    let detail = create(
        &client,
        PlanParams {
            postprocess: Some(protocol::run::PostprocessParams {
                color: Some("cold_rain".into()),
                ..Default::default()
            }),
            ..params(vec![scene], 1)
        },
    )
    .await;
    start(&client, &detail).await.expect("start");
    let partial = finished(&client, &detail.run.id).await;
    assert_eq!(partial.run.status, RunStatus::Partial, "{partial:#?}");
    let candidate = &partial.jobs[0].candidates[0];
    assert_eq!(candidate.status, CandidateStatus::Succeeded);
    assert_eq!(candidate.postprocess.as_deref(), Some("failed"));
    assert_eq!(
        candidate
            .postprocess_error
            .as_ref()
            .map(|e| e.code.as_str()),
        Some("io_error")
    );
    assert!(Path::new(candidate.output.as_deref().expect("generated")).is_file());

    std::fs::remove_file(&folder).expect("unblock");
    std::fs::create_dir(&folder).expect("folder");
    let out = kromactl(&world.socket(), &["run", "retry", &detail.run.id]).await;
    assert!(
        out.status.success(),
        "no spend, so no confirmation: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    let candidate = &done.jobs[0].candidates[0];
    assert_eq!(candidate.postprocess.as_deref(), Some("done"));
    assert!(Path::new(candidate.final_output.as_deref().expect("final")).is_file());
    assert_eq!(
        world.fake.stats().billed,
        1,
        "the image was not paid for again"
    );
}

#[tokio::test]
async fn the_whole_chain_removes_the_background_upscales_and_colours_in_order() {
    let settings = format!("{FAST}[postprocess]\nmatting = true\n");
    let world = World::start(&settings, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let before = last_event_id(&client).await;
    let detail = create(
        &client,
        PlanParams {
            postprocess: Some(protocol::run::PostprocessParams {
                bg_remove: Some(true),
                upscale: Some(2),
                color: Some("cinematic_warm".into()),
            }),
            ..params(vec![scene], 1)
        },
    )
    .await;
    assert_eq!(
        detail.plan.postprocess,
        ["bg_remove:default", "upscale:x2", "color:cinematic_warm"]
    );
    start(&client, &detail).await.expect("start");
    let done = finished(&client, &detail.run.id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    let candidate = &done.jobs[0].candidates[0];
    assert_eq!(candidate.postprocess.as_deref(), Some("done"));
    let generated = image::open(candidate.output.as_deref().expect("generated")).expect("image");
    let final_path = candidate.final_output.clone().expect("final");
    assert!(final_path.contains("/color_corrected/"), "{final_path}");
    let last = image::open(&final_path).expect("final image").to_rgba8();
    assert_eq!(
        last.dimensions(),
        (generated.width() * 2, generated.height() * 2),
        "upscaled ×2 before colouring"
    );
    // Each step's output is an asset derived from the one before, back to the generated image.
    let root = std::path::PathBuf::from(&final_path)
        .ancestors()
        .nth(2)
        .expect("project root")
        .to_owned();
    let steps: Vec<String> = ["background_removed", "upscaled", "color_corrected"]
        .iter()
        .map(|folder| {
            let entries: Vec<_> = std::fs::read_dir(root.join(folder))
                .expect("step folder")
                .map(|e| e.expect("entry").path())
                .collect();
            assert_eq!(entries.len(), 1, "{folder}: {entries:?}");
            let text =
                String::from_utf8_lossy(&std::fs::read(&entries[0]).expect("read")).into_owned();
            assert!(text.contains(&done.run.id), "{folder} names its run");
            text
        })
        .collect();
    assert!(steps[0].contains("kroma:step") && steps[0].contains("bg_remove"));
    assert!(steps[0].contains("\"matting\":true"));
    // The models that ran, by name and hash.
    assert!(steps[0].contains("\"model\":\"u2netp\"") && steps[0].contains("model_sha256"));
    assert!(steps[1].contains("upscale"));
    assert!(steps[1].contains("\"model\":\"realesr-general-x4v3\""));
    let lineage = client
        .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef {
            project: "noir".into(),
            id: candidate.final_asset.clone().expect("final asset"),
        })
        .await
        .expect("lineage");
    let json = serde_json::to_string(&lineage).expect("json");
    for kind in ["bg_removed", "upscaled", "color_corrected", "generated"] {
        assert!(json.contains(kind), "{kind} in {json}");
    }
    // The upscale reported its tiles, with the run and the candidate.
    let tiles: Vec<serde_json::Value> = events_since(&client, before)
        .await
        .into_iter()
        .filter(|event| {
            event.kind == protocol::events::kind::POSTPROCESS_PROGRESS
                && event.data["run"] == done.run.id.as_str()
        })
        .map(|event| event.data)
        .collect();
    assert!(
        tiles
            .iter()
            .any(|t| t["step"] == "upscale" && t["tiles_done"] == t["tiles"]),
        "{tiles:?}"
    );
    assert_eq!(world.fake.stats().billed, 1);
}

#[tokio::test]
async fn a_chain_whose_model_is_not_installed_is_refused_before_spending() {
    let settings = format!("{FAST}[postprocess]\nupscale = 4\nupscale_model = \"no-such-model\"\n");
    let world = World::start(&settings, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    let err = error_of(
        client
            .call::<protocol::run::PlanRun>(&params(vec![scene], 1))
            .await,
    );
    assert_eq!(err.code, "unknown_model");
    assert!(
        err.message.contains("post-process chain"),
        "{}",
        err.message
    );
    assert!(
        err.hint.as_deref().unwrap_or("").contains("quality models"),
        "{err:?}"
    );
    assert_eq!(
        err.action,
        Some(protocol::Action::InstallModels { quality: true })
    );
    assert_eq!(world.fake.stats().billed, 0);
}

#[tokio::test]
async fn a_scene_folder_with_a_tiff_is_refused_at_planning_with_the_fix() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    let folder = world.folder.join("scenes");
    std::fs::create_dir_all(&folder).expect("folder");
    write_png(&folder.join("dock.png"), [10, 20, 30]);
    std::fs::write(folder.join("scan.tif"), b"II*\0not really").expect("tiff");
    let folder_arg = folder.display().to_string();
    for create in [false, true] {
        let result = if create {
            client
                .call::<protocol::run::Create>(&protocol::run::CreateParams {
                    plan: params(vec![folder_arg.clone()], 1),
                    dry_run: true,
                })
                .await
                .map(|_| ())
        } else {
            client
                .call::<protocol::run::PlanRun>(&params(vec![folder_arg.clone()], 1))
                .await
                .map(|_| ())
        };
        let err = error_of(result);
        assert_eq!(err.code, "unsupported_scene");
        assert!(err.message.contains("scan.tif"), "{}", err.message);
        assert!(err.hint.as_deref().unwrap_or("").contains("PNG"));
    }
    std::fs::remove_file(folder.join("scan.tif")).expect("remove");
    client
        .call::<protocol::run::PlanRun>(&params(vec![folder_arg], 1))
        .await
        .expect("the rest plans");
}

#[tokio::test]
async fn kromactl_retries_a_failed_candidate_after_confirming_its_cost() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let scene = setup(&client, &world.fake, false).await;
    world.fake.push_fault(Fault::Status { status: 401 });
    let detail = create(&client, params(vec![scene], 1)).await;
    start(&client, &detail).await.expect("start");
    let failed = finished(&client, &detail.run.id).await;
    assert_eq!(failed.run.status, RunStatus::Failed, "{failed:#?}");
    let socket = world.socket();
    let id = detail.run.id.clone();

    // Nothing is spent without a confirmation that covers the retry's maximum.
    let refused = kromactl(
        &socket,
        &["run", "retry", &id, "--yes", "--max-cost", "0.000001"],
    )
    .await;
    assert_ne!(refused.status.code(), Some(0));
    assert_eq!(world.fake.stats().billed, 0);

    let max = format!("{}", failed.plan.cost.max_usd);
    let out = kromactl(&socket, &["run", "retry", &id, "--yes", "--max-cost", &max]).await;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 candidate to call again"));
    let done = finished(&client, &id).await;
    assert_eq!(done.run.status, RunStatus::Done, "{done:#?}");
    assert_eq!(world.fake.stats().billed, 1);
}
