//! The publication of a version, as one service that the HTTP handlers and the tests call: the
//! permission checks, the extension's lock (a guard with a lease), the impact on consumers, the
//! deploy, and the record.
//!
//! Two invariants hold on every path, whatever happens to the request that asked:
//! - the lock is released: on success, refusal and error by [`LockGuard::release`], and on a
//!   panic or a dropped future by the guard's `Drop`; a holder that died frees it when its lease
//!   runs out;
//! - the version that runs is the one recorded as published: the new version serves only after
//!   it started, and if recording the publication then fails, calls switch back to the version
//!   before.
//!
//! Callers run [`Publishing::publish`] as a task of its own, so that a client going away does not
//! stop a publication half-way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use xif_api::{ConsumerImpact, ErrorCode, Lock, Permission, PublishResponse};
use xif_definition::Definition;

use crate::error::ApiError;
use crate::runtime::{DeployError, Runtime};
use crate::store::{BlobStore, LockRequest, MetadataStore, PublishRefusal, StoreError, UserRecord};

/// How long a publication lock holds unless its holder renews it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// A request to publish a version.
#[derive(Debug, Clone)]
pub struct Order {
    /// The extension, as named in the request.
    pub extension: String,
    /// The version to publish.
    pub version: i64,
    /// The version the client believes is published now.
    pub expected: Option<i64>,
    /// Run every check and publish nothing.
    pub validate_only: bool,
}

/// Why a version was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The user lacks a permission.
    #[error("{doing} needs the `{}` permission, which user `{user}` does not have", .permission.name())]
    MissingPermission {
        /// The user.
        user: String,
        /// The permission.
        permission: Permission,
        /// What they tried.
        doing: &'static str,
    },
    /// No such version.
    #[error("extension `{extension}` has no version {version}")]
    UnknownVersion {
        /// The extension.
        extension: String,
        /// The version asked for.
        version: i64,
    },
    /// Another publication holds the lock.
    #[error("extension `{}` is being published by `{}` since {}", .0.extension, .0.holder, .0.since)]
    InProgress(Lock),
    /// Another version is published than expected.
    #[error("the published version of `{extension}` is {}, not the expected {}", shown(*.actual), shown(*.expected))]
    Stale {
        /// The extension.
        extension: String,
        /// The version published now.
        actual: Option<i64>,
        /// The one the client expected.
        expected: Option<i64>,
    },
    /// The version did not start; the one before keeps serving.
    #[error("version {version} of `{extension}` was not published, and {replaces} keeps serving: {reason}")]
    DeployFailed {
        /// The extension.
        extension: String,
        /// The version.
        version: i64,
        /// What keeps serving.
        replaces: String,
        /// Why it did not start, without the server's internals.
        reason: String,
    },
    /// This server cannot isolate extensions, and may not run them unisolated.
    #[error("{}", DeployError::Unisolated)]
    Unisolated,
    /// An administrator broke the lock during the publication: nothing was published.
    #[error("the publication lock of `{extension}` was broken by an administrator during the publication")]
    LockBroken {
        /// The extension.
        extension: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored archive could not be read.
    #[error("a stored archive cannot be read: {0}")]
    Archive(String),
}

fn shown(number: Option<i64>) -> String {
    number.map_or_else(|| "none".to_owned(), |number| format!("version {number}"))
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::MissingPermission { user, permission, doing } => {
                ApiError::missing_permission(&user, permission.name(), doing)
            }
            PublishError::UnknownVersion { .. } => ApiError::new(ErrorCode::UnknownVersion, error.to_string()),
            PublishError::InProgress(_) => ApiError::new(
                ErrorCode::PublicationInProgress,
                format!(
                    "{error}; try again when that publication ends (an administrator can break a stuck lock with `xif admin lock break`)"
                ),
            ),
            PublishError::Stale { .. } => ApiError::new(
                ErrorCode::StaleVersion,
                format!("{error}; another publication happened meanwhile, so look again before publishing"),
            ),
            PublishError::DeployFailed { .. } => ApiError::new(ErrorCode::DeployFailed, error.to_string()),
            PublishError::Unisolated => ApiError::new(ErrorCode::IsolationUnavailable, error.to_string()),
            PublishError::LockBroken { .. } => {
                ApiError::new(ErrorCode::PublicationInProgress, format!("{error}; nothing was published"))
            }
            PublishError::Store(error) => error.into(),
            PublishError::Archive(detail) => ApiError::internal(detail),
        }
    }
}

/// Publishes versions.
pub struct Publishing {
    metadata: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    runtime: Arc<Runtime>,
    lease: Duration,
}

