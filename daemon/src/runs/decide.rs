//! The runner's decisions, as pure functions: what a failed call leads to (another attempt after a
//! delay, or an end and whether it may have been billed), the delay, what a candidate left
//! `calling` by a crash or a panic becomes.
//! The runner (`runner.rs`) and recovery (`recover.rs`) do the I/O around them.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use kroma_protocol::run::CandidateStatus;
use kroma_protocol::{ErrorCode, ErrorKind};

use crate::error::{Hint, Problem};
use crate::providers::image_models::Usage;
use crate::providers::{CallError, Generated};

/// How one call ended, for the books.
pub(crate) enum Ended {
    Succeeded(Generated),
    /// Not billed.
    Failed(Problem),
    /// Billed, unusable.
    FailedBilled {
        error: Problem,
        usage: Option<Usage>,
        request_id: Option<String>,
    },
    /// May have been billed; no result.
    Unknown(Problem),
    Canceled,
    /// Nothing is in flight and nothing was billed (kromad is stopping between attempts): back
    /// to the queue.
    Requeue,
}

/// Where a candidate's calls stand when one fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// The candidate's run, which an error's action names.
    pub(crate) run: &'a str,
    /// This attempt's number, from 1.
    pub(crate) number: u32,
    /// `generation.max_attempts`.
    pub(crate) max: u32,
    /// `generation.retry_base_ms`.
    pub(crate) retry_base_ms: u64,
    /// Whether the provider answers a repeated idempotency key with the first result, unbilled.
    pub(crate) honors_idempotency_key: bool,
}

/// What comes after a failed call.
pub(crate) enum Next {
    /// Call again after `delay`: nothing was billed, or the provider bills a key once.
    Retry { message: String, delay: Duration },
    /// The candidate ends so.
    End(Ended),
}

/// What a failed call leads to. A call that may have been billed is never sent again unless the
/// provider honours idempotency keys; a refusal or a billed, unusable answer is never sent again.
pub(crate) fn after_failure(error: CallError, attempt: Attempt<'_>) -> Next {
    let (message, retry_after) = match error {
        CallError::Retry {
            message,
            retry_after,
        } => (message, retry_after),
        CallError::Lost { message } if attempt.honors_idempotency_key => (message, None),
        CallError::Lost { message } => {
            return Next::End(Ended::Unknown(
                Problem::new(
                    ErrorKind::Provider,
                    ErrorCode::CallLost,
                    format!("{message}; the provider may have billed this call"),
                )
                .with_hint(retry_hint(
                    attempt.run,
                    "check the provider's usage page; retrying the run calls again and may pay again",
                )),
            ));
        }
        CallError::Rejected {
            message,
            code,
            hint,
        } => {
            let error = Problem::new(ErrorKind::Provider, code, message).with_hint(hint);
            // A refusal to fix and retry names this run, not any run.
            let error = match code {
                ErrorCode::ProviderRejected => error.with_action(retry_action(attempt.run)),
                _ => error,
            };
            return Next::End(Ended::Failed(error));
        }
        CallError::BadAnswer {
            message,
            usage,
            request_id,
        } => {
            return Next::End(Ended::FailedBilled {
                error: Problem::new(ErrorKind::Provider, ErrorCode::BadAnswer, message).with_hint(
                    retry_hint(
                        attempt.run,
                        "the provider billed this call; retrying the run tries again",
                    ),
                ),
                usage,
                request_id,
            });
        }
    };
    if attempt.number >= attempt.max {
        return Next::End(Ended::Failed(
            Problem::new(
                ErrorKind::Provider,
                ErrorCode::ProviderUnavailable,
                format!("{message} (gave up after {} attempts)", attempt.number),
            )
            .with_hint(retry_hint(
                attempt.run,
                "the provider is busy or down; retry the run later",
            )),
        ));
    }
    Next::Retry {
        message,
        delay: backoff(attempt.retry_base_ms, attempt.number, retry_after),
    }
}

/// Retrying `run`, as an action: the person confirms the cost.
pub(crate) fn retry_action(run: &str) -> kroma_protocol::Action {
    kroma_protocol::Action::call::<kroma_protocol::run::Retry>(
        [("run", run.into())],
        &["confirm_cost_usd"],
    )
}

/// `text`, with retrying `run` as its action.
pub(crate) fn retry_hint(run: &str, text: &str) -> Hint {
    Hint::new(text, retry_action(run))
}

/// How a candidate that did not end normally is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Its output is in place: record it from the file, never call again.
    FromOutput,
    /// Back to the queue with the same idempotency key: the provider bills it once.
    Requeue,
    /// It may have been billed and the result is lost: `unknown`, its estimate counted.
    Lost,
    /// It never called: `failed`, at no cost.
    Failed,
    /// It had already ended.
    Nothing,
}

/// A candidate a stopped kromad left `calling`.
pub(crate) fn after_crash(output_in_place: bool, honors_idempotency_key: bool) -> Settle {
    match (output_in_place, honors_idempotency_key) {
        (true, _) => Settle::FromOutput,
        (false, true) => Settle::Requeue,
        (false, false) => Settle::Lost,
    }
}

/// A candidate whose task panicked, in `status`. Never queued again: a bug that panicked once
/// would panic again.
pub(crate) fn after_panic(status: CandidateStatus, output_in_place: bool) -> Settle {
    match status {
        CandidateStatus::Calling if output_in_place => Settle::FromOutput,
        CandidateStatus::Calling => Settle::Lost,
        CandidateStatus::Planned => Settle::Failed,
        _ => Settle::Nothing,
    }
}

