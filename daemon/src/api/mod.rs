//! The method handlers, one async function per method of the contract, and their registration.
//!
//! [`register`] is the one place where params are decoded, errors are mapped onto JSON-RPC error
//! objects and mutating calls are written to the audit log, so handlers only see typed params.

pub(crate) mod assets;
mod audit;
mod bootstrap;
mod chat;
mod daemon;
mod events;
pub(crate) mod exports;
mod instructions;
mod knowledge;
pub(crate) mod postprocess;
mod projects;
mod providers;
pub(crate) mod qa;
mod review;
pub(crate) mod runs;
mod secrets;
pub(crate) mod storage;
mod watch;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use jsonrpsee::RpcModule;
use kroma_protocol as protocol;
use protocol::{ErrorCode, Method};
use serde::de::DeserializeOwned;

use crate::Daemon;
use crate::error::Problem;
use crate::instructions::Caller;
use crate::projects::rules as project;
use crate::server::Peer;
use crate::server::wire::ToWire;
use crate::store::{self, NewAuditEntry, StoreError};

const DEFAULT_LIST_LIMIT: u32 = 100;

/// Every method of the contract, bound to `daemon`.
pub fn module(daemon: Arc<Daemon>) -> RpcModule<Daemon> {
    let mut module = RpcModule::from_arc(daemon);
    register::<protocol::daemon::Version, _, _>(&mut module, |_, _| async {
        Ok(protocol::daemon::VersionInfo {
            version: crate::VERSION.to_owned(),
            protocol_version: protocol::PROTOCOL_VERSION,
        })
    });
    register::<protocol::daemon::Status, _, _>(&mut module, daemon::status);
    register::<protocol::daemon::Shutdown, _, _>(&mut module, |daemon, _| async move {
        tracing::info!("shutdown requested over RPC");
        daemon.stop_requested.cancel();
        Ok(protocol::daemon::ShutdownAck {
            pid: std::process::id(),
        })
    });
    register::<protocol::daemon::Check, _, _>(&mut module, daemon::check);
    register::<protocol::project::Create, _, _>(&mut module, projects::project_create);
    register::<protocol::project::List, _, _>(&mut module, |daemon, _| async move {
        let rows = daemon.store.read(store::list_projects).await?;
        Ok(protocol::project::ProjectList {
            projects: rows.iter().map(projects::to_proto).collect(),
        })
    });
    register::<protocol::project::Get, _, _>(&mut module, |daemon, params| async move {
        let slug = project::parse_slug(&params.slug)?;
        let row = daemon
            .store
            .read(move |conn| store::get_project(conn, &slug))
            .await?;
        Ok(projects::to_proto(&row))
    });
    register::<protocol::project::Update, _, _>(&mut module, projects::project_update);
    register::<protocol::project::Delete, _, _>(&mut module, projects::project_delete);
    register::<protocol::asset::Import, _, _>(&mut module, assets::import);
    register::<protocol::asset::List, _, _>(&mut module, assets::list);
    register::<protocol::asset::Get, _, _>(&mut module, assets::get);
    register::<protocol::asset::Delete, _, _>(&mut module, assets::delete);
    register::<protocol::asset::Link, _, _>(&mut module, assets::link);
    register::<protocol::asset::Lineage, _, _>(&mut module, assets::lineage);
    {
        use protocol::knowledge::{character, prompt_template, reference_set, style_guide};
        register::<style_guide::Create, _, _>(&mut module, knowledge::style_guide_create);
        register::<style_guide::List, _, _>(&mut module, knowledge::style_guide_list);
        register::<style_guide::Get, _, _>(&mut module, knowledge::style_guide_get);
        register::<style_guide::Update, _, _>(&mut module, knowledge::style_guide_update);
        register::<style_guide::Delete, _, _>(&mut module, knowledge::style_guide_delete);
        register::<character::Create, _, _>(&mut module, knowledge::character_create);
        register::<character::List, _, _>(&mut module, knowledge::character_list);
        register::<character::Get, _, _>(&mut module, knowledge::character_get);
        register::<character::Update, _, _>(&mut module, knowledge::character_update);
        register::<character::Delete, _, _>(&mut module, knowledge::character_delete);
        register::<reference_set::Create, _, _>(&mut module, knowledge::reference_set_create);
        register::<reference_set::List, _, _>(&mut module, knowledge::reference_set_list);
        register::<reference_set::Get, _, _>(&mut module, knowledge::reference_set_get);
        register::<reference_set::Update, _, _>(&mut module, knowledge::reference_set_update);
        register::<reference_set::Delete, _, _>(&mut module, knowledge::reference_set_delete);
        register::<reference_set::AddItem, _, _>(&mut module, knowledge::reference_set_add_item);
        register::<reference_set::RemoveItem, _, _>(
            &mut module,
            knowledge::reference_set_remove_item,
        );
        register::<prompt_template::Create, _, _>(&mut module, knowledge::prompt_template_create);
        register::<prompt_template::List, _, _>(&mut module, knowledge::prompt_template_list);
        register::<prompt_template::Get, _, _>(&mut module, knowledge::prompt_template_get);
        register::<prompt_template::Update, _, _>(&mut module, knowledge::prompt_template_update);
        register::<prompt_template::Delete, _, _>(&mut module, knowledge::prompt_template_delete);
        register::<prompt_template::Render, _, _>(&mut module, knowledge::prompt_template_render);
    }
    register::<protocol::bootstrap::Export, _, _>(&mut module, bootstrap::export);
    register::<protocol::bootstrap::Import, _, _>(&mut module, bootstrap::import);
    register::<protocol::secret::Set, _, _>(&mut module, secrets::set);
    register::<protocol::secret::List, _, _>(&mut module, secrets::list);
    register::<protocol::secret::Delete, _, _>(&mut module, secrets::delete);
    register::<protocol::secret::Test, _, _>(&mut module, secrets::test);
    register::<protocol::provider::Create, _, _>(&mut module, providers::create);
    register::<protocol::provider::List, _, _>(&mut module, providers::list);
    register::<protocol::provider::Get, _, _>(&mut module, providers::get);
    register::<protocol::provider::Update, _, _>(&mut module, providers::update);
    register::<protocol::provider::Delete, _, _>(&mut module, providers::delete);
    register::<protocol::provider::Check, _, _>(&mut module, providers::check);
    register::<protocol::settings::Effective, _, _>(&mut module, runs::settings_effective);
    register::<protocol::image_model::List, _, _>(&mut module, runs::model_list);
    register::<protocol::local_model::List, _, _>(&mut module, postprocess::models_list);
    register::<protocol::run::PlanRun, _, _>(&mut module, runs::plan);
    register::<protocol::run::Create, _, _>(&mut module, runs::create);
    register::<protocol::run::Start, _, _>(&mut module, runs::start);
    register::<protocol::run::List, _, _>(&mut module, runs::list);
    register::<protocol::run::Show, _, _>(&mut module, runs::show);
    register::<protocol::run::Cancel, _, _>(&mut module, runs::cancel);
    register::<protocol::run::Retry, _, _>(&mut module, runs::retry);
    register::<protocol::run::Approve, _, _>(&mut module, review::approve);
    register::<protocol::run::Baselines, _, _>(&mut module, review::baselines);
    register::<protocol::run::RenderSheet, _, _>(&mut module, review::sheet);
    register::<protocol::cost::Summary, _, _>(&mut module, runs::cost_summary);
    register::<protocol::qa::Check, _, _>(&mut module, qa::check);
    register::<protocol::qa::ArchiveBad, _, _>(&mut module, qa::archive_bad);
    register::<protocol::qa::Inspect, _, _>(&mut module, qa::inspect);
    register::<protocol::export::Create, _, _>(&mut module, exports::create);
    register::<protocol::export::List, _, _>(&mut module, exports::list);
    register::<protocol::export::Get, _, _>(&mut module, exports::get);
    register::<protocol::export::Verify, _, _>(&mut module, exports::verify);
    register::<protocol::export::Delete, _, _>(&mut module, exports::delete);
    register::<protocol::storage::PlanSync, _, _>(&mut module, storage::plan);
    register::<protocol::storage::Sync, _, _>(&mut module, storage::sync);
    register::<protocol::storage::Check, _, _>(&mut module, storage::check);
    register::<protocol::postprocess::Color, _, _>(&mut module, postprocess::color);
    register::<protocol::postprocess::BgRemove, _, _>(&mut module, postprocess::bg_remove);
    register::<protocol::postprocess::Upscale, _, _>(&mut module, postprocess::upscale);
    register::<protocol::events::List, _, _>(&mut module, |daemon, params| async move {
        let limit = parse_limit(params.limit)?;
        let since = params.since.unwrap_or(0);
        let (events, last_id) = daemon
            .store
            .read(move |conn| store::list_events(conn, since, limit))
            .await?;
        Ok(protocol::events::EventPage { events, last_id })
    });
    register::<protocol::audit::List, _, _>(&mut module, |daemon, params| async move {
        let limit = parse_limit(params.limit)?;
        let since = params.since.unwrap_or(0);
        let entries = daemon
            .store
            .read(move |conn| store::list_audit(conn, since, limit))
            .await?;
        Ok(protocol::audit::AuditPage { entries })
    });
    register_calling::<protocol::audit::Refused, _, _>(&mut module, audit::refused);
    {
        use protocol::instruction as ins;
        register_calling::<ins::Create, _, _>(&mut module, instructions::create);
        register::<ins::List, _, _>(&mut module, instructions::list);
        register::<ins::Get, _, _>(&mut module, instructions::get);
        register_calling::<ins::Confirm, _, _>(&mut module, instructions::confirm);
        register::<ins::Cancel, _, _>(&mut module, instructions::cancel);
        register_calling::<ins::Code, _, _>(&mut module, instructions::make_code);
        register::<ins::ConfirmCode, _, _>(&mut module, instructions::confirm_code);
        register::<ins::AllowanceGet, _, _>(&mut module, |daemon, _| {
            instructions::allowance_get(daemon)
        });
        register_calling::<ins::AllowanceSet, _, _>(&mut module, instructions::allowance_set);
        register_calling::<ins::Hello, _, _>(&mut module, |_, caller, params| async move {
            instructions::hello(&caller.agent_slot, params)
        });
    }
    register::<protocol::chat::Create, _, _>(&mut module, chat::create);
    register::<protocol::chat::List, _, _>(&mut module, chat::list);
    register_calling::<protocol::chat::Append, _, _>(&mut module, chat::append);
    register::<protocol::chat::Log, _, _>(&mut module, chat::log);
    register::<protocol::watch::Add, _, _>(&mut module, watch::add);
    register::<protocol::watch::List, _, _>(&mut module, watch::list);
    register::<protocol::watch::Get, _, _>(&mut module, watch::get);
    register::<protocol::watch::Update, _, _>(&mut module, watch::update);
    register::<protocol::watch::Remove, _, _>(&mut module, watch::remove);
    register::<protocol::watch::Pause, _, _>(&mut module, watch::pause);
    register::<protocol::watch::Resume, _, _>(&mut module, watch::resume);
    register::<protocol::watch::Log, _, _>(&mut module, watch::log);
    register::<protocol::rpc::Discover, _, _>(&mut module, |_, _| async {
        static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
        Ok(DOCUMENT
            .get_or_init(|| protocol::openrpc::document(crate::VERSION))
            .clone())
    });
    events::register_events_subscription(&mut module);
    module
}

