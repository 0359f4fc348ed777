//! `kromactl bench watch`: how fast a drop folder takes a finished file, and how many files it
//! gets through, each against the same colour work asked of kromad directly in the same run.
//!
//! A real kromad on a temporary data dir watches a real temporary folder with a chain rule of
//! one `color: neutral` step and default settings. Trigger latency: a finished PNG is renamed
//! into the folder, as a generator or a copy tool finishes a file, and the clock runs from the
//! `rename` to the rule's `watch.file` event `processing` (the file taken) and to its `done` (the
//! result written), followed through the event subscription. Its baseline is one direct
//! `postprocess.color` call on the same image, made in turns with the rounds so that a slow
//! stretch of a shared machine falls on both. Throughput: many small PNGs renamed in at once,
//! timed until the rule's counts (`watch.get`) say all are done, against one
//! `postprocess.color` call on a folder holding the same files. Absolute times vary between
//! machines; the ratios are what to compare between runs.

mod report;

use crate::bench_kromad::BenchKromad;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use kroma_client::Client;
use kroma_client::follow::EventFollower;
use kroma_protocol as protocol;
use protocol::watch::{FileState, WatchCounts, WatchFileChanged};

use crate::Global;
use crate::output::{self, Failure};
use report::{LatencyReport, Report, Spread, ThroughputReport};

/// What kromad aims at for the trigger latency: from the rename to the file taken.
const GOAL_TAKEN_MS: f64 = 300.0;
/// The side of the throughput measurement's PNGs.
const SMALL_SIDE: u32 = 64;
/// The most files one `postprocess.color` call takes, so the most the baseline can time.
const MAX_FILES: usize = 10_000;
/// How long an event, or the rule's counts, may stay still before the bench gives up.
const STALL: Duration = Duration::from_secs(60);
/// How often the throughput measurement reads the rule's counts.
const POLL: Duration = Duration::from_millis(20);
const PROFILE: &str = "neutral";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Files renamed into the folder one at a time in the latency measurement
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Small PNGs (64×64) renamed into the folder at once in the throughput measurement
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Size of the latency measurement's PNG, WxH: the generator's page by default
    #[arg(long, default_value = "1024x1536", value_parser = crate::bench::parse_size)]
    size: (u32, u32),
    /// The kromad binary [default: next to kromactl, else on PATH]
    #[arg(long, value_name = "PATH")]
    kromad: Option<PathBuf>,
}

/// The bench's folders, all inside one temporary folder removed at the end.
struct Layout {
    socket: PathBuf,
    /// The watched folder.
    inbox: PathBuf,
    /// The chain's results.
    out: PathBuf,
    /// Finished files waiting to be renamed into the inbox (the same file system).
    staging: PathBuf,
    /// The same images for the direct calls, one at a time and the folder of small ones.
    direct_one: PathBuf,
    direct_many: PathBuf,
    direct_out: PathBuf,
}

pub async fn watch(global: &Global, args: WatchArgs) -> Result<(), Failure> {
    let (width, height) = args.size;
    if args.rounds == 0 || args.files == 0 || args.files > MAX_FILES || width == 0 || height == 0 {
        return Err(Failure::Usage(format!(
            "--rounds must be at least 1, --files 1 to {MAX_FILES}, and --size at least 1x1"
        )));
    }
    let kromad = crate::common::kromad_binary(args.kromad.clone())?;
    let temp = tempfile::tempdir().map_err(|err| failure("creating a temp dir", err))?;
    let layout = Layout::make(temp.path())?;
    progress(global, "writing the test images");
    write_images(&layout, &args)?;
    let daemon = start_daemon(&kromad, temp.path()).await?;
    let measured = measure(global, &layout, &args).await;
    daemon.stop().await;
    let report = measured?;
    if global.json {
        output::print_json(&report);
        return Ok(());
    }
    report::print_text(&report);
    Ok(())
}

fn failure(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::other(format!("{what}: {err}"), None)
}

fn progress(global: &Global, message: &str) {
    if !global.quiet && !global.json {
        eprintln!("{message}…");
    }
}

impl Layout {
    fn make(root: &Path) -> Result<Layout, Failure> {
        let layout = Layout {
            socket: root.join("kromad.sock"),
            inbox: root.join("inbox"),
            out: root.join("out"),
            staging: root.join("staging"),
            direct_one: root.join("direct-one"),
            direct_many: root.join("direct-many"),
            direct_out: root.join("direct-out"),
        };
        for folder in [
            &layout.inbox,
            &layout.out,
            &layout.staging,
            &layout.direct_one,
            &layout.direct_many,
            &layout.direct_out,
        ] {
            std::fs::create_dir_all(folder)
                .map_err(|err| failure(&format!("creating {}", folder.display()), err))?;
        }
        Ok(layout)
    }
}

