//! `project.*`: projects, one story world each, with a root folder on disk.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Method, NoParams};

/// The rule a project slug follows, for messages and docs.
pub const SLUG_RULE: &str = "[a-z0-9][a-z0-9-]{0,63}";

/// A project as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    /// UUID, stable for the life of the project.
    pub id: String,
    /// Unique short name, [`SLUG_RULE`].
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Absolute path of the project root folder.
    pub root: String,
    pub storage: StorageSettings,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// Where a project's files live besides its root folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorageSettings {
    /// The S3 (or S3-compatible) location exports sync to, if any.
    pub s3: Option<S3Settings>,
}

/// An S3 location. Validated when stored; used by exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Bucket name (3–63 characters of `a-z 0-9 . -`).
    pub bucket: String,
    /// Key prefix inside the bucket, without a leading `/`; empty for the bucket root.
    #[serde(default)]
    pub prefix: String,
    /// Region, e.g. `eu-west-1`; `None` uses the SDK default.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server (`http://` or `https://`); `None` means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Address buckets as `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint>/<key>`;
    /// `None`: path-style when an endpoint is set (most S3-compatible servers), virtual-hosted on AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Which checksums the S3 client adds by itself (kromad always sends its own SHA-256 with
    /// every upload and checks every download).
    #[serde(default)]
    pub checksum_mode: ChecksumMode,
    /// The secret holding the access key id; `None`: `s3_access_key_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<String>,
    /// The secret holding the secret access key; `None`: `s3_secret_access_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_secret: Option<String>,
}

impl S3Settings {
    /// Settings for a bucket with every other field at its default.
    pub fn bucket(bucket: impl Into<String>) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: None,
            checksum_mode: ChecksumMode::default(),
            access_key_secret: None,
            secret_key_secret: None,
        }
    }
}

/// The checksums the S3 client computes on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// Only where the API requires one (and no streamed `aws-chunked` uploads): works on AWS and
    /// on the S3-compatible stores that reject the SDK's default trailing checksums.
    #[default]
    WhenRequired,
    /// The SDK's default: a CRC32 on every request and response that supports one.
    WhenSupported,
}

impl ChecksumMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::WhenRequired => "when_required",
            ChecksumMode::WhenSupported => "when_supported",
        }
    }
}

/// `project.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "project.create";
    const SUMMARY: &'static str = "Create a project and its root folder";
    const MUTATING: bool = true;
    type Params = CreateParams;
    type Output = Project;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    pub name: String,
    /// Derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absolute path of the root folder; defaults to `<data dir>/projects/<slug>`. It must not
    /// exist yet or be an empty folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Settings>,
}

/// `project.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "project.list";
    const SUMMARY: &'static str = "List all projects, oldest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = NoParams;
    type Output = ProjectList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

/// `project.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "project.get";
    const SUMMARY: &'static str = "Show one project";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ProjectRef;
    type Output = Project;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectRef {
    pub slug: String,
}

/// `project.update`: change the fields that are given, keep the rest.
pub enum Update {}

impl Method for Update {
    const NAME: &'static str = "project.update";
    const SUMMARY: &'static str = "Change a project's name, description or S3 settings";
    const MUTATING: bool = true;
    type Params = UpdateParams;
    type Output = Project;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    pub slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absent: keep. `null`: remove the S3 settings. An object: replace them.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<S3Settings>")]
    pub s3: Option<Option<S3Settings>>,
}

/// Tells an absent field (`None`, through `#[serde(default)]`) from an explicit `null`
/// (`Some(None)`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `project.delete`: remove a project's rows, and its files when asked.
pub enum Delete {}

impl Method for Delete {
    const NAME: &'static str = "project.delete";
    const SUMMARY: &'static str =
        "Delete a project (needs confirm: true); purge_files also removes its root folder";
    const MUTATING: bool = true;
    type Params = DeleteParams;
    type Output = Deleted;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub slug: String,
    /// Must be `true`: deleting is never implied.
    pub confirm: bool,
    /// Also remove the project root folder from disk.
    #[serde(default)]
    pub purge_files: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub slug: String,
    /// The root folder, removed when `purged_files` is true, kept otherwise.
    pub root: String,
    pub purged_files: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_tells_absent_s3_from_null_s3() {
        let absent: UpdateParams = serde_json::from_str(r#"{"slug":"a"}"#).unwrap();
        assert_eq!(absent.s3, None);
        let null: UpdateParams = serde_json::from_str(r#"{"slug":"a","s3":null}"#).unwrap();
        assert_eq!(null.s3, Some(None));
        let set: UpdateParams =
            serde_json::from_str(r#"{"slug":"a","s3":{"bucket":"comics"}}"#).unwrap();
        assert_eq!(set.s3.unwrap().unwrap().bucket, "comics");
    }

    #[test]
    fn params_refuse_unknown_fields() {
        let err = serde_json::from_str::<CreateParams>(r#"{"name":"a","colour":"red"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
