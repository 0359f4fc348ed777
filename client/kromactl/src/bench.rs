//! `kromactl bench rpc`: measures kromad against a floor measured in the same run. [`run`] also
//! sends the other bench commands to their modules (`bench_post`, `bench_runs`, `bench_watch`,
//! `bench_qa`, `bench_sync`).
//!
//! The floor is a raw newline-JSON echo server on the same kind of local socket, driven by the same
//! raw client code, so the ratios show what kromad adds on top of the socket itself. Absolute times
//! vary on shared machines; the ratios are what to compare between runs.
//!
//! Two clients are measured: the async client of the throughput figures against kromad and an
//! async echo server, and a blocking one that makes one call at a time on a synchronous socket
//! (write a line, read a line), as most scripts and agent tools do, against kromad and a plain
//! Python echo server in a process of its own (`packaging/bench/echo_server.py`). Each ratio
//! compares one client against kromad with the same client against its floor.

use std::io::{BufRead, BufReader as BlockingBufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::output::{self, Failure};
use crate::{BenchCommand, Global};

const REQUEST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#;
const WARMUP_CALLS: usize = 500;

#[derive(Debug, Serialize)]
struct Report {
    calls_per_client: usize,
    clients: usize,
    cold_start_ms: f64,
    idle_rss_mb: Option<f64>,
    kromad: Measurements,
    floor: Measurements,
    ratio_p50: f64,
    ratio_p99: f64,
    ratio_throughput: f64,
    /// One call at a time from a blocking client.
    blocking: Blocking,
    blocking_ratio_p50: f64,
    blocking_ratio_p99: f64,
}

#[derive(Debug, Serialize)]
struct Measurements {
    p50_us: f64,
    p99_us: f64,
    calls_per_sec_1_client: f64,
    calls_per_sec_n_clients: f64,
}

/// The blocking client's round trips against each server.
#[derive(Debug, Serialize)]
struct Blocking {
    kromad: Latency,
    floor: Latency,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
}

/// Runs one `kromactl bench` command.
pub async fn run(global: &Global, command: BenchCommand) -> Result<(), Failure> {
    match command {
        BenchCommand::Rpc {
            calls,
            clients,
            kromad,
        } => rpc(global, calls, clients, kromad).await,
        BenchCommand::Runs {
            candidates,
            parallel,
            latency_ms,
            kromad,
        } => crate::bench_runs::runs(global, candidates, parallel, latency_ms, kromad).await,
        BenchCommand::Postprocess {
            images,
            sizes,
            rembg_python,
            kromad,
        } => crate::bench_post::postprocess(global, images, sizes, rembg_python, kromad).await,
        BenchCommand::Watch(args) => crate::bench_watch::watch(global, args).await,
        BenchCommand::Qa(args) => crate::bench_qa::qa(global, args).await,
        BenchCommand::Sync(args) => crate::bench_sync::sync(global, args).await,
    }
}

/// `WIDTHxHEIGHT`, the sizes the benches take.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (width, height) = text
        .split_once('x')
        .ok_or_else(|| format!("`{text}` is not WIDTHxHEIGHT"))?;
    let side = |value: &str| {
        value
            .parse::<u32>()
            .map_err(|_| format!("`{text}` is not WIDTHxHEIGHT"))
    };
    Ok((side(width)?, side(height)?))
}

