//! `/console/connections`: database connections (adding, testing, removing) and the mapping
//! of extensions' logical databases to them, with the API's mismatch problems shown next to
//! the form and "map anyway" as the API allows.

use axum::Router;
use axum::extract::{Path, State};

use crate::console::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use xif_api::ErrorCode;

use super::super::{Nav, Posted, Session, field_error, html_response, page, when};
use crate::AppState;
use crate::entities::connections::Force;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::names::ExtensionName;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(add))
        .route("/connections/map", post(map))
        .route("/connections/{name}/test", post(test))
        .route("/connections/{name}/remove", post(remove))
}

/// What to say for an administrator's task here.
const WHAT: &str = "managing database connections";

/// The add-a-connection form as posted.
#[derive(serde::Deserialize, Default)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
}

/// The map form as posted: `database` is `EXTENSION/LOGICAL`.
#[derive(serde::Deserialize, Default)]
struct MapForm {
    #[serde(default)]
    database: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    force: Option<String>,
}

/// Removing, maybe forced.
#[derive(serde::Deserialize, Default)]
struct RemoveForm {
    #[serde(default)]
    force: Option<String>,
}

/// What the page shows besides the lists: a result or refusal above them, the forms' state.
#[derive(Default)]
struct View {
    /// A notice or an error above the lists.
    above: Option<Markup>,
    /// The add form's name, and its errors (the URL is never shown back).
    add_name: String,
    name_error: Option<String>,
    url_error: Option<String>,
    /// The map form's choices, its error and the mismatch problems listed next to it.
    map: MapForm,
    map_error: Option<String>,
    problems: Vec<String>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(notice): Query<crate::console::Notice>,
) -> Response {
    if let Some(refused) = super::refused(&session, WHAT) {
        return refused;
    }
    let above = notice.verified(&session).map(|text| html! { div class="notice" role="status" { p { (text) } } });
    connections_page(&state, &session, StatusCode::OK, View { above, ..View::default() }).await
}

/// Every logical database of every published extension, as the API lists them.
async fn databases(state: &AppState, session: &Session) -> Result<Vec<xif_api::LogicalDatabase>, ApiError> {
    let mut all = Vec::new();
    for extension in crate::store::every_extension(state.metadata.as_ref()).await? {
        if extension.published.is_none() {
            continue;
        }
        let Ok(name) = crate::names::parse::<ExtensionName>(&extension.name) else { continue };
        let listed =
            crate::entities::mapping::list(State(state.clone()), session.current_user(), ApiPath(name)).await?;
        all.extend(listed.0);
    }
    Ok(all)
}