/// The latency file of round `round` (round 0 warms up and is not counted).
fn latency_name(round: usize) -> String {
    format!("latency-{round:03}.png")
}

fn small_name(index: usize) -> String {
    format!("small-{index:05}.png")
}

/// Writes every image before kromad starts: each into `staging/` and its copy for the direct
/// calls. Every image differs (a serial in its first pixel), so the rule takes none as a
/// duplicate of another.
fn write_images(layout: &Layout, args: &WatchArgs) -> Result<(), Failure> {
    let (width, height) = args.size;
    let mut serial = 0u32;
    let write = |name: &str, bytes: &[u8], copy_into: &Path| {
        for folder in [&layout.staging, copy_into] {
            let path = folder.join(name);
            std::fs::write(&path, bytes)
                .map_err(|err| failure(&format!("writing {}", path.display()), err))?;
        }
        Ok::<_, Failure>(())
    };
    for round in 0..=args.rounds {
        serial += 1;
        let bytes = png(width, height, serial)?;
        write(&latency_name(round), &bytes, &layout.direct_one)?;
    }
    for index in 0..args.files {
        serial += 1;
        let bytes = png(SMALL_SIDE, SMALL_SIDE, serial)?;
        write(&small_name(index), &bytes, &layout.direct_many)?;
    }
    Ok(())
}

/// A gradient PNG with `serial` in its first pixel.
fn png(width: u32, height: u32, serial: u32) -> Result<Vec<u8>, Failure> {
    let mut image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 96])
    });
    let [a, b, c, _] = serial.to_le_bytes();
    image.put_pixel(0, 0, image::Rgb([a, b, c]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|err| failure("encoding a test image", err))?;
    Ok(bytes)
}

/// Starts kromad on the bench's data dir, with an empty config and settings file of its own so
/// that nothing of this user's setup changes what is measured.
async fn start_daemon(kromad: &Path, root: &Path) -> Result<BenchKromad, Failure> {
    let config = root.join("kromad.toml");
    let settings = root.join("settings.toml");
    for file in [&config, &settings] {
        std::fs::write(file, "").map_err(|err| failure("writing kromad's config", err))?;
    }
    BenchKromad::start(kromad, root, Some(&config), &settings, &[]).await
}

async fn measure(global: &Global, layout: &Layout, args: &WatchArgs) -> Result<Report, Failure> {
    let client = Client::connect_unbounded(&layout.socket).await?;
    let rule = client
        .call::<protocol::watch::Add>(&protocol::watch::AddParams {
            name: Some("bench".into()),
            folder: layout.inbox.display().to_string(),
            action: protocol::watch::WatchAction::Chain {
                steps: vec![protocol::watch::LocalStep::Color {
                    profile: PROFILE.into(),
                }],
                output: layout.out.display().to_string(),
            },
            patterns: Vec::new(),
            budget_usd: 0.0,
            poll: false,
            settle_ms: None,
            inputs: protocol::watch::Inputs::Move,
        })
        .await?;
    progress(
        global,
        &format!(
            "measuring trigger latency: {} files renamed in one at a time, in turns with direct colour calls",
            args.rounds
        ),
    );
    let latency = measure_latency(&client, layout, args, rule.settle_ms).await?;
    progress(
        global,
        &format!(
            "measuring throughput: {} files renamed in at once, against one colour call on a folder of them",
            args.files
        ),
    );
    let throughput = measure_throughput(&client, layout, &rule.id, args.files).await?;
    Ok(Report {
        latency,
        throughput,
    })
}

async fn measure_latency(
    client: &Client,
    layout: &Layout,
    args: &WatchArgs,
    settle_ms: u64,
) -> Result<LatencyReport, Failure> {
    let last = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: None,
            limit: Some(1),
        })
        .await?
        .last_id;
    let mut events = EventFollower::start(client, Some(last)).await?;
    let (mut taken, mut done, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    // Round 0 warms both sides up, and its file is taken only once the folder is watched, so
    // the counted rounds never race the watch being set up.
    for round in 0..=args.rounds {
        let name = latency_name(round);
        let (taken_after, done_after) = drop_one(&mut events, layout, &name).await?;
        let direct_call = color_directly(client, &layout.direct_one.join(&name), layout, 1).await?;
        if round > 0 {
            taken.push(taken_after);
            done.push(done_after);
            direct.push(direct_call);
        }
    }
    let (taken, done, direct) = (Spread::of(taken), Spread::of(done), Spread::of(direct));
    Ok(LatencyReport {
        rounds: args.rounds,
        width: args.size.0,
        height: args.size.1,
        settle_ms,
        ratio_taken: taken.median_ms / direct.median_ms,
        ratio_done: done.median_ms / direct.median_ms,
        taken,
        done,
        direct_color: direct,
        goal_taken_ms: GOAL_TAKEN_MS,
    })
}

