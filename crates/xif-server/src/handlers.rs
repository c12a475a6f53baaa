//! The HTTP handlers: thin, each parsing its request, checking permissions, and calling the
//! stores.

use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};
use xif_api::{
    DIGEST_HEADER, Grant, Health, LoginRequest, LoginResponse, NewUser, Permission, PublishRequest, PublishResponse,
    UploadResponse,
};

use crate::AppState;
use crate::auth::{CurrentUser, hash_password, random_secret, token_hash, verify_password};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::store::{NewVersion, PublishRefusal};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

pub async fn metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json"))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no_such_endpoint", "there is no such endpoint; the API is described at /api/v1/openapi.json")
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let user = state.metadata.user(&request.user).await?;
    // Both checks cost the same whether or not the user exists, so that timing does not say
    // which names are taken.
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => dummy_hash()?,
    };
    let password = request.password.clone();
    let matches =
        tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)?;
    let Some(user) = user.filter(|_| matches) else {
        metrics::counter!("xif_login_failures_total").increment(1);
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong user name or password"));
    };
    let token = random_secret("xif_")?;
    let token_id = state.metadata.create_token(user.id, &token_hash(&token), request.label.as_deref(), &now()).await?;
    tracing::info!(user = %user.name, token_id, "login");
    Ok(Json(LoginResponse { token, token_id, user: user.api() }))
}

/// An argon2 hash of a random password, checked against when the user does not exist.
fn dummy_hash() -> Result<String, ApiError> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash.clone());
    }
    let hash = hash_password(&random_secret("")?)?;
    Ok(HASH.get_or_init(|| hash).clone())
}

pub async fn me(user: CurrentUser) -> Json<xif_api::User> {
    Json(user.0.api())
}

pub async fn tokens(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<xif_api::Token>>, ApiError> {
    Ok(Json(state.metadata.tokens(user.0.id).await?))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.metadata.revoke_token(user.0.id, id, &now()).await?;
    state.tokens.clear();
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("unknown_token", format!("you have no active token {id}")))
    }
}

