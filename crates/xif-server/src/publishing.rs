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
//!
//! In a farm, the node that handles the request deploys and records; it then notifies the
//! others, each of which deploys the published version with the same switch
//! ([`Publishing::reconcile`]) and reports what it runs; the answer waits until every live node
//! runs the new version, or says which did not and why ([`xif_api::NodeDeploy`]). Deploys of
//! one extension on one node never overlap: the publication and the reconciler take the same
//! per-extension mutex.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use xif_api::{ConsumerImpact, ErrorCode, Lock, Permission, PublishResponse};
use xif_definition::Definition;

use crate::cluster::{Cluster, Event, ExtensionState};
use crate::error::ApiError;
use crate::runtime::{DeployError, Runtime};
use crate::store::{BlobStore, LockRequest, MetadataStore, PublishRefusal, StoreError, UserRecord};

/// How long a publication lock holds unless its holder renews it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long a publication waits for the other live nodes to run the new version.
pub const NODES_WAIT: Duration = Duration::from_secs(60);

/// How long the reconciler leaves a version whose deploy failed on this node before trying it
/// again.
const RETRY_FAILED: Duration = Duration::from_secs(30);

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
    cluster: Arc<Cluster>,
    lease: Duration,
    /// One mutex per extension (by lower-case name): a publication's deploy and the
    /// reconciler's never overlap on this node.
    deploying: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Versions whose deploy failed here, by lower-case name, and when: retried after
    /// [`RETRY_FAILED`].
    failures: std::sync::Mutex<HashMap<String, (i64, tokio::time::Instant)>>,
}

