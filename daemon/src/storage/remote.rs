//! The bucket side of a sync, over `aws-sdk-s3` (no aws-config: nothing is read from the
//! environment or `~/.aws`): the client from a project's settings and keys, what went wrong as a
//! [`Fault`], and each call a sync makes. Every upload carries its SHA-256 twice: as the
//! checksum the store verifies (`x-amz-checksum-sha256`) and as metadata `sha256` (hex) that a
//! later plan reads back with a HEAD, the same for single and multipart objects.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use kroma_protocol::project::ChecksumMode;
use secrecy::{ExposeSecret, SecretString};

use crate::projects::rules::S3Settings;

/// The metadata key holding an object's hex sha256 (`x-amz-meta-sha256` on the wire).
pub const META_SHA256: &str = "sha256";
/// Files above this size go up in parts.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The size of every part but the last (S3 wants at least 5 MiB).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// What went wrong with a call, in the terms a person fixes it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The keys were refused: unknown access key, wrong secret key.
    Auth,
    /// Access denied: to everything when the call was about the bucket, to one object otherwise.
    Denied,
    NoSuchBucket,
    /// The request's time is too far from the store's.
    ClockSkew,
    /// Nothing answered: no network, wrong endpoint, server down, a timeout.
    Unreachable,
    /// No such key or upload.
    NotFound,
    /// The store does not implement the call.
    Unsupported,
    Other,
}

impl Fault {
    /// A fault every later call would meet too: the sync stops instead of failing each object.
    pub fn stops_the_sync(self) -> bool {
        matches!(
            self,
            Fault::Auth | Fault::NoSuchBucket | Fault::ClockSkew | Fault::Unreachable
        )
    }
}

/// An S3 call that failed.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub fault: Fault,
    /// The store's error code, `HTTP <status>` when it sent none, or `unreachable`.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Names a fault from the store's error code and the HTTP status (a HEAD answer has no body and
/// so no code). Pure.
pub fn classify(code: Option<&str>, status: Option<u16>) -> Fault {
    match (code, status) {
        (
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "NotSignedUp"
                | "InvalidToken"
                | "ExpiredToken"
                | "InvalidSecurity",
            ),
            _,
        ) => Fault::Auth,
        (Some("AccessDenied" | "AllAccessDisabled"), _) => Fault::Denied,
        (Some("NoSuchBucket"), _) => Fault::NoSuchBucket,
        (Some("RequestTimeTooSkewed" | "RequestExpired"), _) => Fault::ClockSkew,
        (Some("NoSuchKey" | "NotFound" | "NoSuchUpload"), _) => Fault::NotFound,
        (Some("NotImplemented"), _) => Fault::Unsupported,
        (None, Some(403)) => Fault::Denied,
        (None, Some(404)) => Fault::NotFound,
        (None, Some(501)) => Fault::Unsupported,
        _ => Fault::Other,
    }
}

fn from_sdk<E>(err: SdkError<E>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => S3Error {
            fault: Fault::Unreachable,
            code: "unreachable".into(),
            message,
        },
        SdkError::ServiceError(service) => {
            let status = Some(service.raw().status().as_u16());
            let code = err.code().map(str::to_owned);
            S3Error {
                fault: classify(code.as_deref(), status),
                code: code.unwrap_or_else(|| match status {
                    Some(status) => format!("HTTP {status}"),
                    None => "unknown".into(),
                }),
                message: match err.message() {
                    Some(text) => text.to_owned(),
                    // A HEAD answer has no body: the status is all there is to say.
                    None if status.is_some() => "the store sent no error body".to_owned(),
                    None => message,
                },
            }
        }
        _ => S3Error {
            fault: Fault::Other,
            code: "client".into(),
            message,
        },
    }
}

fn local(message: impl std::fmt::Display) -> S3Error {
    S3Error {
        fault: Fault::Other,
        code: "io".into(),
        message: message.to_string(),
    }
}

/// The two keys, read from the secret store.
pub struct Keys {
    pub access_key: SecretString,
    pub secret_key: SecretString,
}

/// A client for one project's bucket.
pub struct Bucket {
    client: Client,
    pub name: String,
    /// The endpoint as configured (`""` for AWS).
    pub endpoint: String,
}

