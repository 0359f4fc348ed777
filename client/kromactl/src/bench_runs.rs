//! `kromactl bench runs`: what kromad's run orchestration costs per candidate, measured against
//! the same image calls made directly to the same provider in the same run.
//!
//! Both sides talk to the fake OpenAI Images provider (in this process, on 127.0.0.1): the
//! baseline sends the edit calls itself (multipart with the scene image, JSON answer, base64
//! decode); kromad plans them as a run and executes it (claim, call, check the image, write it
//! with provenance, record asset, candidate and cost event, emit events). The difference per
//! candidate is the orchestration overhead; the ratio at N parallel calls shows throughput.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kroma_client::Client;
use kroma_fake_provider::{FakeConfig, FakeProvider};
use kroma_protocol as protocol;
use serde::Serialize;

use crate::Global;
use crate::bench_kromad::BenchKromad;
use crate::output::{self, Failure};

const KEY: &str = "sk-bench";

#[derive(Debug, Serialize)]
struct Report {
    candidates: usize,
    overhead: Overhead,
    throughput: Vec<Level>,
}

#[derive(Debug, Serialize)]
struct Overhead {
    /// Per candidate, one call at a time, provider answering at once.
    direct_ms: f64,
    kroma_ms: f64,
    overhead_ms: f64,
    target_ms: f64,
}

#[derive(Debug, Serialize)]
struct Level {
    parallel: usize,
    latency_ms: u64,
    direct_per_sec: f64,
    kroma_per_sec: f64,
    ratio: f64,
}

fn failure(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::other(format!("{what}: {err}"), None)
}

pub async fn runs(
    global: &Global,
    candidates: usize,
    parallel: Vec<usize>,
    latency_ms: u64,
    kromad: Option<PathBuf>,
) -> Result<(), Failure> {
    if candidates == 0 || candidates > 1000 || parallel.iter().any(|p| !(1..=64).contains(p)) {
        return Err(Failure::Usage(
            "--candidates must be 1 to 1000 and each --parallel 1 to 64".into(),
        ));
    }
    let kromad = crate::common::kromad_binary(kromad)?;
    let temp = tempfile::tempdir().map_err(|err| failure("creating a temp dir", err))?;
    let scene = temp.path().join("scene.png");
    let image = image_bytes();
    std::fs::write(&scene, &image).map_err(|err| failure("writing the scene", err))?;

    progress(global, "measuring one call at a time (overhead)");
    let fake = start_fake(0).await?;
    let baseline = direct(&fake, &image, candidates, 1).await?;
    let kroma = through_kromad(&kromad, temp.path(), &fake, &scene, candidates, 1, "p1").await?;
    let overhead = Overhead {
        direct_ms: baseline.as_secs_f64() * 1000.0 / candidates as f64,
        kroma_ms: kroma.as_secs_f64() * 1000.0 / candidates as f64,
        overhead_ms: (kroma.as_secs_f64() - baseline.as_secs_f64()) * 1000.0 / candidates as f64,
        target_ms: 5.0,
    };

    let mut throughput = Vec::new();
    let fake = start_fake(latency_ms).await?;
    for level in parallel {
        progress(global, &format!("measuring {level} calls in parallel"));
        let baseline = direct(&fake, &image, candidates, level).await?;
        let tag = format!("t{level}");
        let kroma =
            through_kromad(&kromad, temp.path(), &fake, &scene, candidates, level, &tag).await?;
        let direct_per_sec = candidates as f64 / baseline.as_secs_f64();
        let kroma_per_sec = candidates as f64 / kroma.as_secs_f64();
        throughput.push(Level {
            parallel: level,
            latency_ms,
            direct_per_sec,
            kroma_per_sec,
            ratio: kroma_per_sec / direct_per_sec,
        });
    }
    let report = Report {
        candidates,
        overhead,
        throughput,
    };
    if global.json {
        output::print_json(&report);
        return Ok(());
    }
    let mut table = output::table(&["metric", "kromad", "direct calls", "ratio / difference"]);
    table.add_row(vec![
        "time per candidate, 1 at a time, no provider latency".to_owned(),
        format!("{:.2} ms", report.overhead.kroma_ms),
        format!("{:.2} ms", report.overhead.direct_ms),
        format!(
            "+{:.2} ms (target ≤ {:.0} ms)",
            report.overhead.overhead_ms, report.overhead.target_ms
        ),
    ]);
    for level in &report.throughput {
        table.add_row(vec![
            format!(
                "candidates/s, {} in parallel, {} ms provider latency",
                level.parallel, level.latency_ms
            ),
            format!("{:.1}", level.kroma_per_sec),
            format!("{:.1}", level.direct_per_sec),
            format!("{:.2}x", level.ratio),
        ]);
    }
    println!("{table}");
    println!(
        "{candidates} candidates per measurement; the baseline makes the same calls to the same fake provider directly"
    );
    Ok(())
}

fn progress(global: &Global, message: &str) {
    if !global.quiet && !global.json {
        eprintln!("{message}…");
    }
}

/// A small scene image, PNG.
fn image_bytes() -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 90]));
    let mut bytes = Vec::new();
    // Writing a PNG into memory cannot fail.
    let _ = image::DynamicImage::ImageRgb8(image).write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    );
    bytes
}

