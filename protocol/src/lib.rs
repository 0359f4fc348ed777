//! The Kroma wire contract: every JSON-RPC method the daemon serves, with its typed params and
//! result, the events it pushes, and the error kinds it answers with.
//!
//! This crate does no I/O. `kroma-daemon` serves these methods and `kroma-client` calls them; both
//! name a method through its [`Method`] type, so the name, the params and the result can never
//! disagree between the two sides. [`openrpc::document`] turns the same types into the
//! machine-readable description served by `rpc.discover`.

pub mod action;
pub mod asset;
pub mod audit;
pub mod bootstrap;
pub mod chat;
pub mod cost;
pub mod daemon;
pub mod error;
pub mod events;
pub mod export;
pub mod image_model;
pub mod instruction;
pub mod knowledge;
pub mod local_model;
pub mod openrpc;
pub mod paths;
pub mod postprocess;
pub mod project;
pub mod provider;
pub mod qa;
pub mod review;
pub mod rpc;
pub mod run;
pub mod secret;
pub mod settings;
pub mod storage;
pub mod watch;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use action::Action;
pub use error::{ErrorCode, ErrorData, ErrorKind};

/// The version of this contract. It grows by one whenever a method, a field or an error kind
/// changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// One JSON-RPC method: its wire name, its named params and its result.
pub trait Method {
    /// The wire name, `namespace.verb`.
    const NAME: &'static str;
    /// One line for `--help`, the OpenRPC document and the MCP tool list.
    const SUMMARY: &'static str;
    /// Whether the call changes state; mutating calls are written to the audit log.
    const MUTATING: bool;
    /// Param fields whose values are secrets: they are dropped before the params are digested for
    /// the audit log, and never logged.
    const SECRET_FIELDS: &'static [&'static str] = &[];
    /// Whether the call's length follows its input (local steps over folders): the daemon's
    /// request timeout does not apply, and the work stops when the caller disconnects.
    const UNBOUNDED: bool = false;
    /// Whether a connection that called `agent.hello` may call it. Off unless a method says so:
    /// approving spend, showing a code and setting the allowance stay a person's.
    const FOR_AGENTS: bool = false;

    type Params: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// A subscription: a method that answers with a subscription id and then pushes notifications.
pub trait Subscription {
    /// The method that starts the subscription.
    const NAME: &'static str;
    /// The method name of the pushed notifications.
    const NOTIFICATION: &'static str;
    /// The method that ends the subscription early.
    const UNSUBSCRIBE: &'static str;
    const SUMMARY: &'static str;

    type Params: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
    type Item: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// Params of a method that takes none. Absent params and `{}` are both accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Calls `$callback!` with the list of every method and every subscription of the contract, so that
/// the daemon's registration, the OpenRPC document and the tests all walk the same list.
#[macro_export]
macro_rules! for_each_method {
    ($callback:ident) => {
        $callback! {
            methods: [
                $crate::daemon::Version,
                $crate::daemon::Status,
                $crate::daemon::Shutdown,
                $crate::daemon::Check,
                $crate::project::Create,
                $crate::project::List,
                $crate::project::Get,
                $crate::project::Update,
                $crate::project::Delete,
                $crate::knowledge::style_guide::Create,
                $crate::knowledge::style_guide::List,
                $crate::knowledge::style_guide::Get,
                $crate::knowledge::style_guide::Update,
                $crate::knowledge::style_guide::Delete,
                $crate::knowledge::character::Create,
                $crate::knowledge::character::List,
                $crate::knowledge::character::Get,
                $crate::knowledge::character::Update,
                $crate::knowledge::character::Delete,
                $crate::knowledge::reference_set::Create,
                $crate::knowledge::reference_set::List,
                $crate::knowledge::reference_set::Get,
                $crate::knowledge::reference_set::Update,
                $crate::knowledge::reference_set::Delete,
                $crate::knowledge::reference_set::AddItem,
                $crate::knowledge::reference_set::RemoveItem,
                $crate::knowledge::prompt_template::Create,
                $crate::knowledge::prompt_template::List,
                $crate::knowledge::prompt_template::Get,
                $crate::knowledge::prompt_template::Update,
                $crate::knowledge::prompt_template::Delete,
                $crate::knowledge::prompt_template::Render,
                $crate::bootstrap::Export,
                $crate::bootstrap::Import,
                $crate::secret::Set,
                $crate::secret::List,
                $crate::secret::Delete,
                $crate::secret::Test,
                $crate::provider::Create,
                $crate::provider::List,
                $crate::provider::Get,
                $crate::provider::Update,
                $crate::provider::Delete,
                $crate::provider::Check,
                $crate::events::List,
                $crate::asset::Import,
                $crate::asset::List,
                $crate::asset::Get,
                $crate::asset::Delete,
                $crate::asset::Link,
                $crate::asset::Lineage,
                $crate::audit::List,
                $crate::settings::Effective,
                $crate::image_model::List,
                $crate::local_model::List,
                $crate::run::PlanRun,
                $crate::run::Create,
                $crate::run::Start,
                $crate::run::List,
                $crate::run::Show,
                $crate::run::Cancel,
                $crate::run::Retry,
                $crate::run::Approve,
                $crate::run::Baselines,
                $crate::run::RenderSheet,
                $crate::qa::Check,
                $crate::qa::ArchiveBad,
                $crate::qa::Inspect,
                $crate::export::Create,
                $crate::export::List,
                $crate::export::Get,
                $crate::export::Verify,
                $crate::export::Delete,
                $crate::storage::PlanSync,
                $crate::storage::Sync,
                $crate::storage::Check,
                $crate::cost::Summary,
                $crate::postprocess::Color,
                $crate::postprocess::BgRemove,
                $crate::postprocess::Upscale,
                $crate::instruction::Create,
                $crate::instruction::List,
                $crate::instruction::Get,
                $crate::instruction::Confirm,
                $crate::instruction::Cancel,
                $crate::instruction::Code,
                $crate::instruction::ConfirmCode,
                $crate::instruction::AllowanceGet,
                $crate::instruction::AllowanceSet,
                $crate::instruction::Hello,
                $crate::audit::Refused,
                $crate::chat::Create,
                $crate::chat::List,
                $crate::chat::Append,
                $crate::chat::Log,
                $crate::watch::Add,
                $crate::watch::List,
                $crate::watch::Get,
                $crate::watch::Update,
                $crate::watch::Remove,
                $crate::watch::Pause,
                $crate::watch::Resume,
                $crate::watch::Log,
                $crate::rpc::Discover,
            ],
            subscriptions: [
                $crate::events::Subscribe,
            ],
        }
    };
}
