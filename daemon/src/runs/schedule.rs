//! Which waiting candidate gets the next provider-call slot. Pure: the runner passes what waits
//! and what is in flight.
//!
//! Slots are shared fairly: first between projects (the project with the fewest calls in flight
//! goes first), then between the runs of a project (the run with the fewest calls in flight),
//! then the oldest run and its first job. A run of one call never waits behind a run of 120:
//! it gets the next free slot.

use std::collections::HashMap;

/// A candidate that waits for a slot, in queue order (oldest run first, then job order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting<'a> {
    pub candidate: &'a str,
    pub run: &'a str,
    pub project: &'a str,
}

/// A call in flight: its run and project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calling<'a> {
    pub run: &'a str,
    pub project: &'a str,
}

/// The index in `waiting` of the candidate to start next, if any. Candidates in `busy` (already
/// started, not yet marked in the store) are skipped.
pub fn next(waiting: &[Waiting<'_>], calling: &[Calling<'_>], busy: &[&str]) -> Option<usize> {
    let mut by_project: HashMap<&str, usize> = HashMap::new();
    let mut by_run: HashMap<&str, usize> = HashMap::new();
    for call in calling {
        *by_project.entry(call.project).or_default() += 1;
        *by_run.entry(call.run).or_default() += 1;
    }
    waiting
        .iter()
        .enumerate()
        .filter(|(_, candidate)| !busy.contains(&candidate.candidate))
        .min_by_key(|(index, candidate)| {
            (
                by_project.get(candidate.project).copied().unwrap_or(0),
                by_run.get(candidate.run).copied().unwrap_or(0),
                *index,
            )
        })
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn waiting<'a>(run: &'a str, project: &'a str, ids: &[&'a str]) -> Vec<Waiting<'a>> {
        ids.iter()
            .map(|candidate| Waiting {
                candidate,
                run,
                project,
            })
            .collect()
    }

    #[test]
    fn a_small_run_gets_the_next_slot_beside_a_large_one() {
        // A 120-call run of project a holds all 4 slots; a 1-call run of b arrived later.
        let ids: Vec<String> = (0..120).map(|i| format!("big-{i}")).collect();
        let mut queue: Vec<Waiting> = ids[4..]
            .iter()
            .map(|id| Waiting {
                candidate: id,
                run: "big",
                project: "a",
            })
            .collect();
        queue.extend(waiting("small", "b", &["small-0"]));
        let calling = vec![
            Calling {
                run: "big",
                project: "a"
            };
            4
        ];
        let picked = next(&queue, &calling, &[]).unwrap();
        assert_eq!(queue[picked].candidate, "small-0");
    }

    #[test]
    fn runs_of_one_project_share_its_slots_and_order_breaks_ties() {
        let mut queue = waiting("r1", "p", &["r1-0", "r1-1"]);
        queue.extend(waiting("r2", "p", &["r2-0"]));
        let one_of_r1 = [Calling {
            run: "r1",
            project: "p",
        }];
        assert_eq!(
            queue[next(&queue, &one_of_r1, &[]).unwrap()].candidate,
            "r2-0"
        );
        // Nothing in flight: the oldest run's first job.
        assert_eq!(queue[next(&queue, &[], &[]).unwrap()].candidate, "r1-0");
        // Started but not yet marked: skipped.
        assert_eq!(
            queue[next(&queue, &[], &["r1-0"]).unwrap()].candidate,
            "r1-1"
        );
        assert_eq!(next(&[], &[], &[]), None);
    }

    proptest! {
        /// With no call finishing, each pick goes to a project with the fewest calls in flight
        /// among those that wait, and to a run with the fewest among that project's waiting
        /// runs: no project or run waits behind another's second call.
        #[test]
        fn picks_go_to_the_least_served_project_then_run(
            runs in prop::collection::vec((1usize..5, 0usize..3), 1..7),
            slots in 1usize..12,
        ) {
            let names: Vec<(String, String)> = runs
                .iter()
                .enumerate()
                .map(|(r, (_, project))| (format!("r{r}"), format!("p{project}")))
                .collect();
            let ids: Vec<Vec<String>> = runs
                .iter()
                .enumerate()
                .map(|(r, (n, _))| (0..*n).map(|c| format!("r{r}-{c}")).collect())
                .collect();
            let mut queue = Vec::new();
            for (r, run_ids) in ids.iter().enumerate() {
                for id in run_ids {
                    queue.push(Waiting { candidate: id, run: &names[r].0, project: &names[r].1 });
                }
            }
            let mut calling: Vec<Calling> = Vec::new();
            let mut started: Vec<&str> = Vec::new();
            let count = |calling: &[Calling], f: &dyn Fn(&Calling) -> bool| calling.iter().filter(|c| f(c)).count();
            for _ in 0..slots.min(queue.len()) {
                let index = next(&queue, &calling, &started).unwrap();
                let chosen = queue[index];
                let left: Vec<Waiting> = queue.iter().copied().filter(|w| !started.contains(&w.candidate)).collect();
                let project_load = |p: &str| count(&calling, &|c| c.project == p);
                let run_load = |r: &str| count(&calling, &|c| c.run == r);
                let least_project = left.iter().map(|w| project_load(w.project)).min().unwrap();
                prop_assert_eq!(project_load(chosen.project), least_project);
                let least_run = left
                    .iter()
                    .filter(|w| w.project == chosen.project)
                    .map(|w| run_load(w.run))
                    .min()
                    .unwrap();
                prop_assert_eq!(run_load(chosen.run), least_run);
                calling.push(Calling { run: chosen.run, project: chosen.project });
                started.push(chosen.candidate);
            }
        }
    }
}