pub async fn users(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<xif_api::User>>, ApiError> {
    user.administrator()?;
    Ok(Json(state.metadata.users().await?.iter().map(crate::store::UserRecord::api).collect()))
}

fn permissions(names: &[String]) -> Result<Vec<Permission>, ApiError> {
    let mut permissions = Vec::new();
    for name in names {
        let Some(granted) = Permission::parse(name) else {
            return Err(ApiError::bad_request(
                "unknown_permission",
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
    let valid_name = !new.name.is_empty()
        && new.name.len() <= 64
        && new.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_name {
        return Err(ApiError::bad_request(
            "invalid_user_name",
            "user names have 1 to 64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if new.password.chars().count() < 12 {
        return Err(ApiError::bad_request("weak_password", "passwords have at least 12 characters"));
    }
    let granted = permissions(&new.grant)?;
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(ApiError::internal)??;
    match state.metadata.create_user(&new.name, &hash, new.administrator, &granted, &now()).await? {
        Some(created) => {
            tracing::info!(by = %user.0.name, user = %created.name, "user added");
            Ok((StatusCode::CREATED, Json(created.api())))
        }
        None => Err(ApiError::conflict("user_exists", format!("a user `{}` exists already", new.name))),
    }
}

pub async fn remove_user(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let administrator = user.administrator()?;
    if administrator.name.eq_ignore_ascii_case(&name) {
        return Err(ApiError::bad_request("cannot_remove_self", "you cannot remove your own account"));
    }
    let removed = state.metadata.remove_user(&name).await?;
    state.tokens.clear();
    if removed {
        tracing::info!(by = %administrator.name, user = %name, "user removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("unknown_user", format!("there is no user `{name}`")))
    }
}

async fn change_grants(state: &AppState, name: &str, grant: &str, add: bool) -> Result<Json<xif_api::User>, ApiError> {
    let Some(target) = state.metadata.user(name).await? else {
        return Err(ApiError::not_found("unknown_user", format!("there is no user `{name}`")));
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
    state.tokens.clear();
    let updated = state.metadata.user(name).await?.ok_or_else(|| ApiError::internal("user vanished"))?;
    Ok(Json(updated.api()))
}

pub async fn grant(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    ApiJson(grant): ApiJson<Grant>,
) -> Result<Json<xif_api::User>, ApiError> {
    user.administrator()?;
    change_grants(&state, &name, &grant.permission, true).await
}

pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((name, permission)): ApiPath<(String, String)>,
) -> Result<Json<xif_api::User>, ApiError> {
    user.administrator()?;
    change_grants(&state, &name, &permission, false).await
}

pub async fn extensions(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<xif_api::Extension>>, ApiError> {
    let mut extensions = state.metadata.extensions().await?;
    for extension in &mut extensions {
        extension.running = state.runtime.running_version(&extension.name).await;
    }
    Ok(Json(extensions))
}

pub async fn versions(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<xif_api::Version>>, ApiError> {
    let versions = state.metadata.versions(&name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found("unknown_extension", format!("no version of extension `{name}` was uploaded")));
    }
    Ok(Json(versions))
}

pub async fn publications(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<xif_api::Publication>>, ApiError> {
    Ok(Json(state.metadata.publications(&name).await?))
}

pub async fn download(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath((name, number)): ApiPath<(String, i64)>,
) -> Result<Response, ApiError> {
    let Some(version) = state.metadata.version(&name, number).await? else {
        return Err(ApiError::not_found("unknown_version", format!("extension `{name}` has no version {number}")));
    };
    let Some(path) = state.blobs.path(&version.sha256).await? else {
        return Err(ApiError::internal(format!("the blob of `{name}` version {number} is missing")));
    };
    let file = tokio::fs::File::open(&path).await.map_err(ApiError::internal)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16));
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

/// What an uploaded archive says of itself, once checked.
struct Checked {
    name: String,
    declared_version: String,
    warnings: Vec<String>,
}

pub async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let user = user.0;
    if !user.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(&user.name, "allow-extensions", "uploading an extension"));
    }
    let announced = headers
        .get(DIGEST_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            ApiError::bad_request("missing_digest", format!("send the XIF's SHA-256 in the `{DIGEST_HEADER}` header"))
        })?;
    if announced.len() != 64 || !announced.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "invalid_digest",
            format!("`{DIGEST_HEADER}` must be 64 hexadecimal digits"),
        ));
    }
    let limit = state.limits.max_upload;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!("uploads are limited to {limit} bytes"),
        )
    };
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return Err(too_large());
    }

    // Stream to a staged file. Hashing and writing run on a thread of their own, fed through a
    // short queue, so that receiving the next bytes overlaps with handling the last ones;
    // memory holds the queue, whatever the size.
    let started = std::time::Instant::now();
    let staged = state.blobs.stage().await?;
    let file = std::fs::OpenOptions::new().write(true).open(&staged).map_err(ApiError::internal)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Sha256> {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        while let Some(chunk) = receiver.blocking_recv() {
            hasher.update(&chunk);
            file.write_all(&chunk)?;
        }
        file.flush()?;
        Ok(hasher)
    });
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    let received = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::bad_request("upload_interrupted", format!("the upload ended before it was complete: {error}"))
            })?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            if sender.send(chunk).await.is_err() {
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(sender);
    let hasher = writer.await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    received?;
    let sha256: String = hex::encode(hasher.finalize());
    if sha256 != announced {
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!(
                "the upload's SHA-256 is {sha256}, not the announced {announced}: it was damaged on the way; upload it again"
            ),
        ));
    }

    // The client is never trusted: the archive and its definition are checked here.
    let received_ms = started.elapsed().as_millis();
    let path: PathBuf = staged.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || check_archive(&path)).await.map_err(ApiError::internal)??;
    let checked_ms = started.elapsed().as_millis() - received_ms;
    if !checked.name.eq_ignore_ascii_case(&name) {
        return Err(ApiError::bad_request(
            "name_mismatch",
            format!(
                "the archive holds extension `{}`, not `{name}`; upload it to /extensions/{}/versions",
                checked.name, checked.name
            ),
        ));
    }
    if let Some(existing) = state.metadata.version_by_digest(&checked.name, &sha256).await? {
        return Ok((
            StatusCode::OK,
            Json(UploadResponse { version: existing, created: false, warnings: checked.warnings }),
        ));
    }
    state.blobs.commit(staged, &sha256).await?;
    let version = state
        .metadata
        .insert_version(NewVersion {
            extension: checked.name,
            declared_version: checked.declared_version,
            sha256,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            uploaded_by: user.name.clone(),
            uploaded_at: now(),
        })
        .await?;
    metrics::counter!("xif_uploads_total").increment(1);
    metrics::counter!("xif_upload_bytes_total").increment(size);
    tracing::info!(user = %user.name, extension = %version.extension, number = version.number, size, received_ms, checked_ms, "uploaded");
    Ok((StatusCode::CREATED, Json(UploadResponse { version, created: true, warnings: checked.warnings })))
}