impl Bucket {
    /// A client for the settings' bucket that signs with `keys` at `clock`'s time.
    pub fn new(settings: &S3Settings, keys: &Keys, clock: crate::clock::Clock) -> Bucket {
        let credentials = Credentials::new(
            keys.access_key.expose_secret(),
            keys.secret_key.expose_secret(),
            None,
            None,
            "kroma-secrets",
        );
        let (request, response) = match settings.checksum_mode {
            ChecksumMode::WhenRequired => (
                RequestChecksumCalculation::WhenRequired,
                ResponseChecksumValidation::WhenRequired,
            ),
            ChecksumMode::WhenSupported => (
                RequestChecksumCalculation::WhenSupported,
                ResponseChecksumValidation::WhenSupported,
            ),
        };
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(
                settings
                    .region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".into()),
            ))
            .credentials_provider(credentials)
            .time_source(clock)
            .force_path_style(settings.path_style())
            .request_checksum_calculation(request)
            .response_checksum_validation(response)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Bucket {
            client: Client::from_conf(config.build()),
            name: settings.bucket.clone(),
            endpoint: settings.endpoint.clone().unwrap_or_default(),
        }
    }

    /// The cheapest authenticated call: does the bucket exist, and do the keys open it? A HEAD
    /// answer has no body and so no error code; a refused one is asked again as a one-key
    /// listing, whose answer names the cause (wrong keys, a wrong clock, no bucket).
    pub async fn check(&self) -> Result<(), S3Error> {
        // About the bucket, "not found" is the bucket.
        let bucket_fault = |err: S3Error| match err.fault {
            Fault::NotFound => S3Error {
                fault: Fault::NoSuchBucket,
                ..err
            },
            _ => err,
        };
        let head = self.client.head_bucket().bucket(&self.name).send().await;
        let err = match head.map_err(from_sdk) {
            Ok(_) => return Ok(()),
            Err(err) if err.code.starts_with("HTTP ") => err,
            Err(err) => return Err(bucket_fault(err)),
        };
        tracing::debug!(%err, "HeadBucket failed without a code; listing to learn why");
        self.client
            .list_objects_v2()
            .bucket(&self.name)
            .max_keys(1)
            .send()
            .await
            .map_err(|err| bucket_fault(from_sdk(err)))?;
        Ok(())
    }

    /// Every object under `prefix`: key → size. Stops past `max` objects.
    pub async fn list(&self, prefix: &str, max: usize) -> Result<BTreeMap<String, u64>, S3Error> {
        let mut objects = BTreeMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.map_err(from_sdk)?.contents() {
                if let Some(key) = object.key() {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    objects.insert(key.to_owned(), size);
                }
            }
            if objects.len() > max {
                return Err(S3Error {
                    fault: Fault::Other,
                    code: "too_many_objects".into(),
                    message: format!("more than {max} objects under `{prefix}`"),
                });
            }
        }
        Ok(objects)
    }

    /// The hex sha256 kromad stored with the object, if it carries one.
    pub async fn sha256_of(&self, key: &str) -> Result<Option<String>, S3Error> {
        let head = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(head
            .metadata()
            .and_then(|metadata| metadata.get(META_SHA256))
            .cloned())
    }

    /// One PutObject of a whole file with its sha256 (hex) and its raw digest in base64.
    pub async fn put(&self, key: &str, path: &Path, sha256: &str) -> Result<(), S3Error> {
        let body = ByteStream::from_path(path).await.map_err(local)?;
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .checksum_sha256(hex_to_b64(sha256))
            .metadata(META_SHA256, sha256)
            .body(body)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    pub async fn create_upload(&self, key: &str, sha256: &str) -> Result<String, S3Error> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata(META_SHA256, sha256)
            .send()
            .await
            .map_err(from_sdk)?;
        created
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| local("the store answered a multipart upload without an upload id"))
    }

    /// Sends one part (`offset`, `len` of the file) with its checksum; answers its ETag.
    pub async fn upload_part(
        &self,
        part: &Part<'_>,
        path: &Path,
        sha256_b64: &str,
    ) -> Result<String, S3Error> {
        let body = ByteStream::read_from()
            .path(path)
            .offset(part.offset)
            .length(Length::Exact(part.len))
            .build()
            .await
            .map_err(local)?;
        let sent = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(part.key)
            .upload_id(part.upload_id)
            .part_number(part.number)
            .content_length(part.len as i64)
            .checksum_sha256(sha256_b64)
            .body(body)
            .send()
            .await
            .map_err(from_sdk)?;
        sent.e_tag()
            .map(str::to_owned)
            .ok_or_else(|| local("the store answered a part without an ETag"))
    }

    /// Part number → size of the parts the store holds for an upload; `None` when the store
    /// does not list parts.
    pub async fn parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<BTreeMap<i32, u64>>, S3Error> {
        let mut held = BTreeMap::new();
        let mut items = self
            .client
            .list_parts()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .into_paginator()
            .items()
            .send();
        while let Some(part) = items.next().await {
            match part.map_err(from_sdk) {
                Ok(part) => {
                    held.insert(
                        part.part_number().unwrap_or(0),
                        part.size().unwrap_or(0).max(0) as u64,
                    );
                }
                Err(err) if err.fault == Fault::Unsupported => return Ok(None),
                Err(err) => return Err(err),
            }
        }
        Ok(Some(held))
    }

    /// Completes an upload from its parts: number → (ETag, base64 sha256), ascending.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &crate::store::storage::Parts,
    ) -> Result<(), S3Error> {
        let parts = parts
            .iter()
            .map(|(number, (etag, sha256))| {
                CompletedPart::builder()
                    .part_number(*number)
                    .e_tag(etag)
                    .checksum_sha256(sha256)
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    /// Aborts an upload; one the store no longer knows is fine.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(from_sdk)
        {
            Ok(_) => Ok(()),
            Err(err) if err.fault == Fault::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Streams an object into `incoming`; answers the sha256 the object carries, if any.
    pub async fn get(
        &self,
        key: &str,
        incoming: &mut super::local::Incoming,
    ) -> Result<Option<String>, S3Error> {
        let mut object = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(from_sdk)?;
        let sha256 = object
            .metadata()
            .and_then(|metadata| metadata.get(META_SHA256))
            .cloned();
        while let Some(chunk) = object.body.try_next().await.map_err(|err| S3Error {
            fault: Fault::Unreachable,
            code: "unreachable".into(),
            message: format!("reading the object: {}", DisplayErrorContext(&err)),
        })? {
            incoming.write(&chunk).map_err(local)?;
        }
        Ok(sha256)
    }

    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }
}

/// One part of a multipart upload.
pub struct Part<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
    pub number: i32,
    pub offset: u64,
    pub len: u64,
}

/// The parts a file of `size` bytes is sent in: number, offset, length.
pub fn parts_of(size: u64) -> Vec<(i32, u64, u64)> {
    let count = size.div_ceil(PART_SIZE).max(1);
    (0..count)
        .map(|index| {
            let offset = index * PART_SIZE;
            (index as i32 + 1, offset, PART_SIZE.min(size - offset))
        })
        .collect()
}

/// The base64 of the raw digest a hex sha256 stands for (what `x-amz-checksum-sha256` carries).
pub fn hex_to_b64(hex: &str) -> String {
    let raw: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The base64 sha256 of `len` bytes of a file from `offset`.
pub fn part_sha256(path: &Path, offset: u64, len: u64) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut hasher = sha2::Sha256::new();
    let copied = std::io::copy(&mut file.take(len), &mut hasher)?;
    if copied != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file got shorter while it was being sent",
        ));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_named_from_code_and_status() {
        assert_eq!(
            classify(Some("SignatureDoesNotMatch"), Some(403)),
            Fault::Auth
        );
        assert_eq!(classify(Some("InvalidAccessKeyId"), Some(403)), Fault::Auth);
        assert_eq!(classify(Some("NotSignedUp"), Some(403)), Fault::Auth);
        assert_eq!(classify(Some("AccessDenied"), Some(403)), Fault::Denied);
        assert_eq!(classify(None, Some(403)), Fault::Denied);
        assert_eq!(
            classify(Some("NoSuchBucket"), Some(404)),
            Fault::NoSuchBucket
        );
        assert_eq!(classify(None, Some(404)), Fault::NotFound);
        assert_eq!(
            classify(Some("RequestTimeTooSkewed"), Some(403)),
            Fault::ClockSkew
        );
        assert_eq!(
            classify(Some("NotImplemented"), Some(501)),
            Fault::Unsupported
        );
        assert_eq!(classify(Some("SlowDown"), Some(503)), Fault::Other);
        assert!(Fault::ClockSkew.stops_the_sync());
        assert!(!Fault::Denied.stops_the_sync());
    }

    #[test]
    fn files_are_cut_into_parts_of_eight_mebibytes() {
        assert_eq!(parts_of(0), vec![(1, 0, 0)]);
        assert_eq!(parts_of(PART_SIZE), vec![(1, 0, PART_SIZE)]);
        assert_eq!(
            parts_of(2 * PART_SIZE + 3),
            vec![
                (1, 0, PART_SIZE),
                (2, PART_SIZE, PART_SIZE),
                (3, 2 * PART_SIZE, 3)
            ]
        );
    }

    #[test]
    fn hex_digests_become_base64() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            hex_to_b64(hex),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
