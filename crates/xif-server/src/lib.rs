//! The Platform Server: users and permissions, uploads of XIF archives, versions, and
//! publishing, over a versioned JSON API (`/api/v1`).
//!
//! Only this crate knows HTTP and SQL. Handlers see storage through [`MetadataStore`] and
//! [`BlobStore`]; the embedded implementations are SQLite ([`SqliteStore`]) and a directory
//! ([`DirectoryBlobs`]). The server never prints: it logs through `tracing`, and what a person
//! must see once (a generated administrator password) is returned to the caller.

mod auth;
mod blobs;
pub mod calllog;
mod callsegments;
pub mod cluster;
mod connections;
mod console;
pub mod entities;
mod error;
pub mod extension_openapi;
mod handlers;
pub mod names;
mod paging;
pub mod postgres;
pub mod publishing;
mod runtime;
mod s3;
mod sqlite;
mod store;
mod throttle;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;

pub use auth::{client_address, trusted_proxy};
pub use blobs::DirectoryBlobs;
pub use connections::raise_open_file_limit;
pub use error::ApiError;
pub use ipnet::IpNet;
pub use postgres::PgStore;
pub use runtime::{DeployError, IsolationOptions, Runtime, RuntimeCallError, RuntimeOptions};
pub use s3::S3Blobs;
pub use sqlite::SqliteStore;
pub use store::{
    BlobRead, BlobStore, BlobUpload, CallQuery, CallsFound, ConnectionRecord, LockRequest, MappingRecord,
    MetadataStore, NewToken, NewVersion, Page, PublicationRecord, PublishRefusal, StoreError, TokenOwner, TokenScope,
    UserRecord, every_extension, fetch_to_temp,
};

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the database and blobs live.
    pub data_dir: PathBuf,
    /// A certificate chain and private key (PEM) to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The largest upload accepted, in bytes.
    pub max_upload: u64,
    /// Where to serve `/metrics` without a token, over plain HTTP; on the API's address it needs
    /// an administrator's token.
    pub metrics_listen: Option<SocketAddr>,
    /// The URL other nodes of a farm reach this one at (`http://HOST:PORT`); by default made
    /// from the address bound, unless that is a wildcard.
    pub advertise: Option<String>,
    /// This node's name in a farm; by default the host and port it is reached at.
    pub node_name: Option<String>,
}

/// Where the server keeps its state.
///
/// The data directory is always local: the lock that makes it one server's, and the working
/// directories of running extensions. Metadata and archives are kept there too (SQLite and a
/// directory, the embedded default) unless `database` and `blobs` name other engines.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The local data directory.
    pub data_dir: PathBuf,
    /// `postgres://…`: metadata in PostgreSQL; `None` for SQLite in the data directory.
    pub database: Option<String>,
    /// `s3://BUCKET?endpoint=…&region=…`: archives in an S3-compatible object store; `None` for
    /// a directory in the data directory.
    pub blobs: Option<String>,
    /// The key file database connections' URLs are encrypted under, shared by every node of a
    /// farm (`--secrets-key`); `None` for `secrets.key` in the data directory (a single server),
    /// or for a farm that stores no connection.
    pub secrets_key: Option<PathBuf>,
}

impl Storage {
    /// The embedded default: everything in `data_dir`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_owned(), database: None, blobs: None, secrets_key: None }
    }
}

/// Limits the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest upload accepted, in bytes.
    pub max_upload: u64,
    /// How extensions run: time limits, resource limits, calls at once.
    pub runtime: RuntimeOptions,
    /// Login attempts and password checks.
    pub login: LoginLimits,
    /// How long tokens last.
    pub tokens: TokenLimits,
    /// Connections at once and their time limits.
    pub connections: ConnectionLimits,
    /// How long a publication lock holds unless its holder renews it.
    pub lock_lease: Duration,
    /// When not empty, only uploads signed by one of these keys are accepted (the signature of
    /// the whole archive, in the [`xif_api::SIGNATURE_HEADER`] header).
    pub trusted_keys: Vec<xif_archive::PublicKey>,
    /// Uploads checked at once; one more is refused as busy (`503 server_busy`, with
    /// Retry-After). Each holds its archive's names and central directory, and a few parts in
    /// flight to an object store.
    pub max_concurrent_uploads: usize,
    /// How many days the integration log keeps its entries; 0 turns it off.
    pub call_log_days: u32,
}

impl Default for Limits {
    /// 1 GiB uploads, 16 at once, the defaults of the runtime, logins, tokens and connections,
    /// a minute's lease on publication locks, no signature required, and the integration log
    /// kept 14 days.
    fn default() -> Self {
        Self {
            max_upload: 1 << 30,
            runtime: RuntimeOptions::default(),
            login: LoginLimits::default(),
            tokens: TokenLimits::default(),
            connections: ConnectionLimits::default(),
            lock_lease: publishing::DEFAULT_LEASE,
            trusted_keys: Vec::new(),
            max_concurrent_uploads: 16,
            call_log_days: 14,
        }
    }
}

