//! `kromactl bench sync`: kromad's S3 push (`storage.sync`) against the same uploads made with
//! aws-sdk-s3 directly, measured in the same run against the same S3 server.
//!
//! The server is the S3 test server (`kroma_s3_server`: s3s-fs in this process on 127.0.0.1,
//! checking SigV4 and every SHA-256) serving a folder of the bench's temp dir; kromad is one of
//! the bench's own (`bench_kromad`), given the keys as `KROMA_SECRET_*` variables, as `bench
//! runs` gives it the provider key. The project's folder holds N PNGs of noise (they compress
//! badly, as finished pages do), each under kromad's multipart threshold, so both sides send one
//! PutObject per file.
//!
//! Each round the baseline hashes every file kromad's plan uploads (SHA-256, as kromad does) and
//! PutObjects it with the checksum and metadata kromad sends, [`IN_FLIGHT`] at a time, on a
//! client built like kromad's; then kromad pushes the project with one `storage.sync` call, its
//! plan (bucket check, folder walk, listing) included. Each side writes under a prefix of its
//! own, new every round and removed from the server's folder once measured, so every round
//! uploads everything.

mod report;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use clap::Args;
use kroma_client::Client;
use kroma_protocol as protocol;
use kroma_s3_server::S3Server;
use sha2::{Digest, Sha256};

use crate::Global;
use crate::bench_kromad::BenchKromad;
use crate::output::{self, Failure};
use report::{Report, Round, Throughput};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// PNGs in the project's folder, 1 to 5000
    #[arg(long, default_value_t = 200)]
    files: usize,
    /// Size of each PNG in MB, 0.01 to 15 (below kromad's 16 MiB multipart threshold, so both
    /// sides send one PutObject per file)
    #[arg(long, value_name = "MB", default_value_t = 2.5)]
    size_mb: f64,
    /// Timed rounds of each side; the median is reported
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The kromad binary [default: next to kromactl, else on PATH]
    #[arg(long, value_name = "PATH")]
    kromad: Option<PathBuf>,
}

const ACCESS_KEY: &str = "kroma-bench-access";
const SECRET_KEY: &str = "kroma-bench-secret-key";
const BUCKET: &str = "kroma-bench";
const SLUG: &str = "bench";
/// Uploads the baseline has in flight: kromad's own limit per sync.
const IN_FLIGHT: usize = 4;
/// The metadata key kromad stores an object's hex SHA-256 under.
const META_SHA256: &str = "sha256";
/// The seed of the first PNG's noise; each PNG has its own.
const SEED: u64 = 0x5EED_C0DE_F00D_0001;

/// One file both sides upload: where it is, and its path in the project folder.
struct Upload {
    file: PathBuf,
    path: String,
}

