//! Many clients at once through the real client library.

use kroma_protocol as protocol;
use kroma_tests::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_times_five_hundred_calls_without_an_error() {
    let daemon = Daemon::start();
    let mut workers = Vec::new();
    for client_idx in 0..64 {
        let client = daemon.client().await;
        workers.push(tokio::spawn(async move {
            for call_idx in 0..500 {
                // Mostly reads, with a write now and then so the store is exercised too.
                if call_idx == 250 {
                    let project = client
                        .call::<protocol::project::Create>(&protocol::project::CreateParams {
                            name: format!("Client {client_idx}"),
                            slug: None,
                            description: None,
                            root: None,
                            s3: None,
                        })
                        .await?;
                    assert_eq!(project.slug, format!("client-{client_idx}"));
                } else {
                    let version = client
                        .call::<protocol::daemon::Version>(&protocol::NoParams {})
                        .await?;
                    assert_eq!(version.protocol_version, protocol::PROTOCOL_VERSION);
                }
            }
            Ok::<_, kroma_client::ClientError>(())
        }));
    }
    for worker in workers {
        worker.await.expect("worker").expect("every call succeeds");
    }
    let client = daemon.client().await;
    let list = client
        .call::<protocol::project::List>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(list.projects.len(), 64);
}