/// How many login attempts are let through, and how many passwords are checked at once.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Attempts per minute from one client address (an IPv6 /64 counts as one address), in a
    /// burst or spread out; 0 for no limit.
    pub per_address: u32,
    /// Attempts per minute for one user name; 0 for no limit.
    pub per_user: u32,
    /// Passwords checked at once (argon2 takes 19 MiB for each).
    pub password_checks: usize,
    /// How long a login or a new user waits for a password check to start before it is refused
    /// as busy (503).
    pub password_wait: Duration,
    /// How long a refused login (429) waits before it is answered, at most its Retry-After: a
    /// client that does not wait as told then slows itself down rather than the server.
    pub refusal_delay: Duration,
    /// The proxies (load balancers) whose `X-Forwarded-For` is believed: when a request comes
    /// from one, its client is the last address in the header that is not one of them (see
    /// [`client_address`]); from anyone else, the socket's peer. Empty by default: a
    /// header anyone can send is never believed unless the operator says whose.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for LoginLimits {
    /// 10 attempts a minute per address, 5 per user name, password checks on half the cores (at
    /// least one) so that a flood of them leaves the rest to serving, waiting at most 2 seconds
    /// for one; refusals answered after a second.
    fn default() -> Self {
        Self {
            per_address: 10,
            per_user: 5,
            password_checks: std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1)),
            password_wait: Duration::from_secs(2),
            refusal_delay: Duration::from_secs(1),
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long tokens last.
#[derive(Debug, Clone)]
pub struct TokenLimits {
    /// The lifetime of a login's token when the login asks for none.
    pub default_lifetime: Duration,
    /// The longest lifetime a login may ask for.
    pub max_lifetime: Duration,
}

impl Default for TokenLimits {
    /// 30 days, and at most 365.
    fn default() -> Self {
        Self { default_lifetime: Duration::from_secs(30 * 86_400), max_lifetime: Duration::from_secs(365 * 86_400) }
    }
}

/// Connections at once and their time limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; those beyond wait to be accepted. Lowered at start when the
    /// process may not open enough files for them.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, counted from when the connection
    /// opened or its previous response was sent: it closes idle keep-alive connections and
    /// trickling ones alike.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive (a JSON body whole; an upload between two
    /// of its chunks, and at a minimum rate after that long).
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// 1024 connections, 30 seconds for the headers and 30 for a body.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// What the handlers share: one allocation behind an `Arc`, so that the clone axum makes of it
/// for each extractor of each request is one atomic increment (cloning its fifteen parts one by
/// one took about 4% of a loaded server's worker). Its parts are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppStateInner {
    /// Users, tokens, versions, publications.
    pub metadata: Arc<dyn MetadataStore>,
    /// XIF files.
    pub blobs: Arc<dyn BlobStore>,
    /// Limits; behind an `Arc` because the state is cloned for every request.
    pub limits: Arc<Limits>,
    /// The running extensions.
    pub runtime: Arc<Runtime>,
    /// The record operations' plan of each entity of the running definitions (step 11).
    pub records: Arc<entities::records::Records>,
    /// Recently seen API tokens.
    pub tokens: Arc<auth::TokenCache>,
    /// Publications.
    pub publishing: Arc<publishing::Publishing>,
    /// This node and the farm it is part of (a single node for the embedded stores).
    pub cluster: Arc<cluster::Cluster>,
    /// Database connections, mappings and record operations (step 11).
    pub entities: Arc<entities::Entities>,
    /// The integration log (step 11).
    pub calls: Arc<calllog::CallLog>,
    /// Talks to the other nodes of the farm (to gather logs).
    pub(crate) peers: reqwest::Client,
    passwords: Arc<auth::Passwords>,
    /// A permit for each upload being checked, [`Limits::max_concurrent_uploads`] in all.
    pub(crate) uploads: Arc<tokio::sync::Semaphore>,
    throttle: Arc<throttle::LoginThrottle>,
    metrics: PrometheusHandle,
    /// Whether Service Center's cookies are marked `Secure`: when the server speaks TLS.
    pub(crate) secure_cookies: std::sync::atomic::AtomicBool,
    /// The data directory's lock, held while any clone of the state lives.
    _lock: Arc<nix::fcntl::Flock<std::fs::File>>,
}