pub async fn sync(global: &Global, args: SyncArgs) -> Result<(), Failure> {
    if !(1..=5000).contains(&args.files)
        || !(0.01..=15.0).contains(&args.size_mb)
        || !(1..=20).contains(&args.rounds)
    {
        return Err(Failure::Usage(
            "--files must be 1 to 5000, --size-mb 0.01 to 15 and --rounds 1 to 20".into(),
        ));
    }
    let kromad = crate::common::kromad_binary(args.kromad.clone())?;
    let temp = tempfile::tempdir().map_err(|err| failure("creating a temp dir", err))?;
    let s3_root = temp.path().join("s3");
    std::fs::create_dir_all(s3_root.join(BUCKET))
        .map_err(|err| failure("making the bucket folder", err))?;
    let server = S3Server::start(&s3_root, ACCESS_KEY, SECRET_KEY)
        .await
        .map_err(|err| failure("starting the S3 server", err))?;
    let daemon = start_daemon(&kromad, &temp.path().join("kromad")).await?;
    let measured = measure(global, &args, &daemon.client, &server, &s3_root).await;
    daemon.stop().await;
    let report = measured?;
    if global.json {
        output::print_json(&report);
    } else if !global.quiet {
        println!("{}", report::text(&report));
    }
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

/// Starts kromad in `folder` with an empty config and settings of its own (nothing of this
/// user's set-up changes what is measured) and the S3 keys in its environment.
async fn start_daemon(kromad: &Path, folder: &Path) -> Result<BenchKromad, Failure> {
    std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
    let config = folder.join("kromad.toml");
    let settings = folder.join("settings.toml");
    for file in [&config, &settings] {
        std::fs::write(file, "").map_err(|err| failure("writing kromad's config", err))?;
    }
    let access = secret_variable(protocol::storage::DEFAULT_ACCESS_KEY_SECRET);
    let secret = secret_variable(protocol::storage::DEFAULT_SECRET_KEY_SECRET);
    let env = [(access.as_str(), ACCESS_KEY), (secret.as_str(), SECRET_KEY)];
    BenchKromad::start(kromad, folder, Some(&config), &settings, &env).await
}

/// The `KROMA_SECRET_<NAME>` variable kromad reads a secret from.
fn secret_variable(name: &str) -> String {
    format!("KROMA_SECRET_{}", name.to_ascii_uppercase())
}

/// The project's S3 settings: the bench's bucket under `prefix`, at the server.
fn settings(server: &S3Server, prefix: &str) -> protocol::project::S3Settings {
    protocol::project::S3Settings {
        prefix: prefix.to_owned(),
        endpoint: Some(server.endpoint()),
        ..protocol::project::S3Settings::bucket(BUCKET)
    }
}

/// The project made and filled, then the rounds.
async fn measure(
    global: &Global,
    args: &SyncArgs,
    client: &Client,
    server: &S3Server,
    s3_root: &Path,
) -> Result<Report, Failure> {
    let project = client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Bench sync".into(),
            slug: Some(SLUG.into()),
            description: None,
            root: None,
            s3: Some(settings(server, &prefix(Side::Kromad, 1))),
        })
        .await?;
    let root = PathBuf::from(&project.root);
    progress(
        global,
        &format!(
            "writing {} PNGs of noise, about {} MB each",
            args.files, args.size_mb
        ),
    );
    let (folder, files, size_mb) = (root.join("inputs"), args.files, args.size_mb);
    tokio::task::spawn_blocking(move || write_images(&folder, files, size_mb))
        .await
        .map_err(|err| failure("writing the PNGs", err))??;
    // The baseline sends exactly what kromad's plan sends: the PNGs and the project's own files.
    let plan = client
        .call::<protocol::storage::PlanSync>(&protocol::storage::PlanParams {
            project: SLUG.into(),
            what: protocol::storage::What::Project,
            direction: protocol::storage::Direction::Push,
            delete: false,
        })
        .await?;
    let uploads: Vec<Upload> = plan
        .items
        .iter()
        .map(|item| Upload {
            file: root.join(&item.path),
            path: item.path.clone(),
        })
        .collect();
    let (n_files, bytes) = (uploads.len(), plan.transfer_bytes);
    let uploads = Arc::new(uploads);
    let direct = direct_client(&server.endpoint());
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        progress(
            global,
            &format!(
                "round {round} of {}: aws-sdk-s3 directly, {n_files} files",
                args.rounds
            ),
        );
        let baseline_prefix = prefix(Side::Baseline, round);
        let baseline = direct_uploads(&direct, &uploads, &baseline_prefix).await?;
        remove_objects(s3_root, &baseline_prefix)?;

        progress(
            global,
            &format!("round {round} of {}: kromad storage.sync", args.rounds),
        );
        let kromad_prefix = prefix(Side::Kromad, round);
        if round > 1 {
            client
                .call::<protocol::project::Update>(&protocol::project::UpdateParams {
                    slug: SLUG.into(),
                    name: None,
                    description: None,
                    s3: Some(Some(settings(server, &kromad_prefix))),
                })
                .await?;
        }
        let kromad = push(client, n_files).await?;
        remove_objects(s3_root, &kromad_prefix)?;
        rounds.push(Round::new(
            round,
            Throughput::of(n_files, bytes, baseline),
            Throughput::of(n_files, bytes, kromad),
        ));
    }
    Ok(Report::new(
        args.files,
        args.size_mb,
        n_files,
        bytes,
        IN_FLIGHT,
        rounds,
    ))
}

#[derive(Clone, Copy)]
enum Side {
    Baseline,
    Kromad,
}

/// The key prefix a side writes under in a round, new every round.
fn prefix(side: Side, round: usize) -> String {
    match side {
        Side::Baseline => format!("baseline-r{round}"),
        Side::Kromad => format!("kromad-r{round}"),
    }
}

/// Removes a prefix's objects from the server's folder, so the disk holds one side's copy at a
/// time. The next round writes under new prefixes, so nothing depends on what s3s-fs keeps
/// beside the objects.
fn remove_objects(s3_root: &Path, prefix: &str) -> Result<(), Failure> {
    let folder = s3_root.join(BUCKET).join(prefix);
    match std::fs::remove_dir_all(&folder) {
        Ok(()) => Ok(()),
        Err(err) => Err(failure(&format!("removing {}", folder.display()), err)),
    }
}

