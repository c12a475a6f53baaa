//! The records API: `/api/v1/extensions/{name}/entities/{entity}/records[/{id}]`. Each handler
//! turns the request into a record operation ([`super::records::Table`]) on the entity of the
//! running definition and its mapped database, answers, and records the operation in the
//! integration log, whether it succeeded or failed.

use std::time::{Instant, SystemTime};

use axum::Json;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use xif_api::ErrorCode;

use super::EntityError;
use super::filter::ListQuery;
use super::records::{RecordError, Table};
use crate::AppState;
use crate::auth::Caller;
use crate::calllog::CallKind;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::names::{EntityName, ExtensionName};

impl From<RecordError> for ApiError {
    fn from(error: RecordError) -> Self {
        let message = error.to_string();
        match error {
            RecordError::NotRunning { .. } => ApiError::new(ErrorCode::ExtensionNotRunning, message),
            RecordError::UnknownEntity { .. } => ApiError::new(ErrorCode::UnknownEntity, message),
            RecordError::NotFound { .. } | RecordError::NotCreatedByPut { .. } => {
                ApiError::new(ErrorCode::RecordNotFound, message)
            }
            RecordError::Conflict { .. } | RecordError::Reference { .. } => {
                ApiError::new(ErrorCode::RecordConflict, message)
            }
            RecordError::InvalidStoredValue { .. } => ApiError::new(ErrorCode::InvalidStoredValue, message),
            RecordError::InvalidFilter { .. } => ApiError::new(ErrorCode::InvalidFilter, message),
            RecordError::InvalidInput(_) => ApiError::new(ErrorCode::InvalidInput, message),
            RecordError::Database(EntityError::MissingConfiguration { .. } | EntityError::UnknownDatabase { .. }) => {
                ApiError::new(ErrorCode::MissingConfiguration, message)
            }
            RecordError::Database(EntityError::Unavailable(_)) | RecordError::Unavailable { .. } => {
                tracing::warn!(%message, "an entity's database is unavailable");
                ApiError::retry_after(ErrorCode::DatabaseUnavailable, &message, std::time::Duration::from_secs(5))
            }
            RecordError::Internal { .. } => ApiError::internal(message),
        }
    }
}

/// The operation a handler does, as the integration log names it (`Customer.read`).
#[derive(Debug, Clone, Copy)]
enum Operation {
    List,
    Read,
    Create,
    Put,
    Delete,
}

impl Operation {
    const fn name(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Put => "put",
            Operation::Delete => "delete",
        }
    }
}

/// Runs `operation` on the entity `entity` of the running version of `extension`, and records
/// it in the integration log.
async fn run<T, F>(
    state: &AppState,
    caller: &Caller,
    extension: &str,
    entity: &str,
    operation: Operation,
    body: F,
) -> Result<T, ApiError>
where
    F: AsyncFnOnce(Table<'_>) -> Result<T, RecordError>,
{
    let at = SystemTime::now();
    let started = Instant::now();
    // A module token scoped to other extensions is refused before anything runs, and the
    // refusal logged.
    let outcome = match caller.allow_extension(extension) {
        Err(refusal) => Err(refusal),
        Ok(()) => async {
            let definition = state
                .runtime
                .definition(extension)
                .await
                .ok_or_else(|| RecordError::NotRunning { extension: extension.to_owned() })?;
            let plan = state.records.plan(extension, &definition, entity)?;
            let database = state.entities.database(extension, &plan.logical).await?;
            let table = Table { extension, definition: &definition, plan: &plan, database: &database };
            body(table).await
        }
        .await
        .map_err(|error| match error {
            // Named only on failure: looking the connection up costs the hot path nothing.
            RecordError::Unavailable { connection: None, extension, entity, logical, reason } => {
                let connection = state.entities.connection_name(&extension, &logical);
                RecordError::Unavailable { connection, extension, entity, logical, reason }
            }
            other => other,
        })
        .map_err(ApiError::from),
    };
    if crate::calllog::worth_recording(state, extension, outcome.as_ref().err()).await {
        state.calls.record(caller.call_entry(
            extension,
            CallKind::Record,
            &format!("{entity}.{}", operation.name()),
            at,
            started,
            outcome.as_ref().err(),
        ));
    }
    outcome
}

/// `GET /extensions/{name}/entities/{entity}/records`: the records the query's filters select,
/// sorted, a page at a time; `Link: <…>; rel="next"` when the page is full, or stopped early
/// past [`super::records::MAX_PAGE_BYTES`] of records (then shorter than its limit).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((extension, entity)): ApiPath<(ExtensionName, EntityName)>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let ((records, cut), limit, offset) = run(&state, &caller, &extension, &entity, Operation::List, async |table| {
        let list = ListQuery::parse(table.plan, &query)?;
        let (limit, offset) = (list.limit, list.offset);
        Ok((table.list(list).await?, limit, offset))
    })
    .await?;
    // A page cut short by its byte budget links to the first record it left out.
    let full = cut || records.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let shown = u64::try_from(records.len()).unwrap_or(u64::MAX);
    let mut response = Json(records).into_response();
    if full {
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key != "offset" && key != "limit" {
                next.append_pair(&key, &value);
            }
        }
        next.append_pair("limit", &limit.to_string());
        next.append_pair("offset", &(offset + shown).to_string());
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), next.finish());
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// `GET /extensions/{name}/entities/{entity}/records/{id}`: one record.
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((extension, entity, identifier)): ApiPath<(ExtensionName, EntityName, String)>,
) -> Result<Json<super::records::Record>, ApiError> {
    run(&state, &caller, &extension, &entity, Operation::Read, async |table| table.read(&identifier).await)
        .await
        .map(Json)
}

/// `POST /extensions/{name}/entities/{entity}/records`: creates a record; 201 with the stored
/// record (an auto-numbered identifier assigned) and its `Location`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((extension, entity)): ApiPath<(ExtensionName, EntityName)>,
    OriginalUri(uri): OriginalUri,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let (record, segment) =
        run(&state, &caller, &extension, &entity, Operation::Create, async |table| table.create(&body).await).await?;
    let mut response = (StatusCode::CREATED, Json(record)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{segment}", uri.path().trim_end_matches('/'))) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `PUT /extensions/{name}/entities/{entity}/records/{id}`: updates the record with the
/// attributes given (200), or creates it (201).
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((extension, entity, identifier)): ApiPath<(ExtensionName, EntityName, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let (record, created) =
        run(&state, &caller, &extension, &entity, Operation::Put, async |table| table.put(&identifier, &body).await)
            .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(record)).into_response())
}

/// `DELETE /extensions/{name}/entities/{entity}/records/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((extension, entity, identifier)): ApiPath<(ExtensionName, EntityName, String)>,
) -> Result<StatusCode, ApiError> {
    run(&state, &caller, &extension, &entity, Operation::Delete, async |table| table.delete(&identifier).await).await?;
    Ok(StatusCode::NO_CONTENT)
}
