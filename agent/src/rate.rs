//! How often one client may propose work: a token bucket per declared client name, refilled
//! evenly over a minute (`--max-submissions-per-minute`, 10 by default). Pure: the caller passes
//! the time, so the tests need no clock.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The default of `--max-submissions-per-minute`.
pub const DEFAULT_PER_MINUTE: u32 = 10;

/// The most client names tracked at once; a full bucket is forgotten first (it says nothing).
pub const MAX_CLIENTS: usize = 1024;

/// Submissions admitted per client name.
#[derive(Debug, Clone)]
pub struct SubmissionLimit {
    per_minute: NonZeroU32,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A refused submission: when the next one would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many submissions from this client: at most {per_minute} a minute; try again in {} s",
    retry_after.as_secs().max(1)
)]
pub struct TooMany {
    pub per_minute: u32,
    pub retry_after: Duration,
}

impl SubmissionLimit {
    pub fn new(per_minute: NonZeroU32) -> SubmissionLimit {
        SubmissionLimit {
            per_minute,
            buckets: HashMap::new(),
        }
    }

    /// Takes one submission for `client` at `now`, or says how long until one is free.
    pub fn take(&mut self, client: &str, now: Instant) -> Result<(), TooMany> {
        let capacity = f64::from(self.per_minute.get());
        let per_second = capacity / 60.0;
        if !self.buckets.contains_key(client) && self.buckets.len() >= MAX_CLIENTS {
            self.forget_one(now, capacity, per_second);
        }
        let bucket = self.buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(TooMany {
                per_minute: self.per_minute.get(),
                retry_after: Duration::from_secs_f64((1.0 - bucket.tokens) / per_second),
            })
        }
    }

    /// Drops a bucket that has refilled, else the one least recently used.
    fn forget_one(&mut self, now: Instant, capacity: f64, per_second: f64) {
        let refilled = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * per_second >= capacity
        };
        let victim = self
            .buckets
            .iter()
            .find(|(_, bucket)| refilled(bucket))
            .or_else(|| self.buckets.iter().min_by_key(|(_, bucket)| bucket.updated))
            .map(|(name, _)| name.clone());
        if let Some(name) = victim {
            self.buckets.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: u32) -> SubmissionLimit {
        SubmissionLimit::new(NonZeroU32::new(per_minute).expect("not zero"))
    }

    /// Plays `steps` (seconds since the start, client) and returns which were admitted.
    fn check(per_minute: u32, steps: &[(u64, &str)], expected: &[bool]) {
        let start = Instant::now();
        let mut limit = limit(per_minute);
        let admitted: Vec<bool> = steps
            .iter()
            .map(|(at, client)| limit.take(client, start + Duration::from_secs(*at)).is_ok())
            .collect();
        assert_eq!(admitted, expected, "{steps:?}");
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_one_token_comes_back_every_period() {
        check(
            3,
            &[
                (0, "a"),
                (0, "a"),
                (0, "a"),
                (0, "a"),
                (19, "a"),
                (20, "a"),
                (20, "a"),
            ],
            &[true, true, true, false, false, true, false],
        );
        check(
            10,
            &[(0, "a"); 11],
            &[
                true, true, true, true, true, true, true, true, true, true, false,
            ],
        );
    }

    #[test]
    fn clients_have_their_own_buckets() {
        check(
            1,
            &[(0, "a"), (0, "b"), (0, "a"), (0, "b"), (60, "a")],
            &[true, true, false, false, true],
        );
    }

    #[test]
    fn a_refusal_says_when_to_try_again() {
        let start = Instant::now();
        let mut limit = limit(2);
        for _ in 0..2 {
            limit.take("a", start).expect("admitted");
        }
        let refused = limit.take("a", start).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        assert_eq!(
            refused.to_string(),
            "too many submissions from this client: at most 2 a minute; try again in 30 s"
        );
    }

    #[test]
    fn many_clients_stay_bounded() {
        let start = Instant::now();
        let mut limit = limit(1);
        for n in 0..(MAX_CLIENTS * 2) {
            limit.take(&format!("client {n}"), start).expect("admitted");
        }
        assert_eq!(limit.buckets.len(), MAX_CLIENTS);
    }
}