impl Publishing {
    /// The service over these stores and this runtime, with locks held for `lease` unless
    /// renewed.
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        runtime: Arc<Runtime>,
        lease: Duration,
    ) -> Self {
        Self { metadata, blobs, runtime, lease }
    }

    /// Publishes (or, for a validate-only order, checks) a version for `user`.
    pub async fn publish(&self, user: &UserRecord, order: &Order) -> Result<PublishResponse, PublishError> {
        if !user.has(Permission::AllowExtensions) {
            return Err(PublishError::MissingPermission {
                user: user.name.clone(),
                permission: Permission::AllowExtensions,
                doing: "publishing an extension",
            });
        }
        let definition = self.definition(&order.extension, order.version).await?;
        if !definition.entities.is_empty() && !user.has(Permission::AllowForeignEntities) {
            return Err(PublishError::MissingPermission {
                user: user.name.clone(),
                permission: Permission::AllowForeignEntities,
                doing: "publishing an extension that exports entities",
            });
        }
        // The stored spelling of the name, which the lock and the runtime are keyed by.
        let extension = definition.extension.name.value.clone();
        let lock = self.lock(&extension, &user.name).await?;
        let outcome = async {
            let impacts = self.consumer_impacts(&extension, &definition).await?;
            let mut response = self.publish_locked(&lock, user, &extension, order).await?;
            for consumer in impacts
                .iter()
                .filter(|consumer| consumer.impact == "incompatible" || consumer.impact == "possibly incompatible")
            {
                response.messages.push(format!(
                    "module `{}` is {}: {}",
                    consumer.module,
                    consumer.impact,
                    consumer.changes.join("; ")
                ));
            }
            response.consumers = impacts;
            Ok(response)
        }
        .await;
        lock.release().await;
        outcome
    }

    /// Every publication lock held.
    pub async fn locks(&self) -> Result<Vec<Lock>, PublishError> {
        Ok(self.metadata.locks().await?)
    }

    /// Breaks the publication lock of `extension`, whoever holds it; says whose it was.
    pub async fn break_lock(&self, extension: &str) -> Result<Option<Lock>, PublishError> {
        Ok(self.metadata.break_lock(extension).await?)
    }

    async fn lock(&self, extension: &str, holder: &str) -> Result<LockGuard, PublishError> {
        let owner = crate::auth::random_secret("").map_err(|_| StoreError("no randomness for a lock id".into()))?;
        let now = chrono::Utc::now();
        let lease_until = lease_end(self.lease);
        let request = LockRequest {
            extension,
            holder,
            owner: &owner,
            now: &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            now_millis: now.timestamp_millis(),
            lease_until,
        };
        if let Err(held) = self.metadata.lock(&request).await? {
            return Err(PublishError::InProgress(held));
        }
        // Renewed at a third of the lease, so that two missed renewals still leave time.
        let renewer = tokio::spawn(renew(Arc::clone(&self.metadata), extension.to_owned(), owner.clone(), self.lease));
        Ok(LockGuard {
            metadata: Arc::clone(&self.metadata),
            extension: extension.to_owned(),
            owner,
            lease: self.lease,
            renewer,
            released: false,
        })
    }

    async fn definition(&self, extension: &str, number: i64) -> Result<Definition, PublishError> {
        let Some(version) = self.metadata.version(extension, number).await? else {
            return Err(PublishError::UnknownVersion { extension: extension.to_owned(), version: number });
        };
        let blob = self.blob(&version.sha256).await?;
        tokio::task::spawn_blocking(move || crate::handlers::read_definition(&blob))
            .await
            .map_err(|error| PublishError::Archive(error.to_string()))?
            .map_err(|error| PublishError::Archive(error.message().to_owned()))
    }

    async fn blob(&self, sha256: &str) -> Result<std::path::PathBuf, PublishError> {
        self.blobs
            .path(sha256)
            .await?
            .ok_or_else(|| PublishError::Archive(format!("the archive with SHA-256 {sha256} is missing")))
    }

    /// How publishing `definition` affects each module that uses `extension`, each compared with
    /// the version it was built against.
    async fn consumer_impacts(
        &self,
        extension: &str,
        definition: &Definition,
    ) -> Result<Vec<ConsumerImpact>, PublishError> {
        let mut built: HashMap<i64, Definition> = HashMap::new();
        let mut impacts = Vec::new();
        for (module, dependency) in self.metadata.consumers(extension).await? {
            if let std::collections::hash_map::Entry::Vacant(slot) = built.entry(dependency.version) {
                match self.definition(extension, dependency.version).await {
                    Ok(old) => slot.insert(old),
                    Err(PublishError::UnknownVersion { .. }) => continue,
                    Err(error) => return Err(error),
                };
            }
            let Some(old) = built.get(&dependency.version) else { continue };
            let uses = xif_verify::Uses {
                actions: dependency.actions,
                structures: dependency.structures,
                entities: dependency.entities,
            };
            let (impact, changes) = xif_verify::impact(old, definition, &uses);
            impacts.push(ConsumerImpact {
                module,
                impact: impact.name().to_owned(),
                built_against: dependency.version,
                changes,
            });
        }
        Ok(impacts)
    }

    async fn publish_locked(
        &self,
        lock: &LockGuard,
        user: &UserRecord,
        extension: &str,
        order: &Order,
    ) -> Result<PublishResponse, PublishError> {
        let current = self.metadata.extension(extension).await?.and_then(|found| found.published);
        let stale = |actual| PublishError::Stale { extension: extension.to_owned(), actual, expected: order.expected };
        if current != order.expected {
            return Err(stale(current));
        }
        let replaces = current.map_or_else(|| "no published version".to_owned(), |number| format!("version {number}"));
        let number = order.version;
        let answer = |published, publication, message: String| PublishResponse {
            consumers: Vec::new(),
            published,
            publication,
            messages: vec![message],
        };
        if order.validate_only {
            return Ok(answer(
                false,
                None,
                format!("version {number} of `{extension}` can be published; it would replace {replaces}"),
            ));
        }
        let version = self
            .metadata
            .version(extension, number)
            .await?
            .ok_or_else(|| PublishError::UnknownVersion { extension: extension.to_owned(), version: number })?;
        let blob = self.blob(&version.sha256).await?;
        let deploy_failed = |error: DeployError, replaces: String| {
            tracing::warn!(%extension, number, %error, "deploy failed");
            if let DeployError::Unisolated = error {
                return PublishError::Unisolated;
            }
            // The extension's log is quoted when it did not start; the server's own paths, which
            // a launcher or a shell may have written there, are not.
            let root = self.runtime.root().to_string_lossy().into_owned();
            PublishError::DeployFailed {
                extension: extension.to_owned(),
                version: number,
                replaces,
                reason: error.public_message().replace(&root, "…"),
            }
        };
        if current == Some(number) {
            if self.runtime.running_version(extension).await == Some(number) {
                return Ok(answer(
                    false,
                    None,
                    format!("version {number} of `{extension}` is published already; nothing to do"),
                ));
            }
            // Published but not running (it was given up on after crashing): start it again.
            self.runtime
                .deploy(extension, number, &blob)
                .await
                .map_err(|error| deploy_failed(error, "nothing".to_owned()))?;
            return Ok(answer(
                false,
                None,
                format!(
                    "version {number} of `{extension}` is published already; it was not running and was started again"
                ),
            ));
        }
        // Start the new version beside the old one; only once it answers its handshake does it
        // take calls, and only once the publication is recorded is the old one let go.
        let started = self
            .runtime
            .start(extension, number, &blob)
            .await
            .map_err(|error| deploy_failed(error, replaces.clone()))?;
        match lock.still_held().await {
            Ok(true) => {}
            held => {
                // Not switched to: it goes, with its working directory.
                self.runtime.discard(started).await;
                return Err(match held {
                    Err(error) => error.into(),
                    Ok(_) => PublishError::LockBroken { extension: extension.to_owned() },
                });
            }
        }
        let switch = self.runtime.switch(started).await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let recorded = self.metadata.publish(extension, order.expected, number, &user.name, &now).await;
        match recorded {
            Ok(Ok(publication)) => {
                switch.commit();
                metrics::counter!("xif_publications_total").increment(1);
                tracing::info!(user = %user.name, %extension, from = ?publication.from, to = publication.to, "published");
                Ok(answer(
                    true,
                    Some(publication),
                    format!("version {number} of `{extension}` is published; it replaced {replaces}"),
                ))
            }
            Ok(Err(PublishRefusal::Stale { actual })) => {
                switch.undo().await;
                Err(stale(actual))
            }
            Err(error) => {
                // Not recorded: the version recorded as published serves again.
                switch.undo().await;
                Err(error.into())
            }
        }
    }
}

