//! The S3 server as a client sees it: the AWS SDK's S3 client, configured as the daemon
//! configures it, against a server on a temporary folder. One test binary on purpose: each more
//! links aws-sdk-s3 again.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use kroma_s3_server::{Request, S3Server};

const ACCESS_KEY: &str = "kroma-test-access-key";
const SECRET_KEY: &str = "kroma-test-secret-key";
const BUCKET: &str = "kroma-test";
const MIB: usize = 1024 * 1024;
/// How long a test waits for something that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(5);

async fn start(root: &Path) -> S3Server {
    S3Server::start(root, ACCESS_KEY, SECRET_KEY).await.unwrap()
}

/// A client configured like the daemon's, without retries.
fn client(server: &S3Server, secret_key: &str) -> Client {
    let credentials = Credentials::new(ACCESS_KEY, secret_key, None, None, "kroma-test");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    Client::from_conf(config)
}

/// The S3 error code and HTTP status of a failed call.
fn refusal<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Option<String>, Option<u16>) {
    let status = err
        .raw_response()
        .map(|response| response.status().as_u16());
    (err.code().map(str::to_owned), status)
}

/// Deterministic bytes that do not compress.
fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = 0x9E37_79B9 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    response.body.collect().await.unwrap().to_vec()
}

#[tokio::test]
async fn objects_round_trip_and_every_request_is_counted() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path()).await;
    assert_eq!(
        server.endpoint(),
        format!("http://127.0.0.1:{}", server.addr().port())
    );
    let client = client(&server, SECRET_KEY);

    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    client.head_bucket().bucket(BUCKET).send().await.unwrap();
    put(&client, BUCKET, "dir/a b.txt", b"hello".to_vec()).await;
    let on_disk = std::fs::read(root.path().join(BUCKET).join("dir/a b.txt")).unwrap();
    assert_eq!(on_disk, b"hello");
    assert_eq!(get(&client, BUCKET, "dir/a b.txt").await, b"hello");
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("dir/a b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(5));
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/a b.txt"]);

    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("dir/a b.txt")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete)
        .send()
        .await
        .unwrap();
    client
        .delete_object()
        .bucket(BUCKET)
        .key("missing")
        .send()
        .await
        .unwrap();
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty());

    let created = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("abandoned")
        .send()
        .await
        .unwrap();
    client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key("abandoned")
        .upload_id(created.upload_id().unwrap())
        .send()
        .await
        .unwrap();

    let expected = [
        (Request::Other, 1), // CreateBucket
        (Request::HeadBucket, 1),
        (Request::PutObject, 1),
        (Request::GetObject, 1),
        (Request::HeadObject, 1),
        (Request::ListObjects, 2),
        (Request::DeleteObjects, 1),
        (Request::DeleteObject, 1),
        (Request::CreateMultipartUpload, 1),
        (Request::AbortMultipartUpload, 1),
        (Request::UploadPart, 0),
        (Request::CompleteMultipartUpload, 0),
    ];
    for (request, count) in expected {
        assert_eq!(server.count(request), count, "{request:?}");
    }
    assert!(server.parts_uploaded().is_empty());
}

#[tokio::test]
async fn a_denied_object_is_refused_and_no_other() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path()).await;
    let client = client(&server, SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    client
        .create_bucket()
        .bucket("kroma-other")
        .send()
        .await
        .unwrap();
    put(&client, BUCKET, "secret.png", b"before".to_vec()).await;
    server.deny(BUCKET, "secret.png");

    let err = client
        .get_object()
        .bucket(BUCKET)
        .key("secret.png")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), (Some("AccessDenied".to_owned()), Some(403)));
    let content_type = err
        .raw_response()
        .and_then(|response| response.headers().get("content-type"));
    assert_eq!(content_type, Some("application/xml"));

    // A request with a big body gets the answer too, not a closed connection.
    let err = client
        .put_object()
        .bucket(BUCKET)
        .key("secret.png")
        .body(ByteStream::from(data(4 * MIB, 1)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), (Some("AccessDenied".to_owned()), Some(403)));
    let err = client
        .head_object()
        .bucket(BUCKET)
        .key("secret.png")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&err).1, Some(403));
    let on_disk = std::fs::read(root.path().join(BUCKET).join("secret.png")).unwrap();
    assert_eq!(on_disk, b"before");

    put(&client, BUCKET, "secret.png.txt", b"a".to_vec()).await;
    put(&client, BUCKET, "dir/secret.png", b"b".to_vec()).await;
    put(&client, "kroma-other", "secret.png", b"c".to_vec()).await;
    assert_eq!(get(&client, "kroma-other", "secret.png").await, b"c");
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 3);

    assert_eq!(server.count(Request::GetObject), 2);
    assert_eq!(server.count(Request::PutObject), 5);
    assert_eq!(server.count(Request::HeadObject), 1);
}