/// The delay before attempt `attempt + 1`: `Retry-After` when the provider sent one (at most a
/// minute), else `base · 2^(attempt-1)` with jitter between half and all of it.
pub(crate) fn backoff(base_ms: u64, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let cap = Duration::from_secs(60);
    if let Some(after) = retry_after {
        return after.min(cap);
    }
    let full = base_ms.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let jitter = hasher.finish() % (full / 2 + 1);
    Duration::from_millis(full / 2 + jitter).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attempt(number: u32, max: u32, honors_idempotency_key: bool) -> Attempt<'static> {
        Attempt {
            run: "r-1",
            number,
            max,
            retry_base_ms: 100,
            honors_idempotency_key,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        for attempt in 1..6 {
            let full = 100u64 << (attempt - 1);
            let delay = backoff(100, attempt, None).as_millis() as u64;
            assert!((full / 2..=full).contains(&delay), "{attempt}: {delay}");
        }
        assert_eq!(
            backoff(100, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff(100, 1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert!(backoff(60_000, 30, None) <= Duration::from_secs(60));
    }

    #[test]
    fn each_failure_leads_where_the_money_rules_say() {
        let busy = || CallError::Retry {
            message: "429".into(),
            retry_after: None,
        };
        assert!(matches!(
            after_failure(busy(), attempt(1, 3, false)),
            Next::Retry { .. }
        ));
        match after_failure(busy(), attempt(3, 3, false)) {
            Next::End(Ended::Failed(error)) => {
                assert_eq!(error.code, ErrorCode::ProviderUnavailable);
                assert!(error.message.contains("after 3 attempts"));
            }
            _ => panic!("the last attempt ends the candidate"),
        }
        let lost = || CallError::Lost {
            message: "timed out".into(),
        };
        assert!(matches!(
            after_failure(lost(), attempt(1, 3, false)),
            Next::End(Ended::Unknown(_))
        ));
        assert!(matches!(
            after_failure(lost(), attempt(1, 3, true)),
            Next::Retry { .. }
        ));
        let billed = CallError::BadAnswer {
            message: "not a PNG".into(),
            usage: None,
            request_id: Some("req-1".into()),
        };
        assert!(matches!(
            after_failure(billed, attempt(1, 3, true)),
            Next::End(Ended::FailedBilled { .. })
        ));
    }

    #[test]
    fn a_crash_or_a_panic_settles_by_what_is_on_disk() {
        assert_eq!(after_crash(true, false), Settle::FromOutput);
        assert_eq!(after_crash(false, true), Settle::Requeue);
        assert_eq!(after_crash(false, false), Settle::Lost);
        assert_eq!(
            after_panic(CandidateStatus::Calling, true),
            Settle::FromOutput
        );
        assert_eq!(after_panic(CandidateStatus::Calling, false), Settle::Lost);
        assert_eq!(after_panic(CandidateStatus::Planned, false), Settle::Failed);
        assert_eq!(
            after_panic(CandidateStatus::Succeeded, false),
            Settle::Nothing
        );
    }

    fn any_error() -> impl Strategy<Value = CallError> {
        prop_oneof![
            proptest::option::of(0u64..600).prop_map(|secs| CallError::Retry {
                message: "busy".into(),
                retry_after: secs.map(Duration::from_secs),
            }),
            Just(CallError::Lost {
                message: "lost".into()
            }),
            Just(CallError::Rejected {
                message: "no".into(),
                code: ErrorCode::ProviderRejected,
                hint: "fix it".into(),
            }),
            Just(CallError::BadAnswer {
                message: "bad".into(),
                usage: None,
                request_id: None,
            }),
        ]
    }

    fn any_status() -> impl Strategy<Value = CandidateStatus> {
        prop_oneof![
            Just(CandidateStatus::Planned),
            Just(CandidateStatus::Calling),
            Just(CandidateStatus::Succeeded),
            Just(CandidateStatus::Failed),
            Just(CandidateStatus::Unknown),
            Just(CandidateStatus::Canceled),
        ]
    }

    proptest! {
        /// A call that may have been billed, or was billed, is sent again only when the
        /// provider bills an idempotency key once; no candidate calls more than `max` times;
        /// no wait is longer than a minute.
        #[test]
        fn nothing_that_may_have_been_billed_is_sent_again_unless_billed_once(
            error in any_error(),
            number in 1u32..12,
            max in 1u32..10,
            honors in any::<bool>(),
        ) {
            let may_have_billed = matches!(error, CallError::Lost { .. });
            let billed = matches!(error, CallError::BadAnswer { .. });
            let refused = matches!(error, CallError::Rejected { .. });
            match after_failure(error, attempt(number, max, honors)) {
                Next::Retry { delay, .. } => {
                    prop_assert!(number < max, "attempt {number} of {max} retried");
                    prop_assert!(!billed && !refused);
                    prop_assert!(!may_have_billed || honors);
                    prop_assert!(delay <= Duration::from_secs(60));
                }
                Next::End(Ended::Unknown(_)) => prop_assert!(may_have_billed && !honors),
                Next::End(Ended::FailedBilled { .. }) => prop_assert!(billed),
                Next::End(Ended::Failed(_)) => prop_assert!(!billed),
                Next::End(_) => prop_assert!(false, "a failure never succeeds or cancels"),
            }
        }

        /// A panic never queues a candidate again, and a recorded output always wins.
        #[test]
        fn a_panicked_candidate_is_never_called_again(status in any_status(), output in any::<bool>()) {
            let settle = after_panic(status, output);
            prop_assert_ne!(settle, Settle::Requeue);
            if status == CandidateStatus::Calling && output {
                prop_assert_eq!(settle, Settle::FromOutput);
            }
        }
    }
}
