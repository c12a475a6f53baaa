//! The Platform Server: users and permissions, uploads of XIF archives, versions, and
//! publishing, over a versioned JSON API (`/api/v1`).
//!
//! Only this crate knows HTTP and SQL. Handlers see storage through [`MetadataStore`] and
//! [`BlobStore`]; the embedded implementations are SQLite ([`SqliteStore`]) and a directory
//! ([`DirectoryBlobs`]). The server never prints: it logs through `tracing`, and what a person
//! must see once (a generated administrator password) is returned to the caller.

mod auth;
mod blobs;
mod error;
mod handlers;
mod runtime;
mod sqlite;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;

pub use blobs::DirectoryBlobs;
pub use error::ApiError;
pub use runtime::{DeployError, IsolationOptions, Runtime, RuntimeCallError, RuntimeOptions};
pub use sqlite::SqliteStore;
pub use store::{BlobStore, MetadataStore, NewVersion, PublishRefusal, StoreError, UserRecord};

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
}

/// Limits the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest upload accepted, in bytes.
    pub max_upload: u64,
    /// How extensions run: time limits, resource limits, calls at once.
    pub runtime: RuntimeOptions,
}

impl Default for Limits {
    /// 1 GiB uploads, and the runtime's defaults.
    fn default() -> Self {
        Self { max_upload: 1 << 30, runtime: RuntimeOptions::default() }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Users, tokens, versions, publications.
    pub metadata: Arc<dyn MetadataStore>,
    /// XIF files.
    pub blobs: Arc<dyn BlobStore>,
    /// Limits.
    pub limits: Limits,
    /// The running extensions.
    pub runtime: Arc<Runtime>,
    /// Recently seen API tokens.
    pub tokens: Arc<auth::TokenCache>,
    metrics: PrometheusHandle,
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
    /// The first administrator could not be made.
    #[error("cannot create the first administrator: {0}")]
    Bootstrap(String),
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
    /// The state over the embedded stores in `data_dir`, created if needed: at start no
    /// publication is in progress, and when there are no users the first administrator is made,
    /// with `admin_password` or a generated one.
    pub async fn open(
        data_dir: &Path,
        limits: Limits,
        admin_password: Option<&str>,
    ) -> Result<(Self, Option<Bootstrap>), ServerError> {
        let storage = |source| ServerError::Storage { path: data_dir.to_owned(), source };
        std::fs::create_dir_all(data_dir).map_err(|error| storage(error.into()))?;
        let metadata = SqliteStore::open(&data_dir.join("metadata.sqlite")).await.map_err(storage)?;
        let blobs = DirectoryBlobs::open(&data_dir.join("blobs")).map_err(storage)?;
        metadata.clear_locks().await.map_err(storage)?;
        let runtime =
            Runtime::new(&data_dir.join("runtime"), limits.runtime.clone()).map_err(|error| storage(error.into()))?;
        let state = Self {
            metadata: Arc::new(metadata),
            blobs: Arc::new(blobs),
            limits,
            runtime: Arc::new(runtime),
            tokens: Arc::new(auth::TokenCache::default()),
            metrics: metrics_handle(),
        };
        let bootstrap = state.bootstrap(admin_password).await?;
        state.start_published().await;
        Ok((state, bootstrap))
    }

    /// Starts the published version of every extension, as at the server's start. A version that
    /// fails to start is logged; the others start regardless.
    async fn start_published(&self) {
        let extensions = match self.metadata.extensions().await {
            Ok(extensions) => extensions,
            Err(error) => {
                tracing::error!(%error, "cannot list the extensions to start");
                return;
            }
        };
        for extension in extensions {
            let Some(number) = extension.published else { continue };
            let blob = match self.metadata.version(&extension.name, number).await {
                Ok(Some(version)) => self.blobs.path(&version.sha256).await.ok().flatten(),
                _ => None,
            };
            let Some(blob) = blob else {
                tracing::error!(extension = %extension.name, number, "the published version's archive is missing");
                continue;
            };
            if let Err(error) = self.runtime.deploy(&extension.name, number, &blob).await {
                tracing::error!(extension = %extension.name, number, %error, "the published version did not start");
            }
        }
    }

    /// Stops the extension processes.
    pub async fn shutdown(&self) {
        self.runtime.stop_all().await;
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
        let hash =
            auth::hash_password(&password).map_err(|_| ServerError::Bootstrap("cannot hash the password".into()))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.metadata
            .create_user("admin", &hash, true, &xif_api::Permission::ALL, &now)
            .await
            .map_err(|error| failed(&error))?;
        tracing::info!(user = "admin", "created the first administrator");
        Ok(Some(Bootstrap { user: "admin".into(), generated_password: generated.then_some(password) }))
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    use handlers::*;
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/tokens", get(tokens))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/users", get(users).post(add_user))
        .route("/users/{name}", delete(remove_user))
        .route("/users/{name}/grants", post(grant))
        .route("/users/{name}/grants/{permission}", delete(revoke))
        .route("/extensions", get(extensions))
        .route("/extensions/{name}/versions", get(versions).post(upload).layer(DefaultBodyLimit::disable()))
        .route("/extensions/{name}/versions/{number}/xif", get(download))
        .route("/extensions/{name}/publications", get(publications).post(publish))
        .route("/extensions/{name}/actions/{action}", post(call))
        .route("/extensions/{name}/logs", get(logs))
        .route("/modules/{module}/dependencies", axum::routing::put(dependencies));
    Router::new()
        .nest(xif_api::PREFIX, api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn count_requests(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let response = next.run(request).await;
    metrics::counter!("xif_http_requests_total", "status" => response.status().as_u16().to_string()).increment(1);
    response
}

/// Serves `state` on `config.listen`, over TLS when configured, until `shutdown` completes.
/// `bound` is told the address actually bound (useful with port 0).
pub async fn serve(
    config: &ServerConfig,
    state: AppState,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let serve_error = |source| ServerError::Serve { address: config.listen, source };
    let listener = std::net::TcpListener::bind(config.listen).map_err(serve_error)?;
    listener.set_nonblocking(true).map_err(serve_error)?;
    let address = listener.local_addr().map_err(serve_error)?;
    let app = router(state).into_make_service();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    match &config.tls {
        None => {
            bound(address);
            axum_server::from_tcp(listener).map_err(serve_error)?.handle(handle).serve(app).await.map_err(serve_error)
        }
        Some((certificate, key)) => {
            // One crypto provider for the process; installing it twice is harmless.
            rustls::crypto::ring::default_provider().install_default().ok();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(certificate, key)
                .await
                .map_err(|source| ServerError::Tls { certificate: certificate.clone(), key: key.clone(), source })?;
            bound(address);
            axum_server::from_tcp_rustls(listener, tls)
                .map_err(serve_error)?
                .handle(handle)
                .serve(app)
                .await
                .map_err(serve_error)
        }
    }
}