#[tokio::test]
async fn a_held_multipart_upload_finishes_once_released() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path()).await;
    let client = client(&server, SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let file = data(11 * MIB, 2);
    let parts: Vec<Vec<u8>> = file.chunks(5 * MIB).map(<[u8]>::to_vec).collect();
    assert_eq!(parts.len(), 3);

    server.hold_parts_after(1);
    let upload = tokio::spawn({
        let client = client.clone();
        async move {
            let created = client
                .create_multipart_upload()
                .bucket(BUCKET)
                .key("big.bin")
                .send()
                .await?;
            let upload_id = created.upload_id().unwrap_or_default().to_owned();
            let mut completed = Vec::new();
            for (part_idx, part) in parts.into_iter().enumerate() {
                let part_number = i32::try_from(part_idx + 1).unwrap();
                let uploaded = client
                    .upload_part()
                    .bucket(BUCKET)
                    .key("big.bin")
                    .upload_id(&upload_id)
                    .part_number(part_number)
                    .body(ByteStream::from(part))
                    .send()
                    .await?;
                completed.push(
                    CompletedPart::builder()
                        .part_number(part_number)
                        .set_e_tag(uploaded.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            let completed = CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build();
            client
                .complete_multipart_upload()
                .bucket(BUCKET)
                .key("big.bin")
                .upload_id(&upload_id)
                .multipart_upload(completed)
                .send()
                .await?;
            Ok::<_, aws_sdk_s3::Error>(())
        }
    });

    tokio::time::timeout(PATIENCE, server.wait_until_held())
        .await
        .expect("the second part is held");
    assert_eq!(server.parts_uploaded(), [1]);
    assert_eq!(server.count(Request::UploadPart), 2);
    assert_eq!(server.count(Request::CompleteMultipartUpload), 0);
    // Still held a moment later: the gate does not leak.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!upload.is_finished());
    server.wait_until_held().await;

    server.release();
    tokio::time::timeout(PATIENCE, upload)
        .await
        .expect("the upload finishes once released")
        .unwrap()
        .unwrap();
    assert_eq!(server.parts_uploaded(), [1, 2, 3]);
    assert_eq!(server.count(Request::UploadPart), 3);
    assert_eq!(server.count(Request::CompleteMultipartUpload), 1);
    assert!(get(&client, BUCKET, "big.bin").await == file);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path()).await;
    client(&server, SECRET_KEY)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let intruder = client(&server, "not-the-secret");

    let err = intruder
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&err),
        (Some("SignatureDoesNotMatch".to_owned()), Some(403))
    );
    let err = intruder
        .head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&err).1, Some(403));
    assert_eq!(server.count(Request::ListObjects), 1);
    assert_eq!(server.count(Request::HeadBucket), 1);
}

#[tokio::test]
async fn a_missing_root_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let err = S3Server::start(&missing, ACCESS_KEY, SECRET_KEY)
        .await
        .err()
        .expect("a missing root is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[tokio::test]
async fn a_dropped_server_answers_no_more() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path()).await;
    let client = client(&server, SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    drop(server);
    // The aborted tasks end the next time the runtime gets to them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let result = client.head_bucket().bucket(BUCKET).send().await;
    assert!(result.is_err());
}
