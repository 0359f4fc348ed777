//! The spend gates: the confirmation a person gave against the run's maximum cost, the
//! project's budgets, and the checks before anything is sent (the key is there, the model is not
//! retired). `run.start` and `run.retry` pass them in the transaction that starts the run.

use std::path::PathBuf;

use kroma_protocol as protocol;
use protocol::image_model::Lifecycle;
use protocol::run::{Plan, RunDetail};
use protocol::{Action, ErrorCode, ErrorKind};

use crate::Daemon;
use crate::api::find_project;
use crate::error::{Hint, Problem};
use crate::providers::image_models as models;
use crate::runs::inputs::resolve_settings;
use crate::runs::settings::{self, Resolved};
use crate::store::runs::{self as rows};

/// Money confirmed by a human must be a real, non-negative amount.
pub(crate) fn parse_confirmation(usd: f64) -> Result<f64, Problem> {
    if usd.is_finite() && usd >= 0.0 {
        Ok(usd)
    } else {
        Err(Problem::validation(
            ErrorCode::InvalidConfirmation,
            "confirm_cost_usd must be a number ≥ 0",
        ))
    }
}

pub(crate) fn usd(amount: f64) -> String {
    format!("${amount:.4}")
}

/// Checks that `amount` more can be reserved for `project` without breaking a budget. Called
/// inside the transaction that reserves it, so concurrent starts cannot both pass.
pub(crate) fn check_budgets(
    conn: &rusqlite::Connection,
    project_id: &str,
    budget: &settings::Budget,
    amount: f64,
    today: &str,
) -> Result<(), Problem> {
    let (spent_total, spent_today) = rows::project_spend(conn, project_id, today)?;
    let reserved = rows::project_reserved(conn, project_id)?;
    let over = |cap: Option<f64>, spent: f64| {
        cap.filter(|cap| *cap > 0.0)
            .filter(|cap| spent + reserved + amount > *cap + 1e-9)
    };
    if let Some(cap) = over(budget.project_usd, spent_total) {
        return Err(Problem::new(
            ErrorKind::Policy,
            ErrorCode::BudgetExceeded,
            format!(
                "the project budget is {}: {} spent + {} held by running runs + {} for this run would exceed it",
                usd(cap), usd(spent_total), usd(reserved), usd(amount)
            ),
        )
        .with_hint("raise budget.project_usd in the project's .kroma/settings.toml, or plan fewer candidates"));
    }
    if let Some(cap) = over(budget.daily_usd, spent_today) {
        return Err(Problem::new(
            ErrorKind::Policy,
            ErrorCode::BudgetExceeded,
            format!(
                "the daily budget is {}: {} spent today + {} held by running runs + {} for this run would exceed it",
                usd(cap), usd(spent_today), usd(reserved), usd(amount)
            ),
        )
        .with_hint("wait for tomorrow (UTC), or raise budget.daily_usd in the settings"));
    }
    Ok(())
}

/// Checks what must hold before money is spent: the key can be read and the model is not retired.
pub(crate) async fn preflight(
    daemon: &Daemon,
    plan: &Plan,
    resolved: &Resolved,
) -> Result<(), Problem> {
    let provider_name = plan.provider.clone();
    let provider = daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await?;
    let secrets = daemon.secrets.get().await;
    let secret = provider.secret_name.clone();
    let readable = tokio::task::spawn_blocking(move || secrets.get(&secret).map(|_| ()))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    if let Err(err) = readable {
        return Err(Problem::new(
            ErrorKind::Provider,
            ErrorCode::NoKey,
            format!(
                "the key of provider `{}` (secret `{}`) cannot be read: {err}",
                provider.name, provider.secret_name
            ),
        )
        .with_hint(Hint::new(
            format!(
                "store the key in secret `{}`, then start the run again",
                provider.secret_name
            ),
            Action::call::<protocol::secret::Set>(
                [("name", provider.secret_name.as_str().into())],
                &["value"],
            ),
        )));
    }
    let reported = daemon.store.read(rows::reported_models).await?;
    let today = daemon.clock.today();
    let models = models::list(&resolved.settings, &reported, &today);
    if let Some(model) = models.iter().find(|model| model.id == plan.model)
        && model.lifecycle == Lifecycle::Retired
    {
        return Err(Problem::validation(
            ErrorCode::ModelRetired,
            format!(
                "model `{}` was shut down on {}",
                plan.model,
                model.shutdown_date.as_deref().unwrap_or("?")
            ),
        )
        .with_hint(match &model.replacement {
            Some(replacement) => Hint::from(format!("create a new run with model `{replacement}`")),
            None => Hint::new(
                "create a new run with another model",
                Action::call::<protocol::image_model::List>([], &[]),
            ),
        }));
    }
    Ok(())
}