async fn rpc(
    global: &Global,
    calls: usize,
    clients: usize,
    kromad: Option<PathBuf>,
) -> Result<(), Failure> {
    if calls == 0 || clients == 0 {
        return Err(Failure::Usage(
            "--calls and --clients must be at least 1".into(),
        ));
    }
    let kromad = crate::common::kromad_binary(kromad)?;
    let temp = tempfile::tempdir()
        .map_err(|err| Failure::other(format!("creating a temp dir: {err}"), None))?;
    let echo_socket = temp.path().join("echo.sock");
    let daemon_socket = temp.path().join("kromad.sock");

    let echo = start_echo_server(&echo_socket)?;
    let python_echo_socket = temp.path().join("python-echo.sock");
    let mut python_echo = start_python_echo_server(&python_echo_socket)?;
    let (mut child, cold_start) =
        start_daemon(&kromad, &daemon_socket, &temp.path().join("data")).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss_mb = rss_mb(child.id());

    progress(global, "measuring the echo floor");
    let floor = measure(&echo_socket, calls, clients).await?;
    progress(global, "measuring kromad");
    let daemon = measure(&daemon_socket, calls, clients).await?;
    progress(
        global,
        "measuring a blocking client against a Python echo server and kromad, in turns",
    );
    let blocking = measure_blocking(&python_echo_socket, &daemon_socket, calls).await;
    let _ = python_echo.kill();
    let _ = python_echo.wait();
    let (blocking_floor, blocking_daemon) = blocking?;

    stop_daemon(&daemon_socket).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while matches!(child.try_wait(), Ok(None)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = child.kill();
    echo.abort();

    let report = Report {
        calls_per_client: calls,
        clients,
        cold_start_ms: cold_start.as_secs_f64() * 1000.0,
        idle_rss_mb,
        ratio_p50: daemon.p50_us / floor.p50_us,
        ratio_p99: daemon.p99_us / floor.p99_us,
        ratio_throughput: daemon.calls_per_sec_n_clients / floor.calls_per_sec_n_clients,
        kromad: daemon,
        floor,
        blocking_ratio_p50: blocking_daemon.p50_us / blocking_floor.p50_us,
        blocking_ratio_p99: blocking_daemon.p99_us / blocking_floor.p99_us,
        blocking: Blocking {
            kromad: blocking_daemon,
            floor: blocking_floor,
        },
    };
    if global.json {
        output::print_json(&report);
        return Ok(());
    }
    let mut table = output::table(&["metric", "kromad", "echo floor", "ratio"]);
    table.add_row(vec![
        "p50 latency, 1 client".to_owned(),
        format!("{:.1} µs", report.kromad.p50_us),
        format!("{:.1} µs", report.floor.p50_us),
        format!("{:.2}x", report.ratio_p50),
    ]);
    table.add_row(vec![
        "p99 latency, 1 client".to_owned(),
        format!("{:.1} µs", report.kromad.p99_us),
        format!("{:.1} µs", report.floor.p99_us),
        format!("{:.2}x", report.ratio_p99),
    ]);
    table.add_row(vec![
        "p50 latency, blocking client".to_owned(),
        format!("{:.1} µs", report.blocking.kromad.p50_us),
        format!("{:.1} µs", report.blocking.floor.p50_us),
        format!("{:.2}x", report.blocking_ratio_p50),
    ]);
    table.add_row(vec![
        "p99 latency, blocking client".to_owned(),
        format!("{:.1} µs", report.blocking.kromad.p99_us),
        format!("{:.1} µs", report.blocking.floor.p99_us),
        format!("{:.2}x", report.blocking_ratio_p99),
    ]);
    table.add_row(vec![
        "calls/s, 1 client".to_owned(),
        format!("{:.0}", report.kromad.calls_per_sec_1_client),
        format!("{:.0}", report.floor.calls_per_sec_1_client),
        format!(
            "{:.2}x",
            report.kromad.calls_per_sec_1_client / report.floor.calls_per_sec_1_client
        ),
    ]);
    table.add_row(vec![
        format!("calls/s, {clients} clients"),
        format!("{:.0}", report.kromad.calls_per_sec_n_clients),
        format!("{:.0}", report.floor.calls_per_sec_n_clients),
        format!("{:.2}x", report.ratio_throughput),
    ]);
    table.add_row(vec![
        "cold start to socket ready".to_owned(),
        format!("{:.1} ms", report.cold_start_ms),
        "-".to_owned(),
        "-".to_owned(),
    ]);
    table.add_row(vec![
        "idle RSS".to_owned(),
        report
            .idle_rss_mb
            .map_or_else(|| "n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        "-".to_owned(),
        "-".to_owned(),
    ]);
    println!("{table}");
    println!(
        "targets: p50 ≤ 3x the floor (async and blocking client), ≥ 30000 calls/s with 8 clients, cold start ≤ 100 ms, idle RSS ≤ 12 MB"
    );
    Ok(())
}

fn progress(global: &Global, message: &str) {
    if !global.quiet && !global.json {
        eprintln!("{message}…");
    }
}

fn start_echo_server(path: &Path) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let name = path
        .to_fs_name::<GenericFilePath>()
        .map_err(|err| Failure::other(format!("naming {}: {err}", path.display()), None))?;
    let listener = ListenerOptions::new()
        .name(name)
        .create_tokio()
        .map_err(|err| Failure::other(format!("binding the echo server: {err}"), None))?;
    Ok(tokio::spawn(async move {
        while let Ok(stream) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = tokio::io::split(stream);
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(mut line)) = lines.next_line().await {
                    line.push('\n');
                    if write.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }))
}

/// The floor for the blocking client: a plain Python echo server in a process of its own
/// (`packaging/bench/echo_server.py`), a thread per connection, as a script author would write
/// one.
fn start_python_echo_server(path: &Path) -> Result<std::process::Child, Failure> {
    let missing = || {
        Failure::other(
            "the blocking client's floor needs python3 (a plain Python echo server)",
            Some("install python3 (packaging/install.sh does)"),
        )
    };
    let script = include_str!("../../../packaging/bench/echo_server.py");
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| missing())?;
    let mut ready = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BlockingBufReader::new(stdout).read_line(&mut ready);
    }
    if ready.trim() != "ready" {
        let _ = child.kill();
        return Err(missing());
    }
    Ok(child)
}

