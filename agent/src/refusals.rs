//! What kroma-mcp refuses before kromad sees it goes into kromad's audit log, beside kromad's
//! own refusals (`agent.refused`): a host's "accept" to the elicitation of a waiting instruction
//! (it approves nothing), a call to a tool this server does not offer (an allowance change
//! attempted through MCP is one), and an HTTP request without the token, with a wrong one, with
//! a browser's `Origin`, a foreign `Host` or too large a body.
//!
//! The log stays small under a flood: at most [`PER_MINUTE`] entries of one kind a minute, and
//! at most [`crate::rate::ALL_CLIENTS_FACTOR`] times that of all kinds together. The refusals
//! held back are counted; the next entry of that kind says how many it stands for, and
//! each held-back refusal is a warning in kroma-mcp's own log.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Instant;

use kroma_protocol as protocol;
use protocol::audit::{Refusal, RefusedParams};

use crate::rate::SubmissionLimit;
use crate::server::KromaServer;

/// The most audit entries of one kind a minute.
pub const PER_MINUTE: NonZeroU32 = NonZeroU32::new(6).expect("not zero");

/// Entries admitted per kind, and the refusals held back since the last one of each kind.
pub struct RefusalRecord {
    limit: SubmissionLimit,
    held: HashMap<&'static str, u32>,
}

impl Default for RefusalRecord {
    fn default() -> RefusalRecord {
        RefusalRecord {
            limit: SubmissionLimit::new(PER_MINUTE),
            held: HashMap::new(),
        }
    }
}

impl RefusalRecord {
    /// How many refusals an entry for one of `kind` made at `now` stands for, or `None` when it
    /// is held back.
    pub fn admit(&mut self, kind: &'static str, now: Instant) -> Option<u32> {
        if self.limit.take(kind, now).is_ok() {
            let held = self.held.remove(kind).unwrap_or(0);
            return Some(
                held.saturating_add(1)
                    .min(protocol::audit::MAX_REFUSED_COUNT),
            );
        }
        let held = self.held.entry(kind).or_insert(0);
        *held = held.saturating_add(1);
        None
    }
}

/// The kind a refusal is counted under: one per HTTP reason, one for each other refusal.
fn kind(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::HostAccept { .. } => "host_accept",
        Refusal::UnknownTool { .. } => "unknown_tool",
        Refusal::Http { reason } => reason.as_str(),
    }
}

impl KromaServer {
    /// Puts `refusal` on record in kromad's audit log as `client`'s, unless entries of its kind
    /// are held back. A failure to record is logged; it never changes the refusal.
    pub(crate) async fn put_on_record(&self, client: &str, refusal: Refusal) {
        let kind = kind(&refusal);
        let count = match self.refusals().lock() {
            Ok(mut record) => record.admit(kind, Instant::now()),
            Err(_) => None,
        };
        let Some(count) = count else {
            tracing::warn!(
                client,
                kind,
                "refused; too many of this kind a minute to audit each"
            );
            return;
        };
        let params = RefusedParams {
            what: refusal,
            count,
        };
        if let Err(err) = self
            .kromad()
            .call::<protocol::audit::Refused>(client, &params)
            .await
        {
            tracing::warn!(%err, client, kind, "could not put a refusal in kromad's audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_makes_few_entries_that_count_what_was_held_back() {
        let start = Instant::now();
        let mut record = RefusalRecord::default();
        let admitted: Vec<Option<u32>> = (0..10)
            .map(|_| record.admit("wrong_token", start))
            .collect();
        assert_eq!(admitted[..6], [Some(1); 6]);
        assert_eq!(admitted[6..], [None; 4]);
        // Another kind has its own entries.
        assert_eq!(record.admit("no_token", start), Some(1));
        // The next entry of the kind stands for itself and the four held back.
        let later = start + Duration::from_secs(10);
        assert_eq!(record.admit("wrong_token", later), Some(5));
        assert_eq!(record.admit("wrong_token", later), None);
    }
}
