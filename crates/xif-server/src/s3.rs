//! Archives in an S3-compatible object store (AWS S3, MinIO, Ceph, …) through the
//! `object_store` crate, which signs requests, retries, and streams multipart uploads: a
//! client of its own here would redo all of that.
//!
//! Blobs are the objects `sha256/<digest>`. An upload streams to `staging/<random>` as a
//! multipart upload with a bounded number of parts in flight; once complete it is copied to its
//! digest's key and the staging object deleted. An upload that fails or is dropped is aborted,
//! so that the store keeps none of its parts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};

use crate::store::{BlobRead, BlobStore, BlobUpload, StoreError, is_sha256};

/// The size of each part of a multipart upload (S3 wants at least 5 MiB but for the last).
const PART_SIZE: usize = 8 << 20;

/// How many parts of one upload are sent at once: what an upload holds in memory is about this
/// many parts.
const PARTS_IN_FLIGHT: usize = 3;

/// How long one request to the store may take, a part of an upload included (8 MiB in 30
/// seconds is 280 KB/s), and how long a download may wait for its answer or its next bytes: a
/// store that hangs is told to the client as unavailable (503) within about this, rather than
/// holding the request for minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The blob store in an S3 bucket.
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    /// The same bucket without a time limit on a whole request, for downloads, whose bodies
    /// take as long as they take: [`REQUEST_TIMEOUT`] bounds the wait for the answer and for
    /// each next piece instead.
    downloads: Arc<dyn ObjectStore>,
    /// `s3://BUCKET at ENDPOINT`, for messages: never a credential.
    name: String,
}

/// Where the store is, as read from `s3://BUCKET?endpoint=…&region=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl Location {
    /// Reads `s3://BUCKET?endpoint=URL&region=REGION` (both optional: AWS itself, and the
    /// region from the environment, by default).
    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        let refused = |why: &str| {
            // The text itself is not quoted: it may hold a credential by mistake.
            StoreError(format!(
                "the blob store URL is not valid: {why}; write `s3://BUCKET?endpoint=URL&region=REGION` \
                 (credentials come from the AWS environment variables, never the URL)"
            ))
        };
        let url = url::Url::parse(text).map_err(|error| refused(&format!("it is not a URL ({error})")))?;
        if url.scheme() != "s3" {
            return Err(refused("only `s3://` is known"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused("it holds credentials"));
        }
        let bucket = url.host_str().filter(|bucket| !bucket.is_empty()).ok_or_else(|| refused("it names no bucket"))?;
        if !matches!(url.path(), "" | "/") {
            return Err(refused("a bucket has no path"));
        }
        let mut location = Location { bucket: bucket.to_owned(), endpoint: None, region: None };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "endpoint" => {
                    let endpoint = url::Url::parse(&value).map_err(|_| refused("its endpoint is not a URL"))?;
                    if !matches!(endpoint.scheme(), "http" | "https") {
                        return Err(refused("its endpoint is not http or https"));
                    }
                    if !endpoint.username().is_empty() || endpoint.password().is_some() {
                        return Err(refused("its endpoint holds credentials"));
                    }
                    location.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" => location.region = Some(value.into_owned()),
                other => {
                    return Err(refused(&format!("`{other}` is not a setting (only `endpoint` and `region` are)")));
                }
            }
        }
        Ok(location)
    }

    fn name(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("s3://{} at {endpoint}", self.bucket),
            None => format!("s3://{} on AWS", self.bucket),
        }
    }
}

