//! `kromactl dev`: tools for trying Kroma without paying: `dev fake-provider` serves the fake
//! OpenAI Images API (the one the tests use) on 127.0.0.1 until Ctrl-C, `dev s3-server` the S3
//! test server (s3s-fs serving a folder) with the commands that point a project at it.
//!
//! Like the fake provider, which keeps nothing, the S3 server serves a temporary folder removed
//! when it stops, unless `--root` names a folder to keep.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kroma_fake_provider::{FakeConfig, FakeModel, FakeProvider};
use kroma_protocol as protocol;
use kroma_s3_server::S3Server;

use crate::actions::shell_word;
use crate::output::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// Serve a fake OpenAI Images API on 127.0.0.1 (real PNGs, usage, faults on demand) until Ctrl-C
    FakeProvider(FakeProviderArgs),
    /// Serve an S3-compatible store on 127.0.0.1 (a folder, SigV4 checked) for `kromactl
    /// storage` until Ctrl-C, and print the commands that point a project at it
    S3Server(S3ServerArgs),
    /// Write the man pages of kromactl and of each of its commands into DIR (install.sh does)
    ManPages {
        /// Folder to write the `.1` files into, made if missing
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct FakeProviderArgs {
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The only API key it accepts
    #[arg(long, default_value = "sk-fake")]
    pub key: String,
    /// Milliseconds to wait before answering each image request
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Size of the PNGs it draws, WIDTHxHEIGHT (default: the requested size)
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub render_size: Option<(u32, u32)>,
}

#[derive(Debug, clap::Args)]
pub struct S3ServerArgs {
    /// Folder to serve, made if missing; bucket NAME is its subfolder NAME [default: a temporary
    /// folder, removed when the server stops]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The only access key id it accepts
    #[arg(long, value_name = "KEY", default_value = "kroma-dev-access")]
    pub access_key: String,
    /// The secret access key that goes with it
    #[arg(long, value_name = "KEY", default_value = "kroma-dev-secret-key")]
    pub secret_key: String,
    /// Bucket to make in the folder if it is missing
    #[arg(long, value_name = "NAME", default_value = "kroma", value_parser = parse_bucket)]
    pub bucket: String,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if (1..=4096).contains(&w) && (1..=4096).contains(&h) => Ok((w, h)),
        _ => Err(format!(
            "`{text}` is not WIDTHxHEIGHT with sides from 1 to 4096"
        )),
    }
}

/// A bucket name S3 accepts: 3 to 63 characters of `a-z 0-9 . -`, starting and ending with a
/// letter or digit.
fn parse_bucket(text: &str) -> Result<String, String> {
    let edges_ok =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (3..=63).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edges_ok(text.chars().next())
        && edges_ok(text.chars().last());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a bucket name: 3 to 63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit"
        ))
    }
}

pub async fn run(command: DevCommand) -> Result<(), Failure> {
    match command {
        DevCommand::FakeProvider(args) => fake_provider(args).await,
        DevCommand::S3Server(args) => s3_server(args).await,
        DevCommand::ManPages { out } => man_pages(&out),
    }
}

fn man_pages(out: &std::path::Path) -> Result<(), Failure> {
    let failure = |err: std::io::Error| {
        Failure::other(
            format!("writing man pages into {}: {err}", out.display()),
            None,
        )
    };
    std::fs::create_dir_all(out).map_err(failure)?;
    clap_mangen::generate_to(<crate::Cli as clap::CommandFactory>::command(), out).map_err(failure)
}

