//! The `events.subscribe` subscription.

use jsonrpsee::RpcModule;
use kroma_protocol as protocol;
use protocol::Subscription;
use tokio::sync::broadcast::error::RecvError;

use super::parse_params;
use crate::Daemon;
use crate::server::wire::ToWire;
use crate::store;

/// How many events a replay reads from the database at a time.
const REPLAY_PAGE: u32 = 500;

/// `events.subscribe`: replay from the database, then follow the broadcast channel. The channel
/// is joined before the replay is read, and ids already sent are skipped, so no event is lost or
/// repeated between the two. A subscriber that falls behind the channel re-reads the database
/// from the last event it was sent (for a live-only one, at least from when it subscribed).
pub fn register_events_subscription(module: &mut RpcModule<Daemon>) {
    type Sub = protocol::events::Subscribe;
    let result = module.register_subscription(
        Sub::NAME,
        Sub::NOTIFICATION,
        Sub::UNSUBSCRIBE,
        |params, pending, daemon, _| async move {
            let params = match parse_params::<<Sub as Subscription>::Params>(params.as_str()) {
                Ok(params) => params,
                Err(err) => {
                    pending.reject(err.to_rpc()).await;
                    return Ok(());
                }
            };
            // A live-only subscription starts after the newest event stored now: read before
            // joining the channel, then caught up once after joining, so nothing committed in
            // between is lost, and a subscriber that lags never gets the whole history.
            let since = match params.since {
                Some(since) => since,
                None => match daemon
                    .store
                    .read(|conn| store::list_events(conn, u64::MAX, 1))
                    .await
                {
                    Ok((_, newest)) => newest,
                    Err(err) => {
                        pending
                            .reject(crate::error::Problem::from(err).to_rpc())
                            .await;
                        return Ok(());
                    }
                },
            };
            let mut live = daemon.store.subscribe();
            let sink = pending.accept().await?;
            let mut last_sent = replay(&daemon, &sink, since).await?;
            loop {
                let received = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    received = live.recv() => received,
                    _ = daemon.shutdown.cancelled() => {
                        // Deliver what is already committed (e.g. daemon.stopping), then end.
                        while let Ok(event) = live.try_recv() {
                            if event.id > last_sent {
                                send_event(&sink, &event).await?;
                                last_sent = event.id;
                            }
                        }
                        return Ok(());
                    }
                };
                match received {
                    Ok(event) if event.id > last_sent => {
                        send_event(&sink, &event).await?;
                        last_sent = event.id;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        last_sent = replay(&daemon, &sink, last_sent).await?
                    }
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
        },
    );
    if let Err(err) = result {
        unreachable!("events.subscribe registered twice: {err}");
    }
}

/// Sends every stored event after `since`; returns the id of the last one sent.
async fn replay(
    daemon: &Daemon,
    sink: &jsonrpsee::SubscriptionSink,
    since: u64,
) -> Result<u64, jsonrpsee::core::SubscriptionError> {
    let mut last = since;
    loop {
        let (events, _) = daemon
            .store
            .read(move |conn| store::list_events(conn, last, REPLAY_PAGE))
            .await
            .map_err(|err| err.to_string())?;
        let Some(newest) = events.last().map(|event| event.id) else {
            return Ok(last);
        };
        for event in &events {
            send_event(sink, event).await?;
        }
        last = newest;
    }
}

async fn send_event(
    sink: &jsonrpsee::SubscriptionSink,
    event: &protocol::events::Event,
) -> Result<(), jsonrpsee::core::SubscriptionError> {
    let message = serde_json::value::to_raw_value(event).map_err(|err| err.to_string())?;
    sink.send(message).await.map_err(|err| err.to_string())?;
    Ok(())
}