impl S3Blobs {
    /// Connects to the bucket `url` names (`s3://BUCKET?endpoint=URL&region=REGION`, both settings
    /// optional: AWS itself, and the region from the environment), with credentials from the
    /// AWS environment variables (or, without them, the instance metadata service, as
    /// object_store does), and checks that it can be listed: a store that cannot be
    /// reached is refused now rather than at the first upload.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let location = Location::parse(url)?;
        let name = location.name();
        let options = object_store::ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(location.endpoint.as_deref().is_some_and(|endpoint| endpoint.starts_with("http:")));
        let store = Self::builder(&location, options.clone().with_timeout(REQUEST_TIMEOUT))
            .build()
            .map_err(|error| StoreError(format!("{name}: {}", quiet(&error))))?;
        let downloads = Self::builder(&location, options.with_timeout_disabled())
            .build()
            .map_err(|error| StoreError(format!("{name}: {}", quiet(&error))))?;
        let blobs = Self { store: Arc::new(store), downloads: Arc::new(downloads), name };
        if let Err(error) = blobs.store.list_with_delimiter(Some(&Key::from("sha256"))).await {
            return Err(blobs.first_contact(&location.bucket, &error));
        }
        Ok(blobs)
    }

    /// A client of `location`'s bucket with `options`.
    fn builder(location: &Location, options: object_store::ClientOptions) -> object_store::aws::AmazonS3Builder {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            // A store that is down is told to the client within seconds, not after minutes of
            // retries: the client retries the upload.
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            });
        if let Some(endpoint) = &location.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &location.region {
            builder = builder.with_region(region);
        }
        builder
    }

    /// The failure of the first request to the store, said in words an operator acts on when
    /// it is a usual mistake (a bucket not made yet, no credentials, refused credentials), with
    /// the store's own text after.
    fn first_contact(&self, bucket: &str, error: &object_store::Error) -> StoreError {
        let failure = self.error(error);
        let text = quiet(error);
        let has_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        let hint = if text.contains("NoSuchBucket") {
            format!("the bucket `{bucket}` does not exist: create it first, then start the server again")
        } else if text.contains("169.254.169.254") && !has_keys {
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the server's environment \
             (no instance credentials were found either)"
                .to_owned()
        } else if ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"].iter().any(|code| text.contains(code))
        {
            "the store refused the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: check them, \
             and that they may list and write the bucket"
                .to_owned()
        } else {
            return failure;
        };
        let detail = format!("{}: {hint}", self.name);
        if failure.is_unavailable() { StoreError::unavailable(detail) } else { StoreError(detail) }
    }

    fn key(sha256: &str) -> Result<Key, StoreError> {
        if !is_sha256(sha256) {
            return Err(StoreError(format!("`{sha256}` is not a SHA-256")));
        }
        Ok(Key::from(format!("sha256/{}", sha256.to_ascii_lowercase())))
    }

    fn error(&self, error: &object_store::Error) -> StoreError {
        failure(&self.name, error)
    }
}

/// A store failure as a [`StoreError`] naming the store: unavailable when the store could not be
/// reached or answered that it cannot serve now (5xx), so that the client is told to retry.
fn failure(name: &str, error: &object_store::Error) -> StoreError {
    let detail = format!("{name}: {}", quiet(error));
    if unreachable(error) { StoreError::unavailable(detail) } else { StoreError(detail) }
}

fn unreachable(error: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(http) = error.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            );
        }
        if error.to_string().starts_with("Server returned non-2xx status code: 5") {
            return true;
        }
        source = error.source();
    }
    false
}

