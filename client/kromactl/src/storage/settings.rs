//! The S3 flags of `project create` and `project update`, and the `S3Settings` they make: where
//! `kromactl storage` syncs a project to.

use clap::Args;
use kroma_protocol as protocol;

#[derive(Debug, Args)]
pub struct S3Args {
    /// S3 bucket the project syncs to (`kromactl storage`)
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Key prefix inside the bucket
    #[arg(long, value_name = "PREFIX", requires = "s3_bucket")]
    pub s3_prefix: Option<String>,
    /// Region, e.g. eu-west-1
    #[arg(long, value_name = "REGION", requires = "s3_bucket")]
    pub s3_region: Option<String>,
    /// Endpoint URL of an S3-compatible server
    #[arg(long, value_name = "URL", requires = "s3_bucket")]
    pub s3_endpoint: Option<String>,
    /// Path-style (<endpoint>/<bucket>/<key>) or virtual-hosted addressing [default: path-style
    /// with --s3-endpoint, virtual-hosted on AWS]
    #[arg(long, value_name = "BOOL", requires = "s3_bucket")]
    pub s3_path_style: Option<bool>,
    /// Checksums the S3 client adds on its own: when_required works on AWS and on stores that
    /// reject the SDK's trailing checksums; kromad always sends its own SHA-256
    #[arg(long, value_name = "MODE", requires = "s3_bucket", value_parser = ["when_required", "when_supported"])]
    pub s3_checksum_mode: Option<String>,
    /// Secret holding the access key id [default: s3_access_key_id]
    #[arg(long, value_name = "SECRET", requires = "s3_bucket")]
    pub s3_access_key_secret: Option<String>,
    /// Secret holding the secret access key [default: s3_secret_access_key]
    #[arg(long, value_name = "SECRET", requires = "s3_bucket")]
    pub s3_secret_key_secret: Option<String>,
}

/// The settings the flags give, or `None` without `--s3-bucket`.
pub fn s3_settings(args: S3Args) -> Option<protocol::project::S3Settings> {
    args.s3_bucket.map(|bucket| protocol::project::S3Settings {
        prefix: args.s3_prefix.unwrap_or_default(),
        region: args.s3_region,
        endpoint: args.s3_endpoint,
        path_style: args.s3_path_style,
        checksum_mode: match args.s3_checksum_mode.as_deref() {
            Some("when_supported") => protocol::project::ChecksumMode::WhenSupported,
            _ => protocol::project::ChecksumMode::WhenRequired,
        },
        access_key_secret: args.s3_access_key_secret,
        secret_key_secret: args.s3_secret_key_secret,
        ..protocol::project::S3Settings::bucket(bucket)
    })
}