/// The first administrator, made when the server started with no users.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Its name, `admin`.
    pub user: String,
    /// The password generated for it, when none was given; to be shown once.
    pub generated_password: Option<String>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage could not be opened.
    #[error("cannot open the data directory `{path}`: {source}")]
    Storage {
        /// The data directory.
        path: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// The blob store could not be opened or reached.
    #[error("cannot use the blob store: {0}")]
    Blobs(StoreError),
    /// The threads that check passwords could not be started.
    #[error("cannot start the threads that check passwords: {0}")]
    Threads(std::io::Error),
    /// The address could not be bound, or serving failed.
    #[error("cannot serve on {address}: {source}")]
    Serve {
        /// The address.
        address: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be read.
    #[error("cannot use the TLS certificate `{certificate}` and key `{key}`: {source}")]
    Tls {
        /// The certificate.
        certificate: PathBuf,
        /// The key.
        key: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The database is damaged, or missing while archives are there: the server does not start
    /// on it rather than lose what it recorded.
    #[error("{problem}\nhint: {hint}")]
    Damaged {
        /// What is wrong, naming the file.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// The disk of the data directory is too full for the database to open (its migrations, or
    /// the move of an earlier version's integration log, need room): nothing was lost.
    #[error(
        "cannot open the database `{path}`: the disk is full ({source})\nhint: free some space where the data \
         directory is and start again; nothing was lost (what was moved stays, the rest is moved then)"
    )]
    Full {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// The database named by `--database` could not be used.
    #[error("cannot use the database `{url}`: {reason}\nhint: {hint}")]
    Database {
        /// Its URL, without its password.
        url: String,
        /// What failed (in the message, so not a `source` that would be shown twice).
        reason: StoreError,
        /// What to do.
        hint: &'static str,
    },
    /// The first administrator could not be made.
    #[error("cannot create the first administrator: {0}")]
    Bootstrap(String),
    /// The stores given do not fit the data found: a farm's archive store differs from this
    /// node's, or the data directory holds a single server's data that a farm node would ignore.
    #[error("{problem}\nhint: {hint}")]
    Mismatch {
        /// What does not fit, naming the store or the file.
        problem: String,
        /// What to do.
        hint: String,
    },
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only when a recorder is installed already, whose handle then serves.
            metrics::set_global_recorder(recorder).ok();
            handle
        })
        .clone()
}

impl AppState {
    /// How many uploads are being received and checked now, out of
    /// [`Limits::max_concurrent_uploads`].
    pub fn uploads_in_progress(&self) -> usize {
        self.limits.max_concurrent_uploads.max(1).saturating_sub(self.uploads.available_permits())
    }