async fn start_daemon(
    kromad: &Path,
    socket: &Path,
    data_dir: &Path,
) -> Result<(std::process::Child, Duration), Failure> {
    let started = Instant::now();
    let mut child = std::process::Command::new(kromad)
        .arg("--socket")
        .arg(socket)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| {
            Failure::other(
                format!("starting {}: {err}", kromad.display()),
                Some("pass --kromad PATH"),
            )
        })?;
    loop {
        if let Ok(mut connection) = RawClient::connect(socket).await
            && connection.call().await.is_ok()
        {
            return Ok((child, started.elapsed()));
        }
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(Failure::other(
                format!("kromad exited ({exit}) before it was ready"),
                None,
            ));
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            return Err(Failure::other("kromad did not answer within 10 s", None));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn stop_daemon(socket: &Path) {
    if let Ok(mut connection) = RawClient::connect(socket).await {
        let _ = connection
            .round_trip(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.shutdown"}"#)
            .await;
    }
}

/// Resident memory of a process in MB, where `/proc` tells it.
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

async fn measure(socket: &Path, calls: usize, clients: usize) -> Result<Measurements, Failure> {
    let mut connection = RawClient::connect(socket).await.map_err(|err| {
        Failure::other(format!("connecting to {}: {err}", socket.display()), None)
    })?;
    for _ in 0..WARMUP_CALLS {
        connection.call().await.map_err(io_failure)?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let call_started = Instant::now();
        connection.call().await.map_err(io_failure)?;
        latencies.push(call_started.elapsed());
    }
    let one_client = calls as f64 / started.elapsed().as_secs_f64();
    let latency = Latency::of(latencies);

    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(RawClient::connect(socket).await.map_err(|err| {
            Failure::other(format!("connecting to {}: {err}", socket.display()), None)
        })?);
    }
    let started = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            tokio::spawn(async move {
                for _ in 0..calls {
                    connection.call().await?;
                }
                Ok::<_, std::io::Error>(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .await
            .map_err(|err| Failure::other(format!("a bench client failed: {err}"), None))?
            .map_err(io_failure)?;
    }
    let n_clients = (calls * clients) as f64 / started.elapsed().as_secs_f64();
    Ok(Measurements {
        p50_us: latency.p50_us,
        p99_us: latency.p99_us,
        calls_per_sec_1_client: one_client,
        calls_per_sec_n_clients: n_clients,
    })
}

/// Round trips of the blocking client, on a thread of its own so the async runtime (which also
/// runs the echo floor) keeps all its workers.
/// Rounds the blocking client alternates between the floor and kromad, so that a slow stretch
/// of a shared machine falls on both sides alike.
const BLOCKING_ROUNDS: usize = 20;

/// Round trips of the blocking client against the floor and kromad, alternating in rounds, on a
/// thread of its own. Answers (floor, kromad).
async fn measure_blocking(
    floor: &Path,
    daemon: &Path,
    calls: usize,
) -> Result<(Latency, Latency), Failure> {
    let (floor, daemon) = (floor.to_owned(), daemon.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut floor = BlockingClient::connect(&floor)?;
        let mut daemon = BlockingClient::connect(&daemon)?;
        for _ in 0..WARMUP_CALLS {
            floor.call()?;
            daemon.call()?;
        }
        let per_round = calls.div_ceil(BLOCKING_ROUNDS);
        let mut floor_latencies = Vec::with_capacity(calls);
        let mut daemon_latencies = Vec::with_capacity(calls);
        for _ in 0..BLOCKING_ROUNDS {
            for (connection, latencies) in [
                (&mut floor, &mut floor_latencies),
                (&mut daemon, &mut daemon_latencies),
            ] {
                for _ in 0..per_round {
                    let call_started = Instant::now();
                    connection.call()?;
                    latencies.push(call_started.elapsed());
                }
            }
        }
        Ok((Latency::of(floor_latencies), Latency::of(daemon_latencies)))
    })
    .await
    .map_err(|err| Failure::other(format!("the blocking bench client failed: {err}"), None))?
    .map_err(io_failure)
}

impl Latency {
    fn of(mut latencies: Vec<Duration>) -> Latency {
        latencies.sort();
        let percentile = |p: f64| {
            let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies[index].as_secs_f64() * 1e6
        };
        Latency {
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
        }
    }
}

fn io_failure(err: std::io::Error) -> Failure {
    Failure::other(format!("bench connection failed: {err}"), None)
}

/// The same minimal client for the floor and for kromad: write a line, read a line.
struct RawClient {
    write: WriteHalf<Stream>,
    read: BufReader<ReadHalf<Stream>>,
    line: String,
}

impl RawClient {
    async fn connect(socket: &Path) -> std::io::Result<RawClient> {
        let stream = Stream::connect(socket.to_fs_name::<GenericFilePath>()?).await?;
        let (read, write) = tokio::io::split(stream);
        Ok(RawClient {
            write,
            read: BufReader::new(read),
            line: String::new(),
        })
    }

    async fn call(&mut self) -> std::io::Result<()> {
        self.round_trip(REQUEST).await.map(|_| ())
    }

    async fn round_trip(&mut self, request: &str) -> std::io::Result<&str> {
        self.write.write_all(request.as_bytes()).await?;
        self.write.write_all(b"\n").await?;
        self.line.clear();
        if self.read.read_line(&mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if self.line.contains("\"error\"") {
            return Err(std::io::Error::other(self.line.trim().to_owned()));
        }
        Ok(&self.line)
    }
}

/// A script's client: a blocking socket (on Unix, a std `UnixStream` inside interprocess's
/// wrapper), one call at a time, the request written with one `write`, the answer read up to its
/// newline.
struct BlockingClient {
    /// Reads through the buffer; writes go straight to the stream under it.
    stream: BlockingBufReader<interprocess::local_socket::Stream>,
    request: Vec<u8>,
    line: String,
}

impl BlockingClient {
    fn connect(socket: &Path) -> std::io::Result<BlockingClient> {
        use interprocess::local_socket::traits::Stream as _;
        let stream =
            interprocess::local_socket::Stream::connect(socket.to_fs_name::<GenericFilePath>()?)?;
        Ok(BlockingClient {
            stream: BlockingBufReader::new(stream),
            request: format!("{REQUEST}\n").into_bytes(),
            line: String::new(),
        })
    }

    fn call(&mut self) -> std::io::Result<()> {
        let mut writer: &interprocess::local_socket::Stream = self.stream.get_ref();
        writer.write_all(&self.request)?;
        self.line.clear();
        if self.stream.read_line(&mut self.line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if self.line.contains("\"error\"") {
            return Err(std::io::Error::other(self.line.trim().to_owned()));
        }
        Ok(())
    }
}
