//! The end of a confirmation-page elicitation, for 2025-11-25 hosts. A URL-mode elicitation
//! opens Kroma's confirmation page, and the host's "accept" only says the person agreed to open
//! it. The 2025-11-25 protocol lets a server say when such an interaction outside the client is
//! over: `notifications/elicitation/complete` with the elicitation's id. kroma-mcp follows the
//! instruction and sends it once the instruction no longer waits for a person (approved in any
//! of the three ways, declined on the page, or canceled), so the host can close the page and the
//! agent can look at the instruction again. 2026-07-28 dropped the notification (a client there
//! retries the input round instead), so only 2025-11-25 sessions get it.
//!
//! The notification carries the elicitation's id alone: it approves nothing and says nothing a
//! host could take for an approval; the agent reads the instruction's state from kromad. A
//! watch is bounded: at most [`MAX_WATCHES`] at once in one kroma-mcp, each for at most
//! [`WATCH_FOR`] and only while its session is open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kroma_protocol::instruction::InstructionState;
use rmcp::RoleServer;
use rmcp::model::{CustomNotification, ServerNotification};
use rmcp::service::Peer;
use tokio::sync::Semaphore;

use crate::server::KromaServer;

/// The most confirmation pages followed at once; beyond it a page's end is not announced.
pub const MAX_WATCHES: usize = 64;
/// How long a page is followed (a page left open longer ends without a notification).
pub const WATCH_FOR: Duration = Duration::from_secs(30 * 60);
/// How often a watch reads its instruction.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// The 2025-11-25 notification that an out-of-band elicitation is over.
pub const COMPLETE: &str = "notifications/elicitation/complete";

/// The places for page watches, shared by every session of one kroma-mcp.
#[derive(Clone)]
pub struct PageWatches {
    places: Arc<Semaphore>,
}

impl Default for PageWatches {
    fn default() -> PageWatches {
        PageWatches {
            places: Arc::new(Semaphore::new(MAX_WATCHES)),
        }
    }
}

/// The notification that the elicitation `elicitation_id` is over.
pub fn complete(elicitation_id: &str) -> ServerNotification {
    ServerNotification::CustomNotification(CustomNotification::new(
        COMPLETE,
        Some(serde_json::json!({ "elicitationId": elicitation_id })),
    ))
}

impl KromaServer {
    /// Follows instruction `id`, which a host opened the confirmation page for with elicitation
    /// `elicitation_id`, and tells `peer` when it no longer waits for a person.
    pub(crate) fn watch_page(
        &self,
        client: &str,
        id: &str,
        elicitation_id: String,
        peer: Peer<RoleServer>,
    ) {
        let Ok(place) = self.page_watches().places.clone().try_acquire_owned() else {
            tracing::info!(
                instruction = id,
                "{MAX_WATCHES} confirmation pages are followed already; this one's end goes \
                 unannounced"
            );
            return;
        };
        let server = self.clone();
        let client = client.to_owned();
        let id = id.to_owned();
        tokio::spawn(async move {
            let _place = place;
            let deadline = Instant::now() + WATCH_FOR;
            while Instant::now() < deadline && !peer.is_transport_closed() {
                match server.instruction(&client, &id).await {
                    Ok(instruction)
                        if instruction.state != InstructionState::AwaitingConfirmation =>
                    {
                        if let Err(err) = peer.send_notification(complete(&elicitation_id)).await {
                            tracing::debug!(%err, instruction = id, "announcing the page's end");
                        }
                        return;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::info!(%err, instruction = id, "following a confirmation page");
                        return;
                    }
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notification_carries_the_elicitation_id_alone() {
        let ServerNotification::CustomNotification(notification) = complete("kroma-confirm-7")
        else {
            panic!("a custom notification");
        };
        assert_eq!(notification.method, "notifications/elicitation/complete");
        assert_eq!(
            notification.params,
            Some(serde_json::json!({"elicitationId": "kroma-confirm-7"}))
        );
    }
}