async fn fake_provider(args: FakeProviderArgs) -> Result<(), Failure> {
    let config = FakeConfig {
        key: args.key.clone(),
        render_size: args.render_size,
        latency: Duration::from_millis(args.latency_ms),
        models: FakeConfig::default()
            .models
            .into_iter()
            .chain([FakeModel {
                id: "gpt-image-1".to_owned(),
                shutdown_date: Some("2026-10-23".to_owned()),
            }])
            .collect(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let provider = FakeProvider::start_on(addr, config).await.map_err(|err| {
        Failure::other(
            format!("cannot serve on {addr}: {err}"),
            Some("pick another --port, or 0 for any free one"),
        )
    })?;
    // The first line is machine-readable on purpose: scripts read the base URL from it.
    println!("{}", provider.base_url());
    eprintln!(
        "fake provider serving the OpenAI Images API at {} (key `{}`); faults: POST {}/_fake/faults, stats: GET {}/_fake/stats; Ctrl-C stops it",
        provider.base_url(),
        args.key,
        provider.addr(),
        provider.addr()
    );
    tokio::select! {
        _ = provider.wait() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn s3_server(args: S3ServerArgs) -> Result<(), Failure> {
    // Held until the server stops: a temporary root is removed then.
    let (root, _temporary) = match &args.root {
        Some(root) => (root.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("kroma-dev-s3-")
                .tempdir()
                .map_err(|err| {
                    Failure::other(format!("creating a temporary folder: {err}"), None)
                })?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let bucket = root.join(&args.bucket);
    std::fs::create_dir_all(&bucket).map_err(|err| {
        Failure::other(
            format!("making the bucket folder {}: {err}", bucket.display()),
            Some("pick another --root"),
        )
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = S3Server::start_on(addr, &root, &args.access_key, &args.secret_key)
        .await
        .map_err(|err| {
            Failure::other(
                format!("cannot serve on {addr}: {err}"),
                Some("pick another --port, or 0 for any free one"),
            )
        })?;
    // The first line is machine-readable on purpose: scripts read the endpoint from it.
    println!("{}", server.endpoint());
    eprintln!("{}", s3_server_text(&args, &root, &server.endpoint()));
    tokio::signal::ctrl_c()
        .await
        .map_err(|err| Failure::other(format!("waiting for Ctrl-C: {err}"), None))?;
    drop(server);
    Ok(())
}

/// What `dev s3-server` says once it serves: where, the keys, and the commands that point a
/// project at it.
fn s3_server_text(args: &S3ServerArgs, root: &Path, endpoint: &str) -> String {
    let kept = if args.root.is_some() {
        "kept"
    } else {
        "removed when it stops"
    };
    [
        format!(
            "S3 server at {endpoint} (path-style, SigV4) serving {} ({kept}); bucket `{}`; Ctrl-C stops it",
            root.display(),
            args.bucket
        ),
        format!("access key id:     {}", args.access_key),
        format!("secret access key: {}", args.secret_key),
        "to sync a project to it (SLUG: the project's slug):".to_owned(),
        format!(
            "  printf '%s' {} | kromactl secret set {}",
            shell_word(&args.access_key),
            protocol::storage::DEFAULT_ACCESS_KEY_SECRET
        ),
        format!(
            "  printf '%s' {} | kromactl secret set {}",
            shell_word(&args.secret_key),
            protocol::storage::DEFAULT_SECRET_KEY_SECRET
        ),
        format!(
            "  kromactl project update SLUG --s3-bucket {} --s3-endpoint {endpoint}",
            args.bucket
        ),
        "  kromactl storage sync SLUG".to_owned(),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_sizes_are_checked() {
        assert_eq!(parse_size("64x96"), Ok((64, 96)));
        assert!(parse_size("64").is_err());
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("9000x5").is_err());
    }

    #[test]
    fn bucket_names_are_checked() {
        for good in ["kroma", "my.bucket-2", "abc"] {
            assert_eq!(parse_bucket(good), Ok(good.to_owned()));
        }
        for bad in ["ab", "Kroma", "-kroma", "kroma.", "kro_ma", &"a".repeat(64)] {
            assert!(parse_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_s3_server_says_how_to_use_it() {
        let args = S3ServerArgs {
            root: None,
            port: 0,
            access_key: "kroma-dev-access".to_owned(),
            secret_key: "it's secret".to_owned(),
            bucket: "kroma".to_owned(),
        };
        insta::assert_snapshot!(s3_server_text(
            &args,
            Path::new("/tmp/kroma-dev-s3-x"),
            "http://127.0.0.1:9000"
        ));
    }
}
