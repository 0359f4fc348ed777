//! `storage.*`: a project's folder, or one of its exports, kept in an S3-compatible bucket.
//!
//! A sync is planned first: the local files (size and sha256) against the remote listing (size,
//! then the sha256 kromad stores with every object it uploads). The plan names every transfer and
//! every delete; `storage.sync` carries it out (or, as a dry run, only shows it). Objects live
//! under `<prefix>/<project slug>/`, keyed by their path in the project folder, so an export
//! synced alone lands where a sync of the whole project puts it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

/// The secret holding the access key id when the project's S3 settings name none.
pub const DEFAULT_ACCESS_KEY_SECRET: &str = "s3_access_key_id";
/// The secret holding the secret access key when the project's S3 settings name none.
pub const DEFAULT_SECRET_KEY_SECRET: &str = "s3_secret_access_key";

/// What a sync moves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// Every file of the project's folder (kromad's temporary files aside).
    #[default]
    Project,
    /// One export: its `.tar.gz`, or every file of its folder.
    Export { id: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Local files up to the bucket.
    #[default]
    Push,
    /// Objects from the bucket down into the project's folder.
    Pull,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// Project slug.
    pub project: String,
    #[serde(default)]
    pub what: What,
    #[serde(default)]
    pub direction: Direction,
    /// Also delete what the other side no longer has (on the bucket for a push, in the folder
    /// for a pull). Off unless asked; the plan lists every delete first.
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncParams {
    /// Project slug.
    pub project: String,
    #[serde(default)]
    pub what: What,
    #[serde(default)]
    pub direction: Direction,
    /// Also delete what the other side no longer has (see `storage.plan`).
    #[serde(default)]
    pub delete: bool,
    /// Plan and report, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The deletes a person confirmed: the paths of the plan they were shown. When given, a
    /// delete that is not listed is left alone (counted in `kept`), so a file that went missing
    /// between the question and the sync is never deleted unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_deletes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Upload,
    Download,
    /// Delete the object (push) or the local file (pull).
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Only the source side has it.
    New,
    /// Both sides have it, with another size or sha256 (or the remote object carries none).
    Changed,
    /// Only the destination side has it (deletes only).
    Gone,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanItem {
    pub op: Op,
    pub reason: Reason,
    /// Relative to the project folder, `/`-separated.
    pub path: String,
    /// The object's key in the bucket.
    pub key: String,
    /// Bytes to move (the source's size; for a delete, the size of what goes).
    pub size: u64,
}

/// A local entry a sync leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    pub path: String,
    /// e.g. `symbolic link`, `not a regular file`, `name is not UTF-8`.
    pub reason: String,
}

/// What a sync would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// The project's slug.
    pub project: String,
    pub what: What,
    pub direction: Direction,
    pub delete: bool,
    /// `s3://<bucket>/<prefix>/<slug>/`.
    pub destination: String,
    /// Transfers first (sorted by path), then deletes (sorted by path).
    pub items: Vec<PlanItem>,
    /// Files both sides hold with the same size and sha256.
    pub unchanged: u32,
    /// Bytes the transfers move.
    pub transfer_bytes: u64,
    /// Files the destination has that the source lacks, left alone because `delete` is off.
    pub kept: u32,
    /// Multipart uploads an earlier sync left unfinished that this one resumes.
    pub resumable: u32,
    pub skipped: Vec<Skipped>,
}

/// One object or file the sync could not move; the others went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    pub path: String,
    pub op: Op,
    /// The store's error code (`AccessDenied`, `BadDigest`, …) or `io` for a local error.
    pub code: String,
    pub message: String,
}

/// What `storage.sync` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncReport {
    pub plan: Plan,
    pub dry_run: bool,
    /// Every step of the plan succeeded (always true for a dry run).
    pub ok: bool,
    pub uploaded: u32,
    pub downloaded: u32,
    pub deleted: u32,
    /// Bytes moved, counting parts a resumed upload did not send again as not moved.
    pub bytes: u64,
    /// Parts of unfinished multipart uploads that were already on the bucket and not sent again.
    pub resumed_parts: u32,
    /// Unfinished multipart uploads aborted because their file changed or went away.
    pub aborted_uploads: u32,
    pub failed: Vec<Failure>,
}

impl SyncReport {
    /// The report of a sync that has done nothing yet (or, as a dry run, will not).
    pub fn new(plan: Plan, dry_run: bool) -> SyncReport {
        SyncReport {
            plan,
            dry_run,
            ok: true,
            uploaded: 0,
            downloaded: 0,
            deleted: 0,
            bytes: 0,
            resumed_parts: 0,
            aborted_uploads: 0,
            failed: Vec::new(),
        }
    }
}

/// `storage.progress`: a sync advanced (at most a few a second, and at the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncProgress {
    /// The project's slug.
    pub project: String,
    pub direction: Direction,
    /// Steps of the plan finished (moved, deleted or failed).
    pub done: u32,
    pub total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// Project slug.
    pub project: String,
}

/// `storage.check` found the bucket and the keys work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckReport {
    pub project: String,
    pub destination: String,
}

/// `storage.plan`.
pub enum PlanSync {}

impl Method for PlanSync {
    const NAME: &'static str = "storage.plan";
    const SUMMARY: &'static str = "Compare a project's folder (or one export) with its S3 bucket and list what a sync would upload, download or delete";
    const MUTATING: bool = false;
    const UNBOUNDED: bool = true;
    type Params = PlanParams;
    type Output = Plan;
}

/// `storage.sync`.
pub enum Sync {}

impl Method for Sync {
    const NAME: &'static str = "storage.sync";
    const SUMMARY: &'static str = "Push a project's folder (or one export) to its S3 bucket, or pull it back; deletes only when asked";
    const MUTATING: bool = true;
    const UNBOUNDED: bool = true;
    type Params = SyncParams;
    type Output = SyncReport;
}

/// `storage.check`.
pub enum Check {}

impl Method for Check {
    const NAME: &'static str = "storage.check";
    const SUMMARY: &'static str =
        "Check a project's S3 settings with one cheap authenticated call (for doctor)";
    const MUTATING: bool = false;
    type Params = CheckParams;
    type Output = CheckReport;
}