/// The error's text, which names what failed and never holds credentials (requests are signed
/// in headers, which errors do not quote).
fn quiet(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, StoreError> {
        let staged = Key::from(format!(
            "staging/{}",
            crate::auth::random_secret("").map_err(|_| StoreError("no randomness for an upload's name".into()))?
        ));
        let upload = self.store.put_multipart(&staged).await.map_err(|error| self.error(&error))?;
        Ok(Box::new(S3Upload {
            store: Arc::clone(&self.store),
            name: self.name.clone(),
            staged,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
        }))
    }

    async fn open(&self, sha256: &str) -> Result<Option<BlobRead>, StoreError> {
        let key = Self::key(sha256)?;
        let silent = |name: &str, what: &str| {
            StoreError::unavailable(format!("{name}: no {what} within {} seconds", REQUEST_TIMEOUT.as_secs()))
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.downloads.get(&key))
            .await
            .map_err(|_| silent(&self.name, "answer"))?;
        match answer {
            Ok(result) => {
                let name = self.name.clone();
                let size = result.meta.size;
                // Each next piece within the time limit; after an error, nothing more.
                let chunks = result.into_stream();
                let stream = futures_util::stream::unfold(Some(chunks), move |chunks| {
                    let name = name.clone();
                    async move {
                        let mut chunks = chunks?;
                        match tokio::time::timeout(REQUEST_TIMEOUT, chunks.next()).await {
                            Ok(None) => None,
                            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
                            Ok(Some(Err(error))) => Some((Err(failure(&name, &error)), None)),
                            Err(_) => Some((Err(silent(&name, "data")), None)),
                        }
                    }
                });
                Ok(Some(BlobRead { size, stream: stream.boxed() }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(&error)),
        }
    }

    async fn exists(&self, sha256: &str) -> Result<bool, StoreError> {
        match self.store.head(&Self::key(sha256)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(self.error(&error)),
        }
    }
}

/// A multipart upload to `staging/<random>`, aborted on drop unless committed.
struct S3Upload {
    store: Arc<dyn ObjectStore>,
    name: String,
    staged: Key,
    writer: Option<WriteMultipart>,
}

impl S3Upload {
    /// Aborts the multipart upload, keeping its error from being lost in a log line.
    async fn abort(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(error) = writer.abort().await
        {
            tracing::warn!(store = %self.name, key = %self.staged, error = %quiet(&error), "cannot abort a multipart upload");
        }
    }
}

#[async_trait]
impl BlobUpload for S3Upload {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(StoreError("storage: the upload has failed".into()));
        };
        // Back pressure: at most this many parts are in flight, so memory stays bounded
        // whatever the size of the upload.
        match writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            Ok(()) => {
                writer.put(bytes);
                Ok(())
            }
            Err(error) => {
                let error = failure(&self.name, &error);
                self.abort().await;
                Err(error)
            }
        }
    }

    async fn commit(mut self: Box<Self>, sha256: &str) -> Result<(), StoreError> {
        let key = S3Blobs::key(sha256)?;
        let Some(writer) = self.writer.take() else { return Err(StoreError("storage: the upload has failed".into())) };
        // `finish` aborts the multipart upload itself when completing it fails.
        writer.finish().await.map_err(|error| failure(&self.name, &error))?;
        let copied = match self.store.head(&key).await {
            // The same bytes are stored already.
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => self.store.copy(&self.staged, &key).await,
            Err(error) => Err(error),
        };
        let deleted = self.store.delete(&self.staged).await;
        copied.map_err(|error| failure(&self.name, &error))?;
        if let Err(error) = deleted {
            tracing::warn!(store = %self.name, key = %self.staged, error = %quiet(&error), "cannot delete a staged upload");
        }
        Ok(())
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else { return };
        let (name, staged) = (self.name.clone(), self.staged.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = writer.abort().await {
                        tracing::warn!(store = %name, key = %staged, error = %quiet(&error), "cannot abort a multipart upload");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(store = %name, key = %staged, "a multipart upload was left: no runtime to abort it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn locations_are_read_and_refused() {
        let location = Location::parse("s3://xif?endpoint=http://127.0.0.1:9000/&region=us-east-1").expect("read");
        assert_eq!(location.bucket, "xif");
        assert_eq!(location.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(location.region.as_deref(), Some("us-east-1"));
        assert!(Location::parse("s3://xif").expect("read").endpoint.is_none());
        for bad in [
            "gs://xif",
            "s3://",
            "s3://key:secret@xif",
            "s3://xif/path",
            "s3://xif?acl=private",
            "s3://xif?endpoint=ftp://host",
            "s3://xif?endpoint=http://key:secret@host",
        ] {
            let error = Location::parse(bad).expect_err(bad).to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
