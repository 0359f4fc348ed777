//! Drop folders end to end on real folders: files copied in, renamed in, written slowly, dropped
//! twice, abandoned half-written or broken; a thousand at once; kromad killed with SIGKILL in
//! the middle; paused and removed rules; pipeline rules within a budget or waiting for a person;
//! set-ups that cannot work.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::watch::{
    self as wire, AddParams, FileState, Inputs, LocalStep, RuleRef, RuleState, WatchAction,
    WatchRule,
};

use crate::instructions::FAST;
use crate::runs::{World, error_of, events_since, fake, params, setup, write_png};

fn colour() -> Vec<LocalStep> {
    vec![LocalStep::Color {
        profile: "neutral".into(),
    }]
}

fn chain_rule(folder: &Path, output: &Path) -> AddParams {
    AddParams {
        name: None,
        folder: folder.display().to_string(),
        action: WatchAction::Chain {
            steps: colour(),
            output: output.display().to_string(),
        },
        patterns: Vec::new(),
        budget_usd: 0.0,
        poll: false,
        settle_ms: Some(500),
        inputs: Inputs::Move,
    }
}

async fn add(client: &Client, params: &AddParams) -> WatchRule {
    client.call::<wire::Add>(params).await.expect("watch.add")
}

async fn rule(client: &Client, name: &str) -> WatchRule {
    client
        .call::<wire::Get>(&RuleRef { rule: name.into() })
        .await
        .expect("watch.get")
}

