//! Everything about a candidate's run that its execution needs, loaded once per candidate: the
//! run, its stored plan, the job, the settings the run was planned with, and the candidate.

use std::path::Path;

use kroma_protocol as protocol;
use protocol::events::EventData;
use protocol::run::{Plan, PlannedJob};

use crate::Services;
use crate::error::Problem;
use crate::projects::layout;
use crate::providers::image_models::{self};
use crate::runs::settings::Settings;
use crate::store::runs::{self as rows, CandidateRow, RunRow};
use crate::store::{NewEvent, StoreError};

/// Everything about a candidate's run that its execution needs.
pub(crate) struct Context {
    pub(crate) run: RunRow,
    pub(crate) plan: Plan,
    pub(crate) job: PlannedJob,
    pub(crate) settings: Settings,
    pub(crate) candidate: CandidateRow,
}

impl Context {
    pub(crate) fn root(&self) -> &Path {
        Path::new(&self.run.project_root)
    }

    pub(crate) fn rel_path(&self) -> String {
        layout::generated_output(
            &self.job.key,
            self.candidate.index,
            self.job.candidates,
            &self.run.id,
        )
    }

    /// The price-table cost of one call of this job: its share of the job's maximum.
    pub(crate) fn estimated_usd(&self) -> f64 {
        crate::runs::planner::per_call_usd(&self.job)
    }

    pub(crate) fn pricing(&self) -> Option<image_models::Pricing> {
        image_models::pricing(&self.settings, &self.plan.model)
    }
}

pub(crate) async fn load(daemon: &Services, candidate: CandidateRow) -> Result<Context, Problem> {
    let run_id = candidate.run_id.clone();
    let run = daemon
        .store
        .read(move |conn| rows::get_run(conn, &run_id))
        .await?;
    let plan = super::plan_of(&run)?;
    let job = plan
        .jobs
        .get(candidate.job_index as usize)
        .cloned()
        .ok_or_else(|| {
            StoreError::Corrupt(format!("run {} has no job {}", run.id, candidate.job_index))
        })?;
    let settings: Settings = serde_json::from_value(plan.settings.clone())
        .map_err(|err| StoreError::Corrupt(format!("settings of run {}: {err}", run.id)))?;
    Ok(Context {
        run,
        plan,
        job,
        settings,
        candidate,
    })
}

/// The event of `payload`'s kind in the candidate's project.
pub(crate) fn event<T: EventData>(context: &Context, payload: &T, at: &str) -> NewEvent {
    NewEvent::of(
        at.to_owned(),
        Some(context.run.project_slug.clone()),
        payload,
    )
}