    /// The state over the stores `storage` names, created if needed: at start no
    /// publication is in progress, and when there are no users the first administrator is made,
    /// with `admin_password` or a generated one.
    pub async fn open(
        storage: &Storage,
        limits: Limits,
        admin_password: Option<&str>,
    ) -> Result<(Self, Option<Bootstrap>), ServerError> {
        let data_dir = storage.data_dir.as_path();
        let storage_error = |source| ServerError::Storage { path: data_dir.to_owned(), source };
        let lock = take_data_directory(data_dir).map_err(storage_error)?;
        refuse_ignored_data(storage)?;
        let metadata: Arc<dyn MetadataStore> = match storage.database.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                // Shared by a farm: locks are not cleared at start (another server may be
                // publishing); the leases of dead holders run out instead.
                let metadata = PgStore::open(url).await.map_err(|reason| ServerError::Database {
                    url: postgres::redact(url),
                    reason,
                    hint: "check that PostgreSQL runs at that address and that the database exists and \
                               accepts that user and password (the server makes its tables itself)",
                })?;
                Arc::new(metadata)
            }
            Some(url) => {
                return Err(ServerError::Database {
                    url: postgres::redact(url),
                    reason: StoreError(
                        "not a database this server knows: give `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, \
                         or no --database for SQLite in the data directory"
                            .into(),
                    ),
                    hint: "PostgreSQL is the only database a farm of servers can share",
                });
            }
            None => Arc::new(open_sqlite(data_dir).await?),
        };
        let blobs: Arc<dyn BlobStore> = match &storage.blobs {
            Some(url) => Arc::new(S3Blobs::open(url).await.map_err(ServerError::Blobs)?),
            None => Arc::new(DirectoryBlobs::open(&data_dir.join("blobs")).map_err(storage_error)?),
        };
        let runtime = Arc::new(
            Runtime::new(&data_dir.join("runtime"), limits.runtime.clone())
                .map_err(|error| storage_error(error.into()))?,
        );
        let passwords = auth::Passwords::new(limits.login.password_checks, limits.login.password_wait)
            .map_err(ServerError::Threads)?;
        let backend = cluster::backend(storage.database.as_deref()).await.map_err(|reason| ServerError::Database {
            url: postgres::redact(storage.database.as_deref().unwrap_or("")),
            reason,
            hint: "the nodes of a farm keep their state in the same database: check that it still answers",
        })?;
        let cluster = Arc::new(cluster::Cluster::new(Arc::clone(&backend), None));
        // Every node must fetch the archives the others upload: the first node records its
        // store, and a node with another is refused before it joins.
        let store = store_identity(storage).map_err(ServerError::Blobs)?;
        let recorded = cluster.claim_store(&store).await.map_err(storage_error)?;
        if recorded != store {
            return Err(store_mismatch(&recorded, &store));
        }
        let keys = secrets_key(storage, &cluster).await?;
        // Known to itself before it listens (and without listening, as in tests): a node of one.
        backend.register(&cluster.identity()).await.map_err(storage_error)?;
        let publishing = Arc::new(publishing::Publishing::new(
            Arc::clone(&metadata),
            Arc::clone(&blobs),
            Arc::clone(&runtime),
            Arc::clone(&cluster),
            limits.lock_lease,
        ));
        let peers = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|error| {
            storage_error(StoreError(format!("cannot make the client that talks to other nodes: {error}")))
        })?;
        let calls = {
            let cluster = Arc::clone(&cluster);
            let log =
                calllog::CallLog::start(Arc::clone(&metadata), limits.call_log_days, move || cluster.identity().name);
            Arc::new(log.map_err(|error| {
                storage_error(StoreError(format!("cannot start the integration log's writer: {error}")))
            })?)
        };
        let entities = Arc::new(entities::Entities::new(Arc::clone(&metadata), keys, data_dir));
        let state = Self(Arc::new(AppStateInner {
            metadata,
            blobs,
            runtime,
            publishing,
            cluster,
            entities,
            records: Arc::default(),
            calls,
            peers,
            tokens: Arc::new(auth::TokenCache::default()),
            passwords: Arc::new(passwords),
            uploads: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent_uploads.max(1))),
            throttle: Arc::new(throttle::LoginThrottle::new(&limits.login)),
            limits: Arc::new(limits),
            metrics: metrics_handle(),
            secure_cookies: std::sync::atomic::AtomicBool::new(false),
            _lock: lock,
        }));
        // Extensions' own queries (`xif_sdk::database`) run on the mapped connections.
        state.runtime.use_entities(Arc::clone(&state.entities));
        let bootstrap = state.bootstrap(admin_password).await?;
        // The published version of every extension starts before the server listens; a version
        // that fails to start is logged and reported, the others start regardless.
        state.publishing.reconcile().await;
        Ok((state, bootstrap))
    }

    /// Forgets cached tokens on this node and tells the other nodes to: after a token was
    /// revoked, a user removed, or permissions changed.
    pub async fn auth_changed(&self) {
        self.tokens.clear();
        self.cluster.notify(cluster::Event::AuthChanged).await;
    }

    /// Joins the farm at `address`: registers this node, starts its heartbeat, its listener,
    /// the reconciler, and the clearing of cached tokens on other nodes' changes.
    pub async fn join(&self, address: String, name: Option<String>) -> Result<(), StoreError> {
        self.cluster.set_address(address, name);
        let mut events = self.cluster.subscribe();
        let tokens = Arc::clone(&self.tokens);
        let entities = Arc::clone(&self.entities);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(cluster::Event::AuthChanged) => tokens.clear(),
                    Ok(cluster::Event::ConnectionsChanged) => entities.refresh().await,
                    Ok(cluster::Event::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        tokens.clear();
                        entities.refresh().await;
                    }
                    Ok(cluster::Event::Published { .. }) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        self.publishing.spawn_reconciler();
        self.cluster.start().await
    }

    /// Starts a stop: from now on `/readyz` says this node is not ready, so that a balancer
    /// sends it no new calls, while it goes on serving those it gets.
    pub fn drain(&self) {
        self.cluster.readiness().set_draining();
    }

    /// Stops the extension processes.
    pub async fn shutdown(&self) {
        self.cluster.leave().await;
        self.runtime.stop_all().await;
        self.calls.flush().await;
        // Closed, the database is one file again (its write-ahead log checkpointed): a copy of
        // a stopped server's `metadata.sqlite` is a whole backup.
        self.metadata.close().await;
    }

    async fn bootstrap(&self, admin_password: Option<&str>) -> Result<Option<Bootstrap>, ServerError> {
        let failed = |error: &dyn std::fmt::Display| ServerError::Bootstrap(error.to_string());
        if self.metadata.user_count().await.map_err(|error| failed(&error))? > 0 {
            return Ok(None);
        }
        let (password, generated) = match admin_password.filter(|password| !password.is_empty()) {
            Some(password) => (password.to_owned(), false),
            None => {
                let secret = auth::random_secret("").map_err(|_| ServerError::Bootstrap("no randomness".into()))?;
                (secret[..24].to_owned(), true)
            }
        };
        let hash = self
            .passwords
            .hash(password.clone())
            .await
            .map_err(|_| ServerError::Bootstrap("cannot hash the password".into()))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let made = self
            .metadata
            .create_user("admin", &hash, true, &xif_api::Permission::ALL, &now)
            .await
            .map_err(|error| failed(&error))?;
        if made.is_none() {
            // Another server of the farm, starting at the same time, made it first.
            return Ok(None);
        }
        tracing::info!(user = "admin", "created the first administrator");
        Ok(Some(Bootstrap { user: "admin".into(), generated_password: generated.then_some(password) }))
    }
}