fn lease_end(lease: Duration) -> i64 {
    chrono::Utc::now().timestamp_millis() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

async fn renew(metadata: Arc<dyn MetadataStore>, extension: String, owner: String, lease: Duration) {
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match metadata.renew_lock(&extension, &owner, lease_end(lease)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%extension, "the publication lock was broken or taken over while held");
                return;
            }
            Err(error) => tracing::warn!(%extension, %error, "cannot renew the publication lock"),
        }
    }
}

/// An extension's publication lock, held by one publication. [`LockGuard::release`] frees it;
/// dropped without that (a panic, a dropped future), it frees it from a task of its own.
pub struct LockGuard {
    metadata: Arc<dyn MetadataStore>,
    extension: String,
    owner: String,
    lease: Duration,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LockGuard {
    /// Whether this publication still holds the lock (an administrator may have broken it).
    async fn still_held(&self) -> Result<bool, StoreError> {
        self.metadata.renew_lock(&self.extension, &self.owner, lease_end(self.lease)).await
    }

    /// Frees the lock, and waits until it is free.
    pub async fn release(mut self) {
        self.released = true;
        self.renewer.abort();
        if let Err(error) = self.metadata.unlock(&self.extension, &self.owner).await {
            // Its lease frees it in the end.
            tracing::error!(extension = %self.extension, %error, "cannot release the publication lock");
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.renewer.abort();
        let (metadata, extension, owner) = (Arc::clone(&self.metadata), self.extension.clone(), self.owner.clone());
        tracing::warn!(%extension, "a publication ended without releasing its lock; releasing it");
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = metadata.unlock(&extension, &owner).await {
                    tracing::error!(%extension, %error, "cannot release the publication lock");
                }
            });
        }
    }
}
