//! The HTTP handlers: thin, each parsing its request, checking permissions, and calling the
//! stores.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};
use xif_api::{
    DIGEST_HEADER, Grant, Health, LoginRequest, LoginResponse, NewUser, Permission, PublishRequest, PublishResponse,
    SIGNATURE_HEADER, UploadResponse,
};

use crate::AppState;
use crate::auth::{Caller, CurrentUser, PeerAddress, random_secret, token_hash};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::names::{ActionName, ExtensionName, ModuleName, UserName};
use crate::paging::{DigestFilter, Listed, Paging};
use crate::publishing::Order;
use crate::store::NewToken;
use crate::store::NewVersion;
use crate::throttle::Refused;
use xif_api::ErrorCode;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// For the balancer: 200 once the node runs the published state (after its start, and after it
/// lost and found the database again), 503 until then. `/healthz` says only that it is alive.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.cluster.readiness().reason() {
        None => Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() }).into_response(),
        Some(reason) => ApiError::retry_after(
            ErrorCode::StorageUnavailable,
            &format!("not ready: {reason}"),
            Duration::from_secs(1),
        )
        .into_response(),
    }
}

/// The nodes of the farm, what each runs, and whether each is live; for administrators only:
/// it shows the nodes' internal addresses.
pub async fn nodes(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<xif_api::Node>>, ApiError> {
    user.administrator_for("listing the nodes of the farm")?;
    Ok(Json(state.cluster.nodes(None).await?.iter().map(crate::cluster::NodeInfo::api).collect()))
}

/// Prometheus metrics, for administrators only: they tell who is using what.
pub async fn metrics(State(state): State<AppState>, user: CurrentUser) -> Result<String, ApiError> {
    user.administrator_for("reading the metrics")?;
    Ok(state.metrics.render())
}

/// The same without a token, on the separate metrics address (`--metrics-listen`), which only
/// those who can reach that address can read.
pub async fn open_metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json"))
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NoSuchEndpoint, "there is no such endpoint; the API is described at /api/v1/openapi.json")
}

/// A path that is an endpoint, with a method it does not take; axum adds the `Allow` header.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method; the `Allow` header lists those it takes, and the API is described at /api/v1/openapi.json",
    )
}

pub async fn login(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    // Behind a trusted balancer, the client it forwards for: else every client would share
    // the balancer's address, and its limit.
    let peer = crate::auth::client_address(peer, &headers, &state.limits.login.trusted_proxies);
    let tokens = &state.limits.tokens;
    let lifetime = match request.expires_in {
        None => tokens.default_lifetime,
        Some(seconds) if seconds > 0 && seconds <= tokens.max_lifetime.as_secs() => Duration::from_secs(seconds),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidTokenLifetime,
                format!("`expires_in` is between 1 and {} seconds", tokens.max_lifetime.as_secs()),
            ));
        }
    };
    let (token, token_id, expires_at, user) =
        sign_in(&state, peer, &request.user, &request.password, lifetime, request.label.as_deref()).await?;
    Ok(Json(LoginResponse { token, token_id, expires_at, user: user.api() }))
}

/// Checks `user`'s `password` from the client at `peer`, throttled as logins are (per address
/// and per user name, on this node and across the farm), and makes a token that lasts
/// `lifetime`: the token, its id, its expiry (RFC 3339) and the user. Both the API's login and
/// Service Center's sign-in come here, so that they refuse and throttle alike.
pub(crate) async fn sign_in(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    user_name: &str,
    password: &str,
    lifetime: Duration,
    label: Option<&str>,
) -> Result<(String, i64, Option<String>, crate::store::UserRecord), ApiError> {
    // A name no user can have (user names are ASCII by rule) is refused before it is
    // throttled or looked up: a store could match it to another user's name (PostgreSQL's
    // `lower` folds `İ` to `i`), and it would be counted apart from that user.
    if !crate::names::is_user_name(user_name) {
        metrics::counter!("xif_login_failures_total").increment(1);
        tracing::warn!(peer = ?peer, "login failed: not a user name");
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong user name or password"));
    }
    // Before any password is checked: refusing is what saves the work.
    if let Err(refused) = state.throttle.attempt(peer, user_name) {
        let (by, message, wait) = match refused {
            Refused::Address(wait) => ("address", "too many login attempts from your address".to_owned(), wait),
            Refused::User(wait) => {
                // The name as given, cut to the longest a name can be.
                let name: String = user_name.chars().take(crate::names::MAX_USER_NAME).collect();
                ("user", format!("too many login attempts for user `{name}`"), wait)
            }
        };
        metrics::counter!("xif_login_throttled_total", "by" => by).increment(1);
        // At most one line a refused attempt: a flood is itself what an operator must see.
        tracing::warn!(peer = ?peer, by, "login refused: too many attempts");
        // Tarpit: a flood that does not wait as told waits here, at the cost of a timer.
        tokio::time::sleep(wait.min(state.limits.login.refusal_delay)).await;
        return Err(ApiError::retry_after(ErrorCode::TooManyAttempts, &message, wait));
    }
    // Across the farm: every node's attempts in this minute (a single node has none to add).
    let limited = state.limits.login.per_address > 0 || state.limits.login.per_user > 0;
    let keys = crate::throttle::shared_keys(peer, user_name);
    if limited && let Some(counts) = state.cluster.count_logins(&keys).await? {
        let limits = &state.limits.login;
        let over =
            |index: usize, limit: u32| limit > 0 && counts.get(index).is_some_and(|count| *count > i64::from(limit));
        let refused = if over(0, limits.per_address) {
            Some(("address", "too many login attempts from your address".to_owned()))
        } else if over(1, limits.per_user) {
            let name: String = user_name.chars().take(crate::names::MAX_USER_NAME).collect();
            Some(("user", format!("too many login attempts for user `{name}`")))
        } else {
            None
        };
        if let Some((by, message)) = refused {
            let wait = Duration::from_secs(60 - chrono::Utc::now().timestamp().rem_euclid(60) as u64);
            metrics::counter!("xif_login_throttled_total", "by" => by).increment(1);
            tracing::warn!(peer = ?peer, by, "login refused: too many attempts across the farm");
            tokio::time::sleep(wait.min(state.limits.login.refusal_delay)).await;
            return Err(ApiError::retry_after(ErrorCode::TooManyAttempts, &message, wait));
        }
    }
    let user = state.metadata.user(user_name).await?;
    // Both checks cost the same whether or not the user exists, so that timing does not say
    // which names are taken.
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => dummy_hash(state).await?,
    };
    let matches = state.passwords.verify(password.to_owned(), hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        metrics::counter!("xif_login_failures_total").increment(1);
        let name: String = user_name.chars().take(crate::names::MAX_USER_NAME).collect();
        tracing::warn!(peer = ?peer, user = %name, "login failed: wrong user name or password");
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong user name or password"));
    };
    let token = random_secret("xif_")?;
    let created = chrono::Utc::now();
    let expires_at = chrono::Duration::from_std(lifetime)
        .ok()
        .and_then(|lifetime| created.checked_add_signed(lifetime))
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let token_id = state
        .metadata
        .create_token(NewToken {
            user_id: user.id,
            hash: &token_hash(&token),
            label,
            created_at: &created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: expires_at.as_deref(),
            scope: None,
        })
        .await?;
    tracing::info!(user = %user.name, token_id, "login");
    Ok((token, token_id, expires_at, user))
}