impl Publishing {
    /// The service over these stores, this runtime and this node of the farm, with locks held
    /// for `lease` unless renewed.
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        runtime: Arc<Runtime>,
        cluster: Arc<Cluster>,
        lease: Duration,
    ) -> Self {
        Self {
            metadata,
            blobs,
            runtime,
            cluster,
            lease,
            deploying: std::sync::Mutex::new(HashMap::new()),
            failures: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The mutex of `extension`'s deploys on this node.
    fn deploy_mutex(&self, extension: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut deploying = self.deploying.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(deploying.entry(extension.to_ascii_lowercase()).or_default())
    }

    /// Tells the farm what this node runs of `extension`, and of which version a deploy failed.
    async fn report(&self, extension: &str, failed: Option<(i64, String)>) {
        let running = self.runtime.running_version(extension).await;
        self.cluster.report(ExtensionState { name: extension.to_owned(), running, failed }).await;
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
        // Fetched once: its definition is read now, and it is deployed once locked.
        let (definition, blob) = self.archive(&order.extension, order.version).await?;
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
        let outcome: Result<PublishResponse, PublishError> = async {
            let impacts = self.consumer_impacts(&extension, &definition).await?;
            let mutex = self.deploy_mutex(&extension);
            let deploying = mutex.lock().await;
            let published = self.publish_locked(&lock, user, &extension, order, &blob).await;
            drop(deploying);
            let failure = match &published {
                Err(PublishError::DeployFailed { reason, .. }) => Some((order.version, reason.clone())),
                _ => None,
            };
            // A validate-only order deployed nothing: what the farm knows of the last deploy
            // (a failure, say) stays as it was.
            if !order.validate_only {
                self.report(&extension, failure).await;
            }
            let mut response = published?;
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
        // The local copy of the archive is not needed while the other nodes deploy.
        drop(blob);
        let mut response = outcome?;
        if !order.validate_only {
            if response.published {
                self.cluster.notify(Event::Published { extension: extension.clone(), version: order.version }).await;
            }
            response.nodes = self.await_nodes(&extension, order.version).await;
            for node in response.nodes.iter().filter(|node| !node.ok) {
                response.messages.push(format!(
                    "node `{}` does not run version {} of `{extension}`: {}",
                    node.node,
                    order.version,
                    node.error.as_deref().unwrap_or("no reason given")
                ));
            }
        }
        Ok(response)
    }

    /// Waits until every live node runs `version` of `extension`, or failed to deploy it, or
    /// [`NODES_WAIT`] passed; says how it went on each.
    async fn await_nodes(&self, extension: &str, version: i64) -> Vec<xif_api::NodeDeploy> {
        let deadline = tokio::time::Instant::now() + NODES_WAIT;
        // The nodes live when the wait began: one that stops beating meanwhile is reported as
        // such rather than forgotten.
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        loop {
            let nodes = match self.cluster.nodes(Some(extension)).await {
                Ok(nodes) => nodes,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the nodes of the farm");
                    if tokio::time::Instant::now() >= deadline {
                        return Vec::new();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let timed_out = tokio::time::Instant::now() >= deadline;
            let mut results = Vec::new();
            let mut pending = false;
            // This node answers this request: it is live, whatever its heartbeat's age says
            // (a heartbeat late on a loaded machine).
            let this = self.cluster.identity().id;
            for node in &nodes {
                if !node.live && node.identity.id != this {
                    if seen.contains(&node.identity.id) {
                        let state = node.extension(extension);
                        results.push(xif_api::NodeDeploy {
                            node: node.identity.name.clone(),
                            address: node.identity.address.clone(),
                            running: state.and_then(|state| state.running),
                            ok: false,
                            error: Some(format!(
                                "it stopped answering during the deploy (no heartbeat for {} s); once it is back \
                                 it deploys the published version, if it can fetch the archive",
                                crate::cluster::LIVE_FOR.as_secs()
                            )),
                        });
                    }
                    continue;
                }
                seen.insert(node.identity.id.clone());
                let state = node.extension(extension);
                let running = state.and_then(|state| state.running);
                let failure = state.and_then(|state| state.failed.as_ref()).filter(|(failed, _)| *failed == version);
                let (ok, error) = match (running == Some(version), failure) {
                    (true, _) => (true, None),
                    (false, Some((_, message))) => (false, Some(format!("its deploy failed: {message}"))),
                    (false, None) if timed_out => {
                        (false, Some(format!("it did not report running it within {} s", NODES_WAIT.as_secs())))
                    }
                    (false, None) => {
                        pending = true;
                        (false, None)
                    }
                };
                results.push(xif_api::NodeDeploy {
                    node: node.identity.name.clone(),
                    address: node.identity.address.clone(),
                    running,
                    ok,
                    error,
                });
            }
            if !pending {
                return results;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Brings this node to the published state: deploys the published version of every
    /// extension that runs another (or none), with the zero-downtime switch, and reports what
    /// runs. A version whose deploy failed here is tried again after a while; a version the
    /// runtime gave up on after crashes is left as it is (publishing it again starts it).
    /// Returns whether the whole pass ran (the store answered).
    pub async fn reconcile(&self) -> bool {
        let extensions = match crate::store::every_extension(&*self.metadata).await {
            Ok(extensions) => extensions,
            Err(error) => {
                tracing::warn!(%error, "cannot list the published extensions to converge to");
                return false;
            }
        };
        for extension in extensions {
            let Some(number) = extension.published else { continue };
            self.converge(&extension.name, number).await;
        }
        true
    }

    /// Deploys the published version of `extension` unless it runs here already (or failed
    /// recently, or was given up on). `listed` is the published version as read before the
    /// deploy mutex was taken: a publication may have finished meanwhile, so a deploy goes by
    /// what the store says under the mutex, never by `listed` (which would switch a rollback
    /// that just finished back to the version it replaced).
    pub async fn converge(&self, extension: &str, listed: i64) {
        let key = extension.to_ascii_lowercase();
        let mutex = self.deploy_mutex(extension);
        let _deploying = mutex.lock().await;
        let running = self.runtime.running_version(extension).await;
        if running == Some(listed) || (running.is_none() && self.runtime.given_up(extension).await) {
            self.report(extension, None).await;
            return;
        }
        // Publications record under the same mutex, so this read is current.
        let number = match self.metadata.extension(extension).await {
            Ok(Some(found)) => match found.published {
                Some(number) => number,
                None => return,
            },
            Ok(None) => return,
            Err(error) => {
                // The next pass tries again.
                tracing::warn!(%extension, %error, "cannot read the published version to converge to");
                return;
            }
        };
        if running == Some(number) {
            self.report(extension, None).await;
            return;
        }
        let recent_failure = {
            let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            failures.get(&key).is_some_and(|(failed, at)| *failed == number && at.elapsed() < RETRY_FAILED)
        };
        if recent_failure {
            return;
        }
        let blob = match self.metadata.version(extension, number).await {
            Ok(Some(version)) => self.blob(&version.sha256).await,
            Ok(None) => Err(PublishError::UnknownVersion { extension: extension.to_owned(), version: number }),
            Err(error) => Err(error.into()),
        };
        let deployed = match blob {
            Ok(blob) => self.runtime.deploy(extension, number, &blob).await.map_err(|error| {
                let root = self.runtime.root().to_string_lossy().into_owned();
                error.public_message().replace(&root, "…")
            }),
            Err(error) => {
                tracing::error!(%extension, number, %error, "the published version's archive cannot be had");
                Err(match error {
                    PublishError::Store(error) if error.is_unavailable() => {
                        "its archive cannot be fetched: the store is unavailable".to_owned()
                    }
                    _ => "its archive is missing or unreadable in this node's archive store; every node of a farm \
                          needs the same `--blobs`"
                        .to_owned(),
                })
            }
        };
        match deployed {
            Ok(()) => {
                tracing::info!(%extension, number, replaced = ?running, "converged to the published version");
                self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                self.report(extension, None).await;
            }
            Err(message) => {
                tracing::error!(%extension, number, reason = %message, "the published version did not start here");
                self.failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, (number, tokio::time::Instant::now()));
                self.report(extension, Some((number, message))).await;
            }
        }
    }

    /// Runs the reconciler until the service is dropped: at each event that may change what
    /// should run (a publication, a reconnection) and every [`crate::cluster::RECONCILE_EVERY`].
    /// The node is ready once a whole pass ran after its start or a reconnection.
    pub fn spawn_reconciler(self: &Arc<Self>) {
        let mut events = self.cluster.subscribe();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(crate::cluster::RECONCILE_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let published = tokio::select! {
                    _ = ticks.tick() => None,
                    event = events.recv() => match event {
                        Ok(Event::Published { extension, version }) => Some((extension, version)),
                        Ok(Event::AuthChanged | Event::ConnectionsChanged) => continue,
                        Ok(Event::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                };
                let Some(publishing) = weak.upgrade() else { return };
                match published {
                    // The one extension named, at once, to the version published now (a
                    // later publication may have followed the event: `converge` reads it).
                    Some((extension, version)) => publishing.converge(&extension, version).await,
                    None => {
                        // Counts for readiness only if nothing was lost or regained since it
                        // began (see `Readiness`).
                        let epoch = publishing.cluster.readiness().epoch();
                        let whole = publishing.reconcile().await;
                        publishing.cluster.readiness().set_converged(whole.then_some(epoch));
                    }
                }
            }
        });
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

    /// The definition of version `number` of `extension`, read from its stored archive.
    pub async fn definition(&self, extension: &str, number: i64) -> Result<Definition, PublishError> {
        Ok(self.archive(extension, number).await?.0)
    }

    /// The definition of a version, and its archive in a temporary file.
    async fn archive(&self, extension: &str, number: i64) -> Result<(Definition, tempfile::TempPath), PublishError> {
        let Some(version) = self.metadata.version(extension, number).await? else {
            return Err(PublishError::UnknownVersion { extension: extension.to_owned(), version: number });
        };
        let blob = self.blob(&version.sha256).await?;
        tokio::task::spawn_blocking(move || {
            crate::handlers::read_definition(&blob).map(|definition| (definition, blob))
        })
        .await
        .map_err(|error| PublishError::Archive(error.to_string()))?
        .map_err(|error| PublishError::Archive(error.message().to_owned()))
    }

    /// The archive with this digest, fetched into a temporary file in the runtime's directory
    /// (removed when dropped).
    async fn blob(&self, sha256: &str) -> Result<tempfile::TempPath, PublishError> {
        crate::store::fetch_to_temp(self.blobs.as_ref(), sha256, self.runtime.root())
            .await?
            .ok_or_else(|| PublishError::Archive(format!("the archive with SHA-256 {sha256} is missing")))
    }

    /// The modules that use `extension` (which must have been uploaded), each with its state
    /// against the published version: `up to date` when built against it, else its impact
    /// (`outdated`, `possibly incompatible`, `incompatible`) with the changes to what it uses;
    /// `not published` while no version is. A module built against a version no longer
    /// stored is left out, as in a publication's report.
    pub async fn consumers(&self, extension: &str) -> Result<Option<Vec<ConsumerImpact>>, PublishError> {
        let Some(found) = self.metadata.extension(extension).await? else { return Ok(None) };
        let Some(published) = found.published else {
            let consumers = self.metadata.consumers(&found.name).await?;
            return Ok(Some(
                consumers
                    .into_iter()
                    .map(|(module, dependency)| ConsumerImpact {
                        module,
                        impact: "not published".to_owned(),
                        built_against: dependency.version,
                        changes: Vec::new(),
                    })
                    .collect(),
            ));
        };
        let definition = self.definition(&found.name, published).await?;
        let mut impacts = self.consumer_impacts(&found.name, &definition).await?;
        for impact in &mut impacts {
            if impact.built_against == published {
                impact.impact = "up to date".to_owned();
                impact.changes.clear();
            } else if impact.impact == xif_verify::Impact::NotAffected.name() {
                // Built against another version, with nothing changed: to be refreshed all the same.
                impact.impact = xif_verify::Impact::Outdated.name().to_owned();
            }
        }
        Ok(Some(impacts))
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
        blob: &std::path::Path,
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
            nodes: Vec::new(),
        };
        if order.validate_only {
            return Ok(answer(
                false,
                None,
                format!("version {number} of `{extension}` can be published; it would replace {replaces}"),
            ));
        }
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
                .deploy(extension, number, blob)
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
            .start(extension, number, blob)
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
