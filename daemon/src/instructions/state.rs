//! The instruction lifecycle as an explicit state machine: which step may follow which state.
//! Pure; every state change in the daemon goes through [`next`].

use kroma_protocol::instruction::InstructionState as State;

/// What happens to an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It needs a person's approval.
    Wait,
    /// It was approved (free, within the allowance, or by a person).
    Approve,
    /// Its plan or price changed after approval: it needs a person again.
    Reconfirm,
    /// Its work began.
    Start,
    /// Its work ended well.
    Finish,
    /// Its work, or starting it, failed.
    Fail,
    /// Someone canceled it.
    Cancel,
}

/// A step the state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an instruction that is {} cannot {}", from.as_str(), step_name(*step))]
pub struct IllegalTransition {
    pub from: State,
    pub step: Step,
}

/// The state after `step`, or why `step` is not allowed from `from`.
pub fn next(from: State, step: Step) -> Result<State, IllegalTransition> {
    use State::*;
    let to = match (from, step) {
        (Proposed, Step::Wait) => AwaitingConfirmation,
        (Proposed | AwaitingConfirmation, Step::Approve) => Queued,
        (Queued, Step::Reconfirm) => AwaitingConfirmation,
        (Queued, Step::Start) => Running,
        (Running, Step::Finish) => Done,
        (Queued | Running, Step::Fail) => Failed,
        (Proposed | AwaitingConfirmation | Queued | Running, Step::Cancel) => Canceled,
        _ => return Err(IllegalTransition { from, step }),
    };
    Ok(to)
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Wait => "wait for a person",
        Step::Approve => "be approved",
        Step::Reconfirm => "go back to a person",
        Step::Start => "start",
        Step::Finish => "finish",
        Step::Fail => "fail",
        Step::Cancel => "be canceled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Step; 7] = [
        Step::Wait,
        Step::Approve,
        Step::Reconfirm,
        Step::Start,
        Step::Finish,
        Step::Fail,
        Step::Cancel,
    ];

    /// Every (state, step) pair, as a table a reader can check against the documented lifecycle.
    #[test]
    fn the_lifecycle_table() {
        let mut table = String::new();
        for from in State::ALL {
            for step in STEPS {
                let to = next(from, step).map_or("-", |to| to.as_str());
                table.push_str(&format!(
                    "{:<22} {:<10} {to}\n",
                    from.as_str(),
                    format!("{step:?}")
                ));
            }
        }
        insta::assert_snapshot!(table);
    }

    #[test]
    fn nothing_leaves_a_final_state_and_nothing_reaches_proposed() {
        for from in State::ALL {
            for step in STEPS {
                match next(from, step) {
                    Ok(to) => {
                        assert!(!from.is_final(), "{from:?} --{step:?}--> {to:?}");
                        assert_ne!(to, State::Proposed);
                    }
                    Err(err) => assert_eq!(err, IllegalTransition { from, step }),
                }
            }
        }
    }

    /// Work starts only from `queued`, which only approval reaches: nothing runs unapproved.
    #[test]
    fn only_approval_leads_to_running() {
        for from in State::ALL {
            for step in STEPS {
                if next(from, step) == Ok(State::Queued) {
                    assert_eq!(step, Step::Approve);
                }
                if next(from, step) == Ok(State::Running) {
                    assert_eq!(from, State::Queued);
                }
            }
        }
    }

    #[test]
    fn the_refusal_names_the_state() {
        let err = next(State::Done, Step::Approve).unwrap_err();
        assert_eq!(
            err.to_string(),
            "an instruction that is done cannot be approved"
        );
    }
}