/// Polls until `done` says the rule is where the test wants it.
async fn until(
    client: &Client,
    name: &str,
    what: &str,
    done: impl Fn(&WatchRule) -> bool,
) -> WatchRule {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rule = rule(client, name).await;
        if done(&rule) {
            return rule;
        }
        assert!(Instant::now() < deadline, "{what}: {rule:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `check` holds: the journal says where a file goes before the file is moved
/// there, so what is on disk follows the counts by a moment.
async fn on_disk(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "on disk: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn png_bytes(rgb: [u8; 3]) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb(rgb))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    bytes
}

fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

struct Folders {
    drop: PathBuf,
    out: PathBuf,
}

fn folders(world: &World) -> Folders {
    let drop = world.folder.join("drop");
    let out = world.folder.join("out");
    std::fs::create_dir_all(&drop).expect("drop folder");
    Folders { drop, out }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_rule_takes_each_complete_file_once_and_loses_none() {
    let world = World::start("", "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let Folders { drop, out } = folders(&world);
    let added = add(&client, &chain_rule(&drop, &out)).await;
    assert_eq!(
        (added.name.as_str(), added.state),
        ("drop", RuleState::Watching)
    );

    // Copied in.
    std::fs::write(drop.join("copied.png"), png_bytes([10, 20, 30])).expect("copy");
    until(&client, "drop", "the first taken", |rule| {
        rule.counts.done == 1
    })
    .await;
    // Renamed into place after writing under a name that is ignored.
    std::fs::write(drop.join("renamed.png.part"), png_bytes([40, 50, 60])).expect("part");
    std::fs::rename(drop.join("renamed.png.part"), drop.join("renamed.png")).expect("rename");
    // The same content again under another name.
    std::fs::write(drop.join("again.png"), png_bytes([10, 20, 30])).expect("again");
    // Abandoned half-written under an ignored name: never taken.
    let whole = png_bytes([70, 80, 90]);
    std::fs::write(
        drop.join("abandoned.png.crdownload"),
        &whole[..whole.len() / 2],
    )
    .expect("part");
    // Broken: a PNG signature and nothing else.
    std::fs::write(drop.join("broken.png"), b"\x89PNG\r\n\x1a\n").expect("broken");
    // Not an image name: not taken.
    std::fs::write(drop.join("notes.txt"), "hello").expect("notes");
    // Two files whose results would share a name, landing together.
    let staging = world.folder.join("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    std::fs::write(staging.join("scan.png"), png_bytes([1, 2, 3])).expect("scan.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([4, 5, 6]))
        .save(staging.join("scan.jpg"))
        .expect("scan.jpg");
    std::fs::rename(staging.join("scan.png"), drop.join("scan.png")).expect("rename");
    std::fs::rename(staging.join("scan.jpg"), drop.join("scan.jpg")).expect("rename");
    // Written slowly, over two seconds, in one open file: taken once it is closed, whole.
    let slow = png_bytes([100, 110, 120]);
    {
        let mut file = std::fs::File::create(drop.join("slow.png")).expect("slow");
        for chunk in slow.chunks(slow.len() / 4 + 1) {
            file.write_all(chunk).expect("write");
            file.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let settled = until(&client, "drop", "all settled", |rule| {
        rule.counts.done == 5 && rule.counts.failed == 1 && rule.counts.duplicate == 1
    })
    .await;
    assert_eq!(settled.counts.seen, 6);
    assert_eq!(settled.counts.running, 0);
    assert!(
        settled
            .last_error
            .as_ref()
            .is_some_and(|error| error.message.contains("broken.png")),
        "{settled:#?}"
    );
    assert_eq!(
        names(&out),
        [
            "copied.png",
            "renamed.png",
            "scan-2.png",
            "scan.png",
            "slow.png"
        ]
    );
    for name in names(&out) {
        image::open(out.join(&name)).expect("a whole image");
    }
    on_disk("inputs moved", || {
        names(&drop.join("processing")).is_empty()
            && names(&drop.join("done")).len() == 5
            && names(&drop.join("duplicates")).len() == 1
            && names(&drop.join("failed")).len() == 2
    })
    .await;
    assert_eq!(
        names(&drop),
        ["abandoned.png.crdownload", "notes.txt"],
        "only what is never taken stays"
    );
    assert_eq!(
        names(&drop.join("done")),
        [
            "copied.png",
            "renamed.png",
            "scan.jpg",
            "scan.png",
            "slow.png"
        ]
    );
    assert_eq!(names(&drop.join("duplicates")), ["again.png"]);
    assert_eq!(
        names(&drop.join("failed")),
        ["broken.png", "broken.png.reason.txt"]
    );
    let reason =
        std::fs::read_to_string(drop.join("failed/broken.png.reason.txt")).expect("reason");
    assert!(reason.starts_with("broken.png\n"), "{reason}");
    assert!(names(&drop.join("processing")).is_empty());

    let log = client
        .call::<wire::Log>(&wire::LogParams {
            rule: "drop".into(),
            limit: None,
        })
        .await
        .expect("log");
    assert_eq!(log.files.len(), 7);
    let again = log
        .files
        .iter()
        .find(|f| f.name == "again.png")
        .expect("again");
    assert_eq!(again.state, FileState::Duplicate);
    let copied = log
        .files
        .iter()
        .find(|f| f.name == "copied.png")
        .expect("copied");
    assert_eq!(again.duplicate_of.as_deref(), Some(copied.id.as_str()));
    assert_eq!(
        copied.output.as_deref(),
        Some(out.join("copied.png").to_str().expect("utf-8"))
    );
    let events: Vec<_> = events_since(&client, 0)
        .await
        .into_iter()
        .filter(|event| event.kind == "watch.file")
        .collect();
    // Each of the seven is taken, and six of them end (a duplicate ends as it is taken).
    assert_eq!(events.len(), 13, "{events:#?}");

    // Dropping the same content again much later is still a duplicate.
    std::fs::write(drop.join("copied.png"), png_bytes([10, 20, 30])).expect("copy");
    until(&client, "drop", "second duplicate", |rule| {
        rule.counts.duplicate == 2
    })
    .await;
    on_disk("second duplicate moved", || {
        names(&drop.join("duplicates")).len() == 2
    })
    .await;
    assert_eq!(names(&drop.join("duplicates")), ["again.png", "copied.png"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_files_at_once_and_a_kill_in_the_middle_run_each_exactly_once() {
    let mut world = World::start("", "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let Folders { drop, out } = folders(&world);
    add(&client, &chain_rule(&drop, &out)).await;
    // Written elsewhere, then renamed in all at once.
    let staging = world.folder.join("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    for i in 0..1000u32 {
        let rgb = [(i % 256) as u8, (i / 256) as u8, 7];
        std::fs::write(staging.join(format!("f{i:04}.png")), png_bytes(rgb)).expect("file");
    }
    for i in 0..1000u32 {
        let name = format!("f{i:04}.png");
        std::fs::rename(staging.join(&name), drop.join(&name)).expect("rename in");
    }
    let before = until(&client, "drop", "some done", |rule| rule.counts.done >= 100).await;
    std::mem::drop(client);
    world.kill_hard();
    assert!(
        before.counts.done < 1000,
        "killed in the middle: {:?}",
        before.counts
    );
    // Files that land while kromad is down are found by the scan at start.
    for i in 1000..1010u32 {
        std::fs::write(
            drop.join(format!("f{i:04}.png")),
            png_bytes([1, 2, (i % 256) as u8]),
        )
        .expect("while down");
    }
    world.start_again();
    let client = world.client().await;
    let settled = until(&client, "drop", "all done", |rule| rule.counts.done == 1010).await;
    assert_eq!(
        (
            settled.counts.seen,
            settled.counts.failed,
            settled.counts.duplicate
        ),
        (1010, 0, 0)
    );
    let outputs = names(&out);
    assert_eq!(outputs.len(), 1010, "one output per file");
    assert!(
        outputs.iter().all(|name| !name.contains('-')),
        "no second output"
    );
    on_disk("all moved to done/", || {
        names(&drop.join("done")).len() == 1010 && names(&drop.join("processing")).is_empty()
    })
    .await;
    assert!(names(&drop).is_empty());
    assert!(names(&drop.join("processing")).is_empty());

    // A graceful stop in the middle: work stops between files and is taken up at the next start.
    for i in 2000..2300u32 {
        let rgb = [(i % 256) as u8, (i / 256) as u8, 9];
        std::fs::write(staging.join(format!("f{i:04}.png")), png_bytes(rgb)).expect("file");
    }
    for i in 2000..2300u32 {
        let name = format!("f{i:04}.png");
        std::fs::rename(staging.join(&name), drop.join(&name)).expect("rename in");
    }
    until(&client, "drop", "some more done", |rule| {
        rule.counts.done >= 1050
    })
    .await;
    std::mem::drop(client);
    world.stop();
    world.start_again();
    let client = world.client().await;
    until(&client, "drop", "all done again", |rule| {
        rule.counts.done == 1310
    })
    .await;
    assert_eq!(names(&out).len(), 1310, "one output per file");
    on_disk("all moved to done/ again", || {
        names(&drop.join("done")).len() == 1310 && names(&drop.join("processing")).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rule_waits_and_a_removed_rule_lets_its_files_finish() {
    let world = World::start("", "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let Folders { drop, out } = folders(&world);
    add(&client, &chain_rule(&drop, &out)).await;
    let paused = client
        .call::<wire::Pause>(&RuleRef {
            rule: "drop".into(),
        })
        .await
        .expect("pause");
    assert_eq!(paused.state, RuleState::Paused);
    std::fs::write(drop.join("while-paused.png"), png_bytes([5, 5, 5])).expect("file");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rule(&client, "drop").await.counts.seen, 0);
    assert_eq!(names(&drop), ["while-paused.png"]);
    client
        .call::<wire::Resume>(&RuleRef {
            rule: "drop".into(),
        })
        .await
        .expect("resume");
    until(&client, "drop", "taken after resume", |rule| {
        rule.counts.done == 1
    })
    .await;

    for i in 0..30u8 {
        std::fs::write(drop.join(format!("r{i}.png")), png_bytes([i, 1, 2])).expect("file");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let removed = client
        .call::<wire::Remove>(&RuleRef {
            rule: "drop".into(),
        })
        .await
        .expect("remove");
    let err = client
        .call::<wire::Get>(&RuleRef {
            rule: removed.id.clone(),
        })
        .await
        .expect_err("gone");
    assert!(err.to_string().contains("no drop-folder rule"), "{err}");
    // Whatever was taken finishes; whatever was not stays where it landed. Nothing is lost.
    // Settled: nothing in processing/, and the same counts half a second apart.
    let deadline = Instant::now() + Duration::from_secs(30);
    let look = || {
        (
            names(&drop.join("processing")).len(),
            names(&drop.join("done")).len(),
            names(&drop).len(),
        )
    };
    let (done, left) = loop {
        let first = look();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (processing, done, left) = look();
        if processing == 0 && (processing, done, left) == first {
            break (done, left);
        }
        assert!(Instant::now() < deadline, "stuck in processing/");
    };
    assert_eq!(done + left, 31, "done {done}, left {left}");
    assert_eq!(names(&out).len(), done);
    // A new rule may watch the folder again.
    add(&client, &chain_rule(&drop, &out)).await;
    until(&client, "drop", "taken by the new rule", |rule| {
        rule.counts.done as usize == left
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_files_wait_for_a_person_or_run_within_the_rules_budget() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    let Folders { drop, .. } = folders(&world);
    let mut plan = params(Vec::new(), 1);
    plan.project = "noir".into();
    let rule_params = AddParams {
        name: Some("scans".into()),
        folder: drop.display().to_string(),
        action: WatchAction::Pipeline {
            plan: Box::new(plan),
        },
        patterns: vec!["*.png".into()],
        budget_usd: 0.0,
        poll: false,
        settle_ms: Some(300),
        inputs: Inputs::Move,
    };
    add(&client, &rule_params).await;
    write_png(&drop.join("one.png"), [1, 2, 3]);
    // Taken (`processing`) first, then `waiting` once its instruction waits for a person.
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = client
            .call::<wire::Log>(&wire::LogParams {
                rule: "scans".into(),
                limit: None,
            })
            .await
            .expect("log");
        if log
            .files
            .first()
            .is_some_and(|file| file.state == FileState::Waiting)
        {
            break log;
        }
        assert!(Instant::now() < deadline, "not waiting: {log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((log.rule.counts.running, log.rule.spent_usd), (1, 0.0));
    let instruction_id = log.files[0].instruction.clone().expect("instruction");
    let instruction = client
        .call::<protocol::instruction::Get>(&protocol::instruction::InstructionRef {
            id: instruction_id.clone(),
        })
        .await
        .expect("instruction");
    assert_eq!(
        instruction.state,
        protocol::instruction::InstructionState::AwaitingConfirmation
    );
    assert_eq!(instruction.requested_by.channel, "watch");
    assert!(
        instruction
            .waiting_for
            .as_deref()
            .is_some_and(|w| w.contains("no budget"))
    );
    // A person confirms it on the terminal's channel.
    client
        .call::<protocol::instruction::Confirm>(&protocol::instruction::ConfirmParams {
            id: instruction_id,
            confirm_cost_usd: instruction.max_cost_usd,
        })
        .await
        .expect("confirm");
    until(&client, "scans", "done after confirmation", |rule| {
        rule.counts.done == 1
    })
    .await;

    // A budget for one more file at its maximum cost: the next runs at once; the one after
    // waits, since what the first spent and the second's maximum do not both fit.
    let budget = instruction.max_cost_usd * 1.1;
    client
        .call::<wire::Update>(&wire::UpdateParams {
            rule: "scans".into(),
            budget_usd: Some(budget),
            ..Default::default()
        })
        .await
        .expect("budget");
    write_png(&drop.join("two.png"), [4, 5, 6]);
    until(&client, "scans", "two done", |rule| rule.counts.done == 2).await;
    write_png(&drop.join("three.png"), [7, 8, 9]);
    let spent = until(&client, "scans", "budget spent", |rule| {
        rule.state == RuleState::BudgetSpent && rule.counts.running == 1
    })
    .await;
    assert!(spent.spent_usd <= budget + 1e-9, "{spent:#?}");
    let events = events_since(&client, 0).await;
    assert!(
        events
            .iter()
            .any(|event| event.kind == "watch.rule" && event.data["state"] == "budget_spent")
    );
    // Raising the budget takes the file that waited for it.
    client
        .call::<wire::Update>(&wire::UpdateParams {
            rule: "scans".into(),
            budget_usd: Some(budget * 2.0),
            ..Default::default()
        })
        .await
        .expect("raise");
    let done = until(&client, "scans", "three done", |rule| rule.counts.done == 3).await;
    assert_eq!(done.state, RuleState::Watching);
    on_disk("three in done/", || names(&drop.join("done")).len() == 3).await;
    assert_eq!(
        names(&drop.join("done")),
        ["one.png", "three.png", "two.png"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_ups_that_cannot_work_are_refused_with_a_reason() {
    let world = World::start("", "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    let Folders { drop, out } = folders(&world);
    let code = |err: kroma_client::ClientError| error_of(Err::<(), _>(err)).code;
    let mut missing = chain_rule(&world.folder.join("nowhere"), &out);
    missing.name = Some("missing".into());
    let err = client
        .call::<wire::Add>(&missing)
        .await
        .expect_err("missing");
    assert_eq!(code(err), "file_not_found");
    let relative = AddParams {
        folder: "drop".into(),
        ..chain_rule(&drop, &out)
    };
    assert_eq!(
        code(
            client
                .call::<wire::Add>(&relative)
                .await
                .expect_err("relative")
        ),
        "invalid_watch"
    );
    let looping = chain_rule(&drop, &drop.join("out"));
    assert_eq!(
        code(client.call::<wire::Add>(&looping).await.expect_err("loop")),
        "invalid_watch"
    );
    let bad_pattern = AddParams {
        patterns: vec!["a/*.png".into()],
        ..chain_rule(&drop, &out)
    };
    assert_eq!(
        code(
            client
                .call::<wire::Add>(&bad_pattern)
                .await
                .expect_err("pattern")
        ),
        "invalid_watch"
    );
    let budget_on_chain = AddParams {
        budget_usd: 5.0,
        ..chain_rule(&drop, &out)
    };
    assert_eq!(
        code(
            client
                .call::<wire::Add>(&budget_on_chain)
                .await
                .expect_err("budget")
        ),
        "invalid_watch"
    );
    let project = client
        .call::<protocol::project::Get>(&protocol::project::ProjectRef {
            slug: "noir".into(),
        })
        .await
        .expect("project");
    let inside = std::path::PathBuf::from(&project.root).join("inputs");
    let err = client
        .call::<wire::Add>(&chain_rule(&inside, &out))
        .await
        .expect_err("inside a project");
    assert!(err.to_string().contains("project folder"), "{err}");

    add(&client, &chain_rule(&drop, &out)).await;
    let nested = drop.join("done");
    std::fs::create_dir_all(&nested).expect("nested");
    let err = client
        .call::<wire::Add>(&chain_rule(&nested, &world.folder.join("out2")))
        .await
        .expect_err("inside another rule's folder");
    assert!(err.to_string().contains("rule `drop`"), "{err}");
    // A link to the watched folder is the watched folder.
    let link = world.folder.join("link-to-drop");
    std::os::unix::fs::symlink(&drop, &link).expect("link");
    let err = client
        .call::<wire::Add>(&chain_rule(&link, &world.folder.join("out3")))
        .await
        .expect_err("linked");
    assert!(err.to_string().contains("rule `drop`"), "{err}");
    let mut named = chain_rule(&world.folder.join("other"), &world.folder.join("out4"));
    std::fs::create_dir_all(world.folder.join("other")).expect("other");
    named.name = Some("drop".into());
    assert_eq!(
        code(client.call::<wire::Add>(&named).await.expect_err("name")),
        "watch_name_taken"
    );
    // A link dropped into the folder is never followed.
    std::os::unix::fs::symlink("/etc/hostname", drop.join("sneaky.png")).expect("link in");
    std::fs::write(drop.join("real.png"), png_bytes([9, 9, 9])).expect("real");
    until(&client, "drop", "real taken", |rule| rule.counts.done == 1).await;
    assert_eq!(rule(&client, "drop").await.counts.seen, 1);
    assert_eq!(names(&out), ["real.png"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_rule_takes_a_file_once_it_stops_changing_and_keeps_inputs_in_place() {
    let world = World::start("", "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    let Folders { drop, out } = folders(&world);
    let params = AddParams {
        poll: true,
        settle_ms: Some(300),
        inputs: Inputs::Keep,
        ..chain_rule(&drop, &out)
    };
    let added = add(&client, &params).await;
    assert!(added.poll);
    std::fs::write(drop.join("polled.png"), png_bytes([3, 6, 9])).expect("file");
    until(&client, "drop", "taken by polling", |rule| {
        rule.counts.done == 1
    })
    .await;
    assert_eq!(names(&out), ["polled.png"]);
    // Kept where it landed, and not taken again, also after a restart's scan.
    assert_eq!(names(&drop), ["polled.png"]);
    std::mem::drop(client);
    let mut world = world;
    world.kill_hard();
    world.start_again();
    let client = world.client().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rule = rule(&client, "drop").await;
    assert_eq!(
        (rule.counts.seen, rule.counts.duplicate),
        (1, 0),
        "{rule:#?}"
    );
    assert_eq!(names(&out), ["polled.png"]);
}

/// `kromactl watch …` against the real kromad: what the command line sends is what kromad takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kromactl_adds_lists_pauses_and_logs_rules() {
    let world = World::start(FAST, "", fake(Duration::ZERO).await).await;
    let client = world.client().await;
    setup(&client, &world.fake, false).await;
    let Folders { drop, out } = folders(&world);
    let socket = world.socket();
    let run = |args: &[&str]| {
        let output = kroma_tests::kromactl(&socket, args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap_or_default()
    };
    let (drop_arg, out_arg) = (drop.display().to_string(), out.display().to_string());
    let added = run(&[
        "--json",
        "watch",
        "add",
        &drop_arg,
        "--chain",
        "color:neutral",
        "--output",
        &out_arg,
        "--name",
        "cli",
        "--settle",
        "300ms",
    ]);
    assert_eq!(added["name"], "cli");
    assert_eq!(added["settle_ms"], 300);
    let boards = world.folder.join("boards");
    std::fs::create_dir_all(&boards).expect("boards");
    let pipeline = run(&[
        "--json",
        "watch",
        "add",
        boards.to_str().expect("utf-8"),
        "--project",
        "noir",
        "--provider",
        "fake",
        "--candidates",
        "1",
        "--size",
        "64x96",
        "--quality",
        "low",
        "--budget",
        "0.50",
    ]);
    assert_eq!(pipeline["action"]["type"], "pipeline");
    assert_eq!(pipeline["budget_usd"], 0.5);
    std::fs::write(drop.join("cli.png"), png_bytes([1, 1, 1])).expect("file");
    until(&client, "cli", "taken", |rule| rule.counts.done == 1).await;
    let list = run(&["--json", "watch", "list"]);
    assert_eq!(list["rules"].as_array().map(Vec::len), Some(2));
    let paused = run(&["--json", "watch", "pause", "cli"]);
    assert_eq!(paused["state"], "paused");
    let log = run(&["--json", "watch", "log", "cli"]);
    assert_eq!(log["files"][0]["name"], "cli.png");
    assert_eq!(log["files"][0]["state"], "done");
    let text = kroma_tests::kromactl(&socket, &["watch", "list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("cli") && text.contains("paused"), "{text}");
    run(&["--json", "watch", "remove", "boards"]);
}

/// `kromactl bench watch` runs end to end on a small load; timings are reported, not asserted.
#[test]
fn the_watch_bench_measures_latency_and_throughput() {
    let temp = tempfile::tempdir().expect("temp");
    let output = kroma_tests::kromactl(
        &temp.path().join("unused.sock"),
        &[
            "--json",
            "bench",
            "watch",
            "--rounds",
            "3",
            "--files",
            "30",
            "--size",
            "64x64",
            "--kromad",
            kroma_tests::bin("kromad").to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let positive = |value: &serde_json::Value| value.as_f64().is_some_and(|value| value > 0.0);
    for key in ["median_ms", "p90_ms"] {
        assert!(positive(&report["latency"]["taken"][key]), "{report}");
        assert!(
            positive(&report["latency"]["direct_color"][key]),
            "{report}"
        );
    }
    assert!(positive(&report["latency"]["ratio_taken"]), "{report}");
    assert_eq!(report["throughput"]["files"], 30);
    assert!(positive(&report["throughput"]["ratio"]), "{report}");
}
