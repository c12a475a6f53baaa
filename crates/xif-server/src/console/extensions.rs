//! Service Center: the list of extensions, with search.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;

use super::Query;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::{Nav, Session};
use crate::AppState;
use crate::error::ApiError;

/// The list's route: `GET /console/extensions` (`?q=` searches).
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
    /// On how many live nodes of the farm a version of it runs.
    pub nodes: usize,
    /// Its consumers' states against the published version, each with how many modules are in
    /// it, by name ("up to date", "outdated", "incompatible"…).
    pub consumers: Vec<(String, usize)>,
}

/// Every extension whose name contains `query` (without regard to case), as the API lists them,
/// with the nodes that run it and its consumers' states: one query for the nodes and one for
/// the consumers' versions, whatever the number of extensions; a consumer built against another
/// version than the published one is compared with it as the API's consumers are.
pub(crate) async fn rows(state: &AppState, query: &str) -> Result<Vec<Row>, ApiError> {
    let query = query.trim().to_ascii_lowercase();
    let nodes = state.cluster.nodes(None).await?;
    let mut running_on: HashMap<String, usize> = HashMap::new();
    for node in nodes.iter().filter(|node| node.live) {
        for running in node.extensions.iter().filter(|running| running.running.is_some()) {
            *running_on.entry(running.name.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut built_against: HashMap<String, Vec<i64>> = HashMap::new();
    for (extension, version) in state.metadata.every_consumer_version().await? {
        built_against.entry(extension.to_ascii_lowercase()).or_default().push(version);
    }
    let mut rows = Vec::new();
    for mut extension in crate::store::every_extension(state.metadata.as_ref()).await? {
        if !query.is_empty() && !extension.name.to_ascii_lowercase().contains(&query) {
            continue;
        }
        let key = extension.name.to_ascii_lowercase();
        extension.running = state.runtime.running_version(&extension.name).await;
        extension.missing_configuration = state.entities.missing_for(&state.runtime, &extension.name).await;
        let versions = built_against.get(&key).map(Vec::as_slice).unwrap_or_default();
        let consumers = consumer_states(state, &extension, versions).await?;
        rows.push(Row { nodes: running_on.get(&key).copied().unwrap_or_default(), extension, consumers });
    }
    Ok(rows)
}

/// The states of the consumers of `extension`, built against `versions`: counted without
/// reading a definition while all are up to date (or nothing is published); otherwise as the
/// API's consumers compare them.
async fn consumer_states(
    state: &AppState,
    extension: &xif_api::Extension,
    versions: &[i64],
) -> Result<Vec<(String, usize)>, ApiError> {
    if versions.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = match extension.published {
        None => vec!["not published".to_owned(); versions.len()],
        Some(published) if versions.iter().all(|version| *version == published) => {
            vec!["up to date".to_owned(); versions.len()]
        }
        Some(_) => state
            .publishing
            .consumers(&extension.name)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|consumer| consumer.impact)
            .collect(),
    };
    let mut counted: Vec<(String, usize)> = Vec::new();
    for name in names {
        match counted.iter_mut().find(|(counted, _)| *counted == name) {
            Some((_, count)) => *count += 1,
            None => counted.push((name, 1)),
        }
    }
    Ok(counted)
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
                        th scope="col" { "Nodes" }
                        th scope="col" { "Consumers" }
                        th scope="col" { "Versions" }
                        th scope="col" { "Configuration" }
                    } }
                    tbody {
                        @for row in rows {
                            @let extension = &row.extension;
                            tr {
                                th scope="row" { a href={ "/console/extensions/" (extension.name) } { (extension.name) } }
                                td data-label="Published" { @match extension.published { Some(number) => { "version " (number) }, None => span class="muted" { "not published" } } }
                                td data-label="Running" { @match extension.running { Some(number) => { "version " (number) }, None => span class="muted" { "not running" } } }
                                td data-label="Nodes" {
                                    @if row.nodes == 0 { span class="muted" { "none" } }
                                    @else if row.nodes == 1 { "1 node" } @else { (row.nodes) " nodes" }
                                }
                                td data-label="Consumers" {
                                    @if row.consumers.is_empty() { span class="muted" { "none" } }
                                    @for (index, (name, count)) in row.consumers.iter().enumerate() {
                                        @if index > 0 { ", " }
                                        span class=(super::state_class(name)) { (count) " " (name) }
                                    }
                                }
                                td data-label="Versions" { (extension.versions) }
                                td data-label="Configuration" {
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