/// The archive checks of Save and the definition's verification, on an uploaded file.
fn check_archive(path: &std::path::Path) -> Result<Checked, ApiError> {
    let invalid = |error: xif_archive::ArchiveError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_archive",
            format!("the upload is not a valid XIF: {error}"),
        )
    };
    let mut reader = xif_archive::XifReader::open(path, xif_archive::Limits::default()).map_err(invalid)?;
    reader.check().map_err(invalid)?;
    let manifest = reader.manifest().clone();
    let definition = definition_of(&mut reader)?;
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
    let diagnostics = xif_verify::verify(&definition, &xif_verify::Context { files, ..Default::default() });
    let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics.into_iter().partition(xif_diagnostics::Diagnostic::is_error);
    if !errors.is_empty() {
        let listed: Vec<String> =
            errors.iter().take(5).map(|error| format!("{}: {}", error.code, error.message)).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
            format!("the extension does not verify: {}", listed.join("; ")),
        ));
    }
    if manifest.extension.name != definition.extension.name.value {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_archive",
            "the manifest and the definition name different extensions",
        ));
    }
    Ok(Checked {
        name: definition.extension.name.value.clone(),
        declared_version: definition.extension.version.value.to_string(),
        warnings: warnings.iter().map(|warning| format!("{}: {}", warning.code, warning.message)).collect(),
    })
}

fn definition_of(reader: &mut xif_archive::XifReader) -> Result<xif_definition::Definition, ApiError> {
    let bytes = reader.read_entry("extension.toml", xif_definition::MAX_DEFINITION_BYTES as u64).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_archive",
            format!("the upload is not a valid XIF: {error}"),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
            "the definition in the archive is not UTF-8",
        )
    })?;
    xif_definition::parse(&text).map_err(|diagnostics| {
        let listed: Vec<String> =
            diagnostics.iter().take(5).map(|error| format!("{}: {}", error.code, error.message)).collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
            format!("the definition does not parse: {}", listed.join("; ")),
        )
    })
}

pub async fn publish(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<Json<PublishResponse>, ApiError> {
    let user = user.0;
    if !user.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(&user.name, "allow-extensions", "publishing an extension"));
    }
    let Some(version) = state.metadata.version(&name, request.version).await? else {
        return Err(ApiError::not_found(
            "unknown_version",
            format!("extension `{name}` has no version {}", request.version),
        ));
    };
    let blob =
        state.blobs.path(&version.sha256).await?.ok_or_else(|| ApiError::internal("a version's blob is missing"))?;
    let definition = tokio::task::spawn_blocking(move || -> Result<xif_definition::Definition, ApiError> {
        let mut reader =
            xif_archive::XifReader::open(&blob, xif_archive::Limits::default()).map_err(ApiError::internal)?;
        definition_of(&mut reader)
    })
    .await
    .map_err(ApiError::internal)??;
    if !definition.entities.is_empty() && !user.has(Permission::AllowForeignEntities) {
        return Err(ApiError::missing_permission(
            &user.name,
            "allow-foreign-entities",
            "publishing an extension that exports entities",
        ));
    }

    let extension = version.extension.clone();
    if let Err((holder, since)) = state.metadata.lock(&extension, &user.name, &now()).await? {
        return Err(ApiError::conflict(
            "publication_in_progress",
            format!(
                "extension `{extension}` is being published by `{holder}` since {since}; try again when that publication ends"
            ),
        ));
    }
    let impacts = consumer_impacts(&state, &extension, &definition).await?;
    let outcome = publish_locked(&state, &user.name, &extension, &request).await;
    state.metadata.unlock(&extension).await?;
    let mut response = outcome?;
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
    Ok(Json(response))
}