/// An argon2 hash of a random password, checked against when the user does not exist.
async fn dummy_hash(state: &AppState) -> Result<String, ApiError> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash.clone());
    }
    let hash = state.passwords.hash(random_secret("")?).await?;
    Ok(HASH.get_or_init(|| hash).clone())
}

pub async fn me(user: CurrentUser) -> Json<xif_api::User> {
    Json(user.0.api())
}

pub async fn tokens(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<xif_api::Token>>, ApiError> {
    Ok(Json(state.metadata.tokens(user.0.id).await?))
}

/// `POST /tokens`: a module token, for applications. It acts as the module, and may call the
/// actions of and use the records of the extensions named (each must have been uploaded), and
/// declare the module's dependencies; nothing else. Made by users with allow-extensions and by
/// administrators; shown this once, stored as its SHA-256 as every token.
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<xif_api::NewModuleToken>,
) -> Result<(StatusCode, Json<xif_api::ModuleTokenResponse>), ApiError> {
    let user = user.0;
    if !user.administrator && !user.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(&user.name, "allow-extensions", "creating a module token"));
    }
    if !crate::names::is_definition_name(&request.module) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{}` is not a valid module name: {}", request.module, crate::names::definition_rule("module")),
        ));
    }
    if request.extensions.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "`extensions` names at least one extension the token may use (`xif token create MODULE --extension NAME`)",
        ));
    }
    let mut extensions: Vec<String> = Vec::new();
    for name in &request.extensions {
        if !crate::names::is_definition_name(name) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "`{name}` in `extensions` is not a valid extension name: {}",
                    crate::names::definition_rule("extension")
                ),
            ));
        }
        let Some(extension) = state.metadata.extension(name).await? else {
            return Err(ApiError::new(
                ErrorCode::UnknownExtension,
                format!(
                    "no version of extension `{name}` was uploaded; a module token is scoped to existing extensions"
                ),
            ));
        };
        if !extensions.iter().any(|known| known.eq_ignore_ascii_case(&extension.name)) {
            extensions.push(extension.name);
        }
    }
    let tokens = &state.limits.tokens;
    let lifetime = match request.expires_in {
        None => tokens.default_lifetime,
        Some(seconds) if seconds > 0 && seconds <= tokens.max_lifetime.as_secs() => Duration::from_secs(seconds),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidTokenLifetime,
                format!("`expires_in` is between 1 and {} seconds", tokens.max_lifetime.as_secs()),
            ));
        }
    };
    let token = random_secret("xif_")?;
    let created = chrono::Utc::now();
    let expires_at = chrono::Duration::from_std(lifetime)
        .ok()
        .and_then(|lifetime| created.checked_add_signed(lifetime))
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let scope = crate::store::TokenScope { module: request.module.clone(), extensions };
    let label = request.label.clone().unwrap_or_else(|| format!("module {}", request.module));
    let token_id = state
        .metadata
        .create_token(NewToken {
            user_id: user.id,
            hash: &token_hash(&token),
            label: Some(&label),
            created_at: &created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: expires_at.as_deref(),
            scope: Some(&scope),
        })
        .await?;
    tracing::info!(user = %user.name, token_id, module = %scope.module, extensions = ?scope.extensions, "module token created");
    Ok((
        StatusCode::CREATED,
        Json(xif_api::ModuleTokenResponse {
            token,
            token_id,
            expires_at,
            module: scope.module,
            extensions: scope.extensions,
        }),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.metadata.revoke_token(user.0.id, id, &now()).await?;
    state.auth_changed().await;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::UnknownToken, format!("you have no active token {id}")))
    }
}

pub async fn users(
    State(state): State<AppState>,
    user: CurrentUser,
    paging: Paging<String>,
) -> Result<Listed<xif_api::User>, ApiError> {
    user.administrator()?;
    let users = state.metadata.users(&paging.page()).await?;
    Ok(paging.answer(users, |user| user.name.clone(), |user| user.api()))
}

fn permissions(names: &[String]) -> Result<Vec<Permission>, ApiError> {
    let mut permissions = Vec::new();
    for name in names {
        let Some(granted) = Permission::parse(name) else {
            return Err(ApiError::new(
                ErrorCode::UnknownPermission,
                format!(
                    "`{name}` is not a permission; use `allow-extensions`, `allow-foreign-entities` or the role `change-and-deploy`"
                ),
            ));
        };
        permissions.extend(granted);
    }
    permissions.sort_unstable();
    permissions.dedup();
    Ok(permissions)
}

pub async fn add_user(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<xif_api::User>), ApiError> {
    user.administrator()?;
    if !crate::names::is_user_name(&new.name) {
        return Err(ApiError::new(ErrorCode::InvalidUserName, crate::names::USER_NAME_RULE));
    }
    if new.password.chars().count() < 12 {
        return Err(ApiError::new(ErrorCode::WeakPassword, "passwords have at least 12 characters"));
    }
    let granted = permissions(&new.grant)?;
    let hash = state.passwords.hash(new.password.clone()).await?;
    match state.metadata.create_user(&new.name, &hash, new.administrator, &granted, &now()).await? {
        Some(created) => {
            tracing::info!(by = %user.0.name, user = %created.name, "user added");
            Ok((StatusCode::CREATED, Json(created.api())))
        }
        None => Err(ApiError::new(ErrorCode::UserExists, format!("a user `{}` exists already", new.name))),
    }
}

pub async fn remove_user(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<UserName>,
) -> Result<StatusCode, ApiError> {
    let administrator = user.administrator()?;
    if administrator.name.eq_ignore_ascii_case(&name) {
        return Err(ApiError::new(ErrorCode::CannotRemoveSelf, "you cannot remove your own account"));
    }
    let removed = state.metadata.remove_user(&name).await?;
    state.auth_changed().await;
    if removed {
        tracing::info!(by = %administrator.name, user = %name, "user removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::UnknownUser, format!("there is no user `{name}`")))
    }
}

async fn change_grants(state: &AppState, name: &str, grant: &str, add: bool) -> Result<Json<xif_api::User>, ApiError> {
    let Some(target) = state.metadata.user(name).await? else {
        return Err(ApiError::new(ErrorCode::UnknownUser, format!("there is no user `{name}`")));
    };
    let changed = permissions(&[grant.to_owned()])?;
    let mut held = target.permissions.clone();
    if add {
        held.extend(changed);
    } else {
        held.retain(|permission| !changed.contains(permission));
    }
    held.sort_unstable();
    held.dedup();
    state.metadata.set_permissions(name, &held).await?;
    state.auth_changed().await;
    let updated = state.metadata.user(name).await?.ok_or_else(|| ApiError::internal("user vanished"))?;
    Ok(Json(updated.api()))
}

pub async fn grant(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<UserName>,
    ApiJson(grant): ApiJson<Grant>,
) -> Result<Json<xif_api::User>, ApiError> {
    user.administrator()?;
    change_grants(&state, &name, &grant.permission, true).await
}

pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((name, permission)): ApiPath<(UserName, String)>,
) -> Result<Json<xif_api::User>, ApiError> {
    user.administrator()?;
    change_grants(&state, &name, &permission, false).await
}

pub async fn extensions(
    State(state): State<AppState>,
    _user: CurrentUser,
    paging: Paging<String>,
) -> Result<Listed<xif_api::Extension>, ApiError> {
    let extensions = state.metadata.extensions(&paging.page()).await?;
    let mut listed = paging.answer(extensions, |extension| extension.name.clone(), |extension| extension);
    for extension in &mut listed.items {
        extension.running = state.runtime.running_version(&extension.name).await;
        extension.missing_configuration = state.entities.missing_for(&state.runtime, &extension.name).await;
    }
    Ok(listed)
}

/// One extension, with its running version.
pub async fn extension(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<ExtensionName>,
) -> Result<Json<xif_api::Extension>, ApiError> {
    caller.allow_extension(&name)?;
    let Some(mut extension) = state.metadata.extension(&name).await? else {
        return Err(ApiError::new(
            ErrorCode::UnknownExtension,
            format!("no version of extension `{name}` was uploaded"),
        ));
    };
    extension.running = state.runtime.running_version(&extension.name).await;
    extension.missing_configuration = state.entities.missing_for(&state.runtime, &extension.name).await;
    Ok(Json(extension))
}

pub async fn versions(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
    paging: Paging<i64>,
    DigestFilter(sha256): DigestFilter,
) -> Result<Listed<xif_api::Version>, ApiError> {
    let versions = match &sha256 {
        // At most one: digests are unique among an extension's versions.
        Some(sha256) => state.metadata.version_by_digest(&name, sha256).await?.into_iter().collect(),
        None => state.metadata.versions(&name, &paging.page()).await?,
    };
    // An empty page (after the last version, or no version with the digest) is a page; an
    // extension never uploaded is not.
    if versions.is_empty() && state.metadata.extension(&name).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::UnknownExtension,
            format!("no version of extension `{name}` was uploaded"),
        ));
    }
    Ok(paging.answer(versions, |version| version.number.to_string(), |version| version))
}

pub async fn publications(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
    paging: Paging<i64>,
) -> Result<Listed<xif_api::Publication>, ApiError> {
    let publications = state.metadata.publications(&name, &paging.page()).await?;
    Ok(paging.answer(publications, |record| record.id.to_string(), |record| record.publication))
}

pub async fn download(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath((name, number)): ApiPath<(ExtensionName, i64)>,
) -> Result<Response, ApiError> {
    let Some(version) = state.metadata.version(&name, number).await? else {
        return Err(ApiError::new(ErrorCode::UnknownVersion, format!("extension `{name}` has no version {number}")));
    };
    let Some(blob) = state.blobs.open(&version.sha256).await? else {
        return Err(ApiError::internal(format!("the blob of `{name}` version {number} is missing")));
    };
    let body = Body::from_stream(blob.stream);
    let disposition = format!("attachment; filename=\"{}-{}.xif\"", version.extension, version.number);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, version.size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The slowest an upload may come, in bytes a second, once it has gone on for the body timeout.
const MIN_UPLOAD_RATE: f64 = 16.0 * 1024.0;

/// What an uploaded archive says of itself, once checked.
struct Checked {
    name: String,
    declared_version: String,
    warnings: Vec<String>,
}

pub async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let user = user.0;
    may_upload(&user)?;
    let announced = headers
        .get(DIGEST_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::MissingDigest, format!("send the XIF's SHA-256 in the `{DIGEST_HEADER}` header"))
        })?;
    if announced.len() != 64 || !announced.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            ErrorCode::InvalidDigest,
            format!("`{DIGEST_HEADER}` must be 64 hexadecimal digits"),
        ));
    }
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let incoming =
        Incoming { expected_name: Some(&*name), announced: Some(announced), declared_length, headers: &headers };
    let (status, response) = receive_upload(&state, &user, incoming, body.into_data_stream()).await?;
    Ok((status, Json(response)))
}

/// Refused unless `user` may upload (allow-extensions).
pub(crate) fn may_upload(user: &crate::store::UserRecord) -> Result<(), ApiError> {
    if user.has(Permission::AllowExtensions) {
        Ok(())
    } else {
        Err(ApiError::missing_permission(&user.name, "allow-extensions", "uploading an extension"))
    }
}

/// What an upload says of itself before its bytes: shared by the API's upload and the console's.
pub(crate) struct Incoming<'a> {
    /// The extension the archive must hold (the API's path); `None` takes the archive's.
    pub expected_name: Option<&'a str>,
    /// The SHA-256 the client announced (lower-case hex), checked against what came; the
    /// console's browser announces none.
    pub announced: Option<String>,
    /// The length announced, refused at once when over the limit.
    pub declared_length: Option<u64>,
    /// The headers that may carry the archive's signature.
    pub headers: &'a HeaderMap,
}

/// Receives an upload from `stream` and checks it as the API does (busy, size limit, signature
/// rules, archive and definition, digest), storing it as a new version of its extension unless
/// one with the same digest exists (answered `200` with `created: false`); `201` when new.
/// The permission is checked by the caller ([`may_upload`]).
pub(crate) async fn receive_upload<S, E>(
    state: &AppState,
    user: &crate::store::UserRecord,
    incoming: Incoming<'_>,
    stream: S,
) -> Result<(StatusCode, UploadResponse), ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let Incoming { expected_name, announced, declared_length, headers } = incoming;
    let mut stream = std::pin::pin!(stream);
    // Refused at once rather than queued: each upload checked holds memory, and a client told
    // to retry later does better than one left waiting for its body to be read.
    let Ok(_upload) = Arc::clone(&state.uploads).try_acquire_owned() else {
        metrics::counter!("xif_uploads_refused_busy_total").increment(1);
        return Err(ApiError::retry_after(
            ErrorCode::ServerBusy,
            "the server is taking as many uploads as it can at once",
            Duration::from_secs(1),
        ));
    };
    let limit = state.limits.max_upload;
    let too_large = || ApiError::new(ErrorCode::UploadTooLarge, format!("uploads are limited to {limit} bytes"));
    if declared_length.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    // A signature the server cannot accept is refused before anything is stored. The body is
    // still read and dropped: a client that is still sending it would otherwise find the
    // connection reset instead of the answer.
    let signer = match trusted_signer(&state.limits.trusted_keys, headers) {
        Ok(signer) => signer,
        Err(refusal) => {
            drain(stream.as_mut(), limit, state.limits.connections.body_timeout).await;
            return Err(refusal);
        }
    };

    // One pass: each chunk goes, through short queues, to the blob store, to a thread that
    // hashes the whole upload, to a thread that checks the archive's entries as they arrive
    // (and, when the server requires signatures, to one that checks the signature), so that
    // receiving, storing and checking overlap and two cores share the work; memory holds the
    // queues, whatever the size. Nothing is committed until all of it passed.
    let started = std::time::Instant::now();
    let mut upload = match state.blobs.begin().await {
        Ok(upload) => upload,
        Err(error) => {
            // Read to its end, so that the client gets the answer rather than a reset.
            drain(stream.as_mut(), limit, state.limits.connections.body_timeout).await;
            return Err(error.into());
        }
    };
    let (hash_sender, mut hash_receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        while let Some(chunk) = hash_receiver.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher
    });
    let (check_sender, check_receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let checker = tokio::task::spawn_blocking(move || check_archive(check_receiver));
    let signed_by = signer.as_ref().map(|(_, key)| key.key_id());
    let (mut signature_sender, signature_check) = match signer {
        Some((signature, key)) => {
            let (sender, receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
            let check = tokio::task::spawn_blocking(move || {
                signature
                    .verify_reader(&key, ChannelReader { receiver, chunk: bytes::Bytes::new() })
                    .map_err(|error| (error, key))
            });
            (Some(sender), Some(check))
        }
        None => (None, None),
    };
    let mut size = 0u64;
    let received = async {
        // Each chunk must come within the body timeout, and after the first such span the
        // upload must keep a minimum rate: a client trickling its bytes does not hold a
        // connection and an upload for long.
        let idle = state.limits.connections.body_timeout;
        loop {
            let Ok(next) = tokio::time::timeout(idle, stream.next()).await else {
                return Err(ApiError::request_timeout(idle));
            };
            let Some(chunk) = next else { break };
            let elapsed = started.elapsed();
            if elapsed > idle && (size as f64) < MIN_UPLOAD_RATE * elapsed.as_secs_f64() {
                return Err(ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the upload came slower than {} KiB/s; send it again over a better connection",
                        MIN_UPLOAD_RATE as u64 / 1024
                    ),
                ));
            }
            let chunk = chunk.map_err(|error| {
                ApiError::new(ErrorCode::UploadInterrupted, format!("the upload ended before it was complete: {error}"))
            })?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            if hash_sender.send(chunk.clone()).await.is_err() || check_sender.send(chunk.clone()).await.is_err() {
                return Err(ApiError::internal("a thread checking the upload stopped"));
            }
            // A signature check that has decided early reads no more.
            if let Some(sender) = &signature_sender
                && sender.send(chunk.clone()).await.is_err()
            {
                signature_sender = None;
            }
            upload.write(chunk).await?;
        }
        Ok(())
    }
    .await;
    // How long receiving took, and how much longer the checks needed once it ended: with the
    // checks keeping pace, next to nothing.
    let received_ms = started.elapsed().as_millis();
    drop((hash_sender, check_sender, signature_sender));
    let hasher = hasher.await.map_err(ApiError::internal)?;
    let checked = checker.await.map_err(ApiError::internal)?;
    let signature_checked = match signature_check {
        Some(check) => Some(check.await.map_err(ApiError::internal)?),
        None => None,
    };
    let checked_ms = started.elapsed().as_millis() - received_ms;
    received?;
    let sha256: String = hex::encode(hasher.finalize());
    if let Some(announced) = announced.filter(|announced| *announced != sha256) {
        return Err(ApiError::new(
            ErrorCode::DigestMismatch,
            format!(
                "the upload's SHA-256 is {sha256}, not the announced {announced}: it was damaged on the way; upload it again"
            ),
        ));
    }

    // The client is never trusted: the signature, the archive and its definition were checked
    // as they came.
    if let Some(Err((error, key))) = signature_checked {
        return Err(signature_refusal(error, &key));
    }
    let checked = checked?;
    if let Some(name) = expected_name.filter(|name| !checked.name.eq_ignore_ascii_case(name)) {
        return Err(ApiError::new(
            ErrorCode::NameMismatch,
            format!(
                "the archive holds extension `{}`, not `{name}`; upload it to /extensions/{}/versions",
                checked.name, checked.name
            ),
        ));
    }
    if let Some(existing) = state.metadata.version_by_digest(&checked.name, &sha256).await? {
        return Ok((StatusCode::OK, UploadResponse { version: existing, created: false, warnings: checked.warnings }));
    }
    upload.commit(&sha256).await?;
    let version = state
        .metadata
        .insert_version(NewVersion {
            extension: checked.name,
            declared_version: checked.declared_version,
            sha256,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            uploaded_by: user.name.clone(),
            uploaded_at: now(),
            signed_by,
        })
        .await?;
    metrics::counter!("xif_uploads_total").increment(1);
    metrics::counter!("xif_upload_bytes_total").increment(size);
    tracing::info!(user = %user.name, extension = %version.extension, number = version.number, size, received_ms, checked_ms, "uploaded");
    Ok((StatusCode::CREATED, UploadResponse { version, created: true, warnings: checked.warnings }))
}

/// Reads and drops at most `limit` bytes of `body`, as long as they come as an upload must
/// (each chunk within `idle`, and at the minimum rate once `idle` has passed): a refusal is
/// answered once read, but a client trickling its body does not hold the connection for it.
async fn drain<S, E>(mut stream: std::pin::Pin<&mut S>, limit: u64, idle: Duration)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + ?Sized,
{
    let started = std::time::Instant::now();
    let mut read = 0u64;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(idle, stream.next()).await {
        read += chunk.len() as u64;
        let elapsed = started.elapsed();
        if read > limit || (elapsed > idle && (read as f64) < MIN_UPLOAD_RATE * elapsed.as_secs_f64()) {
            break;
        }
    }
}

/// When the server trusts keys, the signature the upload announces and the trusted key that
/// made it; refused when there is none (`signature_required`), when it cannot be read
/// (`invalid_signature`), or when no trusted key made it (`untrusted_signature`).
fn trusted_signer(
    trusted: &[xif_archive::PublicKey],
    headers: &HeaderMap,
) -> Result<Option<(xif_archive::Signature, xif_archive::PublicKey)>, ApiError> {
    use base64::Engine as _;
    if trusted.is_empty() {
        return Ok(None);
    }
    let Some(value) = headers.get(SIGNATURE_HEADER) else {
        return Err(ApiError::new(
            ErrorCode::SignatureRequired,
            format!(
                "this server accepts only archives signed by a trusted key: send the base64 of the archive's \
                 `.minisig` file in the `{SIGNATURE_HEADER}` header (`xif upload --sign KEY` and \
                 `xif publish --sign KEY` do)"
            ),
        ));
    };
    let invalid = |detail: String| {
        ApiError::new(
            ErrorCode::InvalidSignature,
            format!("the `{SIGNATURE_HEADER}` header does not hold a minisign signature: {detail}"),
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|error| invalid(format!("it is not base64 ({error})")))?;
    let text = String::from_utf8(decoded).map_err(|_| invalid("it is not text".into()))?;
    let signature = xif_archive::Signature::parse(&text).map_err(|error| invalid(error.to_string()))?;
    let key_id = signature.key_id();
    let Some(key) = trusted.iter().find(|key| key.key_id() == key_id) else {
        return Err(ApiError::new(
            ErrorCode::UntrustedSignature,
            format!(
                "the archive is signed by the key `{key_id}`, which this server does not trust; an administrator \
                 can trust it by starting the server with `--trusted-key` and its public key file"
            ),
        ));
    };
    Ok(Some((signature, key.clone())))
}

/// Why an upload's signature was refused.
fn signature_refusal(error: xif_archive::ArchiveError, key: &xif_archive::PublicKey) -> ApiError {
    if let xif_archive::ArchiveError::Io { .. } = error {
        return ApiError::internal(error);
    }
    tracing::info!(%error, "refused an upload's signature");
    ApiError::new(
        ErrorCode::InvalidSignature,
        format!(
            "the signature by the key `{}` does not match the uploaded archive: the archive changed after \
             it was signed; sign it again (`xif save --sign KEY`) and upload it with its new signature",
            key.key_id()
        ),
    )
}

/// The bytes of an upload as they arrive, as a blocking reader for a check that wants one.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.chunk.len());
        buffer[..count].copy_from_slice(&self.chunk.split_to(count));
        Ok(count)
    }
}

/// The archive checks of Save and the definition's verification, on an upload as its bytes
/// arrive through `receiver` (see `xif_archive::StreamCheck`). What is wrong with the archive
/// is answered without the server's paths, which only the log shows.
fn check_archive(mut receiver: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Result<Checked, ApiError> {
    let max_definition = xif_definition::MAX_DEFINITION_BYTES as u64;
    let mut check = xif_archive::StreamCheck::new(
        std::path::Path::new("upload"),
        xif_archive::Limits::default(),
        &[("extension.toml", max_definition)],
    );
    while let Some(chunk) = receiver.blocking_recv() {
        check.update(&chunk);
    }
    let checked = check.finish().map_err(invalid_archive)?;
    let manifest = checked.manifest().clone();
    let definition = parse_definition(checked.entry("extension.toml", max_definition).map_err(invalid_archive)?)?;
    verified(&manifest, &definition)
}

/// An archive's refusal as the API answers it.
fn invalid_archive(error: xif_archive::ArchiveError) -> ApiError {
    if let xif_archive::ArchiveError::Io { .. } = error {
        return ApiError::internal(error);
    }
    tracing::info!(%error, "refused an uploaded archive");
    ApiError::new(ErrorCode::InvalidArchive, format!("the upload is not a valid XIF: {}", error.without_paths()))
}

/// The definition verified, with the archive's files as the facts about the files it names.
fn verified(manifest: &xif_archive::Manifest, definition: &xif_definition::Definition) -> Result<Checked, ApiError> {
    let files = definition
        .resources
        .iter()
        .map(|resource| resource.path.value.as_str())
        .chain(definition.extension.icon.as_ref().map(|icon| icon.value.as_str()))
        .map(|path| {
            let fact = manifest
                .entries
                .iter()
                .find(|entry| entry.path == format!("resources/{path}"))
                .map_or(xif_verify::FileFact::Missing, |entry| xif_verify::FileFact::File { size: entry.size });
            (path.to_owned(), fact)
        })
        .collect();
    let diagnostics = xif_verify::verify(definition, &xif_verify::Context { files, ..Default::default() });
    let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics.into_iter().partition(xif_diagnostics::Diagnostic::is_error);
    if !errors.is_empty() {
        let listed: Vec<String> =
            errors.iter().take(5).map(|error| format!("{}: {}", error.code, error.message)).collect();
        return Err(ApiError::new(
            ErrorCode::InvalidExtension,
            format!("the extension does not verify: {}", listed.join("; ")),
        ));
    }
    if manifest.extension.name != definition.extension.name.value {
        return Err(ApiError::new(
            ErrorCode::InvalidArchive,
            "the manifest and the definition name different extensions",
        ));
    }
    Ok(Checked {
        name: definition.extension.name.value.clone(),
        declared_version: definition.extension.version.value.to_string(),
        warnings: warnings.iter().map(|warning| format!("{}: {}", warning.code, warning.message)).collect(),
    })
}

/// The definition in the stored archive at `path`.
pub(crate) fn read_definition(path: &std::path::Path) -> Result<xif_definition::Definition, ApiError> {
    let mut reader = xif_archive::XifReader::open(path, xif_archive::Limits::default()).map_err(ApiError::internal)?;
    definition_of(&mut reader)
}

fn definition_of(reader: &mut xif_archive::XifReader) -> Result<xif_definition::Definition, ApiError> {
    let bytes =
        reader.read_entry("extension.toml", xif_definition::MAX_DEFINITION_BYTES as u64).map_err(invalid_archive)?;
    parse_definition(bytes)
}

fn parse_definition(bytes: Vec<u8>) -> Result<xif_definition::Definition, ApiError> {
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::new(ErrorCode::InvalidExtension, "the definition in the archive is not UTF-8"))?;
    xif_definition::parse(&text).map_err(|diagnostics| {
        let listed: Vec<String> =
            diagnostics.iter().take(5).map(|error| format!("{}: {}", error.code, error.message)).collect();
        ApiError::new(ErrorCode::InvalidExtension, format!("the definition does not parse: {}", listed.join("; ")))
    })
}

pub async fn publish(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<Json<PublishResponse>, ApiError> {
    let order = Order {
        extension: name.into(),
        version: request.version,
        expected: request.expected,
        validate_only: request.validate_only,
    };
    // A task of its own: the publication runs to its end even if the client goes away.
    let publishing = Arc::clone(&state.publishing);
    let extension = order.extension.clone();
    let publication = tokio::spawn(async move { publishing.publish(&user.0, &order).await });
    let mut response = publication.await.map_err(ApiError::internal)??;
    if response.published {
        for logical in state.entities.missing_for(&state.runtime, &extension).await {
            response.messages.push(format!(
                "warning: `{extension}` is missing configuration: its logical database `{logical}` is mapped to no \
                 database connection, so its entities cannot be used until an administrator runs \
                 `xif admin connection map {extension} {logical} CONNECTION`"
            ));
        }
    }
    Ok(Json(response))
}

pub async fn locks(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<xif_api::Lock>>, ApiError> {
    user.administrator_for("listing publication locks")?;
    Ok(Json(state.publishing.locks().await?))
}

pub async fn break_lock(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
) -> Result<Json<xif_api::Lock>, ApiError> {
    let administrator = user.administrator_for("breaking a publication lock")?;
    match state.publishing.break_lock(&name).await? {
        Some(lock) => {
            tracing::warn!(by = %administrator.name, extension = %lock.extension, holder = %lock.holder, since = %lock.since, "publication lock broken");
            Ok(Json(lock))
        }
        None => Err(ApiError::new(ErrorCode::NoLock, format!("no publication of `{name}` holds a lock"))),
    }
}

/// `PUT /modules/{module}/dependencies`: by a user with allow-extensions, or by a module token
/// for its own module and within its scope (the token stands for that permission).
pub async fn dependencies(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(module): ApiPath<ModuleName>,
    ApiJson(declared): ApiJson<xif_api::Dependencies>,
) -> Result<Json<xif_api::Dependencies>, ApiError> {
    if caller.scope.is_some() {
        caller.allow_module(&module)?;
        for dependency in &declared.dependencies {
            caller.allow_extension(&dependency.extension)?;
        }
    } else if !caller.user.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(
            &caller.user.name,
            "allow-extensions",
            "declaring a module's dependencies",
        ));
    }
    for dependency in &declared.dependencies {
        if state.metadata.version(&dependency.extension, dependency.version).await?.is_none() {
            return Err(ApiError::new(
                ErrorCode::UnknownVersion,
                format!("extension `{}` has no version {}", dependency.extension, dependency.version),
            ));
        }
        let definition = state.publishing.definition(&dependency.extension, dependency.version).await?;
        let unknown = unknown_elements(&definition, dependency);
        if !unknown.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "version {} ({}) of extension `{}` has no {}; declare only what the version the module was built against defines",
                    dependency.version,
                    definition.extension.version.value,
                    definition.extension.name.value,
                    unknown.join(", no ")
                ),
            ));
        }
    }
    state.metadata.set_dependencies(&module, &declared.dependencies).await?;
    Ok(Json(declared))
}

/// The actions, structures and entities a dependency names that `definition` does not define,
/// each as `action `Name`` (and so on), in the order declared.
fn unknown_elements(definition: &xif_definition::Definition, dependency: &xif_api::Dependency) -> Vec<String> {
    use xif_definition::RecordDefinition;
    let actions = dependency
        .actions
        .iter()
        .filter(|name| definition.action(name).is_none())
        .map(|name| format!("action `{name}`"));
    let structures = dependency
        .structures
        .iter()
        .filter(|name| !matches!(definition.record_definition(name), Some(RecordDefinition::Structure(_))))
        .map(|name| format!("structure `{name}`"));
    let entities = dependency
        .entities
        .iter()
        .filter(|name| !matches!(definition.record_definition(name), Some(RecordDefinition::Entity(_))))
        .map(|name| format!("entity `{name}`"));
    actions.chain(structures).chain(entities).collect()
}

/// `POST /extensions/{name}/actions/{action}`: by any user, or by a module token scoped to the
/// extension; recorded in the integration log, refused or not.
pub async fn call(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, action)): ApiPath<(ExtensionName, ActionName)>,
    inputs: Result<ApiJson<serde_json::Value>, ApiError>,
) -> Result<RawJson, ApiError> {
    let at = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let mut action_code = None;
    let outcome = match caller.allow_extension(&name).and(inputs) {
        Ok(ApiJson(inputs)) => call_action(&state, &name, &action, inputs, &mut action_code).await,
        Err(error) => Err(error),
    };
    if crate::calllog::worth_recording(&state, &name, outcome.as_ref().err()).await {
        let mut entry =
            caller.call_entry(&name, crate::calllog::CallKind::Action, &action, at, started, outcome.as_ref().err());
        if let (Some(error), Some(code)) = (entry.error.as_mut(), action_code) {
            // The action's own code (`action_failed:card_declined`) says why it failed.
            error.push(':');
            error.push_str(&crate::calllog::action_code(&code));
        }
        state.calls.record(entry);
    }
    outcome
}

/// Calls `action` of the running version of `name` with `inputs`; a failure as the API says it,
/// and, when the action itself failed, its own code in `action_code`.
async fn call_action(
    state: &AppState,
    name: &str,
    action: &str,
    inputs: serde_json::Value,
    action_code: &mut Option<String>,
) -> Result<RawJson, ApiError> {
    use crate::runtime::RuntimeCallError;
    match state.runtime.call(name, action, inputs).await {
        Ok(outputs) => Ok(RawJson(outputs)),
        Err(RuntimeCallError::NotRunning) => Err(ApiError::new(
            ErrorCode::ExtensionNotRunning,
            format!("no version of extension `{name}` is published and running"),
        )),
        Err(RuntimeCallError::Failed(reason)) => Err(ApiError::new(
            ErrorCode::ExtensionFailed,
            format!("extension `{name}` was stopped after crashing repeatedly ({reason}); publish a fixed version"),
        )),
        Err(RuntimeCallError::Inputs(errors)) => {
            let unknown_action = errors.iter().any(|error| matches!(error, xif_host::InputError::UnknownAction { .. }));
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            if unknown_action {
                Err(ApiError::new(ErrorCode::UnknownAction, message))
            } else {
                Err(ApiError::new(ErrorCode::InvalidInput, message))
            }
        }
        Err(RuntimeCallError::Call(error)) => Err(match error {
            xif_host::CallError::Action { failure, .. } => {
                *action_code = Some(failure.code.clone());
                ApiError::new(
                    ErrorCode::ActionFailed,
                    format!("action `{action}` failed: {} ({})", failure.message, failure.code),
                )
            }
            xif_host::CallError::Timeout { limit, .. } => {
                ApiError::new(ErrorCode::ActionTimeout, format!("action `{action}` did not finish within {limit:?}"))
            }
            xif_host::CallError::Crashed { status, .. } => ApiError::new(
                ErrorCode::ExtensionCrashed,
                format!(
                    "extension `{name}` ended during the call ({status}); its log is at /api/v1/extensions/{name}/logs"
                ),
            ),
            xif_host::CallError::Protocol(detail) => ApiError::new(
                ErrorCode::ExtensionProtocolError,
                format!("extension `{name}` broke the protocol ({detail}) and was stopped"),
            ),
        }),
    }
}

/// `GET /extensions/{name}/logs?node=…`: which node's log.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogsQuery {
    /// A node's name, or `local` for the node answering; every live node's when absent.
    node: Option<String>,
}

/// The log of an extension: on a single node, its process's; in a farm, each live node's
/// (gathered over their advertised addresses with the caller's token), each part headed by the
/// node's name, or one node's with `?node=NAME` (`local`: the node answering).
pub async fn logs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
    axum::extract::Query(query): axum::extract::Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<String, ApiError> {
    let local = || async {
        state.runtime.log(&name).await.ok_or_else(|| {
            ApiError::new(ErrorCode::ExtensionNotRunning, format!("no version of extension `{name}` is running"))
        })
    };
    let this = state.cluster.identity();
    if query.node.as_deref().is_some_and(|node| node == "local" || node == this.name) {
        return local().await;
    }
    let nodes = state.cluster.nodes(Some(&name)).await?;
    let live: Vec<_> = nodes
        .into_iter()
        .filter(|node| node.live && query.node.as_ref().is_none_or(|wanted| *wanted == node.identity.name))
        .collect();
    if let Some(wanted) = &query.node
        && live.is_empty()
    {
        return Err(ApiError::new(
            ErrorCode::UnknownNode,
            format!("no live node is called `{wanted}`; `GET /nodes` lists them"),
        ));
    }
    // Alone, the log as it is.
    if query.node.is_none() && live.iter().all(|node| node.identity.id == this.id) {
        return local().await;
    }
    // Run by no live node: as a single server answers, rather than a blurb per node.
    let running_here = state.runtime.running_version(&name).await.is_some();
    if query.node.is_none()
        && !running_here
        && !live.iter().any(|node| node.extension(&name).is_some_and(|extension| extension.running.is_some()))
    {
        return Err(ApiError::new(
            ErrorCode::ExtensionNotRunning,
            format!("no version of extension `{name}` is running on any node"),
        ));
    }
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let parts = live.iter().map(|node| {
        let (state, name, this, authorization) = (&state, &name, &this, authorization.clone());
        async move {
            let text = if node.identity.id == this.id {
                state.runtime.log(name).await.unwrap_or_else(|| "(not running on this node)\n".to_owned())
            } else {
                peer_log(state, &node.identity.address, name, authorization).await
            };
            let text =
                if text.is_empty() { "(the running version has written nothing yet)\n".to_owned() } else { text };
            format!(
                "== node {} ({}) ==\n{text}{}",
                node.identity.name,
                node.identity.address,
                if text.ends_with('\n') { "" } else { "\n" }
            )
        }
    });
    Ok(futures_util::future::join_all(parts).await.concat())
}

/// The log of `extension` on the node at `address`, asked with the caller's token; what went
/// wrong otherwise, in words.
async fn peer_log(
    state: &AppState,
    address: &str,
    extension: &str,
    authorization: Option<axum::http::HeaderValue>,
) -> String {
    let url = format!("{}{}/extensions/{extension}/logs?node=local", address.trim_end_matches('/'), xif_api::PREFIX);
    let mut request = state.peers.get(&url);
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            response.text().await.unwrap_or_else(|error| format!("(the log could not be read: {error})\n"))
        }
        Ok(response) => {
            let status = response.status();
            let body: Option<xif_api::ErrorBody> = response.json().await.ok();
            match body {
                Some(body) => format!("({})\n", body.error.message),
                None => format!("(the node answered {status})\n"),
            }
        }
        Err(error) => {
            tracing::warn!(%address, error = %error.without_url(), "cannot reach another node for a log");
            "(the node could not be reached)\n".to_owned()
        }
    }
}

/// `GET /extensions/{name}/consumers`: the modules that declared they use the extension, each
/// with its state against the published version and what changed.
pub async fn consumers(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<ExtensionName>,
) -> Result<Json<Vec<xif_api::ConsumerImpact>>, ApiError> {
    match state.publishing.consumers(&name).await? {
        Some(consumers) => Ok(Json(consumers)),
        None => {
            Err(ApiError::new(ErrorCode::UnknownExtension, format!("no version of extension `{name}` was uploaded")))
        }
    }
}

/// `GET /extensions/{name}/calls`: the integration log's filters and page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallsQuery {
    /// RFC 3339, or a time back from now: `90s`, `30m`, `1h`, `2d`.
    pub(crate) since: Option<String>,
    /// Only the calls that failed.
    #[serde(default)]
    pub(crate) failed: bool,
    /// Entries a page, 1 to 1000 [default 100].
    pub(crate) limit: Option<u32>,
    /// The id of the last entry of the previous page.
    pub(crate) after: Option<i64>,
}

/// A time back from `now` (`90s`, `30m`, `1h`, `2d`) or an RFC 3339 time, in microseconds since
/// the epoch.
fn since_micros(text: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_micros());
    }
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|number| *number >= 0)?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60)?,
        'h' => number.checked_mul(3_600)?,
        'd' => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(now.timestamp_micros().saturating_sub(seconds.saturating_mul(1_000_000)))
}

/// The integration log of an extension, newest first: for administrators and users with
/// allow-extensions, every entry; for a module token scoped to the extension, its own module's
/// entries only. Paged by `after` (an entry's id) and `limit`, with a `Link` header to the next
/// page, which keeps the filters.
pub async fn calls(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<ExtensionName>,
    query: Result<axum::extract::Query<CallsQuery>, axum::extract::rejection::QueryRejection>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Result<Response, ApiError> {
    // Refused for who asks before what is asked is read, as before the query.
    may_read_calls(&caller, &name)?;
    let axum::extract::Query(query) = query.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the query is not what this endpoint takes ({}): `since` (RFC 3339, or 90s, 30m, 1h, 2d), \
                 `failed=true`, `limit` and `after` (numbers)",
                rejection.body_text()
            ),
        )
    })?;
    let page = calls_page(&state, &caller, &name, &query).await?;
    let next = page.next_after.map(|after| {
        let mut parameters = form_urlencoded::Serializer::new(String::new());
        if let Some(since) = page.since_micros {
            parameters.append_pair("since", &crate::store::rfc3339_micros(since));
        }
        if query.failed {
            parameters.append_pair("failed", "true");
        }
        parameters.append_pair("limit", &page.limit.to_string()).append_pair("after", &after.to_string());
        format!("<{}?{}>; rel=\"next\"", uri.path(), parameters.finish())
    });
    let entries = page.entries;
    let mut response = Json(entries).into_response();
    if let Some(link) = next.and_then(|link| axum::http::HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Refuses `caller` the integration log of extension `name` unless it is an administrator, has
/// allow-extensions, or is a module token scoped to the extension.
fn may_read_calls(caller: &Caller, name: &ExtensionName) -> Result<(), ApiError> {
    caller.allow_extension(name)?;
    if caller.scope.is_none() && !caller.user.administrator && !caller.user.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(&caller.user.name, "allow-extensions", "reading the integration log"));
    }
    Ok(())
}

/// A page of an extension's integration log, as [`calls`] answers it.
pub(crate) struct CallsPage {
    /// The entries, newest first.
    pub entries: Vec<xif_api::CallRecord>,
    /// `since`, read, in microseconds since the epoch.
    pub since_micros: Option<i64>,
    /// The entries a page.
    pub limit: u32,
    /// The `after` of the next page, when there is one.
    pub next_after: Option<i64>,
}

/// The page of extension `name`'s integration log that `query` asks for, as `caller` may read
/// it: the rules of [`calls`], for it and for Service Center.
pub(crate) async fn calls_page(
    state: &AppState,
    caller: &Caller,
    name: &ExtensionName,
    query: &CallsQuery,
) -> Result<CallsPage, ApiError> {
    may_read_calls(caller, name)?;
    let limit = query.limit.unwrap_or(xif_api::PAGE_LIMIT_DEFAULT);
    if !(1..=xif_api::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`limit` is a number from 1 to {}, not {limit}", xif_api::PAGE_LIMIT_MAX),
        ));
    }
    let since = match &query.since {
        None => None,
        Some(text) => Some(since_micros(text, chrono::Utc::now()).ok_or_else(|| {
            let text: String = text.chars().take(40).collect();
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`since` is an RFC 3339 time or a time back from now (90s, 30m, 1h, 2d), not `{text}`"),
            )
        })?),
    };
    if !state.calls.enabled() {
        tracing::debug!("the integration log is off (--call-log-days 0); answering what it holds");
    }
    let found = state
        .metadata
        .calls(&crate::store::CallQuery {
            extension: name,
            module: caller.module(),
            owner: caller.scope.as_ref().map(|_| caller.user.name.as_str()),
            token_id: caller.scope.as_ref().map(|_| caller.token_id),
            since_micros: since,
            failed: query.failed,
            before_id: query.after,
            limit: limit + 1,
        })
        .await?;
    let mut entries = found.entries;
    // An empty first page of a name no extension has: that, rather than a log with nothing in
    // it (a misspelt name would look like an extension nobody called).
    if entries.is_empty()
        && query.after.is_none()
        && found.resume_before.is_none()
        && state.metadata.extension(name).await?.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::UnknownExtension,
            format!("no version of extension `{name}` was uploaded"),
        ));
    }
    // A page may be short and still have a next one: the store stops reading after a bounded
    // number of entries, and says where to go on from.
    let next_after = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|last| last.id)
    } else {
        found.resume_before
    };
    Ok(CallsPage { entries, since_micros: since, limit, next_after })
}

/// A call's outputs as the body of the answer: the JSON the extension wrote, checked by the
/// host, sent as it is rather than read into values and written out again.
pub struct RawJson(pub xif_host::Outputs);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.into_json()).into_response()
    }
}