/// Registers method `M`: decodes its params, runs `handler`, audits the call if `M` mutates.
fn register<M, F, Fut>(module: &mut RpcModule<Daemon>, handler: F)
where
    M: Method,
    M::Output: Clone,
    F: Fn(Arc<Daemon>, M::Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<M::Output, Problem>> + Send + 'static,
{
    register_calling::<M, _, _>(module, move |daemon, _, params| handler(daemon, params));
}

/// [`register`] for handlers that need to know who calls. A connection that called
/// `agent.hello` gets `not_for_agents` for every method not open to agents
/// ([`Method::FOR_AGENTS`]), audited like any refusal.
fn register_calling<M, F, Fut>(module: &mut RpcModule<Daemon>, handler: F)
where
    M: Method,
    M::Output: Clone,
    F: Fn(Arc<Daemon>, Caller, M::Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<M::Output, Problem>> + Send + 'static,
{
    let result = module.register_async_method(M::NAME, move |params, daemon, extensions| {
        let handler = handler.clone();
        async move {
            let raw = params.as_str();
            let started = std::time::Instant::now();
            let caller = Caller::of_peer(extensions.get::<Peer>());
            let audit = store::CallAudit::new(
                audit_entry(&caller, M::NAME),
                raw,
                M::SECRET_FIELDS,
                daemon.clock.now_utc(),
            );
            let call = async {
                if caller.is_agent() && !M::FOR_AGENTS {
                    return Err(instructions::not_for_agents(M::NAME));
                }
                let params = parse_params::<M::Params>(raw)?;
                // A call that writes files rather than rows is on record before it touches one.
                if M::MUTATING && M::UNBOUNDED {
                    daemon
                        .store
                        .write(|_| Ok::<_, Problem>(((), Vec::new())))
                        .await?;
                }
                handler(daemon.clone(), caller.clone(), params).await
            };
            let result = store::audited(audit.clone(), call).await;
            // The method and its outcome, never its params.
            let outcome = result
                .as_ref()
                .map_or_else(|err| err.code.as_str(), |_| "ok");
            let micros = started.elapsed().as_micros() as u64;
            if M::MUTATING {
                tracing::info!(method = M::NAME, outcome, micros, "call");
            } else {
                tracing::debug!(method = M::NAME, outcome, micros, "call");
            }
            // A refused agent is on record even for a method that changes nothing.
            let refused = result
                .as_ref()
                .is_err_and(|err| err.code == ErrorCode::NotForAgents);
            finish_audit(&daemon, &audit, M::MUTATING || refused, outcome).await;
            result.map_err(|err| err.to_rpc())
        }
    });
    if let Err(err) = result {
        unreachable!("method {} registered twice: {err}", M::NAME);
    }
}

/// The project named by `slug`, or a `project_not_found` error.
pub(crate) async fn find_project(
    daemon: &Daemon,
    slug: &str,
) -> Result<store::ProjectRow, Problem> {
    let slug = project::parse_slug(slug)?;
    Ok(daemon
        .store
        .read(move |conn| store::get_project(conn, &slug))
        .await?)
}

/// A delete the human has not confirmed: `what` names the thing (``asset `a1` ``), `known` the
/// params of the call that deletes it, which leaves `confirm` to the human.
fn unconfirmed_delete<'a, M: Method>(
    what: &str,
    known: impl IntoIterator<Item = (&'a str, serde_json::Value)>,
) -> Problem {
    Problem::new(
        protocol::ErrorKind::Policy,
        ErrorCode::ConfirmationRequired,
        format!("deleting {what} needs confirm: true"),
    )
    .with_hint("deleting needs the human's confirmation")
    .with_action(protocol::Action::call::<M>(known, &["confirm"]))
}

/// Decodes named params; absent params, `null` and `[]` mean "no params".
fn parse_params<P: DeserializeOwned>(raw: Option<&str>) -> Result<P, Problem> {
    let raw = match raw.map(str::trim) {
        None | Some("" | "null" | "[]") => "{}",
        Some(raw) => raw,
    };
    if raw.starts_with('[') {
        return Err(Problem::validation(
            ErrorCode::ParamsNotObject,
            "params must be a JSON object of named params, not an array",
        )
        .with_hint("send named params as an object; rpc.discover describes them")
        .with_action(discover()));
    }
    serde_json::from_str(raw).map_err(|err| {
        Problem::validation(ErrorCode::InvalidParams, format!("invalid params: {err}"))
            .with_hint("rpc.discover describes every method's params")
            .with_action(discover())
    })
}

/// The call that describes every method and its params.
fn discover() -> protocol::Action {
    protocol::Action::call::<protocol::rpc::Discover>([], &[])
}

fn parse_limit(limit: Option<u32>) -> Result<u32, Problem> {
    match limit.unwrap_or(DEFAULT_LIST_LIMIT) {
        limit @ 1..=protocol::events::MAX_LIST_LIMIT => Ok(limit),
        _ => Err(Problem::validation(
            ErrorCode::InvalidLimit,
            format!(
                "limit must be between 1 and {}",
                protocol::events::MAX_LIST_LIMIT
            ),
        )),
    }
}

/// The audit entry of a call, before its outcome is known: the program as the OS names it and,
/// for an agent's connection, the name the agent declared.
fn audit_entry(caller: &Caller, method: &'static str) -> NewAuditEntry {
    let client = match &caller.agent {
        Some(agent) => format!("{} (agent: {agent})", caller.program),
        None => caller.program.clone(),
    };
    NewAuditEntry {
        at: String::new(),
        peer_uid: caller.uid,
        client,
        method,
        params_digest: String::new(),
        outcome: "ok".to_owned(),
    }
}

/// Records how a call ended. A call that changed something already has its entry (written in
/// the transaction of its first change, see `store::audited`): only a different outcome is set.
/// A mutating call that changed nothing gets its entry now.
async fn finish_audit(daemon: &Daemon, audit: &store::CallAudit, mutating: bool, outcome: &str) {
    let method = audit.method();
    let written = match audit.id() {
        Some(_) if outcome == "ok" => return,
        Some(id) => {
            let outcome = outcome.to_owned();
            daemon
                .store
                .write(move |tx| {
                    store::set_audit_outcome(tx, id, &outcome)?;
                    Ok::<_, StoreError>(((), Vec::new()))
                })
                .await
        }
        None if mutating => {
            let entry = audit.entry(outcome);
            daemon
                .store
                .write(move |tx| {
                    store::insert_audit(tx, &entry)?;
                    Ok::<_, StoreError>(((), Vec::new()))
                })
                .await
        }
        None => return,
    };
    if let Err(err) = written {
        tracing::error!(%method, %err, "could not write the audit entry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_named_objects() {
        let none: protocol::NoParams = parse_params(None).unwrap();
        assert_eq!(none, protocol::NoParams {});
        let _: protocol::NoParams = parse_params(Some("[]")).unwrap();
        assert_eq!(
            parse_params::<protocol::project::ProjectRef>(Some(r#"["a"]"#))
                .unwrap_err()
                .code,
            ErrorCode::ParamsNotObject
        );
        let err = parse_params::<protocol::project::ProjectRef>(Some("{}")).unwrap_err();
        assert!(
            err.message.contains("missing field `slug`"),
            "{}",
            err.message
        );
        let err = parse_params::<protocol::project::ProjectRef>(Some(r#"{"slug":"a","x":1}"#))
            .unwrap_err();
        assert!(err.message.contains("unknown field `x`"), "{}", err.message);
    }
}