/// How publishing `definition` affects each module that uses `extension`, each compared with the
/// version it was built against.
async fn consumer_impacts(
    state: &AppState,
    extension: &str,
    definition: &xif_definition::Definition,
) -> Result<Vec<xif_api::ConsumerImpact>, ApiError> {
    let mut built: std::collections::HashMap<i64, xif_definition::Definition> = std::collections::HashMap::new();
    let mut impacts = Vec::new();
    for (module, dependency) in state.metadata.consumers(extension).await? {
        if let std::collections::hash_map::Entry::Vacant(slot) = built.entry(dependency.version) {
            let Some(version) = state.metadata.version(extension, dependency.version).await? else { continue };
            let Some(blob) = state.blobs.path(&version.sha256).await? else { continue };
            let old = tokio::task::spawn_blocking(move || -> Result<xif_definition::Definition, ApiError> {
                let mut reader =
                    xif_archive::XifReader::open(&blob, xif_archive::Limits::default()).map_err(ApiError::internal)?;
                definition_of(&mut reader)
            })
            .await
            .map_err(ApiError::internal)??;
            slot.insert(old);
        }
        let Some(old) = built.get(&dependency.version) else { continue };
        let uses = xif_verify::Uses {
            actions: dependency.actions,
            structures: dependency.structures,
            entities: dependency.entities,
        };
        let (impact, changes) = xif_verify::impact(old, definition, &uses);
        impacts.push(xif_api::ConsumerImpact {
            module,
            impact: impact.name().to_owned(),
            built_against: dependency.version,
            changes,
        });
    }
    Ok(impacts)
}

pub async fn dependencies(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(module): ApiPath<String>,
    ApiJson(declared): ApiJson<xif_api::Dependencies>,
) -> Result<Json<xif_api::Dependencies>, ApiError> {
    if !user.0.has(Permission::AllowExtensions) {
        return Err(ApiError::missing_permission(
            &user.0.name,
            "allow-extensions",
            "declaring a module's dependencies",
        ));
    }
    for dependency in &declared.dependencies {
        if state.metadata.version(&dependency.extension, dependency.version).await?.is_none() {
            return Err(ApiError::not_found(
                "unknown_version",
                format!("extension `{}` has no version {}", dependency.extension, dependency.version),
            ));
        }
    }
    state.metadata.set_dependencies(&module, &declared.dependencies).await?;
    Ok(Json(declared))
}

async fn publish_locked(
    state: &AppState,
    user: &str,
    extension: &str,
    request: &PublishRequest,
) -> Result<PublishResponse, ApiError> {
    let current = state
        .metadata
        .versions(extension)
        .await?
        .into_iter()
        .find(|version| version.published)
        .map(|version| version.number);
    let stale = |actual: Option<i64>| {
        let shown =
            |number: Option<i64>| number.map_or_else(|| "none".to_owned(), |number| format!("version {number}"));
        ApiError::conflict(
            "stale_version",
            format!(
                "the published version of `{extension}` is {}, not the expected {}; another publication happened meanwhile, so look again before publishing",
                shown(actual),
                shown(request.expected)
            ),
        )
    };
    if current != request.expected {
        return Err(stale(current));
    }
    let replaces = current.map_or_else(|| "no published version".to_owned(), |number| format!("version {number}"));
    if request.validate_only {
        return Ok(PublishResponse {
            consumers: Vec::new(),
            published: false,
            publication: None,
            messages: vec![format!(
                "version {} of `{extension}` can be published; it would replace {replaces}",
                request.version
            )],
        });
    }
    if current == Some(request.version) {
        if state.runtime.running_version(extension).await == Some(request.version) {
            return Ok(PublishResponse {
                consumers: Vec::new(),
                published: false,
                publication: None,
                messages: vec![format!(
                    "version {} of `{extension}` is published already; nothing to do",
                    request.version
                )],
            });
        }
        // Published but not running (it was given up on after crashing): start it again.
        let version = state
            .metadata
            .version(extension, request.version)
            .await?
            .ok_or_else(|| ApiError::internal("the published version vanished"))?;
        let blob = state
            .blobs
            .path(&version.sha256)
            .await?
            .ok_or_else(|| ApiError::internal("a version's blob is missing"))?;
        state.runtime.deploy(extension, request.version, &blob).await.map_err(|error| {
            let (status, code) = deploy_refusal(&error);
            ApiError::new(
                status,
                code,
                format!("version {} of `{extension}` did not start again: {error}", request.version),
            )
        })?;
        return Ok(PublishResponse {
            consumers: Vec::new(),
            published: false,
            publication: None,
            messages: vec![format!(
                "version {} of `{extension}` is published already; it was not running and was started again",
                request.version
            )],
        });
    }
    // Deploy first: the new version runs, answering its handshake, before the publication is
    // recorded; if it does not start, nothing changes and the old version keeps serving.
    let version = state
        .metadata
        .version(extension, request.version)
        .await?
        .ok_or_else(|| ApiError::internal("a version vanished during its publication"))?;
    let blob =
        state.blobs.path(&version.sha256).await?.ok_or_else(|| ApiError::internal("a version's blob is missing"))?;
    if let Err(error) = state.runtime.deploy(extension, request.version, &blob).await {
        let (status, code) = deploy_refusal(&error);
        return Err(ApiError::new(
            status,
            code,
            format!(
                "version {} of `{extension}` was not published, and {replaces} keeps serving: {error}",
                request.version
            ),
        ));
    }
    match state.metadata.publish(extension, request.expected, request.version, user, &now()).await? {
        Ok(publication) => {
            metrics::counter!("xif_publications_total").increment(1);
            tracing::info!(%user, %extension, from = ?publication.from, to = publication.to, "published");
            Ok(PublishResponse {
                consumers: Vec::new(),
                published: true,
                messages: vec![format!(
                    "version {} of `{extension}` is published; it replaced {replaces}",
                    request.version
                )],
                publication: Some(publication),
            })
        }
        Err(PublishRefusal::Stale { actual }) => Err(stale(actual)),
    }
}

