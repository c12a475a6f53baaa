//! The farm: the nodes that serve the same metadata and archives, what each runs, and the events
//! they tell each other (a publication, a change to users or tokens).
//!
//! One abstraction, [`Cluster`], over two back ends ([`Backend`]): PostgreSQL (`postgres.rs`:
//! tables of nodes and of what each runs, `LISTEN/NOTIFY` through a listener that reconnects,
//! a login counter shared by every node) and a local one for the embedded server (`local.rs`: a
//! single node in memory, events in-process). Handlers and the publishing service do not care
//! which.
//!
//! Each node runs three tasks once it listens ([`Cluster::start`]): a heartbeat every second
//! (a node is live while its heartbeat is under [`LIVE_FOR`] old), the listener that turns
//! notifications into [`Event`]s, and the reconciler ([`crate::publishing::Publishing::reconcile`]),
//! which deploys the published version of every extension that does not run it, on each
//! publication, periodically, and after a (re)connection. `/readyz` says ready from the parts'
//! own states ([`Readiness`]): the listener listens, the heartbeat works, the reconciler made a
//! whole pass since the last time either was lost, and the node is not draining before a stop.

mod local;
mod postgres;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub use local::LocalBackend;
pub use postgres::PgBackend;

/// How often a node beats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a node counts as live after its last heartbeat.
pub const LIVE_FOR: Duration = Duration::from_secs(5);

/// How often the reconciler compares what is published with what runs, besides on events.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(2);

/// What a node tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A version of an extension was published: deploy it.
    Published {
        /// The extension.
        extension: String,
        /// The version.
        version: i64,
    },
    /// A token was revoked, a user removed or permissions changed: forget cached tokens.
    AuthChanged,
    /// A database connection was added or removed, or a logical database mapped: read the
    /// connections and mappings again (and close the pools of those gone).
    ConnectionsChanged,
    /// This node (re)connected to the shared store and may have missed events: compare
    /// everything again. Never sent between nodes.
    Resync,
}

/// A node as registered.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// New at each start.
    pub id: String,
    /// For people.
    pub name: String,
    /// Where other nodes reach it (`http://HOST:PORT`).
    pub address: String,
    /// The xif version it runs.
    pub version: String,
}

/// What a node reported for one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionState {
    /// The extension.
    pub name: String,
    /// The version that runs there.
    pub running: Option<i64>,
    /// The version whose deploy failed there last, and the failure's public message.
    pub failed: Option<(i64, String)>,
}

/// A node as the others see it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node.
    pub identity: NodeIdentity,
    /// When it started, RFC 3339.
    pub started: String,
    /// Its last heartbeat, RFC 3339.
    pub heartbeat: String,
    /// Whether the heartbeat is recent.
    pub live: bool,
    /// What it runs.
    pub extensions: Vec<ExtensionState>,
}

impl NodeInfo {
    /// The API's view of it.
    pub fn api(&self) -> xif_api::Node {
        xif_api::Node {
            id: self.identity.id.clone(),
            name: self.identity.name.clone(),
            address: self.identity.address.clone(),
            version: self.identity.version.clone(),
            started: self.started.clone(),
            heartbeat: self.heartbeat.clone(),
            live: self.live,
            extensions: self
                .extensions
                .iter()
                .map(|state| xif_api::NodeExtension {
                    name: state.name.clone(),
                    running: state.running,
                    failure: state.failed.as_ref().map(|(_, message)| message.clone()),
                })
                .collect(),
        }
    }

    /// What it reported for `extension` (names compare regardless of case).
    pub fn extension(&self, extension: &str) -> Option<&ExtensionState> {
        self.extensions.iter().find(|state| state.name.eq_ignore_ascii_case(extension))
    }
}

