//! How often one client may propose work: a token bucket per declared client name, refilled
//! evenly over a minute (`--max-submissions-per-minute`, 10 by default), and one for all names
//! together, [`ALL_CLIENTS_FACTOR`] times larger, so a client that declares a new name for every
//! request (a 2026-07-28 client names itself on each) is still braked. Pure: the caller passes
//! the time, so the tests need no clock.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The default of `--max-submissions-per-minute`.
pub const DEFAULT_PER_MINUTE: u32 = 10;

/// The most client names tracked at once; a full bucket is forgotten first (it says nothing).
pub const MAX_CLIENTS: usize = 1024;

/// How many times one client's limit all clients together may submit.
pub const ALL_CLIENTS_FACTOR: u32 = 6;

/// Submissions admitted per client name.
#[derive(Debug, Clone)]
pub struct SubmissionLimit {
    per_minute: NonZeroU32,
    buckets: HashMap<String, Bucket>,
    all: Bucket,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity,
            updated: now,
        }
    }

    /// Refills the bucket up to `now`; answers how long until it holds one token.
    fn refill(&mut self, now: Instant, capacity: f64, per_second: f64) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.updated = now;
        (self.tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - self.tokens) / per_second))
    }
}

/// A refused submission: when the next one would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many submissions from {}: at most {per_minute} a minute; try again in {} s",
    if *all_clients { "all clients together" } else { "this client" },
    retry_after.as_secs().max(1)
)]
pub struct TooMany {
    pub per_minute: u32,
    pub retry_after: Duration,
    /// The limit of all clients together was reached, not this client's.
    pub all_clients: bool,
}

impl SubmissionLimit {
    pub fn new(per_minute: NonZeroU32) -> SubmissionLimit {
        let all = f64::from(per_minute.get().saturating_mul(ALL_CLIENTS_FACTOR));
        SubmissionLimit {
            per_minute,
            buckets: HashMap::new(),
            all: Bucket::full(all, Instant::now()),
        }
    }

    /// Takes one submission for `client` at `now`, or says how long until one is free.
    pub fn take(&mut self, client: &str, now: Instant) -> Result<(), TooMany> {
        let capacity = f64::from(self.per_minute.get());
        let per_second = capacity / 60.0;
        if !self.buckets.contains_key(client) && self.buckets.len() >= MAX_CLIENTS {
            self.forget_one(now, capacity, per_second);
        }
        let bucket = self
            .buckets
            .entry(client.to_owned())
            .or_insert(Bucket::full(capacity, now));
        if let Some(retry_after) = bucket.refill(now, capacity, per_second) {
            return Err(TooMany {
                per_minute: self.per_minute.get(),
                retry_after,
                all_clients: false,
            });
        }
        let all_per_minute = self.per_minute.get().saturating_mul(ALL_CLIENTS_FACTOR);
        let all_capacity = f64::from(all_per_minute);
        if let Some(retry_after) = self.all.refill(now, all_capacity, all_capacity / 60.0) {
            return Err(TooMany {
                per_minute: all_per_minute,
                retry_after,
                all_clients: true,
            });
        }
        bucket.tokens -= 1.0;
        self.all.tokens -= 1.0;
        Ok(())
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
            // One a minute each, and all together within their own limit.
            let at = start + Duration::from_secs(10 * n as u64);
            limit.take(&format!("client {n}"), at).expect("admitted");
        }
        assert_eq!(limit.buckets.len(), MAX_CLIENTS);
    }

    #[test]
    fn a_new_name_for_every_submission_still_meets_the_limit_of_all_clients() {
        let start = Instant::now();
        let mut limit = limit(10);
        for n in 0..60 {
            limit.take(&format!("name {n}"), start).expect("admitted");
        }
        let refused = limit.take("name 60", start).unwrap_err();
        assert!(refused.all_clients);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(
            refused.to_string(),
            "too many submissions from all clients together: at most 60 a minute; try again in 1 s"
        );
        assert!(
            limit
                .take("name 61", start + Duration::from_secs(1))
                .is_ok()
        );
    }
}