/// The embedded metadata store, `metadata.sqlite` in the data directory, after the checks that
/// only a database file needs (lost, emptied or damaged), with no publication lock left: a
/// single server starting has none in progress.
async fn open_sqlite(data_dir: &Path) -> Result<SqliteStore, ServerError> {
    let storage_error = |source| ServerError::Storage { path: data_dir.to_owned(), source };
    let database = data_dir.join("metadata.sqlite");
    refuse_lost_database(data_dir, &database).await?;
    let damaged = |detail: String| ServerError::Damaged {
        problem: format!("the database `{}` is damaged: {detail}", database.display()),
        hint: "restore it from a backup (stop the server, copy the backup over it, start again); \
               the server does not start on a damaged database, so that nothing more is lost"
            .into(),
    };
    let metadata = SqliteStore::open(&database).await.map_err(|error| {
        if error.is_storage_full() {
            ServerError::Full { path: database.clone(), source: error }
        } else {
            damaged(error.to_string())
        }
    })?;
    metadata.check_integrity().await.map_err(|error| damaged(error.to_string()))?;
    owner_only(data_dir, &["metadata.sqlite", "metadata.sqlite-wal", "metadata.sqlite-shm"], 0o600)
        .map_err(storage_error)?;
    metadata.clear_locks().await.map_err(storage_error)?;
    Ok(metadata)
}

/// Refuses a data directory whose database is gone or empty while archives are there: starting
/// afresh would orphan them and lose every user and version.
/// Makes the data directory (`0711`: others may pass through it to the extensions' working
/// directories, not list it) and takes its lock, which the kernel releases when the process
/// ends: a second server on the same directory is refused. Checks that it can be written.
fn take_data_directory(data_dir: &Path) -> Result<Arc<nix::fcntl::Flock<std::fs::File>>, StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(data_dir)?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))?;
    let path = data_dir.join("server.lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| StoreError(format!("cannot write in the data directory: {error}")))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Arc::new(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            Err(StoreError("another server is running on this data directory; stop it first".into()))
        }
        Err((_, error)) => Err(StoreError(format!("cannot lock `{}`: {error}", path.display()))),
    }
}