/// Where the farm's shared state lives.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Records this node (again, after a reconnection) with a fresh heartbeat.
    async fn register(&self, node: &NodeIdentity) -> Result<(), StoreError>;
    /// Renews this node's heartbeat.
    async fn heartbeat(&self, node_id: &str) -> Result<(), StoreError>;
    /// Records what this node runs of `state.name`.
    async fn report(&self, node_id: &str, state: &ExtensionState) -> Result<(), StoreError>;
    /// Every node known, live or not, with what each runs: every extension, or only
    /// `extension` (names compare regardless of case).
    async fn nodes(&self, extension: Option<&str>) -> Result<Vec<NodeInfo>, StoreError>;
    /// Tells every node (this one included) about `event`.
    async fn notify(&self, event: &Event) -> Result<(), StoreError>;
    /// Counts one login attempt under each of `keys` in the current minute, shared by every
    /// node, and returns the counts, in order; `None` when the back end keeps no shared count
    /// (a single node, whose own limiter is the whole count).
    async fn count_logins(&self, keys: &[String]) -> Result<Option<Vec<i64>>, StoreError>;
    /// Removes this node, as it stops.
    async fn leave(&self, node_id: &str) -> Result<(), StoreError>;
    /// Runs until `events` is closed: forwards notifications from other nodes to `events`, and
    /// [`Event::Resync`] after each (re)connection; tells `readiness` when it listens and when
    /// it stops listening ([`Readiness::set_listening`]).
    async fn listen(self: Arc<Self>, events: tokio::sync::broadcast::Sender<Event>, readiness: Arc<Readiness>);
    /// Records `store` (see [`crate::store_identity`]) as the archive store of the farm when none is
    /// recorded yet, and returns the one recorded; the local back end records nothing and
    /// returns `store`.
    async fn claim_store(&self, store: &str) -> Result<String, StoreError>;
    /// The farm setting `key` (see `farm_settings`); the local back end keeps none.
    async fn setting(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Records `value` as the farm setting `key` when none is recorded yet, and returns the one
    /// recorded; the local back end records nothing and returns `value`.
    async fn claim_setting(&self, _key: &str, value: &str) -> Result<String, StoreError> {
        Ok(value.to_owned())
    }
}

/// The back end for the metadata store at `database`: PostgreSQL's tables and notifications
/// for a `postgres://` URL (over a small pool of its own beside the store's, and a connection of
/// its own for the heartbeat), the local one
/// without. The tables come with the store's migrations, which must have run.
pub async fn backend(database: Option<&str>) -> Result<Arc<dyn Backend>, StoreError> {
    match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            use sqlx::ConnectOptions as _;
            // No SQL text nor bound value in the server's log.
            let options =
                <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)?.disable_statement_logging();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await?;
            let beats = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(HEARTBEAT)
                .connect_with(options)
                .await?;
            Ok(Arc::new(PgBackend::new(pool, beats)))
        }
        _ => Ok(Arc::new(LocalBackend::default())),
    }
}

/// Whether the node is ready for the balancer, from each part's own state, so that no part can
/// leave another's flag stale: the listener listens, the heartbeat works, the reconciler made a
/// whole pass since either was last lost or the listener listened again (an epoch counts them),
/// and no stop is draining.
#[derive(Debug)]
pub struct Readiness {
    listening: AtomicBool,
    beating: AtomicBool,
    /// Incremented each time the listener is lost or back, or the heartbeat lost.
    epoch: AtomicU64,
    /// The epoch at which the reconciler's last whole pass began; `u64::MAX` for none.
    converged: AtomicU64,
    draining: AtomicBool,
    /// What was last logged, so that only changes are.
    logged: std::sync::Mutex<Option<bool>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            listening: AtomicBool::new(false),
            beating: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
            converged: AtomicU64::new(u64::MAX),
            draining: AtomicBool::new(false),
            logged: std::sync::Mutex::new(None),
        }
    }
}

impl Readiness {
    /// Whether every part says ready.
    pub fn ready(&self) -> bool {
        self.listening.load(Ordering::Acquire)
            && self.beating.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && self.converged.load(Ordering::Acquire) == self.epoch.load(Ordering::Acquire)
    }

