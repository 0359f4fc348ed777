//! Pure: a run's progress folded from `run.show` and then its events, as `kromactl run watch`
//! shows it. Events are read through their typed payloads; an event whose payload does not
//! parse is passed over, as are events of other runs.

use kroma_protocol as protocol;
use protocol::events as wire_events;
use protocol::run as wire;

/// What a watcher knows about one run: `run.show` first, then the run's events.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// The run the progress is about; events of other runs are passed over.
    pub run_id: String,
    pub jobs: Vec<JobProgress>,
    pub spent_usd: f64,
    /// Seconds until the run is expected to finish, from its last `run.progress` event.
    pub eta_secs: Option<u64>,
    /// The status from `run.finished`, once it arrived.
    pub finished: Option<wire::RunStatus>,
}

/// One job of a run as far as its events tell.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub key: String,
    pub status: wire::JobStatus,
    /// Candidate statuses by index - 1.
    pub candidates: Vec<wire::CandidateStatus>,
    /// The post-process step under way on one of its candidates, e.g. `#2 upscale 3/24`.
    pub chain: Option<String>,
}

/// A candidate index above this in an event is not believed: the slots are not made.
const MAX_CANDIDATE_SLOTS: usize = 1000;

/// The events of a run that progress follows (or passes over knowingly), read from their
/// payloads.
enum RunEvent {
    Created(wire_events::RunCreated),
    Started(wire_events::RunStarted),
    Progress(wire_events::RunProgress),
    Finished(wire_events::RunFinished),
    JobStarted(wire_events::JobStarted),
    JobFinished(wire_events::JobFinished),
    CandidateStarted(wire_events::CandidateStarted),
    CandidateFinished(wire_events::CandidateFinished),
    CandidateFailed(wire_events::CandidateFailed),
    CandidatePostprocessed(wire_events::CandidatePostprocessed),
    ChainTiles(wire_events::ChainTileProgress),
}

impl RunProgress {
    pub fn from_detail(detail: &wire::RunDetail) -> RunProgress {
        let mut jobs: Vec<JobProgress> = detail
            .jobs
            .iter()
            .map(|job| JobProgress {
                key: job.key.clone(),
                status: job.status,
                candidates: job
                    .candidates
                    .iter()
                    .map(|candidate| candidate.status)
                    .collect(),
                chain: None,
            })
            .collect();
        // A job the daemon has no rows for yet still shows, with the plan's candidates.
        for planned in &detail.plan.jobs {
            if !jobs.iter().any(|job| job.key == planned.key) {
                jobs.push(JobProgress {
                    key: planned.key.clone(),
                    status: wire::JobStatus::Planned,
                    candidates: vec![wire::CandidateStatus::Planned; planned.candidates as usize],
                    chain: None,
                });
            }
        }
        RunProgress {
            run_id: detail.run.id.clone(),
            jobs,
            spent_usd: detail.run.spent_usd,
            eta_secs: None,
            finished: None,
        }
    }

    /// Takes in one event; returns whether it was about this run (an event of another run, of a
    /// kind without a run, or whose payload does not parse changes nothing).
    pub fn apply(&mut self, event: &protocol::events::Event) -> bool {
        let Some(run_event) = RunEvent::read(event) else {
            return false;
        };
        if run_event.run() != self.run_id {
            return false;
        }
        match run_event {
            RunEvent::Progress(progress) => {
                self.spent_usd = progress.spent_usd;
                self.eta_secs = progress.eta_secs;
            }
            RunEvent::Finished(finished) => {
                self.spent_usd = finished.spent_usd;
                self.eta_secs = None;
                self.finished = Some(finished.status);
            }
            RunEvent::JobStarted(wire_events::JobStarted { job, status, .. })
            | RunEvent::JobFinished(wire_events::JobFinished { job, status, .. }) => {
                if let Some(job) = self.job_mut(&job) {
                    job.status = status;
                }
            }
            RunEvent::ChainTiles(tiles) => {
                if let Some(job) = self.job_mut(&tiles.job) {
                    job.chain = (tiles.tiles_done < tiles.tiles).then(|| {
                        format!(
                            "#{} {} {}/{}",
                            tiles.index,
                            tiles.step.as_str(),
                            tiles.tiles_done,
                            tiles.tiles
                        )
                    });
                }
            }
            RunEvent::CandidateStarted(wire_events::CandidateStarted {
                job,
                index,
                status,
                ..
            })
            | RunEvent::CandidateFinished(wire_events::CandidateFinished {
                job,
                index,
                status,
                ..
            })
            | RunEvent::CandidateFailed(wire_events::CandidateFailed {
                job, index, status, ..
            }) => self.set_candidate(&job, index, status),
            RunEvent::Created(_) | RunEvent::Started(_) | RunEvent::CandidatePostprocessed(_) => {}
        }
        true
    }

