//! The event log: replay with `since`, live follow, and no event lost or repeated in between,
//! also across a restart.

use std::time::Duration;

use kroma_protocol as protocol;
use kroma_tests::Daemon;

fn create(name: String) -> protocol::project::CreateParams {
    protocol::project::CreateParams {
        name,
        slug: None,
        description: None,
        root: None,
        s3: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_every_event_once_in_order_while_writes_race_the_replay() {
    let daemon = Daemon::start();
    let writer = daemon.client().await;
    for idx in 0..50 {
        writer
            .call::<protocol::project::Create>(&create(format!("Before {idx}")))
            .await
            .unwrap();
    }
    // Writers keep going while subscribers join at different points.
    let writing = tokio::spawn(async move {
        for idx in 0..150 {
            writer
                .call::<protocol::project::Create>(&create(format!("During {idx}")))
                .await
                .unwrap();
        }
    });
    let mut subscribers = Vec::new();
    for since in [0, 10, 40] {
        let client = daemon.client().await;
        let subscription = client
            .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
                since: Some(since),
            })
            .await
            .unwrap();
        subscribers.push((since, client, subscription));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writing.await.unwrap();
    let total = 1 + 50 + 150; // daemon.started + creates
    for (since, _client, mut subscription) in subscribers {
        let mut ids = Vec::new();
        while ids.len() < (total - since) as usize {
            let event = tokio::time::timeout(Duration::from_secs(20), subscription.next())
                .await
                .expect("no event is missing")
                .expect("stream open")
                .unwrap();
            ids.push(event.id);
        }
        let expected: Vec<u64> = (since + 1..=total).collect();
        assert_eq!(ids, expected, "subscriber since {since}");
    }
}

#[tokio::test]
async fn live_only_subscription_and_replay_across_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    let mut live = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await
        .unwrap();
    client
        .call::<protocol::project::Create>(&create("Live One".into()))
        .await
        .unwrap();
    let event = live.next().await.unwrap().unwrap();
    assert_eq!(event.kind, "project.created");
    assert_eq!(event.project.as_deref(), Some("live-one"));
    let seen = event.id;
    drop(live);
    drop(client);
    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(status.success());

    let daemon = Daemon::start_in(temp.path(), &[]);
    let client = daemon.client().await;
    client
        .call::<protocol::project::Create>(&create("After Restart".into()))
        .await
        .unwrap();
    let mut replay = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: Some(seen),
        })
        .await
        .unwrap();
    let mut kinds = Vec::new();
    let mut last = seen;
    for _ in 0..3 {
        let event = replay.next().await.unwrap().unwrap();
        assert!(event.id > last, "ids keep increasing across the restart");
        last = event.id;
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        ["daemon.stopping", "daemon.started", "project.created"]
    );
    let page = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: Some(seen),
            limit: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 2);
    assert_eq!(page.last_id, last);
}

#[tokio::test]
async fn bad_subscription_params_are_refused() {
    let daemon = Daemon::start();
    let mut raw = daemon.raw();
    let answer = raw.call_json(
        r#"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"since":"yesterday"}}"#,
    );
    assert_eq!(
        answer["error"]["data"]["code"], "invalid_params",
        "{answer}"
    );
    let answer =
        raw.call_json(r#"{"jsonrpc":"2.0","id":2,"method":"events.list","params":{"limit":5000}}"#);
    assert_eq!(answer["error"]["data"]["code"], "invalid_limit", "{answer}");
}