    /// Why the node is not ready, in words for `/readyz`; `None` when it is.
    pub fn reason(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Acquire) {
            Some("this node is stopping")
        } else if !self.beating.load(Ordering::Acquire) {
            Some("this node cannot reach its database")
        } else if !self.listening.load(Ordering::Acquire) {
            Some("this node cannot listen for the other nodes' events in its database")
        } else if !self.ready() {
            Some("this node is converging to the published state")
        } else {
            None
        }
    }

    /// The listener listens (`true`), or lost its connection (`false`: events may be missed
    /// until it listens again and the reconciler compares everything).
    pub fn set_listening(&self, listening: bool) {
        // Either way, only a pass that begins after this counts: what changed while it was
        // lost is compared then.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.listening.store(listening, Ordering::Release);
        self.log_change();
    }

    /// The heartbeat works (`true`), or failed (`false`).
    pub fn set_beating(&self, beating: bool) {
        // Lost, only a pass that begins after counts. Back, no event was missed for it (the
        // listener counts its own losses): bumping again would make a node that is ready
        // flicker unready while a balancer checks it.
        if !beating {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        self.beating.store(beating, Ordering::Release);
        self.log_change();
    }

    /// The epoch to give [`Readiness::set_converged`] for a pass that begins now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A whole pass of the reconciler that began at `epoch` ended (`None`: a pass could not
    /// compare everything, the store failing).
    pub fn set_converged(&self, epoch: Option<u64>) {
        self.converged.store(epoch.unwrap_or(u64::MAX), Ordering::Release);
        self.log_change();
    }

    /// The node stops: not ready from now on, whatever the other parts say.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.log_change();
    }

    /// Logs readiness when it changed since last logged, not at each pass.
    fn log_change(&self) {
        let ready = self.ready();
        let mut logged = self.logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *logged == Some(ready) {
            return;
        }
        match (ready, self.reason()) {
            (true, _) => tracing::info!("converged to the published state: ready"),
            (false, Some(reason)) if logged.is_some() => tracing::info!(reason, "not ready"),
            (false, _) => {}
        }
        *logged = Some(ready);
    }
}

/// This node and the farm it is part of.
pub struct Cluster {
    backend: Arc<dyn Backend>,
    identity: std::sync::RwLock<NodeIdentity>,
    events: tokio::sync::broadcast::Sender<Event>,
    /// Whether it is ready for the balancer.
    readiness: Arc<Readiness>,
    /// What was last reported for each extension (by lower-case name): reported again only when
    /// it changes, or after a reconnection.
    reported: std::sync::Mutex<HashMap<String, ExtensionState>>,
}