    /// Candidates of the whole run.
    pub fn total(&self) -> usize {
        self.jobs.iter().map(|job| job.candidates.len()).sum()
    }

    /// Candidates that ended, whichever way.
    pub fn done(&self) -> usize {
        self.jobs.iter().map(JobProgress::done).sum()
    }

    /// Candidates that failed or may have been billed without an answer (`unknown`).
    pub fn failed(&self) -> usize {
        self.jobs.iter().map(JobProgress::failed).sum()
    }

    fn job_mut(&mut self, key: &str) -> Option<&mut JobProgress> {
        self.jobs.iter_mut().find(|job| job.key == key)
    }

    /// Candidate `index` (1-based) of `job` is now `status`; the job grows to hold it, within
    /// reason.
    fn set_candidate(&mut self, job: &str, index: u32, status: wire::CandidateStatus) {
        let Some(job) = self.job_mut(job) else {
            return;
        };
        let Some(slot) = index
            .checked_sub(1)
            .and_then(|slot| usize::try_from(slot).ok())
        else {
            return;
        };
        if slot < MAX_CANDIDATE_SLOTS {
            if job.candidates.len() <= slot {
                job.candidates
                    .resize(slot + 1, wire::CandidateStatus::Planned);
            }
            job.candidates[slot] = status;
        }
    }
}

impl JobProgress {
    /// The job's status as events and `run show` spell it, e.g. `running`.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            wire::JobStatus::Planned => "planned",
            wire::JobStatus::Running => "running",
            wire::JobStatus::Done => "done",
            wire::JobStatus::Failed => "failed",
            wire::JobStatus::FailedOutputGuard => "failed_output_guard",
        }
    }

    /// Candidates of this job that ended, whichever way.
    pub fn done(&self) -> usize {
        self.candidates
            .iter()
            .filter(|&&status| candidate_done(status))
            .count()
    }

    /// Candidates of this job that failed or whose outcome is unknown.
    pub fn failed(&self) -> usize {
        self.candidates
            .iter()
            .filter(|status| {
                matches!(
                    status,
                    wire::CandidateStatus::Failed | wire::CandidateStatus::Unknown
                )
            })
            .count()
    }
}

impl RunEvent {
    /// The event as one of a run's, when it is of such a kind and its payload parses.
    fn read(event: &protocol::events::Event) -> Option<RunEvent> {
        use protocol::events::kind;
        fn typed<T: protocol::events::EventData>(event: &protocol::events::Event) -> Option<T> {
            event.payload::<T>()?.ok()
        }
        Some(match event.kind.as_str() {
            kind::RUN_CREATED => RunEvent::Created(typed(event)?),
            kind::RUN_STARTED => RunEvent::Started(typed(event)?),
            kind::RUN_PROGRESS => RunEvent::Progress(typed(event)?),
            kind::RUN_FINISHED => RunEvent::Finished(typed(event)?),
            kind::JOB_STARTED => RunEvent::JobStarted(typed(event)?),
            kind::JOB_FINISHED => RunEvent::JobFinished(typed(event)?),
            kind::CANDIDATE_STARTED => RunEvent::CandidateStarted(typed(event)?),
            kind::CANDIDATE_FINISHED => RunEvent::CandidateFinished(typed(event)?),
            kind::CANDIDATE_FAILED => RunEvent::CandidateFailed(typed(event)?),
            kind::CANDIDATE_POSTPROCESSED => RunEvent::CandidatePostprocessed(typed(event)?),
            // One-off steps' tiles belong to no run.
            kind::POSTPROCESS_PROGRESS => match typed(event)? {
                wire_events::PostprocessProgress::Chain(tiles) => RunEvent::ChainTiles(tiles),
                wire_events::PostprocessProgress::File(_) => return None,
            },
            _ => return None,
        })
    }

    /// The id of the run the event is about.
    fn run(&self) -> &str {
        match self {
            RunEvent::Created(event) => &event.run,
            RunEvent::Started(event) => &event.run,
            RunEvent::Progress(event) => &event.run,
            RunEvent::Finished(event) => &event.run,
            RunEvent::JobStarted(event) => &event.run,
            RunEvent::JobFinished(event) => &event.run,
            RunEvent::CandidateStarted(event) => &event.run,
            RunEvent::CandidateFinished(event) => &event.run,
            RunEvent::CandidateFailed(event) => &event.run,
            RunEvent::CandidatePostprocessed(event) => &event.run,
            RunEvent::ChainTiles(event) => &event.run,
        }
    }
}

fn candidate_done(status: wire::CandidateStatus) -> bool {
    matches!(
        status,
        wire::CandidateStatus::Succeeded
            | wire::CandidateStatus::Failed
            | wire::CandidateStatus::Unknown
            | wire::CandidateStatus::Canceled
    )
}

#[cfg(test)]
mod tests;
