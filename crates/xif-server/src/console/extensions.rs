//! Service Center: the list of extensions, with search.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::{Nav, Session};
use crate::AppState;
use crate::error::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/extensions", get(list))
}

#[derive(serde::Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// One row of the list.
pub(crate) struct Row {
    /// The extension as the API lists it (published, running, missing configuration).
    pub extension: xif_api::Extension,
}

/// Every extension whose name contains `query` (without regard to case), as the API lists them.
pub(crate) async fn rows(state: &AppState, query: &str) -> Result<Vec<Row>, ApiError> {
    let query = query.trim().to_ascii_lowercase();
    let mut rows = Vec::new();
    for mut extension in crate::store::every_extension(state.metadata.as_ref()).await? {
        if !query.is_empty() && !extension.name.to_ascii_lowercase().contains(&query) {
            continue;
        }
        extension.running = state.runtime.running_version(&extension.name).await;
        extension.missing_configuration = state.entities.missing_for(&state.runtime, &extension.name).await;
        rows.push(Row { extension });
    }
    Ok(rows)
}

/// The table of `rows` (the part htmx replaces as the search changes).
pub(crate) fn table(rows: &[Row], query: &str) -> Markup {
    html! {
        div id="extension-list" {
            @if rows.is_empty() {
                p class="empty" {
                    @if query.trim().is_empty() { "No extension was uploaded yet." }
                    @else { "No extension's name contains “" (query.trim()) "”." }
                }
            } @else {
                table class="list" {
                    caption class="visually-hidden" { "Extensions" }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Published" }
                        th scope="col" { "Running" }
                        th scope="col" { "Versions" }
                        th scope="col" { "Configuration" }
                    } }
                    tbody {
                        @for row in rows {
                            @let extension = &row.extension;
                            tr {
                                th scope="row" { a href={ "/console/extensions/" (extension.name) } { (extension.name) } }
                                td { @match extension.published { Some(number) => { "version " (number) }, None => span class="muted" { "not published" } } }
                                td { @match extension.running { Some(number) => { "version " (number) }, None => span class="muted" { "not running" } } }
                                td { (extension.versions) }
                                td {
                                    @if extension.missing_configuration.is_empty() { span class="ok" { "complete" } }
                                    @else { span class="warn" { "missing: " (extension.missing_configuration.join(", ")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn list(State(state): State<AppState>, session: Session, Query(search): Query<Search>) -> Response {
    let rows = match rows(&state, &search.q).await {
        Ok(rows) => rows,
        Err(error) => return super::failure(Some(&session), &error),
    };
    let content = html! {
        div class="heading" {
            h1 { "Extensions" }
            @if session.may_publish() { a class="button primary" href="/console/upload" { "Upload & Publish an Extension" } }
        }
        form method="get" action="/console/extensions" role="search" class="search"
            hx-get="/console/extensions" hx-trigger="input changed delay:250ms from:#q, search from:#q"
            hx-target="#extension-list" hx-select="#extension-list" hx-swap="outerHTML" hx-push-url="true" {
            label for="q" { "Search by name" }
            input id="q" name="q" type="search" value=(search.q) autocomplete="off";
            button type="submit" { "Search" }
        }
        (table(&rows, &search.q))
    };
    super::render("Extensions", &session, Nav::Extensions, content)
}