/// One `storage.sync` push of the project, timed from the call to its answer; every step must
/// have succeeded and moved every file.
async fn push(client: &Client, n_files: usize) -> Result<Duration, Failure> {
    let started = Instant::now();
    let report = client
        .call::<protocol::storage::Sync>(&protocol::storage::SyncParams {
            project: SLUG.into(),
            what: protocol::storage::What::Project,
            direction: protocol::storage::Direction::Push,
            delete: false,
            dry_run: false,
            confirmed_deletes: None,
        })
        .await?;
    let elapsed = started.elapsed();
    if let Some(failed) = report.failed.first() {
        return Err(Failure::other(
            format!(
                "kromad could not upload {} of {n_files} files, e.g. {}: {} {}",
                report.failed.len(),
                failed.path,
                failed.code,
                failed.message
            ),
            None,
        ));
    }
    if report.uploaded as usize != n_files {
        return Err(Failure::other(
            format!(
                "kromad uploaded {} files where its plan had {n_files}",
                report.uploaded
            ),
            None,
        ));
    }
    Ok(elapsed)
}

/// A client built as kromad builds its own for these settings (`storage/remote.rs`): path-style,
/// checksums only where required (each upload carries its own SHA-256), the same timeouts.
fn direct_client(endpoint: &str) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "kroma-bench");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Every file hashed and sent with PutObject under `prefix`, [`IN_FLIGHT`] at a time: the keys,
/// checksum and metadata kromad's uploads carry.
async fn direct_uploads(
    client: &aws_sdk_s3::Client,
    uploads: &Arc<Vec<Upload>>,
    prefix: &str,
) -> Result<Duration, Failure> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let (client, uploads, next) = (client.clone(), Arc::clone(uploads), Arc::clone(&next));
        let prefix = prefix.to_owned();
        workers.push(tokio::spawn(async move {
            loop {
                let Some(upload) = uploads.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return Ok(());
                };
                let key = format!("{prefix}/{SLUG}/{}", upload.path);
                put(&client, &key, &upload.file)
                    .await
                    .map_err(|err| format!("{}: {err}", upload.path))?;
            }
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|err| failure("a baseline worker", err))?
            .map_err(|err: String| failure("a baseline upload", err))?;
    }
    Ok(started.elapsed())
}

/// One file: hashed on a blocking thread, then one PutObject streaming it from disk.
async fn put(client: &aws_sdk_s3::Client, key: &str, file: &Path) -> Result<(), String> {
    let hashed = file.to_owned();
    let digest = tokio::task::spawn_blocking(move || sha256_of(&hashed))
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| format!("reading the file: {err}"))?;
    let body = ByteStream::from_path(file)
        .await
        .map_err(|err| err.to_string())?;
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
        .metadata(META_SHA256, hex(&digest))
        .body(body)
        .send()
        .await
        .map_err(|err| DisplayErrorContext(&err).to_string())?;
    Ok(())
}

/// A file's SHA-256, read as kromad reads it (256 KiB at a time).
fn sha256_of(file: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(file)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..read]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes `files` PNGs of noise of about `size_mb` MB each into `folder`, several at a time.
fn write_images(folder: &Path, files: usize, size_mb: f64) -> Result<(), Failure> {
    std::fs::create_dir_all(folder).map_err(|err| failure("creating a folder", err))?;
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        if index >= files {
                            return Ok(());
                        }
                        let path = folder.join(format!("noise-{index:04}.png"));
                        std::fs::write(&path, noise_png(index, size_mb))
                            .map_err(|err| failure(&format!("writing {}", path.display()), err))?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| Err(Failure::other("a PNG writer panicked", None)))
        })
    })
}

/// PNG number `index`: RGB noise from its own seed, as many pixels as `size_mb` MB holds (noise
/// does not compress, so the file is about that size).
fn noise_png(index: usize, size_mb: f64) -> Vec<u8> {
    use image::ImageEncoder as _;
    let pixels = (size_mb * 1e6 / 3.0).max(1.0);
    let width = pixels.sqrt().round().max(1.0) as u32;
    let height = (pixels / f64::from(width)).round().max(1.0) as u32;
    let mut raw = vec![0u8; width as usize * height as usize * 3];
    let mut state = SEED ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in raw.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let mut png = Vec::with_capacity(raw.len() + raw.len() / 64 + 1024);
    // Encoding into memory fails only for a buffer of the wrong length, which this is not.
    let _ = image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(&raw, width, height, image::ExtendedColorType::Rgb8);
    png
}
