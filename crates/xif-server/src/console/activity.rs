//! Service Center: the other tabs of an extension's page: its consumers and what changed for
//! them, its entities and their database mapping, the running version's log (following live),
//! the integration log with filters, and the API description.
//!
//! Each page calls the API's handler for what it shows ([`handlers::consumers`],
//! [`handlers::logs`], [`handlers::calls_page`], [`entities::mapping::list`],
//! [`extension_openapi::handler`]) with the session's user, so that it shows what the API
//! answers that user and refuses what the API refuses.
//!
//! The live log: the page shows the log as it is (and a Refresh link); with scripts on,
//! `activity.js` asks `…/log/text?from=CURSOR` every two seconds for what was appended since.
//! A cursor is the log's length in bytes since the process started (the bytes the bounded log
//! dropped included) and a digest of the bytes just before it: when the text at that place is
//! no longer what the page has (another process, a farm's log of several nodes that changed in
//! the middle, bytes dropped past it), the answer is the whole log, to replace what is shown.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};

use super::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::extension::{Tab, frame};
use super::{Session, failure, field_error, sentence, when};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiPath};
use crate::names::ExtensionName;
use crate::{entities, extension_openapi, handlers};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/extensions/{name}/consumers", get(consumers))
        .route("/extensions/{name}/entities", get(entity_mapping))
        .route("/extensions/{name}/log", get(log))
        .route("/extensions/{name}/log/text", get(log_text))
        .route("/extensions/{name}/calls", get(calls))
        .route("/extensions/{name}/api", get(api))
        .route("/extensions/{name}/openapi.json", get(openapi_document))
}

/// The API's view of a session's user, for the handlers a module token may reach too.
fn caller(session: &Session) -> Caller {
    Caller { user: session.user.clone(), token_id: session.token_id, scope: None }
}

/// Extension `name` from a console path, as the API finds it (refused when the name breaks the
/// rule of names, or when no version of it was uploaded): its name as stored and its state.
async fn extension(state: &AppState, session: &Session, name: &str) -> Result<xif_api::Extension, ApiError> {
    let name: ExtensionName = crate::names::parse(name)?;
    let Json(extension) = handlers::extension(State(state.clone()), caller(session), ApiPath(name)).await?;
    Ok(extension)
}

/// The path name of `extension`, checked (its stored name follows the rule it was checked by).
fn path_name(extension: &xif_api::Extension) -> Result<ExtensionName, ApiError> {
    crate::names::parse(&extension.name)
}

/// The base of the console's pages of `extension`.
fn base(extension: &xif_api::Extension) -> String {
    format!("/console/extensions/{}", extension.name)
}

// ---------------------------------------------------------------------------------------------
// Consumers