/// The status and code of a deploy that failed: the extension's own fault, or this server
/// cannot run extensions safely (`isolation_unavailable`) or has no user id left for one.
fn deploy_refusal(error: &crate::DeployError) -> (StatusCode, &'static str) {
    match error {
        crate::DeployError::Unisolated => (StatusCode::SERVICE_UNAVAILABLE, "isolation_unavailable"),
        crate::DeployError::NoUser { .. } | crate::DeployError::Users { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "deploy_failed")
        }
        crate::DeployError::Archive(_) | crate::DeployError::Start(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "deploy_failed")
        }
    }
}

pub async fn call(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath((name, action)): ApiPath<(String, String)>,
    ApiJson(inputs): ApiJson<serde_json::Value>,
) -> Result<Json<xif_api_values::Values>, ApiError> {
    use crate::runtime::RuntimeCallError;
    match state.runtime.call(&name, &action, &inputs).await {
        Ok(outputs) => Ok(Json(outputs)),
        Err(RuntimeCallError::NotRunning) => Err(ApiError::not_found(
            "extension_not_running",
            format!("no version of extension `{name}` is published and running"),
        )),
        Err(RuntimeCallError::Failed(reason)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "extension_failed",
            format!("extension `{name}` was stopped after crashing repeatedly ({reason}); publish a fixed version"),
        )),
        Err(RuntimeCallError::Inputs(errors)) => {
            let unknown_action = errors.iter().any(|error| matches!(error, xif_host::InputError::UnknownAction { .. }));
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            if unknown_action {
                Err(ApiError::not_found("unknown_action", message))
            } else {
                Err(ApiError::bad_request("invalid_input", message))
            }
        }
        Err(RuntimeCallError::Call(error)) => Err(match error {
            xif_host::CallError::Action { failure, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "action_failed",
                format!("action `{action}` failed: {} ({})", failure.message, failure.code),
            ),
            xif_host::CallError::Timeout { limit, .. } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "action_timeout",
                format!("action `{action}` did not finish within {limit:?}"),
            ),
            xif_host::CallError::Crashed { status, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "extension_crashed",
                format!(
                    "extension `{name}` ended during the call ({status}); its log is at /api/v1/extensions/{name}/logs"
                ),
            ),
            xif_host::CallError::Protocol(detail) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "extension_protocol_error",
                format!("extension `{name}` broke the protocol ({detail}) and was stopped"),
            ),
        }),
    }
}

pub async fn logs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<String, ApiError> {
    state.runtime.log(&name).await.ok_or_else(|| {
        ApiError::not_found("extension_not_running", format!("no version of extension `{name}` is running"))
    })
}

/// The JSON object type of call inputs and outputs.
mod xif_api_values {
    pub type Values = serde_json::Map<String, serde_json::Value>;
}