/// A human's confirmation must cover the most `what` can cost.
pub(crate) fn check_confirmation(
    confirmed: f64,
    max: f64,
    what: &str,
    action: Action,
) -> Result<(), Problem> {
    if confirmed + 1e-9 >= max {
        return Ok(());
    }
    Err(Problem::new(
        ErrorKind::Policy,
        ErrorCode::ConfirmationTooLow,
        format!(
            "{what} can cost up to {}; the confirmation covers {}",
            usd(max),
            usd(confirmed)
        ),
    )
    .with_hint(Hint::new(format!("confirm at least {max} USD"), action)))
}

/// The checks before a run spends (key readable, model not retired), answering the budgets to
/// reserve against.
pub(crate) async fn spend_gate(
    daemon: &Daemon,
    detail: &RunDetail,
) -> Result<settings::Budget, Problem> {
    let project = find_project(daemon, &detail.run.project).await?;
    let (resolved, _) = resolve_settings(daemon, Some(PathBuf::from(&project.root)), None).await?;
    preflight(daemon, &detail.plan, &resolved).await?;
    Ok(resolved.settings.budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::{NewProject, Store, StoreError, insert_project};
    use time::macros::datetime;

    /// The daily budget counts the spend of the clock's "today", so a fixed clock decides it.
    #[tokio::test]
    async fn the_daily_budget_counts_the_spend_of_the_clocks_today() {
        let temp = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&temp.path().join("kroma.db")).expect("store");
        let budget = settings::Budget {
            project_usd: None,
            daily_usd: Some(1.0),
        };
        let spent_on_the_6th = Clock::fixed(datetime!(2026-12-06 23:59 UTC));
        let the_7th = Clock::fixed(datetime!(2026-12-07 00:01 UTC));
        let (on_the_6th, on_the_7th) = store
            .write(move |tx| {
                insert_project(
                    tx,
                    &NewProject {
                        id: "p-1".into(),
                        slug: "noir".into(),
                        name: "Noir".into(),
                        description: String::new(),
                        root: "/p/noir".into(),
                        s3: None,
                        at: spent_on_the_6th.now(),
                    },
                )?;
                tx.execute(
                    "INSERT INTO cost_events (project_id, provider, model, operation, usd, source, day, at)
                     VALUES ('p-1', 'fake', 'gpt-image-2', 'image', 0.8, 'usage', ?1, ?2)",
                    [spent_on_the_6th.today(), spent_on_the_6th.now()],
                )?;
                let check = |clock: Clock| check_budgets(tx, "p-1", &budget, 0.5, &clock.today());
                Ok::<_, StoreError>(((check(spent_on_the_6th), check(the_7th)), Vec::new()))
            })
            .await
            .expect("write");
        let refused = on_the_6th.expect_err("0.8 spent today + 0.5 is over 1.0");
        assert_eq!(refused.code, protocol::ErrorCode::BudgetExceeded);
        assert!(on_the_7th.is_ok(), "a new day starts a new daily budget");
    }
}