async fn consumers(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let extension = match extension(&state, &session, &name).await {
        Ok(extension) => extension,
        Err(error) => return failure(Some(&session), &error),
    };
    let listed = match path_name(&extension) {
        Ok(name) => handlers::consumers(State(state.clone()), session.current_user(), ApiPath(name)).await,
        Err(error) => Err(error),
    };
    let consumers = match listed {
        Ok(Json(consumers)) => consumers,
        Err(error) => return failure(Some(&session), &error),
    };
    let content = html! {
        h2 { "Consumers" }
        p class="hint" {
            "The modules that declared they use " code { (extension.name) } ", each with its state against "
            @match extension.published {
                Some(number) => { "the published version " (number) }
                None => { "the published version (none is published yet)" }
            }
            " and what changed in the elements it uses."
        }
        @if consumers.is_empty() {
            p class="empty" {
                "No module declared that it uses " (extension.name) ". A module declares what it uses with its module token: "
                code { "PUT /api/v1/modules/MODULE/dependencies" }
                "."
            }
        } @else {
            table class="list consumers" {
                caption class="visually-hidden" { "Consumers of " (extension.name) }
                thead { tr {
                    th scope="col" { "Module" }
                    th scope="col" { "State" }
                    th scope="col" { "Checked against" }
                    th scope="col" { "What changed for it" }
                } }
                tbody {
                    @for consumer in &consumers {
                        tr {
                            th scope="row" { (consumer.module) }
                            td data-label="State" { span class=(super::state_class(&consumer.impact)) { (sentence(&consumer.impact)) } }
                            td data-label="Checked against" { "version " (consumer.built_against) }
                            td data-label="What changed" {
                                @if consumer.changes.is_empty() { span class="muted" { "nothing it uses" } }
                                @else { ul class="changes" { @for change in &consumer.changes { li { (change) } } } }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(&session, &extension.name, Tab::Consumers, content)
}

// ---------------------------------------------------------------------------------------------
// Entities and their mapping

/// A data type as the definition writes it, with its options: `Text (50)`, `Decimal (12, 2)`,
/// `Entity Identifier of Item`.
fn type_name(spec: &xif_definition::TypeSpec) -> String {
    let mut name = spec.data_type.value.name().to_owned();
    match (&spec.length, &spec.decimals) {
        (Some(length), Some(decimals)) => name.push_str(&format!(" ({}, {})", length.value, decimals.value)),
        (Some(length), None) => name.push_str(&format!(" ({})", length.value)),
        _ => {}
    }
    if let Some(record) = &spec.record {
        name.push_str(&format!(" of {}", record.value));
    }
    name
}

/// A logical database of the published version, as shown: its name, its connection (`None`:
/// missing configuration; `Some(None)`: mapped, to a connection only administrators see), who
/// mapped it and when.
struct Mapped {
    logical: String,
    connection: Option<Option<String>>,
    mapped: Option<(String, String)>,
}

async fn entity_mapping(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let extension = match extension(&state, &session, &name).await {
        Ok(extension) => extension,
        Err(error) => return failure(Some(&session), &error),
    };
    let Some(published) = extension.published else {
        let content = html! {
            h2 { "Entities" }
            p class="empty" { "No version of " (extension.name) " is published, so it has no entities to map yet." }
        };
        return frame(&session, &extension.name, Tab::Entities, content);
    };
    let definition = match extension_openapi::published_definition(&state, &extension.name, published).await {
        Ok(definition) => definition,
        Err(error) => return failure(Some(&session), &error),
    };
    let databases = entities::mapping::logical_databases(&definition);
    // Administrators see the connections, as the API's list shows them; others whether each
    // logical database is mapped, as the list of extensions shows everyone.
    let mapped: Vec<Mapped> = if session.user.administrator {
        let listed = match path_name(&extension) {
            Ok(name) => entities::mapping::list(State(state.clone()), session.current_user(), ApiPath(name)).await,
            Err(error) => Err(error),
        };
        match listed {
            Ok(Json(listed)) => listed
                .into_iter()
                .map(|database| Mapped {
                    logical: database.logical,
                    connection: database.connection.map(Some),
                    mapped: database.mapped_by.zip(database.mapped_at),
                })
                .collect(),
            Err(error) => return failure(Some(&session), &error),
        }
    } else {
        let logicals: Vec<String> = databases.iter().map(|(logical, _)| logical.clone()).collect();
        let missing = state.entities.missing_configuration(&extension.name, &logicals).await;
        logicals
            .into_iter()
            .map(|logical| Mapped { connection: (!missing.contains(&logical)).then_some(None), logical, mapped: None })
            .collect()
    };
    let content = html! {
        div class="heading" {
            h2 { "Entities" }
            @if session.user.administrator {
                a class="button" href="/console/connections" { "Database connections" }
            }
        }
        p class="hint" {
            "The entities of the published version " (published) ", by logical database. A logical database is mapped to a "
            "database connection by an administrator; until it is, its entities cannot be used (missing configuration)."
        }
        @if databases.is_empty() {
            p class="empty" { "Version " (published) " of " (extension.name) " declares no entity." }
        }
        @for (logical, members) in &databases {
            @let found = mapped.iter().find(|mapped| mapped.logical.eq_ignore_ascii_case(logical));
            section class="database" aria-labelledby={ "database-" (logical) } {
                h3 id={ "database-" (logical) } { "Logical database " code { (logical) } }
                @match found.and_then(|found| found.connection.as_ref()) {
                    Some(Some(connection)) => {
                        p class="mapping ok" {
                            "Mapped to connection " strong { (connection) }
                            @if let Some((by, at)) = found.and_then(|found| found.mapped.as_ref()) {
                                span class="muted" { " by " (by) ", " (when(at)) }
                            }
                            "."
                        }
                    }
                    Some(None) => { p class="mapping ok" { "Mapped to a database connection." } }
                    None => {
                        div class="warning mapping" {
                            p { strong { "Missing configuration: " } "this logical database is mapped to no database connection; its entities cannot be used until an administrator maps it." }
                            @if session.user.administrator {
                                p { a href="/console/connections" { "Map it in Database connections" } }
                            }
                        }
                    }
                }
                @for entity in members {
                    (entity_table(entity))
                }
            }
        }
    };
    frame(&session, &extension.name, Tab::Entities, content)
}

/// An entity: its table, and its attributes with their columns and types.
fn entity_table(entity: &xif_definition::Entity) -> Markup {
    let table = entity.table.as_ref().map_or(entity.name.value.as_str(), |table| table.value.as_str());
    html! {
        h4 { (entity.name.value) }
        @if let Some(description) = &entity.description { p { (description.value) } }
        dl class="facts" {
            dt { "Table" } dd { code { (table) } }
        }
        table class="list attributes" {
            caption class="visually-hidden" { "Attributes of " (entity.name.value) }
            thead { tr {
                th scope="col" { "Attribute" }
                th scope="col" { "Column" }
                th scope="col" { "Type" }
                th scope="col" { "Mandatory" }
                th scope="col" { "Notes" }
            } }
            tbody {
                @for attribute in &entity.attributes {
                    @let column = attribute.column.as_ref().map_or(attribute.name.value.as_str(), |column| column.value.as_str());
                    tr {
                        th scope="row" { (attribute.name.value) }
                        td data-label="Column" { code { (column) } }
                        td data-label="Type" { (type_name(&attribute.data_type)) }
                        td data-label="Mandatory" { @if attribute.is_mandatory() { "yes" } @else { "no" } }
                        td data-label="Notes" {
                            @if attribute.is_identifier() { "identifier" @if attribute.is_auto_number() { ", numbered by the database" } }
                            @if let Some(description) = &attribute.description {
                                @if attribute.is_identifier() { "; " }
                                (description.value)
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The log, following live

/// How often the page asks for what the log gained, in milliseconds (read by `activity.js`).
const LOG_POLL_MS: u32 = 2000;
/// How many bytes before a cursor's place its digest covers.
const CURSOR_WINDOW: usize = 64;

/// The log's text without the note of dropped bytes the runtime puts first, and how many bytes
/// it dropped.
fn dropped_and_kept(text: &str) -> (u64, &str) {
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(" earlier bytes dropped]\n"))
        .and_then(|(count, kept)| count.parse::<u64>().ok().map(|count| (count, kept)))
        .unwrap_or((0, text))
}

/// A short digest of `bytes`.
fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The cursor at the end of log `text`: `OFFSET.LENGTH.DIGEST` (see the module's notes).
fn cursor(text: &str) -> String {
    let (dropped, kept) = dropped_and_kept(text);
    let window = kept.len().min(CURSOR_WINDOW);
    let end = dropped + kept.len() as u64;
    format!("{end}.{window}.{}", digest(&kept.as_bytes()[kept.len() - window..]))
}

/// What the page must do with log `text` to show it whole, having shown it up to `from`: append
/// what follows `from` (`Some`), or replace what it shows with all of `text` (`None`).
fn appended<'a>(text: &'a str, from: &str) -> Option<&'a str> {
    let mut parts = from.splitn(3, '.');
    let offset: u64 = parts.next()?.parse().ok()?;
    let window: usize = parts.next()?.parse().ok()?;
    let expected = parts.next()?;
    let (dropped, kept) = dropped_and_kept(text);
    let start = usize::try_from(offset.checked_sub(dropped)?).ok()?;
    if start > kept.len() || start < window || !kept.is_char_boundary(start) {
        return None;
    }
    (digest(&kept.as_bytes()[start - window..start]) == expected).then(|| &kept[start..])
}

/// The log of `extension` as the API answers it, other nodes asked with the session's token.
async fn log_of(state: &AppState, session: &Session, extension: &xif_api::Extension) -> Result<String, ApiError> {
    handlers::logs(
        State(state.clone()),
        session.current_user(),
        ApiPath(path_name(extension)?),
        axum::extract::Query(handlers::LogsQuery::default()),
        session.authorization(),
    )
    .await
}

async fn log(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let extension = match extension(&state, &session, &name).await {
        Ok(extension) => extension,
        Err(error) => return failure(Some(&session), &error),
    };
    let (text, problem) = match log_of(&state, &session, &extension).await {
        Ok(text) => (text, None),
        Err(error) if error.status() == StatusCode::NOT_FOUND => (String::new(), Some(sentence(error.message()))),
        Err(error) => return failure(Some(&session), &error),
    };
    let base = base(&extension);
    let status = match (&problem, extension.running) {
        (Some(problem), _) => format!("{problem}."),
        (None, Some(number)) => format!("The log of version {number}, as it was when the page was made."),
        (None, None) => "The log, as it was when the page was made.".to_owned(),
    };
    let content = html! {
        div class="heading" {
            h2 id="log-heading" { "Log" }
            div class="log-controls" {
                button type="button" id="log-follow" class="log-follow" aria-pressed="true" aria-controls="log-text" hidden { "Follow live" }
                a href=(format!("{base}/log")) class="button" { "Refresh" }
            }
        }
        p id="log-status" class="hint" role="status" { (status) }
        pre id="log-text" class="log" tabindex="0" role="log" aria-labelledby="log-heading"
            data-source=(format!("{base}/log/text")) data-cursor=(cursor(&text)) data-every=(LOG_POLL_MS) { (text) }
    };
    frame(&session, &extension.name, Tab::Log, content)
}

#[derive(serde::Deserialize)]
struct LogFrom {
    /// The cursor the page has.
    #[serde(default)]
    from: String,
}

/// `…/log/text?from=CURSOR`: what the log gained since the cursor, as plain text, with the mode
/// (`X-Log-Mode`: `append` or `replace`) and the new cursor (`X-Log-Cursor`); an error as its
/// message, with the API's status.
async fn log_text(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(query): Query<LogFrom>,
) -> Response {
    let text = match extension(&state, &session, &name).await {
        Ok(extension) => log_of(&state, &session, &extension).await,
        Err(error) => Err(error),
    };
    let text = match text {
        Ok(text) => text,
        Err(error) => {
            let mut response = (error.status(), format!("{}.", sentence(error.message()))).into_response();
            plain(&mut response);
            return response;
        }
    };
    let cursor = cursor(&text);
    let (mode, body) = match appended(&text, &query.from) {
        Some(added) => ("append", added.to_owned()),
        None => ("replace", text),
    };
    let mut response = body.into_response();
    plain(&mut response);
    let headers = response.headers_mut();
    headers.insert("x-log-mode", HeaderValue::from_static(mode));
    if let Ok(cursor) = HeaderValue::from_str(&cursor) {
        headers.insert("x-log-cursor", cursor);
    }
    response
}

/// Plain text that no cache keeps, with the console's headers.
fn plain(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    super::secure_headers(headers);
}

// ---------------------------------------------------------------------------------------------
// The integration log

/// The filters of the integration log's page, as its GET form sends them (empty fields are
/// absent filters).
#[derive(Debug, Default, serde::Deserialize)]
struct CallsForm {
    #[serde(default)]
    since: String,
    #[serde(default)]
    failed: Option<String>,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    after: Option<i64>,
}

impl CallsForm {
    /// Whether only failed calls are asked for.
    fn failed(&self) -> bool {
        self.failed.as_deref().is_some_and(|value| matches!(value, "true" | "on" | "1"))
    }

    /// The page's URL with these filters and `after`.
    fn url(&self, base: &str, after: Option<i64>) -> String {
        let mut parameters = form_urlencoded::Serializer::new(String::new());
        if !self.since.trim().is_empty() {
            parameters.append_pair("since", self.since.trim());
        }
        if self.failed() {
            parameters.append_pair("failed", "true");
        }
        if !self.limit.trim().is_empty() {
            parameters.append_pair("limit", self.limit.trim());
        }
        if let Some(after) = after {
            parameters.append_pair("after", &after.to_string());
        }
        let query = parameters.finish();
        if query.is_empty() { format!("{base}/calls") } else { format!("{base}/calls?{query}") }
    }
}

/// A duration in microseconds, for people.
fn duration(micros: i64) -> String {
    if micros < 1000 { format!("{micros} µs") } else { format!("{:.1} ms", micros as f64 / 1000.0) }
}

/// Which field of the filters an error of the integration log is about.
fn calls_field(error: &ApiError) -> Option<&'static str> {
    let message = error.message();
    if error.code() != xif_api::ErrorCode::InvalidRequest {
        None
    } else if message.starts_with("`since`") {
        Some("since")
    } else if message.starts_with("`limit`") {
        Some("limit")
    } else {
        None
    }
}

async fn calls(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    form: Result<axum::extract::Query<CallsForm>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let extension = match extension(&state, &session, &name).await {
        Ok(extension) => extension,
        Err(error) => return failure(Some(&session), &error),
    };
    let base = base(&extension);
    // A limit that is not a number is said next to its field, as the API's range is.
    let (form, limit_error) = match form {
        Ok(axum::extract::Query(form)) => {
            let error = (!form.limit.trim().is_empty() && form.limit.trim().parse::<u32>().is_err()).then(|| {
                format!("`limit` is a number from 1 to {}, not `{}`", xif_api::PAGE_LIMIT_MAX, form.limit.trim())
            });
            (form, error)
        }
        Err(rejection) => {
            let error = ApiError::new(
                xif_api::ErrorCode::InvalidRequest,
                format!("the filters are not what this page takes ({})", rejection.body_text()),
            );
            return failure(Some(&session), &error);
        }
    };
    let query = handlers::CallsQuery {
        since: Some(form.since.trim().to_owned()).filter(|since| !since.is_empty()),
        failed: form.failed(),
        limit: form.limit.trim().parse().ok(),
        after: form.after,
    };
    let page = match (limit_error, path_name(&extension)) {
        (Some(message), _) => Err(ApiError::new(xif_api::ErrorCode::InvalidRequest, message)),
        (None, Ok(name)) => handlers::calls_page(&state, &caller(&session), &name, &query).await,
        (None, Err(error)) => Err(error),
    };
    let (page, field, error) = match page {
        Ok(page) => (Some(page), None, None),
        Err(error) => match calls_field(&error) {
            Some(field) => (None, Some(field), Some(sentence(error.message()))),
            None => return failure(Some(&session), &error),
        },
    };
    let error_for = |wanted: &str| if field == Some(wanted) { error.as_deref() } else { None };
    let described = |wanted: &str, hint: &'static str| {
        if field == Some(wanted) { format!("{wanted}-error {hint}") } else { hint.to_owned() }
    };
    let content = html! {
        h2 { "Integration log" }
        p class="hint" { "The calls made to the actions and records of " (extension.name) ", newest first." }
        form method="get" action=(format!("{base}/calls")) class="filters" aria-label="Filters" {
            div class="field" {
                label for="since" { "Since" }
                input id="since" name="since" type="text" value=(form.since) autocomplete="off"
                    aria-describedby=(described("since", "since-hint")) aria-invalid=[field.filter(|f| *f == "since").map(|_| "true")];
                span id="since-hint" class="hint" { "A time back from now (90s, 30m, 1h, 2d) or an RFC 3339 time" }
                (field_error("since-error", error_for("since")))
            }
            div class="field" {
                label for="limit" { "Entries a page" }
                input id="limit" name="limit" type="number" min="1" max=(xif_api::PAGE_LIMIT_MAX) inputmode="numeric"
                    value=(form.limit) placeholder=(xif_api::PAGE_LIMIT_DEFAULT)
                    aria-describedby=(described("limit", "limit-hint")) aria-invalid=[field.filter(|f| *f == "limit").map(|_| "true")];
                span id="limit-hint" class="hint" { "1 to " (xif_api::PAGE_LIMIT_MAX) ", " (xif_api::PAGE_LIMIT_DEFAULT) " when empty" }
                (field_error("limit-error", error_for("limit")))
            }
            div class="field check" {
                input id="failed" name="failed" type="checkbox" value="true" checked[form.failed()];
                label for="failed" { "Failed calls only" }
            }
            div class="field actions" {
                button type="submit" class="primary" { "Show" }
                @if !form.since.is_empty() || form.failed() || !form.limit.is_empty() || form.after.is_some() {
                    a href=(format!("{base}/calls")) { "Clear the filters" }
                }
            }
        }
        @if let Some(page) = &page {
            @if page.entries.is_empty() {
                p class="empty" {
                    @if form.after.is_some() { "No more calls." }
                    @else if form.failed() || !form.since.is_empty() { "No call matches these filters." }
                    @else { "No call was made to " (extension.name) " yet." }
                }
            } @else {
                table class="list calls" {
                    caption class="visually-hidden" { "Calls to " (extension.name) }
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "Operation" }
                        th scope="col" { "Module" }
                        th scope="col" { "User" }
                        th scope="col" { "Duration" }
                        th scope="col" { "Outcome" }
                    } }
                    tbody {
                        @for entry in &page.entries {
                            tr class=(if entry.outcome == "ok" { "call" } else { "call failed" }) {
                                td data-label="When" { (when(&entry.at)) }
                                td data-label="Operation" { code { (entry.operation) } }
                                td data-label="Module" { @match &entry.module { Some(module) => { (module) }, None => span class="muted" { "none (a user's token)" } } }
                                td data-label="User" { (entry.user) }
                                td data-label="Duration" class="number" { (duration(entry.duration_us)) }
                                td data-label="Outcome" {
                                    @if entry.outcome == "ok" { span class="ok" { "ok" } }
                                    @else {
                                        span class="bad" { "failed" }
                                        @if let Some(code) = &entry.error { " " code { (code) } }
                                    }
                                }
                            }
                        }
                    }
                }
                nav class="pages" aria-label="Pages of the integration log" {
                    @if form.after.is_some() { a href=(form.url(&base, None)) { "Newest calls" } }
                    @if let Some(after) = page.next_after { a href=(form.url(&base, Some(after))) rel="next" { "Older calls" } }
                }
            }
        }
    };
    frame(&session, &extension.name, Tab::Calls, content)
}

// ---------------------------------------------------------------------------------------------
// The API description

/// The component schema `reference` (`#/components/schemas/NAME`) points at in `document`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let reference = schema
        .get("$ref")
        .or_else(|| schema.get("allOf").and_then(|all| all.get(0)).and_then(|first| first.get("$ref")))
        .and_then(Value::as_str);
    match reference.and_then(|reference| reference.strip_prefix("#/components/schemas/")) {
        Some(name) => document.pointer(&format!("/components/schemas/{name}")).unwrap_or(schema),
        None => schema,
    }
}

/// A property's type, for people: the platform's type and its JSON form.
fn schema_type(schema: &Value) -> Markup {
    let reference = schema
        .get("$ref")
        .or_else(|| schema.get("allOf").and_then(|all| all.get(0)).and_then(|first| first.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|reference| reference.rsplit('/').next());
    if let Some(name) = reference {
        return html! { "Record of " code { (name) } };
    }
    if schema.get("type").and_then(Value::as_str) == Some("array") {
        let item = schema.get("items").map(schema_type).unwrap_or_else(|| html! { "values" });
        return html! { "List: " (item) };
    }
    let platform = schema.get("x-xif-type").and_then(Value::as_str);
    let json = schema.get("type").and_then(Value::as_str);
    let format = schema.get("format").and_then(Value::as_str);
    let length = schema.get("maxLength").and_then(Value::as_i64);
    html! {
        @if let Some(platform) = platform { (platform) }
        @if let Some(length) = length { " (at most " (length) " characters)" }
        @if let Some(json) = json {
            " " span class="muted" { "JSON " (json) @if let Some(format) = format { ", " (format) } }
        }
    }
}

/// The properties of an object `schema`: a table of name, type, mandatory, description.
fn properties(document: &Value, schema: &Value, what: &str, action: &str, mandatory_label: &str) -> Markup {
    let schema = resolve(document, schema);
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let empty = serde_json::Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    html! {
        @if properties.is_empty() {
            p class="none" { "No " (what.to_lowercase()) "." }
        } @else {
            h5 { (what) }
            table class="list parameters" {
                caption class="visually-hidden" { (what) " of " (action) }
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Type" }
                    th scope="col" { (mandatory_label) }
                    th scope="col" { "Description" }
                } }
                tbody {
                    @for (name, property) in properties {
                        tr {
                            th scope="row" { code { (name) } }
                            td data-label="Type" { (schema_type(property)) }
                            td data-label=(mandatory_label) { @if required.contains(&name.as_str()) { "yes" } @else { "no" } }
                            td data-label="Description" {
                                @if let Some(description) = property.get("description").and_then(Value::as_str) { (super::code_spans(description)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An operation of an OpenAPI document: its path, its method, and itself.
type Operation<'a> = (&'a str, &'a str, &'a Value);

/// The operations of `document` tagged `tag`, in the paths' order.
fn operations<'a>(document: &'a Value, tag: &str) -> Vec<Operation<'a>> {
    let mut found = Vec::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else { return found };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for method in ["get", "post", "put", "delete"] {
            if let Some(operation) = item.get(method)
                && operation.get("tags").and_then(Value::as_array).is_some_and(|tags| tags.iter().any(|t| t == tag))
            {
                found.push((path.as_str(), method, operation));
            }
        }
    }
    found
}

async fn api(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let extension = match extension(&state, &session, &name).await {
        Ok(extension) => extension,
        Err(error) => return failure(Some(&session), &error),
    };
    let document = match path_name(&extension) {
        Ok(name) => extension_openapi::handler(State(state.clone()), caller(&session), ApiPath(name)).await,
        Err(error) => Err(error),
    };
    let document = match document {
        Ok(Json(document)) => document,
        Err(error) if error.code() == xif_api::ErrorCode::UnknownExtension => {
            let content = html! {
                h2 { "API" }
                p class="empty" { (sentence(error.message())) "." }
            };
            return frame(&session, &extension.name, Tab::Api, content);
        }
        Err(error) => return failure(Some(&session), &error),
    };
    let base = base(&extension);
    let actions = operations(&document, "actions");
    let records = operations(&document, "records");
    // Record operations by entity, in the order of the paths.
    let mut entities: Vec<(&str, Vec<Operation<'_>>)> = Vec::new();
    for (path, method, operation) in records {
        let entity = path.split("/entities/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("");
        match entities.iter_mut().find(|(name, _)| *name == entity) {
            Some((_, operations)) => operations.push((path, method, operation)),
            None => entities.push((entity, vec![(path, method, operation)])),
        }
    }
    let prefix = document.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or(xif_api::PREFIX);
    let content = html! {
        div class="heading" {
            h2 { "API" }
            a class="button" href=(format!("{base}/openapi.json")) download=(format!("{}.openapi.json", extension.name)) {
                "Download the OpenAPI document"
            }
        }
        @if let Some(version) = document.pointer("/info/version").and_then(Value::as_str) {
            @let (declared, number) = version.rsplit_once('+').unwrap_or((version, "?"));
            p class="hint" {
                "Generated from the published version " (number) " (declared " code { (declared) } "). Every operation takes an API token ("
                code { "Authorization: Bearer TOKEN" } "); a module token must name " (extension.name) "."
            }
        }
        h3 { "Actions" }
        @if actions.is_empty() { p class="empty" { "It has no action." } }
        @for (path, method, operation) in &actions {
            @let action = path.rsplit('/').next().unwrap_or(path);
            section class="operation" aria-labelledby={ "action-" (action) } {
                h4 id={ "action-" (action) } { (action) }
                p class="endpoint" { code { (method.to_uppercase()) " " (prefix) (path) } }
                @if let Some(summary) = operation.get("summary").and_then(Value::as_str) { p { (super::code_spans(summary)) } }
                @let inputs = operation.pointer("/requestBody/content/application~1json/schema").unwrap_or(&Value::Null);
                @let outputs = operation.pointer("/responses/200/content/application~1json/schema").unwrap_or(&Value::Null);
                (properties(&document, inputs, "Inputs", action, "Mandatory"))
                (properties(&document, outputs, "Outputs", action, "Always set"))
            }
        }
        h3 { "Records" }
        @if entities.is_empty() { p class="empty" { "It has no entity." } }
        @for (entity, operations) in &entities {
            section class="operation" aria-labelledby={ "entity-" (entity) } {
                h4 id={ "entity-" (entity) } { (entity) }
                table class="list records" {
                    caption class="visually-hidden" { "Record operations of " (entity) }
                    thead { tr {
                        th scope="col" { "Method" }
                        th scope="col" { "Path" }
                        th scope="col" { "What it does" }
                    } }
                    tbody {
                        @for (path, method, operation) in operations {
                            tr {
                                th scope="row" { code { (method.to_uppercase()) } }
                                td data-label="Path" class="path" { code { (prefix) (path) } }
                                td data-label="What it does" {
                                    @if let Some(summary) = operation.get("summary").and_then(Value::as_str) { (super::code_spans(summary)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(&session, &extension.name, Tab::Api, content)
}

/// `…/openapi.json`: the extension's OpenAPI document, as `GET /api/v1/extensions/{name}/
/// openapi.json` answers it, for a signed-in session (a browser's download has no API token).
async fn openapi_document(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let name = match crate::names::parse::<ExtensionName>(&name) {
        Ok(name) => name,
        Err(error) => return failure(Some(&session), &error),
    };
    match extension_openapi::handler(State(state.clone()), caller(&session), ApiPath(name)).await {
        Ok(document) => {
            let mut response = document.into_response();
            super::secure_headers(response.headers_mut());
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => failure(Some(&session), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_gives_what_was_appended_since() {
        let before = "starting\n";
        let after = "starting\none more line\n";
        assert_eq!(appended(after, &cursor(before)), Some("one more line\n"));
        assert_eq!(appended(after, &cursor(after)), Some(""));
    }

    #[test]
    fn bytes_dropped_by_the_bounded_log_keep_the_cursor_in_place() {
        let kept: String = (0..100).map(|index| char::from(b'a' + (index % 26) as u8)).collect();
        let before = format!("[10 earlier bytes dropped]\n{kept}");
        let after = format!("[15 earlier bytes dropped]\n{}new line\n", &kept[5..]);
        assert_eq!(appended(&after, &cursor(&before)), Some("new line\n"));
    }

    #[test]
    fn another_text_at_the_cursor_replaces_the_whole_log() {
        let before = "first process\n";
        assert_eq!(appended("second process, longer\n", &cursor(before)), None);
        assert_eq!(appended("short\n", &cursor(before)), None);
        assert_eq!(appended("anything", ""), None);
        assert_eq!(appended("anything", "not.a.cursor"), None);
        // Dropped past the cursor: what the page has is gone.
        assert_eq!(appended("[100 earlier bytes dropped]\nlater", &cursor(before)), None);
    }

    #[test]
    fn types_read_as_the_definition_writes_them() {
        let definition = xif_definition::parse(
            "[extension]\nname = \"E\"\nversion = \"1.0.0\"\n\n[[entities]]\nname = \"Item\"\nattributes = [ { name = \"Id\", type = \"Integer\", identifier = true }, { name = \"Price\", type = \"Decimal\", length = 12, decimals = 2 }, { name = \"Name\", type = \"Text\", length = 50 }, { name = \"Parent\", type = \"Entity Identifier\", record = \"Item\" } ]\n",
        )
        .expect("a definition");
        let names: Vec<String> =
            definition.entities[0].attributes.iter().map(|attribute| type_name(&attribute.data_type)).collect();
        assert_eq!(names, ["Integer", "Decimal (12, 2)", "Text (50)", "Entity Identifier of Item"]);
    }
}
