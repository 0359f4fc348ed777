//! Following kromad's event log live without gaps: [`EventFollower`] subscribes to
//! `events.subscribe` and subscribes again after the last event it returned whenever a
//! subscription ends while the daemon still runs.

use kroma_protocol as protocol;

use crate::{Client, ClientError, Subscribed};

/// Events after `since` (live only without it), for as long as the daemon runs.
///
/// The client ends a subscription that falls too far behind; the follower then subscribes again
/// after the last event it returned, so nothing is skipped or repeated. When the daemon stops,
/// `next` fails with [`ClientError::Disconnected`].
pub struct EventFollower<'client> {
    client: &'client Client,
    since: Option<u64>,
    subscription: Subscribed<protocol::events::Event>,
    stopping: bool,
}

impl<'client> EventFollower<'client> {
    pub async fn start(
        client: &'client Client,
        since: Option<u64>,
    ) -> Result<EventFollower<'client>, ClientError> {
        let subscription = client
            .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams { since })
            .await?;
        Ok(EventFollower {
            client,
            since,
            subscription,
            stopping: false,
        })
    }

    /// The next event, waiting for it.
    pub async fn next(&mut self) -> Result<protocol::events::Event, ClientError> {
        loop {
            if let Some(event) = self.subscription.next().await {
                let event = event?;
                self.stopping = event.kind == protocol::events::kind::DAEMON_STOPPING;
                self.since = Some(event.id);
                return Ok(event);
            }
            if self.stopping || !self.client.is_connected() {
                return Err(ClientError::Disconnected {
                    socket: self.client.socket().to_owned(),
                    detail: "the daemon ended the event stream".to_owned(),
                });
            }
            self.subscription = self
                .client
                .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
                    since: self.since,
                })
                .await?;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! The follower against a scripted kromad on a temporary socket: the daemon itself is out of
    //! reach here (nothing depends on it); `tests/e2e/events.rs` follows the real one.

    use std::path::Path;

    use protocol::Subscription;
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    use super::*;

    /// What the scripted daemon does after it has sent one subscription's events.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Then {
        /// Ends the subscription, as the client's own end of a lagging one looks to the follower.
        EndSubscription,
        /// Keeps the subscription open.
        Wait,
        /// Closes the whole connection, as a daemon that exits does.
        Hangup,
    }

    /// One subscription of the script: the ids of the events to send, and what comes after.
    struct Step {
        events: Vec<(u64, &'static str)>,
        then: Then,
    }

    /// Serves one connection: the n-th `events.subscribe` gets step n. Returns the `since` of
    /// every subscribe it received, once the client hangs up (or the script says to).
    async fn scripted_daemon(listener: UnixListener, script: Vec<Step>) -> Vec<Option<u64>> {
        let (stream, _) = listener.accept().await.expect("a client connects");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut since_seen = Vec::new();
        let mut steps = script.into_iter();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).expect("a JSON request");
            let id = request["id"].clone();
            if request["method"] != protocol::events::Subscribe::NAME {
                // `events.unsubscribe` of a subscription the client dropped, often as it hangs up:
                // the answer may find the connection closed.
                let answer = json!({"jsonrpc": "2.0", "id": id, "result": true});
                let _ = send(&mut write, &answer).await;
                continue;
            }
            since_seen.push(request["params"]["since"].as_u64());
            let subscription = format!("s{}", since_seen.len());
            send(
                &mut write,
                &json!({"jsonrpc": "2.0", "id": id, "result": subscription}),
            )
            .await
            .expect("write");
            let Some(step) = steps.next() else {
                continue;
            };
            for (event_id, kind) in step.events {
                let event = json!({"id": event_id, "at": "", "kind": kind, "data": {}});
                let params = json!({"subscription": subscription, "result": event});
                let notification = protocol::events::Subscribe::NOTIFICATION;
                send(
                    &mut write,
                    &json!({"jsonrpc": "2.0", "method": notification, "params": params}),
                )
                .await
                .expect("write");
            }
            match step.then {
                Then::EndSubscription => {
                    let error = json!({"code": -32000, "message": "ended"});
                    let params = json!({"subscription": subscription, "error": error});
                    let notification = protocol::events::Subscribe::NOTIFICATION;
                    send(
                        &mut write,
                        &json!({"jsonrpc": "2.0", "method": notification, "params": params}),
                    )
                    .await
                    .expect("write");
                }
                Then::Wait => {}
                Then::Hangup => return since_seen,
            }
        }
        since_seen
    }

    async fn send(
        write: &mut tokio::net::unix::OwnedWriteHalf,
        message: &Value,
    ) -> std::io::Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        write.write_all(line.as_bytes()).await
    }

    /// Starts the scripted daemon on a socket in `folder` and connects a client to it.
    async fn connect(
        folder: &Path,
        script: Vec<Step>,
    ) -> (Client, tokio::task::JoinHandle<Vec<Option<u64>>>) {
        let socket = folder.join("kromad.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let daemon = tokio::spawn(scripted_daemon(listener, script));
        let client = Client::connect(&socket).await.expect("connect");
        (client, daemon)
    }

    async fn ids(follower: &mut EventFollower<'_>, n: usize) -> Vec<u64> {
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(follower.next().await.expect("an event").id);
        }
        ids
    }

    #[tokio::test]
    async fn subscribes_again_after_the_last_event_it_returned() {
        let folder = tempfile::tempdir().expect("temp dir");
        let script = vec![
            Step {
                events: vec![(8, "project.created"), (9, "asset.imported")],
                then: Then::EndSubscription,
            },
            Step {
                events: vec![],
                then: Then::EndSubscription,
            },
            Step {
                events: vec![(10, "project.updated")],
                then: Then::Wait,
            },
        ];
        let (client, daemon) = connect(folder.path(), script).await;
        let mut follower = EventFollower::start(&client, Some(7)).await.expect("start");
        assert_eq!(ids(&mut follower, 3).await, [8, 9, 10]);
        drop(follower);
        drop(client);
        assert_eq!(
            daemon.await.expect("daemon task"),
            [Some(7), Some(9), Some(9)]
        );
    }

    #[tokio::test]
    async fn a_live_follower_resumes_after_what_it_saw() {
        let folder = tempfile::tempdir().expect("temp dir");
        let script = vec![
            Step {
                events: vec![(41, "run.started")],
                then: Then::EndSubscription,
            },
            Step {
                events: vec![(42, "run.finished")],
                then: Then::Wait,
            },
        ];
        let (client, daemon) = connect(folder.path(), script).await;
        let mut follower = EventFollower::start(&client, None).await.expect("start");
        assert_eq!(ids(&mut follower, 2).await, [41, 42]);
        drop(follower);
        drop(client);
        assert_eq!(daemon.await.expect("daemon task"), [None, Some(41)]);
    }

    #[tokio::test]
    async fn the_stream_ends_with_the_daemon_stopping() {
        let folder = tempfile::tempdir().expect("temp dir");
        let script = vec![Step {
            events: vec![(5, protocol::events::kind::DAEMON_STOPPING)],
            then: Then::EndSubscription,
        }];
        let (client, daemon) = connect(folder.path(), script).await;
        let mut follower = EventFollower::start(&client, Some(4)).await.expect("start");
        assert_eq!(ids(&mut follower, 1).await, [5]);
        let err = follower.next().await.expect_err("the end of the stream");
        assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
        drop(follower);
        drop(client);
        assert_eq!(
            daemon.await.expect("daemon task"),
            [Some(4)],
            "no new subscription after daemon.stopping"
        );
    }

    #[tokio::test]
    async fn a_closed_connection_ends_the_stream() {
        let folder = tempfile::tempdir().expect("temp dir");
        let script = vec![Step {
            events: vec![(3, "project.created")],
            then: Then::Hangup,
        }];
        let (client, daemon) = connect(folder.path(), script).await;
        let mut follower = EventFollower::start(&client, None).await.expect("start");
        assert_eq!(ids(&mut follower, 1).await, [3]);
        let err = follower.next().await.expect_err("the end of the stream");
        // The subscription and the connection end together; which the follower notices first
        // decides between the two errors, both of which say that kromad went away.
        assert!(
            matches!(
                err,
                ClientError::Disconnected { .. } | ClientError::ClosedBeforeAnswer { .. }
            ),
            "{err:?}"
        );
        assert_eq!(daemon.await.expect("daemon task"), [None]);
    }
}