/// Renames `staging/<name>` into the watched folder and answers how long until the rule took it
/// (`processing`) and until its result was written (`done`).
async fn drop_one(
    events: &mut EventFollower<'_>,
    layout: &Layout,
    name: &str,
) -> Result<(Duration, Duration), Failure> {
    let from = layout.staging.join(name);
    let started = Instant::now();
    std::fs::rename(&from, layout.inbox.join(name))
        .map_err(|err| failure(&format!("renaming {} into the folder", from.display()), err))?;
    let mut taken = None;
    loop {
        let event = tokio::time::timeout(STALL, events.next())
            .await
            .map_err(|_| {
                Failure::other(
                    format!(
                        "the rule did not move `{name}` on within {} s",
                        STALL.as_secs()
                    ),
                    None,
                )
            })??;
        let Some(Ok(change)) = event.payload::<WatchFileChanged>() else {
            continue;
        };
        if change.name != name {
            continue;
        }
        match change.state {
            FileState::Processing => {
                taken.get_or_insert(started.elapsed());
            }
            FileState::Done => {
                let done = started.elapsed();
                let written = change.output.as_deref().map(Path::new);
                if !written.is_some_and(Path::is_file) {
                    return Err(Failure::other(
                        format!("the rule said `{name}` was done but its result is missing"),
                        None,
                    ));
                }
                let taken = taken.ok_or_else(|| {
                    Failure::other(format!("`{name}` was done without being taken"), None)
                })?;
                return Ok((taken, done));
            }
            other => {
                return Err(Failure::other(
                    format!(
                        "the rule set `{name}` {}: {}",
                        other.as_str(),
                        change.reason.as_deref().unwrap_or("no reason given")
                    ),
                    None,
                ));
            }
        }
    }
}

/// One `postprocess.color` call on `path` (a file or a folder holding `expected` files),
/// answering how long it took.
async fn color_directly(
    client: &Client,
    path: &Path,
    layout: &Layout,
    expected: usize,
) -> Result<Duration, Failure> {
    let stem = path.file_stem().unwrap_or_default();
    let output_dir = layout.direct_out.join(stem);
    let started = Instant::now();
    let report = client
        .call::<protocol::postprocess::Color>(&protocol::postprocess::ColorParams {
            paths: vec![path.display().to_string()],
            profile: PROFILE.into(),
            output_dir: Some(output_dir.display().to_string()),
        })
        .await?;
    let elapsed = started.elapsed();
    if report.done as usize != expected || report.failed > 0 {
        return Err(Failure::other(
            format!(
                "the direct colour call on {} did {} and failed {} of {expected} files",
                path.display(),
                report.done,
                report.failed
            ),
            None,
        ));
    }
    Ok(elapsed)
}

async fn measure_throughput(
    client: &Client,
    layout: &Layout,
    rule: &str,
    files: usize,
) -> Result<ThroughputReport, Failure> {
    let direct = color_directly(client, &layout.direct_many, layout, files).await?;
    let counts = || async {
        client
            .call::<protocol::watch::Get>(&protocol::watch::RuleRef {
                rule: rule.to_owned(),
            })
            .await
            .map(|rule| rule.counts)
    };
    let before = counts().await?;
    let started = Instant::now();
    for index in 0..files {
        let name = small_name(index);
        std::fs::rename(layout.staging.join(&name), layout.inbox.join(&name))
            .map_err(|err| failure(&format!("renaming {name} into the folder"), err))?;
    }
    let mut last = before;
    let mut last_change = Instant::now();
    let (through_watch, now) = loop {
        let now = counts().await?;
        let elapsed = started.elapsed();
        if finished_since(&before, &now) >= files {
            break (elapsed, now);
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > STALL {
            return Err(Failure::other(
                format!(
                    "the rule finished {} of {files} files and then nothing for {} s",
                    finished_since(&before, &now),
                    STALL.as_secs()
                ),
                None,
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let (failed, duplicate) = (now.failed - before.failed, now.duplicate - before.duplicate);
    if failed > 0 || duplicate > 0 {
        return Err(Failure::other(
            format!("of {files} dropped files, {failed} failed and {duplicate} were duplicates"),
            Some("see `kromactl watch log bench` on a daemon of your own"),
        ));
    }
    let kroma_files_per_sec = files as f64 / through_watch.as_secs_f64();
    let direct_files_per_sec = files as f64 / direct.as_secs_f64();
    Ok(ThroughputReport {
        files,
        side: SMALL_SIDE,
        kroma_files_per_sec,
        direct_files_per_sec,
        ratio: kroma_files_per_sec / direct_files_per_sec,
    })
}

/// Files the rule finished, one way or another, since `before`.
fn finished_since(before: &WatchCounts, now: &WatchCounts) -> usize {
    let finished = |counts: &WatchCounts| counts.done + counts.failed + counts.duplicate;
    finished(now).saturating_sub(finished(before)) as usize
}