async fn start_fake(latency_ms: u64) -> Result<FakeProvider, Failure> {
    FakeProvider::start(FakeConfig {
        key: KEY.to_owned(),
        render_size: Some((64, 64)),
        latency: Duration::from_millis(latency_ms),
        ..FakeConfig::default()
    })
    .await
    .map_err(|err| failure("starting the fake provider", err))
}

const PROMPT: &str = "Preserve geometry and perspective. Apply one coherent noir drawing hand.";

/// `count` edit calls straight to the provider, `parallel` at a time.
async fn direct(
    fake: &FakeProvider,
    image: &[u8],
    count: usize,
    parallel: usize,
) -> Result<Duration, Failure> {
    let http = reqwest::Client::new();
    let url = format!("{}/images/edits", fake.base_url());
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..parallel {
        let http = http.clone();
        let url = url.clone();
        let image = image.to_vec();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < count {
                let part = reqwest::multipart::Part::bytes(image.clone())
                    .file_name("scene.png")
                    .mime_str("image/png")
                    .map_err(|err| err.to_string())?;
                let form = reqwest::multipart::Form::new()
                    .text("model", "gpt-image-2")
                    .text("prompt", PROMPT)
                    .text("size", "64x64")
                    .text("quality", "low")
                    .text("output_format", "png")
                    .text("input_fidelity", "high")
                    .part("image[]", part);
                let answer: serde_json::Value = http
                    .post(&url)
                    .bearer_auth(KEY)
                    .multipart(form)
                    .send()
                    .await
                    .map_err(|err| err.to_string())?
                    .json()
                    .await
                    .map_err(|err| err.to_string())?;
                let b64 = answer["data"][0]["b64_json"].as_str().unwrap_or_default();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|err| err.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|err| failure("a baseline worker", err))?
            .map_err(|err| failure("a baseline call", err))?;
    }
    Ok(started.elapsed())
}

/// Starts a kromad with `parallel` provider-call slots, runs `count` candidates through it and
/// answers the time from `run.start` to `run.finished`.
async fn through_kromad(
    kromad: &Path,
    temp: &Path,
    fake: &FakeProvider,
    scene: &Path,
    count: usize,
    parallel: usize,
    tag: &str,
) -> Result<Duration, Failure> {
    let folder = temp.join(tag);
    std::fs::create_dir_all(&folder).map_err(|err| failure("creating a folder", err))?;
    let config = folder.join("kromad.toml");
    std::fs::write(&config, format!("[runs]\nprovider_calls = {parallel}\n"))
        .map_err(|err| failure("writing the kromad config", err))?;
    let settings = folder.join("settings.toml");
    std::fs::write(
        &settings,
        "[generation]\nprovider = \"fake\"\nsize = \"64x64\"\nquality = \"low\"\nsafe_batch_limit = 1000\n",
    )
    .map_err(|err| failure("writing the settings", err))?;
    let daemon = BenchKromad::start(
        kromad,
        &folder,
        Some(&config),
        &settings,
        &[("KROMA_SECRET_FAKE", KEY)],
    )
    .await?;
    let result = measure_run(&daemon.client, fake, scene, count).await;
    daemon.stop().await;
    result
}

async fn measure_run(
    client: &Client,
    fake: &FakeProvider,
    scene: &Path,
    count: usize,
) -> Result<Duration, Failure> {
    client
        .call::<protocol::provider::Create>(&protocol::provider::CreateParams {
            name: "fake".into(),
            kind: protocol::provider::ProviderKind::OpenaiCompatible,
            base_url: Some(fake.base_url()),
            default_model: Some("gpt-image-2".into()),
            organization: None,
            secret: Some("fake".into()),
            honors_idempotency_key: true,
        })
        .await?;
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Bench".into(),
            slug: Some("bench".into()),
            description: None,
            root: None,
            s3: None,
        })
        .await?;
    let imported = client
        .call::<protocol::asset::Import>(&protocol::asset::ImportParams {
            project: "bench".into(),
            paths: vec![scene.display().to_string()],
            kind: protocol::asset::AssetKind::Input,
        })
        .await?;
    let scene_id = imported
        .results
        .first()
        .and_then(|result| result.asset.as_ref())
        .map(|asset| asset.id.clone())
        .ok_or_else(|| Failure::other("the bench scene was not imported", None))?;
    let detail = client
        .call::<protocol::run::Create>(&protocol::run::CreateParams {
            plan: protocol::run::PlanParams {
                project: "bench".into(),
                scenes: vec![scene_id; count],
                ..Default::default()
            },
            dry_run: false,
        })
        .await?;
    let last = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: None,
            limit: Some(1),
        })
        .await?
        .last_id;
    let mut events = kroma_client::follow::EventFollower::start(client, Some(last)).await?;
    let started = Instant::now();
    client
        .call::<protocol::run::Start>(&protocol::run::StartParams {
            plan_id: detail.run.id.clone(),
            confirm_cost_usd: detail.plan.cost.max_usd,
        })
        .await?;
    loop {
        let event = events.next().await?;
        if let Some(Ok(finished)) = event.payload::<protocol::events::RunFinished>()
            && finished.run == detail.run.id
        {
            let elapsed = started.elapsed();
            if finished.status != protocol::run::RunStatus::Done {
                return Err(Failure::other(
                    format!("the bench run ended {}", finished.status.as_str()),
                    None,
                ));
            }
            return Ok(elapsed);
        }
    }
}