/// Makes the named files in `directory` (those that exist) readable by their owner only: the
/// database holds password hashes.
fn owner_only(directory: &Path, names: &[&str], mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    for name in names {
        let path = directory.join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

async fn refuse_lost_database(data_dir: &Path, database: &Path) -> Result<(), ServerError> {
    let archives = std::fs::read_dir(data_dir.join("blobs").join("sha256"))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    let size = std::fs::metadata(database).map(|metadata| metadata.len()).ok();
    let problem = match size {
        None if archives => format!(
            "the data directory `{}` holds uploaded archives but no database `metadata.sqlite`",
            data_dir.display()
        ),
        Some(0) => format!("the database `{}` is empty", database.display()),
        // Another SQLite file, or this one without the write-ahead log that held its records:
        // made afresh, it would orphan the archives.
        Some(_) if archives && !SqliteStore::initialised(database).await.unwrap_or(true) => format!(
            "the database `{}` holds none of this server's records, but the data directory holds uploaded archives",
            database.display()
        ),
        _ => return Ok(()),
    };
    Err(ServerError::Damaged {
        problem,
        hint: format!(
            "restore `metadata.sqlite` from a backup (with `metadata.sqlite-wal` if the backup has one); \
             to start a new server instead, move `{}` away first (nothing is initialised over existing data)",
            data_dir.display()
        ),
    })
}

/// Where database connections' secrets key comes from: a single server's own file in its data
/// directory; on a farm, the `--secrets-key` file whose fingerprint the farm recorded first (a
/// node with another key, or none once the farm has one, is refused: it could not read the
/// connections the others store).
async fn secrets_key(
    storage: &Storage,
    cluster: &cluster::Cluster,
) -> Result<entities::secrets::KeySource, ServerError> {
    use entities::secrets::{KeySource, SecretsKey};
    const SETTING: &str = "secrets_key";
    let storage_error = |source| ServerError::Storage { path: storage.data_dir.clone(), source };
    let given = match &storage.secrets_key {
        Some(path) => Some(SecretsKey::read(path).map_err(|problem| ServerError::Mismatch {
            problem,
            hint: "give --secrets-key (or XIF_SECRETS_KEY) the key file every node of the farm shares".into(),
        })?),
        None => None,
    };
    if storage.database.is_none() {
        return Ok(match given {
            Some(key) => KeySource::Given(key),
            None => KeySource::Local(storage.data_dir.join(entities::secrets::KEY_FILE)),
        });
    }
    let hint = "start every node of the farm with the same --secrets-key file (XIF_SECRETS_KEY): the one the \
                farm's connections were stored under"
        .to_owned();
    match given {
        Some(key) => {
            let fingerprint = key.fingerprint();
            let recorded = cluster.claim_setting(SETTING, &fingerprint).await.map_err(storage_error)?;
            if recorded != fingerprint {
                return Err(ServerError::Mismatch {
                    problem: format!(
                        "the secrets key given (key {fingerprint}) is not the farm's (key {recorded}): this node could \
                         not read the database connections the others stored"
                    ),
                    hint,
                });
            }
            Ok(KeySource::Given(key))
        }
        None => match cluster.setting(SETTING).await.map_err(storage_error)? {
            Some(recorded) => Err(ServerError::Mismatch {
                problem: format!(
                    "the farm keeps database connections under a secrets key (key {recorded}), and this node was \
                     started without one"
                ),
                hint,
            }),
            None => Ok(KeySource::Missing),
        },
    }
}

/// The archive store `storage` names, as the farm records it: `s3://BUCKET@ENDPOINT` (`@aws`
/// for AWS itself), or `directory HOST:PATH` for the directory of one node (which only that
/// node can read). Never a credential: those come from the environment.
pub fn store_identity(storage: &Storage) -> Result<String, StoreError> {
    match &storage.blobs {
        Some(url) => {
            let location = s3::Location::parse(url)?;
            Ok(format!("s3://{}@{}", location.bucket, location.endpoint.as_deref().unwrap_or("aws")))
        }
        None => {
            let host = nix::unistd::gethostname()
                .map(|host| host.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".to_owned());
            Ok(format!("directory {host}:{}", storage.data_dir.join("blobs").display()))
        }
    }
}

/// The refusal of a node whose archive store `store` is not the farm's `recorded` one.
fn store_mismatch(recorded: &str, store: &str) -> ServerError {
    let hint = match recorded.strip_prefix("s3://").and_then(|rest| rest.split_once('@')) {
        Some((bucket, endpoint)) => {
            let setting = if endpoint == "aws" { String::new() } else { format!("?endpoint={endpoint}") };
            format!(
                "start this node with `--blobs s3://{bucket}{setting}` (and the region the other nodes use), as every \
                 node of the farm"
            )
        }
        None => "the farm keeps its archives in one node's data directory, which no other node can read: a farm of \
                 several nodes needs an S3-compatible store (`--blobs s3://BUCKET?endpoint=URL`); to use this node \
                 alone, start it on that data directory"
            .to_owned(),
    };
    let shown = |identity: &str| match identity.strip_prefix("directory ") {
        Some(path) => format!("the directory `{path}`"),
        None => format!("`{identity}`"),
    };
    ServerError::Mismatch {
        problem: format!(
            "the farm in this database keeps its archives in {}, and this node in {}: the other nodes could not \
             fetch the archives it takes, nor it theirs",
            shown(recorded),
            shown(store)
        ),
        hint,
    }
}

/// Refuses a node on PostgreSQL whose data directory holds what a single server kept there (its
/// SQLite database, or archives when they now go to an object store): it would start empty and
/// leave that data unused, silently.
fn refuse_ignored_data(storage: &Storage) -> Result<(), ServerError> {
    if storage.database.is_none() {
        return Ok(());
    }
    let data_dir = &storage.data_dir;
    let hint = format!(
        "give this node another data directory (a farm node keeps only its running extensions there); there is \
         no tool yet to move a server's data into PostgreSQL, so keep running that server without --database to \
         keep what `{}` holds",
        data_dir.display()
    );
    let database = data_dir.join("metadata.sqlite");
    if database.exists() {
        return Err(ServerError::Mismatch {
            problem: format!(
                "the data directory holds a server's SQLite database `{}`, which a server on PostgreSQL \
                 (--database) would ignore",
                database.display()
            ),
            hint,
        });
    }
    let archives = data_dir.join("blobs").join("sha256");
    let holds_archives = std::fs::read_dir(&archives).is_ok_and(|mut entries| entries.next().is_some());
    if storage.blobs.is_some() && holds_archives {
        return Err(ServerError::Mismatch {
            problem: format!(
                "the data directory holds uploaded archives in `{}`, which a server with an object store \
                 (--blobs) would ignore",
                archives.display()
            ),
            hint,
        });
    }
    Ok(())
}

/// Checks the URL a node advertises to the others: `http://` or `https://`, a host and a port
/// (said, or the scheme's), nothing else; says what is wrong in words.
pub fn check_advertise(text: &str) -> Result<String, String> {
    let example = "write it as `http://HOST:PORT` or `https://HOST:PORT`, where the other nodes reach this one";
    let url = reqwest::Url::parse(text).map_err(|error| format!("`{text}` is not a URL ({error}); {example}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL; {example}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host; {example}"));
    }
    // The parser drops a port that is the scheme's own (`:80`), which counts as said.
    let authority = text.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let port_said = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()));
    if url.port().is_none() && !port_said {
        return Err(format!("`{text}` names no port; {example}"));
    }
    if !url.username().is_empty() || url.password().is_some() || !matches!(url.path(), "" | "/") {
        return Err(format!("`{text}` has more than a scheme, a host and a port; {example}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` has more than a scheme, a host and a port; {example}"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    use handlers::*;
    // The API's routes with their full paths, merged rather than nested: a nested router costs
    // each request a second match and a rewritten URI (about 3% of a loaded server's worker).
    let at = |path: &str| format!("{}{path}", xif_api::PREFIX);
    let api = Router::new()
        .route(&at("/openapi.json"), get(openapi))
        .route(&at("/login"), post(login))
        .route(&at("/me"), get(me))
        .route(&at("/tokens"), get(tokens).post(create_token))
        .route(&at("/tokens/{id}"), delete(revoke_token))
        .route(&at("/users"), get(users).post(add_user))
        .route(&at("/users/{name}"), delete(remove_user))
        .route(&at("/users/{name}/grants"), post(grant))
        .route(&at("/users/{name}/grants/{permission}"), delete(revoke))
        .route(&at("/extensions"), get(extensions))
        .route(&at("/extensions/{name}"), get(extension))
        .route(&at("/extensions/{name}/versions"), get(versions).post(upload).layer(DefaultBodyLimit::disable()))
        .route(&at("/extensions/{name}/versions/{number}/xif"), get(download))
        .route(&at("/extensions/{name}/publications"), get(publications).post(publish))
        .route(&at("/extensions/{name}/actions/{action}"), post(call))
        .route(&at("/extensions/{name}/openapi.json"), get(extension_openapi::handler))
        .route(&at("/extensions/{name}/logs"), get(logs))
        .route(&at("/extensions/{name}/consumers"), get(consumers))
        .route(&at("/extensions/{name}/calls"), get(calls))
        .route(
            &at("/extensions/{name}/entities/{entity}/records"),
            get(entities::api::list).post(entities::api::create),
        )
        .route(
            &at("/extensions/{name}/entities/{entity}/records/{id}"),
            get(entities::api::read).put(entities::api::put).delete(entities::api::delete),
        )
        .route(&at("/extensions/{name}/lock"), delete(break_lock))
        .route(&at("/locks"), get(locks))
        .route(&at("/nodes"), get(nodes))
        .route(&at("/connections"), get(entities::connections::list).post(entities::connections::add))
        .route(&at("/connections/{name}"), delete(entities::connections::remove))
        .route(&at("/connections/{name}/test"), post(entities::connections::test))
        .route(&at("/extensions/{name}/databases"), get(entities::mapping::list))
        .route(&at("/extensions/{name}/databases/{logical}"), axum::routing::put(entities::mapping::map))
        .route(&at("/modules/{module}/dependencies"), axum::routing::put(dependencies))
        .method_not_allowed_fallback(method_not_allowed);
    let router = Router::new()
        .merge(api)
        // Service Center, the web console (step 12); the server's root leads to it.
        .nest(console::ROOT, console::router())
        .route("/", get(|| async { axum::response::Redirect::to("/console/extensions") }))
        .route("/console/", get(|| async { axum::response::Redirect::to("/console/extensions") }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(count_requests));
    // A span and two clock readings for each request: only when they can be logged
    // (`XIF_LOG=debug`), as they cost a loaded server's worker for nothing otherwise.
    let router = if tracing::enabled!(tracing::Level::DEBUG) {
        router.layer(tower_http::trace::TraceLayer::new_for_http())
    } else {
        router
    };
    router.with_state(state)
}

/// `/metrics` without a token, for the separate metrics address.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::open_metrics))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .with_state(state)
}

async fn count_requests(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let headers = request.headers();
    let sends_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok())
            .is_some_and(|length| length != "0");
    let mut response = next.run(request).await;
    let status = response.status();
    requests_counter(status).increment(1);
    // A request refused before its body was read (a token out of scope, a full disk, a body
    // over the limit) leaves bytes on the connection that hyper will not read: the connection
    // is closed after the answer, and saying so keeps a client from sending its next request on
    // it (which then fails as a broken pipe).
    if sends_body && (status.is_client_error() || status.is_server_error()) {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// The counter of answers with `status`: made once per status and kept, rather than a label
/// string, a key and a registry lookup for every request.
fn requests_counter(status: axum::http::StatusCode) -> metrics::Counter {
    static COUNTERS: [OnceLock<metrics::Counter>; 500] = [const { OnceLock::new() }; 500];
    let code = status.as_u16();
    let make = || metrics::counter!("xif_http_requests_total", "status" => code.to_string());
    // Status codes are 100 to 599 (`StatusCode` holds no other).
    COUNTERS.get(usize::from(code).wrapping_sub(100)).map_or_else(make, |counter| counter.get_or_init(make).clone())
}

/// Where the server listens, once bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The API's address.
    pub api: SocketAddr,
    /// The address of `/metrics` without a token, when one was asked for.
    pub metrics: Option<SocketAddr>,
}

/// How long connections may take to finish their requests once a shutdown began.
const GRACE: Duration = Duration::from_secs(10);

/// Serves `state` on `config.listen`, over TLS when configured, and the metrics on
/// `config.metrics_listen` when set, until `shutdown` completes. `bound` is told the addresses
/// actually bound (useful with port 0).
///
/// Connections are capped and their headers timed (see [`ConnectionLimits`]); peers' addresses
/// reach the handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    config: &ServerConfig,
    state: AppState,
    bound: impl FnOnce(Bound),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = state.limits.connections.clone();
    let bind = |address: SocketAddr, cap: usize| {
        let serve_error = |source| ServerError::Serve { address, source };
        let listener = std::net::TcpListener::bind(address).map_err(serve_error)?;
        listener.set_nonblocking(true).map_err(serve_error)?;
        let local = listener.local_addr().map_err(serve_error)?;
        Ok::<_, ServerError>((connections::Listener::new(listener, cap).map_err(serve_error)?, local))
    };
    let (listener, api_address) = bind(config.listen, connections::cap(&limits))?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let advertised = config.advertise.clone().unwrap_or_else(|| format!("{scheme}://{api_address}"));
    let name = config.node_name.clone().or_else(|| {
        config.advertise.is_none().then(|| api_address.to_string()).or_else(|| {
            reqwest::Url::parse(&advertised)
                .ok()
                .and_then(|url| Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?)))
        })
    });
    state
        .join(advertised, name)
        .await
        .map_err(|source| ServerError::Storage { path: config.data_dir.clone(), source })?;
    // A few connections are plenty for a metrics scraper.
    let metrics = config.metrics_listen.map(|address| bind(address, 16)).transpose()?;
    let handle = axum_server::Handle::new();
    let metrics_handle = axum_server::Handle::new();
    {
        let (handle, metrics_handle) = (handle.clone(), metrics_handle.clone());
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(GRACE));
            metrics_handle.graceful_shutdown(Some(GRACE));
        });
    }
    let metrics_address = metrics.as_ref().map(|(_, address)| *address);
    let metrics_task = metrics.map(|(listener, address)| {
        let server = connections::configure(axum_server::Server::from_listener(listener), &limits);
        let app = metrics_router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let serving = server.handle(metrics_handle).serve(app);
        tokio::spawn(async move {
            if let Err(error) = serving.await {
                tracing::error!(%error, %address, "serving the metrics failed");
            }
        })
    });
    state.secure_cookies.store(config.tls.is_some(), std::sync::atomic::Ordering::Relaxed);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let serve_error = |source| ServerError::Serve { address: config.listen, source };
    let server = connections::configure(axum_server::Server::from_listener(listener), &limits).handle(handle);
    let served = match &config.tls {
        None => {
            bound(Bound { api: api_address, metrics: metrics_address });
            server.serve(app).await.map_err(serve_error)
        }
        Some((certificate, key)) => {
            // One crypto provider for the process; installing it twice is harmless.
            rustls::crypto::ring::default_provider().install_default().ok();
            let tls_error = |source| ServerError::Tls { certificate: certificate.clone(), key: key.clone(), source };
            let loaded =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(certificate, key).await.map_err(tls_error)?;
            // HTTP/1.1 only, as the server speaks (see `connections::configure`).
            let mut tls = (*loaded.get_inner()).clone();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
            bound(Bound { api: api_address, metrics: metrics_address });
            server.acceptor(axum_server::tls_rustls::RustlsAcceptor::new(tls)).serve(app).await.map_err(serve_error)
        }
    };
    if let Some(task) = metrics_task {
        task.abort();
    }
    served
}