/// The connections page, answered with `status`.
async fn connections_page(state: &AppState, session: &Session, status: StatusCode, view: View) -> Response {
    let connections = match crate::entities::connections::list(State(state.clone()), session.current_user()).await {
        Ok(connections) => connections.0,
        Err(error) => return super::fail(session, &error),
    };
    let databases = match databases(state, session).await {
        Ok(databases) => databases,
        Err(error) => return super::fail(session, &error),
    };
    let content = html! {
        h1 { "Database connections" }
        (view.above.clone().unwrap_or_default())
        @if connections.is_empty() {
            p class="empty" { "No database connection was added yet." }
        } @else {
            table class="list connections" {
                caption class="visually-hidden" { "Database connections" }
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Kind" }
                    th scope="col" { "URL" }
                    th scope="col" { "Mapped" }
                    th scope="col" { "Added" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for connection in &connections {
                        tr {
                            th scope="row" { (connection.name) }
                            td data-label="Kind" { (connection.kind.label()) }
                            td data-label="URL" { code class="url" { (connection.url) } }
                            td data-label="Mapped" {
                                @if connection.mappings.is_empty() { span class="muted" { "nothing" } }
                                @else { (connection.mappings.join(", ")) }
                            }
                            td data-label="Added" { (when(&connection.added_at)) " by " (connection.added_by) }
                            td data-label="Actions" {
                                div class="connection-actions" {
                                    form class="inline" method="post" action={ "/console/connections/" (connection.name) "/test" } {
                                        (session.csrf_input())
                                        button type="submit" aria-label={ "Test " (connection.name) } { "Test" }
                                    }
                                    form class="inline" method="post" action={ "/console/connections/" (connection.name) "/remove" }
                                        data-confirm={ "Remove connection " (connection.name) "?" } {
                                        (session.csrf_input())
                                        button type="submit" class="danger" aria-label={ "Remove " (connection.name) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 id="add-connection" { "Add a connection" }
        form class="stack" method="post" action="/console/connections" {
            (session.csrf_input())
            label for="connection-name" { "Name" }
            input id="connection-name" name="name" type="text" required autocomplete="off" value=(view.add_name)
                aria-invalid=[view.name_error.as_ref().map(|_| "true")]
                aria-describedby=[view.name_error.as_ref().map(|_| "connection-name-error")];
            (field_error("connection-name-error", view.name_error.as_deref()))
            label for="connection-url" { "URL" }
            input id="connection-url" name="url" type="password" required autocomplete="off"
                aria-invalid=[view.url_error.as_ref().map(|_| "true")]
                aria-describedby={ "connection-url-hint" @if view.url_error.is_some() { " connection-url-error" } };
            p class="hint" id="connection-url-hint" {
                code { "postgres://USER:PASSWORD@HOST:PORT/DATABASE" } ", " code { "mysql://…" } " or "
                code { "sqlite:///PATH" } " (an existing file outside the server's data directory). Stored encrypted, and only ever shown without its password."
            }
            (field_error("connection-url-error", view.url_error.as_deref()))
            button type="submit" class="primary" { "Add connection" }
        }
        h2 id="mappings" { "Logical databases" }
        @if databases.is_empty() {
            p class="empty" { "No published extension declares entities in a logical database." }
        } @else {
            table class="list databases" {
                caption class="visually-hidden" { "Logical databases of the published extensions" }
                thead { tr {
                    th scope="col" { "Extension / logical database" }
                    th scope="col" { "Entities" }
                    th scope="col" { "Connection" }
                } }
                tbody {
                    @for database in &databases {
                        tr {
                            th scope="row" { (database.extension) " / " (database.logical) }
                            td data-label="Entities" { (database.entities.join(", ")) }
                            td data-label="Connection" {
                                @match &database.connection {
                                    Some(connection) => {
                                        (connection)
                                        @if let (Some(by), Some(at)) = (&database.mapped_by, &database.mapped_at) {
                                            span class="muted" { " (by " (by) ", " (when(at)) ")" }
                                        }
                                    },
                                    None => span class="warn" { "missing configuration" },
                                }
                            }
                        }
                    }
                }
            }
            (map_form(session, &databases, &connections, &view))
        }
    };
    html_response(status, page("Database connections", Some(session), Nav::Connections, content))
}

/// The form that maps a logical database to a connection, with the problems of the last try.
fn map_form(
    session: &Session,
    databases: &[xif_api::LogicalDatabase],
    connections: &[xif_api::Connection],
    view: &View,
) -> Markup {
    let mismatch = !view.problems.is_empty();
    html! {
        h3 id="map-heading" { "Map a logical database" }
        div class="map" {
            form class="stack" aria-labelledby="map-heading" method="post" action="/console/connections/map" id="map-form" {
                (session.csrf_input())
                label for="map-database" { "Logical database" }
                select id="map-database" name="database" required {
                    @for database in databases {
                        @let value = format!("{}/{}", database.extension, database.logical);
                        option value=(value) selected[view.map.database.eq_ignore_ascii_case(&value)] { (database.extension) " / " (database.logical) }
                    }
                }
                label for="map-connection" { "Connection" }
                select id="map-connection" name="connection" required
                    aria-invalid=[view.map_error.as_ref().map(|_| "true")]
                    aria-describedby=[view.map_error.as_ref().map(|_| "map-error")] {
                    @for connection in connections {
                        option value=(connection.name) selected[view.map.connection.eq_ignore_ascii_case(&connection.name)] { (connection.name) }
                    }
                }
                (field_error("map-error", view.map_error.as_deref()))
                @if connections.is_empty() { p class="hint" { "Add a connection first." } }
                div class="map-buttons" {
                    button type="submit" class="primary" disabled[connections.is_empty()] { "Map" }
                    @if mismatch {
                        button type="submit" name="force" value="true" class="danger"
                            data-confirm="Map it although the database does not fit? The extension's records may then fail." { "Map anyway" }
                    }
                }
            }
            @if mismatch {
                div class="error problems" role="alert" id="map-problems" {
                    p { "The database does not fit the entities:" }
                    ul { @for problem in &view.problems { li { (problem) } } }
                }
            }
        }
    }
}

/// Adds a connection; errors go next to the field they are about, and the URL is never shown
/// back.
async fn add(State(state): State<AppState>, posted: Posted<AddForm>) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, WHAT) {
        return refused;
    }
    let name = form.name.trim().to_owned();
    let request = xif_api::NewConnection { name: name.clone(), url: form.url };
    match crate::entities::connections::add(State(state.clone()), session.current_user(), ApiJson(request)).await {
        Ok(_) => crate::console::see_other_saying(
            &session,
            "/console/connections",
            &format!("Connection {name} was added. Test it to see that the server reaches it."),
        ),
        Err(error) => {
            let message = Some(super::said(error.message()));
            let mut view = View { add_name: name, ..View::default() };
            match error.code() {
                ErrorCode::ConnectionExists => view.name_error = message,
                ErrorCode::InvalidConnection if error.message().starts_with("a connection name") => {
                    view.name_error = message;
                }
                ErrorCode::InvalidConnection | ErrorCode::SecretsKeyMissing => view.url_error = message,
                _ => return super::fail(&session, &error),
            }
            connections_page(&state, &session, error.status(), view).await
        }
    }
}

/// Tests a connection and says what happened, in words, above the list.
async fn test(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<serde::de::IgnoredAny>,
) -> Response {
    let session = posted.session;
    if let Some(refused) = super::refused(&session, WHAT) {
        return refused;
    }
    match crate::entities::connections::test(State(state.clone()), session.current_user(), ApiPath(name)).await {
        Ok(result) => {
            let result = result.0;
            let above = if result.ok {
                html! { div class="notice" role="status" id="test-result" {
                    p { "Connection " strong { (result.name) } " works: it answered in " (result.millis) " ms." }
                    p { (super::said(&result.message)) }
                } }
            } else {
                html! { div class="error" role="alert" id="test-result" {
                    p { "Connection " strong { (result.name) } " failed (after " (result.millis) " ms):" }
                    p { (super::said(&result.message)) }
                } }
            };
            connections_page(&state, &session, StatusCode::OK, View { above: Some(above), ..View::default() }).await
        }
        Err(error) => super::fail(&session, &error),
    }
}

/// Removes a connection; while it is mapped the API's refusal is shown with "remove anyway".
async fn remove(State(state): State<AppState>, Path(name): Path<String>, posted: Posted<RemoveForm>) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, WHAT) {
        return refused;
    }
    let force = form.force.as_deref() == Some("true");
    let shown = name.clone();
    match crate::entities::connections::remove(
        State(state.clone()),
        session.current_user(),
        ApiPath(name),
        Force(force),
    )
    .await
    {
        Ok(_) => crate::console::see_other_saying(
            &session,
            "/console/connections",
            &format!("Connection {shown} was removed."),
        ),
        Err(error) if error.code() == ErrorCode::ConnectionInUse => {
            let above = html! {
                div class="error" role="alert" id="remove-error" {
                    p { (super::said(error.message())) }
                    form class="inline" method="post" action={ "/console/connections/" (shown) "/remove" }
                        data-confirm={ "Remove connection " (shown) " and its mappings? Their extensions then miss configuration." } {
                        (session.csrf_input())
                        input type="hidden" name="force" value="true";
                        button type="submit" class="danger" { "Remove anyway" }
                    }
                }
            };
            connections_page(&state, &session, error.status(), View { above: Some(above), ..View::default() }).await
        }
        Err(error) => super::fail(&session, &error),
    }
}

/// Maps a logical database to a connection; a mismatch lists its problems next to the form,
/// which then offers to map anyway.
async fn map(State(state): State<AppState>, posted: Posted<MapForm>) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, WHAT) {
        return refused;
    }
    let Some((extension, logical)) = form.database.split_once('/') else {
        let view = View { map_error: Some("Choose a logical database.".into()), map: form, ..View::default() };
        return connections_page(&state, &session, StatusCode::BAD_REQUEST, view).await;
    };
    let extension = match crate::names::parse::<ExtensionName>(extension) {
        Ok(extension) => extension,
        Err(error) => return super::fail(&session, &error),
    };
    let force = form.force.as_deref() == Some("true");
    let request = xif_api::MapDatabase { connection: form.connection.clone() };
    let mapped = crate::entities::mapping::map(
        State(state.clone()),
        session.current_user(),
        ApiPath((extension, logical.to_owned())),
        Force(force),
        ApiJson(request),
    )
    .await;
    match mapped {
        Ok(database) => {
            let database = database.0;
            crate::console::see_other_saying(
                &session,
                "/console/connections",
                &format!(
                    "Logical database {}/{} to {} was mapped.",
                    database.extension, database.logical, form.connection
                ),
            )
        }
        Err(error) => {
            let status = error.status();
            let mut view = View { map: form, ..View::default() };
            match error.code() {
                ErrorCode::MappingMismatch if !error.problems().is_empty() => {
                    view.map_error = Some(format!(
                        "The database does not fit ({} problem{}); fix the definition or the database, or map anyway.",
                        error.problems().len(),
                        if error.problems().len() == 1 { "" } else { "s" }
                    ));
                    view.problems = error.problems().to_vec();
                }
                ErrorCode::MappingMismatch => {
                    view.map_error =
                        Some("The database could not be checked; map anyway only if you know it fits.".into());
                    view.problems = vec![super::said(error.message())];
                }
                ErrorCode::UnknownConnection | ErrorCode::UnknownLogicalDatabase | ErrorCode::UnknownExtension => {
                    view.map_error = Some(super::said(error.message()));
                }
                _ => return super::fail(&session, &error),
            }
            connections_page(&state, &session, status, view).await
        }
    }
}