impl Cluster {
    /// A node on `backend`, not yet registered (see [`Cluster::start`]).
    pub fn new(backend: Arc<dyn Backend>, name: Option<String>) -> Self {
        let id = crate::auth::random_secret("").map_or_else(|_| "node".to_owned(), |secret| secret[..16].to_owned());
        let identity = NodeIdentity {
            name: name.unwrap_or_else(|| format!("node-{}", &id[..6])),
            id,
            address: String::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        Self {
            backend,
            identity: std::sync::RwLock::new(identity),
            events: tokio::sync::broadcast::channel(1024).0,
            readiness: Arc::new(Readiness::default()),
            reported: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// This node.
    pub fn identity(&self) -> NodeIdentity {
        self.identity.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets where other nodes reach this one, and its name when it was given none.
    pub fn set_address(&self, address: String, name: Option<String>) {
        let mut identity = self.identity.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        identity.address = address;
        if let Some(name) = name {
            identity.name = name;
        }
    }

    /// Events from every node, this one's included.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Tells every node about `event`. A failure is logged: the reconciler and the token
    /// cache's lifetime catch up with what a node missed.
    pub async fn notify(&self, event: Event) {
        if let Err(error) = self.backend.notify(&event).await {
            tracing::warn!(%error, ?event, "cannot notify the other nodes");
        }
    }

    /// Every node known, with what each runs (of every extension, or only of `extension`).
    pub async fn nodes(&self, extension: Option<&str>) -> Result<Vec<NodeInfo>, StoreError> {
        self.backend.nodes(extension).await
    }

    /// Counts a login attempt across the farm; see [`Backend::count_logins`].
    pub async fn count_logins(&self, keys: &[String]) -> Result<Option<Vec<i64>>, StoreError> {
        self.backend.count_logins(keys).await
    }

    /// Records what this node runs of `extension`, when it changed since last reported.
    pub async fn report(&self, state: ExtensionState) {
        let key = state.name.to_ascii_lowercase();
        {
            let reported = self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if reported.get(&key) == Some(&state) {
                return;
            }
        }
        let node = self.identity().id;
        match self.backend.report(&node, &state).await {
            Ok(()) => {
                self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, state);
            }
            Err(error) => tracing::warn!(%error, extension = %state.name, "cannot report what this node runs"),
        }
    }

    /// Whether the node is ready for the balancer: what `/readyz` tells.
    pub fn ready(&self) -> bool {
        self.readiness.ready()
    }

    /// The parts of readiness.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Records `store` as the farm's archive store at the first start, and returns the one
    /// recorded; see [`Backend::claim_store`].
    pub async fn claim_store(&self, store: &str) -> Result<String, StoreError> {
        self.backend.claim_store(store).await
    }

    /// The farm setting `key`, if recorded; see [`Backend::setting`].
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.backend.setting(key).await
    }

    /// Records `value` as the farm setting `key` unless one is; see [`Backend::claim_setting`].
    pub async fn claim_setting(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.backend.claim_setting(key, value).await
    }

    /// Registers this node and starts its heartbeat and its listener. Events come through
    /// [`Cluster::subscribe`]; the first is a [`Event::Resync`].
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        let identity = self.identity();
        self.backend.register(&identity).await?;
        tokio::spawn(Arc::clone(&self.backend).listen(self.events.clone(), Arc::clone(&self.readiness)));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut lost = false;
            loop {
                ticks.tick().await;
                let Some(cluster) = weak.upgrade() else { return };
                let id = cluster.identity().id;
                // A node forgotten while away (pruned, or its rows lost) registers again.
                let beat = match cluster.backend.heartbeat(&id).await {
                    Ok(()) => Ok(()),
                    Err(error) if error.0 == postgres::NOT_REGISTERED => {
                        cluster.backend.register(&cluster.identity()).await
                    }
                    Err(error) => Err(error),
                };
                match beat {
                    Ok(()) if lost => {
                        lost = false;
                        tracing::info!("the shared store answers again");
                        cluster.readiness.set_beating(true);
                        cluster.resync();
                    }
                    Ok(()) => {}
                    Err(error) if !lost => {
                        lost = true;
                        tracing::warn!(%error, "the heartbeat failed: this node is not ready until the store answers");
                        cluster.readiness.set_beating(false);
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(())
    }

    /// After a reconnection: report everything again and compare everything again.
    fn resync(&self) {
        self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        // No receiver only while the node shuts down.
        self.events.send(Event::Resync).ok();
    }

    /// Removes this node from the farm, as it stops.
    pub async fn leave(&self) {
        if let Err(error) = self.backend.leave(&self.identity().id).await {
            tracing::warn!(%error, "cannot remove this node from the farm");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    /// A whole pass of the reconciler, begun now.
    fn pass(readiness: &Readiness) {
        let epoch = readiness.epoch();
        readiness.set_converged(Some(epoch));
    }

    #[test]
    fn readiness_comes_back_whichever_part_recovers_last() {
        let readiness = Readiness::default();
        assert!(!readiness.ready(), "not ready before listening and a pass");
        readiness.set_listening(true);
        assert!(!readiness.ready(), "not ready before a pass");
        pass(&readiness);
        assert!(readiness.ready());

        // The database goes: the heartbeat fails, then the listener.
        readiness.set_beating(false);
        readiness.set_listening(false);
        assert!(!readiness.ready());
        // The heartbeat recovers first, and the listener fails once more just after: the
        // order that used to leave the node unready for good.
        readiness.set_beating(true);
        readiness.set_listening(false);
        pass(&readiness);
        assert!(!readiness.ready(), "ready without listening");
        readiness.set_listening(true);
        assert!(!readiness.ready(), "ready without a pass since listening again");
        pass(&readiness);
        assert!(readiness.ready(), "the node stayed unready once every part was back");
    }

    #[test]
    fn a_pass_that_began_before_a_loss_does_not_count() {
        let readiness = Readiness::default();
        readiness.set_listening(true);
        let epoch = readiness.epoch();
        readiness.set_listening(false);
        readiness.set_listening(true);
        readiness.set_converged(Some(epoch));
        assert!(!readiness.ready(), "events missed while not listening were not compared");
        pass(&readiness);
        assert!(readiness.ready());
        readiness.set_converged(None);
        assert!(!readiness.ready(), "a pass that failed");
    }

    #[test]
    fn a_draining_node_is_not_ready() {
        let readiness = Readiness::default();
        readiness.set_listening(true);
        pass(&readiness);
        readiness.set_draining();
        assert!(!readiness.ready());
        assert_eq!(readiness.reason(), Some("this node is stopping"));
    }
}
