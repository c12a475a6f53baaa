//! Service Center: an extension's page (overview: versions, publish, roll back, validate-only,
//! the publication lock, the publication history, downloads), and the frame with tabs that
//! every page of an extension shares (see also `activity.rs`).
//!
//! Every fact and every action goes through the API's handlers with the session's user, so
//! the page checks and says exactly what the API does: publishing first runs the publication
//! as validate-only (the impact on consumers, the checks' messages), and only a confirmation
//! publishes, with the version the page showed as published (a publication meanwhile is
//! refused as stale, in words).

use axum::Router;
use axum::extract::{Path, State};

use super::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use xif_api::{ConsumerImpact, PAGE_LIMIT_MAX, PublishRequest, PublishResponse};

use super::{Nav, Posted, Session};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::names::ExtensionName;
use crate::paging::{DigestFilter, Paging};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/extensions/{name}", get(overview))
        .route("/extensions/{name}/versions/{number}/xif", get(download))
        .route("/extensions/{name}/publish", get(preview).post(publish))
        .route("/extensions/{name}/lock/break", get(confirm_break).post(break_lock))
}

/// The pages of an extension, each a tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    /// Versions, publications, the lock: `/console/extensions/{name}`.
    Overview,
    /// Its consumers and what changed for them: `…/consumers`.
    Consumers,
    /// Its entities and their database mapping: `…/entities`.
    Entities,
    /// The running version's log, following live: `…/log`.
    Log,
    /// The integration log, with filters: `…/calls`.
    Calls,
    /// Its API description: `…/api`.
    Api,
}

/// A page of extension `name`: its heading, the tabs (`tab` marked current), and `content`.
pub(super) fn frame(session: &Session, name: &str, tab: Tab, content: Markup) -> Response {
    frame_with_status(session, name, tab, content, StatusCode::OK)
}

/// [`frame`], answered with `status` (a refusal shown on the page has the API's status).
fn frame_with_status(session: &Session, name: &str, tab: Tab, content: Markup, status: StatusCode) -> Response {
    let base = format!("/console/extensions/{name}");
    let tabs = [
        (Tab::Overview, base.clone(), "Overview"),
        (Tab::Consumers, format!("{base}/consumers"), "Consumers"),
        (Tab::Entities, format!("{base}/entities"), "Entities"),
        (Tab::Log, format!("{base}/log"), "Log"),
        (Tab::Calls, format!("{base}/calls"), "Integration log"),
        (Tab::Api, format!("{base}/api"), "API"),
    ];
    let content = html! {
        nav aria-label="Breadcrumb" class="crumbs" {
            a href="/console/extensions" { "Extensions" } " / " span aria-current="page" { (name) }
        }
        h1 { (name) }
        nav aria-label="Extension" class="tabs" {
            ul {
                @for (target, href, label) in &tabs {
                    li { a href=(href) aria-current=[(*target == tab).then_some("page")] { (label) } }
                }
            }
        }
        (content)
    };
    super::html_response(status, super::page(name, Some(session), Nav::Extensions, content))
}

/// The extension named in a path, checked as the API checks it.
fn extension_name(name: &str) -> Result<ApiPath<ExtensionName>, ApiError> {
    Ok(ApiPath(crate::names::parse::<ExtensionName>(name)?))
}

/// What the overview shows of an extension, read through the API's handlers.
struct Overview {
    /// The extension (published, running, versions, missing configuration).
    extension: xif_api::Extension,
    /// Every version, oldest first.
    versions: Vec<xif_api::Version>,
    /// Every publication, oldest first.
    publications: Vec<xif_api::Publication>,
    /// Its publication lock, when one is held.
    lock: Option<xif_api::Lock>,
    /// How many live nodes run a version of it, and how many nodes are live.
    nodes: (usize, usize),
}

/// Reads what the overview of `name` shows, as `session`'s user.
async fn read(state: &AppState, session: &Session, name: &str) -> Result<Overview, ApiError> {
    let caller = Caller { user: session.user.clone(), token_id: session.token_id, scope: None };
    let axum::Json(extension) = crate::handlers::extension(State(state.clone()), caller, extension_name(name)?).await?;
    let mut versions = Vec::new();
    let mut after = None;
    loop {
        let page = crate::handlers::versions(
            State(state.clone()),
            session.current_user(),
            extension_name(name)?,
            Paging::new(after, PAGE_LIMIT_MAX),
            DigestFilter(None),
        )
        .await?;
        after = page.next_after().and_then(|after| after.parse().ok());
        versions.extend(page.items);
        if after.is_none() {
            break;
        }
    }
    let mut publications = Vec::new();
    let mut after = None;
    loop {
        let page = crate::handlers::publications(
            State(state.clone()),
            session.current_user(),
            extension_name(name)?,
            Paging::new(after, PAGE_LIMIT_MAX),
        )
        .await?;
        after = page.next_after().and_then(|after| after.parse().ok());
        publications.extend(page.items);
        if after.is_none() {
            break;
        }
    }
    let lock = state.publishing.locks().await?.into_iter().find(|lock| lock.extension == extension.name);
    let nodes = state.cluster.nodes(Some(&extension.name)).await?;
    let live: Vec<_> = nodes.iter().filter(|node| node.live).collect();
    let running = live
        .iter()
        .filter(|node| node.extensions.iter().any(|state| state.name == extension.name && state.running.is_some()))
        .count();
    Ok(Overview { extension, versions, publications, lock, nodes: (running, live.len()) })
}

/// `GET /console/extensions/{name}`.
///
/// After a publication, its outcome comes in the address (see [`Published`]), so that reloading
/// the page shows it again rather than posting the publication a second time.
async fn overview(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(notice): Query<super::Notice>,
) -> Response {
    let banner = notice.verified(&session).map(|text| match serde_json::from_str::<Published>(text) {
        Ok(published) => {
            let response = PublishResponse {
                published: published.published,
                publication: None,
                messages: published.messages,
                consumers: Vec::new(),
                nodes: published.nodes,
            };
            outcome(published.version, published.expected, &response)
        }
        // Any other notice (a lock broken) is said as it is.
        Err(_) => html! { div class="notice" role="status" id="outcome" { p { (text) } } },
    });
    overview_page(&state, &session, &name, banner, StatusCode::OK).await
}

/// What a publication's outcome shows, carried to the overview it redirects to.
#[derive(serde::Serialize, serde::Deserialize)]
struct Published {
    version: i64,
    expected: Option<i64>,
    published: bool,
    messages: Vec<String>,
    nodes: Vec<xif_api::NodeDeploy>,
}

/// The overview of `name`, with `banner` (an outcome or a refusal) above it, answered `status`.
async fn overview_page(
    state: &AppState,
    session: &Session,
    name: &str,
    banner: Option<Markup>,
    status: StatusCode,
) -> Response {
    let overview = match read(state, session, name).await {
        Ok(overview) => overview,
        Err(error) => return super::failure(Some(session), &error),
    };
    let name = overview.extension.name.clone();
    let content = html! {
        @if let Some(banner) = banner { (banner) }
        (facts(&overview))
        @if let Some(lock) = &overview.lock { (lock_box(session, &name, lock)) }
        (versions_table(session, &overview))
        (history(&overview.publications))
    };
    frame_with_status(session, &name, Tab::Overview, content, status)
}

/// The facts of the extension.
fn facts(overview: &Overview) -> Markup {
    let extension = &overview.extension;
    let (running_on, live) = overview.nodes;
    html! {
        section aria-labelledby="facts-heading" class="overview" {
            h2 id="facts-heading" { "Facts" }
            dl class="facts" id="facts" {
                dt { "Published version" }
                dd data-fact="published" { @match extension.published { Some(number) => { "version " (number) }, None => span class="muted" { "none" } } }
                dt { "Running version" }
                dd data-fact="running" {
                    @match extension.running { Some(number) => { "version " (number) }, None => span class="muted" { "not running" } }
                    @if extension.published.is_some() && extension.running != extension.published {
                        " " span class="warn" { "(not the published version: its deploy failed or is under way)" }
                    }
                }
                dt { "Runs on" }
                dd data-fact="nodes" { (running_on) " of " (live) @if live == 1 { " live node" } @else { " live nodes" } }
                dt { "Configuration" }
                dd data-fact="configuration" {
                    @if extension.missing_configuration.is_empty() { span class="ok" { "complete" } }
                    @else {
                        span class="warn" { "missing: logical database " (extension.missing_configuration.join(", ")) " mapped to no connection" }
                    }
                }
                dt { "Versions" }
                dd data-fact="versions" { (extension.versions) }
            }
        }
    }
}

/// The publication lock held, and for administrators the way to break it.
fn lock_box(session: &Session, name: &str, lock: &xif_api::Lock) -> Markup {
    html! {
        section class="warning lock" id="lock" aria-labelledby="lock-heading" {
            h2 id="lock-heading" { "Publication lock held" }
            p {
                "A publication of " (name) " by " strong { (lock.holder) } " holds the lock since " (super::when(&lock.since))
                "; its lease ends " (super::when(&lock.lease_until)) " unless renewed. Nobody else can publish it until then."
            }
            @if session.user.administrator {
                p { a class="button danger" href={ "/console/extensions/" (name) "/lock/break" } { "Break the lock" } }
            }
        }
    }
}

/// The first characters of a digest, enough to tell versions apart.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// The versions, newest first, with their actions.
fn versions_table(session: &Session, overview: &Overview) -> Markup {
    let name = &overview.extension.name;
    let published = overview.extension.published;
    html! {
        section aria-labelledby="versions-heading" class="overview" {
            h2 id="versions-heading" { "Versions" }
            @if overview.versions.is_empty() {
                p class="empty" { "No version was uploaded." }
            } @else {
                table class="list versions" id="versions" {
                    caption class="visually-hidden" { "Versions of " (name) }
                    thead { tr {
                        th scope="col" { "Number" }
                        th scope="col" { "Declared" }
                        th scope="col" { "Uploaded by" }
                        th scope="col" { "When" }
                        th scope="col" { "Size" }
                        th scope="col" { "SHA-256" }
                        th scope="col" { "Signature" }
                        th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for version in overview.versions.iter().rev() {
                            @let number = version.number;
                            tr data-version=(number) {
                                th scope="row" {
                                    (number)
                                    @if version.published { " " span class="version-badge published" { "published" } }
                                }
                                td data-label="Declared" { (version.declared_version) }
                                td data-label="Uploaded by" { (version.uploaded_by) }
                                td data-label="When" { (super::when(&version.uploaded_at)) }
                                td data-label="Size" { (super::size(version.size)) }
                                td data-label="SHA-256" { code class="digest" title=(version.sha256) data-sha256=(version.sha256) { (short(&version.sha256)) "…" } }
                                td data-label="Signature" {
                                    @match &version.signed_by { Some(key) => { span class="ok" { "signed by " code { (key) } } }, None => span class="muted" { "unsigned" } }
                                }
                                td data-label="Actions" class="actions" {
                                    a class="button" href={ "/console/extensions/" (name) "/versions/" (number) "/xif" } download {
                                        "Download .xif" span class="visually-hidden" { " of version " (number) }
                                    }
                                    @if session.may_publish() {
                                        @if !version.published {
                                            a class="button primary" href={ "/console/extensions/" (name) "/publish?version=" (number) } {
                                                @if published.is_some_and(|published| number < published) {
                                                    "Roll back to " (number)
                                                } @else {
                                                    "Publish" span class="visually-hidden" { " version " (number) }
                                                }
                                            }
                                        }
                                        a class="button" href={ "/console/extensions/" (name) "/publish?version=" (number) "&validate_only=true" } {
                                            "Validate only" span class="visually-hidden" { " version " (number) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The publication history, newest first.
fn history(publications: &[xif_api::Publication]) -> Markup {
    html! {
        section aria-labelledby="history-heading" class="overview" {
            h2 id="history-heading" { "Publication history" }
            @if publications.is_empty() {
                p class="empty" { "Never published." }
            } @else {
                table class="list history" id="history" {
                    caption class="visually-hidden" { "Publications" }
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "Who" }
                        th scope="col" { "Version" }
                        th scope="col" { "From" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Outcome" }
                    } }
                    tbody {
                        @for publication in publications.iter().rev() {
                            tr {
                                th scope="row" { (super::when(&publication.at)) }
                                td data-label="Who" { (publication.by) }
                                td data-label="Version" { (publication.to) }
                                td data-label="From" { @match publication.from { Some(from) => { (from) }, None => span class="muted" { "none" } } }
                                td data-label="Kind" { (kind(publication.from, publication.to)) }
                                td data-label="Outcome" { span class="ok" { "published" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What publishing `to` over `from` is, in a word.
fn kind(from: Option<i64>, to: i64) -> &'static str {
    match from {
        Some(from) if to < from => "rollback",
        Some(from) if to == from => "republication",
        _ => "publication",
    }
}

/// `?version=N[&validate_only=true]`.
#[derive(serde::Deserialize)]
struct Asked {
    version: i64,
    #[serde(default)]
    validate_only: bool,
}

/// `GET /console/extensions/{name}/publish?version=N`: the publication run as validate-only
/// with the version published now as expected; its messages and its impact on consumers, then
/// (unless only validating) the form that confirms it.
async fn preview(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(asked): Query<Asked>,
) -> Response {
    let path = match extension_name(&name) {
        Ok(path) => path,
        Err(error) => return super::failure(Some(&session), &error),
    };
    let caller = Caller { user: session.user.clone(), token_id: session.token_id, scope: None };
    let extension = match crate::handlers::extension(State(state.clone()), caller, path).await {
        Ok(axum::Json(extension)) => extension,
        Err(error) => return super::failure(Some(&session), &error),
    };
    let name = extension.name.clone();
    let expected = extension.published;
    let number = asked.version;
    let verb = if asked.validate_only {
        format!("Validate version {number}")
    } else if expected.is_some_and(|published| number < published) {
        format!("Roll back to version {number}")
    } else {
        format!("Publish version {number}")
    };
    let request = PublishRequest { version: number, expected, validate_only: true };
    let checked = match extension_name(&name) {
        Ok(path) => {
            crate::handlers::publish(State(state.clone()), session.current_user(), path, ApiJson(request)).await
        }
        Err(error) => Err(error),
    };
    let (status, outcome) = match &checked {
        Ok(axum::Json(response)) => (StatusCode::OK, impact(response)),
        Err(error) => (error.status(), refusal(error)),
    };
    let content = html! {
        section aria-labelledby="publish-heading" class="publish" {
            h2 id="publish-heading" { (verb) }
            p {
                "Published now: "
                @match expected { Some(published) => { "version " (published) }, None => "none" }
                ". "
                @if asked.validate_only { "Every check runs; nothing is published." }
                @else { "Every check ran; nothing is published until you confirm." }
            }
            (outcome)
            @if checked.is_ok() && !asked.validate_only && session.may_publish() {
                form method="post" action={ "/console/extensions/" (name) "/publish" } class="inline confirm" {
                    (session.csrf_input())
                    input type="hidden" name="version" value=(number);
                    input type="hidden" name="expected" value=[expected];
                    button type="submit" class="primary" { (verb) }
                    a href={ "/console/extensions/" (name) } { "Cancel" }
                }
            } @else {
                p { a href={ "/console/extensions/" (name) } { "Back to the overview" } }
            }
        }
    };
    frame_with_status(&session, &name, Tab::Overview, content, status)
}

/// The messages and the consumers' impact of a validate-only run.
fn impact(response: &PublishResponse) -> Markup {
    let risky = response.consumers.iter().any(|consumer| super::state_class(&consumer.impact) != "ok");
    html! {
        div class=(if risky { "warning" } else { "notice" }) id="checks" {
            h3 { "What the checks found" }
            @if response.messages.is_empty() {
                p { "Nothing to report: every check passed." }
            } @else {
                ul { @for message in &response.messages { li { (super::message(message)) } } }
            }
        }
        h3 { "Impact on consumers" }
        (consumers(&response.consumers))
    }
}

/// The modules that use the extension and how the publication affects each.
fn consumers(consumers: &[ConsumerImpact]) -> Markup {
    html! {
        @if consumers.is_empty() {
            p class="empty" id="consumers" { "No module uses this extension: no consumer is affected." }
        } @else {
            table class="list consumers" id="consumers" {
                caption class="visually-hidden" { "Consumers and the impact on them" }
                thead { tr {
                    th scope="col" { "Module" }
                    th scope="col" { "Impact" }
                    th scope="col" { "Built against" }
                    th scope="col" { "What changes for it" }
                } }
                tbody {
                    @for consumer in consumers {
                        tr {
                            th scope="row" { (consumer.module) }
                            td data-label="Impact" { span class=(super::state_class(&consumer.impact)) { (consumer.impact) } }
                            td data-label="Built against" { "version " (consumer.built_against) }
                            td data-label="What changes for it" {
                                @if consumer.changes.is_empty() { span class="muted" { "nothing it uses" } }
                                @else { ul { @for change in &consumer.changes { li { (change) } } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A refusal of the API, in its words, where the page would show the outcome.
fn refusal(error: &ApiError) -> Markup {
    html! {
        div class="error" role="alert" id="refusal" {
            p { (super::message(error.message())) }
            @if !error.problems().is_empty() {
                ul { @for problem in error.problems() { li { code { (problem) } } } }
            }
        }
    }
}

/// The confirmation form's fields.
#[derive(serde::Deserialize)]
struct Confirmed {
    version: i64,
    /// The version published when the impact was shown; empty when none was.
    #[serde(default)]
    expected: String,
}

/// `POST /console/extensions/{name}/publish`: publishes for real, then the overview with the
/// outcome (messages, each node's deploy), or the refusal in words with the API's status.
async fn publish(State(state): State<AppState>, Path(name): Path<String>, posted: Posted<Confirmed>) -> Response {
    let Posted { session, form } = posted;
    let expected = match form.expected.trim() {
        "" => None,
        text => match text.parse() {
            Ok(number) => Some(number),
            Err(_) => {
                return super::failure(
                    Some(&session),
                    &ApiError::new(
                        xif_api::ErrorCode::InvalidRequest,
                        "the version expected to be published is a number; open the publication page again",
                    ),
                );
            }
        },
    };
    let path = match extension_name(&name) {
        Ok(path) => path,
        Err(error) => return super::failure(Some(&session), &error),
    };
    let request = PublishRequest { version: form.version, expected, validate_only: false };
    match crate::handlers::publish(State(state.clone()), session.current_user(), path, ApiJson(request)).await {
        Ok(axum::Json(response)) => {
            let published = Published {
                version: form.version,
                expected,
                published: response.published,
                messages: response.messages,
                nodes: response.nodes,
            };
            let text = serde_json::to_string(&published).unwrap_or_default();
            super::see_other_saying(&session, &format!("/console/extensions/{name}"), &text)
        }
        Err(error) => {
            let banner = html! {
                div class="error" role="alert" id="refusal" {
                    h2 { "Your publication of version " (form.version) " was refused" }
                    p { (super::message(error.message())) }
                    @if !error.problems().is_empty() {
                        ul { @for problem in error.problems() { li { code { (problem) } } } }
                    }
                }
            };
            // A page the user may not see at all is the error page; otherwise the overview says it.
            if matches!(error.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) {
                return super::failure(Some(&session), &error);
            }
            overview_page(&state, &session, &name, Some(banner), error.status()).await
        }
    }
}

/// What a publication did: published or not, its messages (warnings included), each node's deploy.
fn outcome(version: i64, expected: Option<i64>, response: &PublishResponse) -> Markup {
    let what = if !response.published {
        format!("Version {version} was already published: nothing changed.")
    } else if expected.is_some_and(|published| version < published) {
        format!("Rolled back to version {version}.")
    } else {
        format!("Version {version} is published.")
    };
    let warned = response.messages.iter().any(|message| message.starts_with("warning"));
    let failed = response.nodes.iter().any(|node| !node.ok);
    html! {
        div class=(if warned || failed { "warning" } else { "notice" }) role="status" id="outcome" {
            h2 { (what) }
            @if !response.messages.is_empty() {
                ul class="messages" { @for message in &response.messages { li { (super::message(message)) } } }
            }
            @if !response.nodes.is_empty() {
                table class="list nodes" {
                    caption { "Deploy on each node" }
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Runs" } th scope="col" { "Outcome" } } }
                    tbody {
                        @for node in &response.nodes {
                            tr {
                                th scope="row" { (node.node) }
                                td data-label="Runs" { @match node.running { Some(number) => { "version " (number) }, None => span class="muted" { "nothing" } } }
                                td data-label="Outcome" {
                                    @if node.ok { span class="ok" { "deployed" } }
                                    @else { span class="bad" { (node.error.as_deref().map(super::sentence).unwrap_or_else(|| "not deployed".into())) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/extensions/{name}/lock/break`: the lock, and the form that breaks it.
async fn confirm_break(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    if let Err(error) = crate::auth::CurrentUser(session.user.clone()).administrator_for("breaking a publication lock")
    {
        return super::failure(Some(&session), &error);
    }
    let overview = match read(&state, &session, &name).await {
        Ok(overview) => overview,
        Err(error) => return super::failure(Some(&session), &error),
    };
    let name = overview.extension.name;
    let content = html! {
        section aria-labelledby="break-heading" {
            h2 id="break-heading" { "Break the publication lock" }
            @match &overview.lock {
                Some(lock) => {
                    p {
                        "The lock of " (name) " is held by " strong { (lock.holder) } " since " (super::when(&lock.since)) ". "
                        "Break it only if that publication is stuck: if it still runs, it stops without publishing."
                    }
                    form method="post" action={ "/console/extensions/" (name) "/lock/break" } class="inline" {
                        (session.csrf_input())
                        button type="submit" class="danger" { "Break the lock" }
                        a href={ "/console/extensions/" (name) } { "Cancel" }
                    }
                }
                None => {
                    p class="notice" { "No publication of " (name) " holds a lock: there is nothing to break." }
                    p { a href={ "/console/extensions/" (name) } { "Back to the overview" } }
                }
            }
        }
    };
    frame(&session, &name, Tab::Overview, content)
}

/// The break form's fields: the page to go back to (`locks` for the list of locks; the overview
/// otherwise).
#[derive(serde::Deserialize)]
struct Break {
    #[serde(default)]
    back: String,
}

/// `POST /console/extensions/{name}/lock/break`, from the overview's confirmation or the list
/// of locks: breaks the lock (administrators), then back to that page saying whose lock it was.
async fn break_lock(State(state): State<AppState>, Path(name): Path<String>, posted: Posted<Break>) -> Response {
    let Posted { session, form } = posted;
    let path = match extension_name(&name) {
        Ok(path) => path,
        Err(error) => return super::failure(Some(&session), &error),
    };
    match crate::handlers::break_lock(State(state.clone()), session.current_user(), path).await {
        Ok(axum::Json(lock)) => {
            let back =
                if form.back == "locks" { "/console/locks".to_owned() } else { format!("/console/extensions/{name}") };
            let text = format!(
                "The publication lock of {} was broken. It was held by {} since {}.",
                lock.extension, lock.holder, lock.since
            );
            super::see_other_saying(&session, &back, &text)
        }
        Err(error) => super::failure(Some(&session), &error),
    }
}

/// `GET /console/extensions/{name}/versions/{number}/xif`: the archive as uploaded, as the API
/// downloads it.
async fn download(
    State(state): State<AppState>,
    session: Session,
    Path((name, number)): Path<(String, String)>,
) -> Response {
    let path = match (crate::names::parse::<ExtensionName>(&name), number.parse::<i64>()) {
        (Ok(name), Ok(number)) => ApiPath((name, number)),
        (Err(error), _) => return super::failure(Some(&session), &error),
        (_, Err(_)) => {
            return super::failure(
                Some(&session),
                &ApiError::new(
                    xif_api::ErrorCode::InvalidRequest,
                    format!("a version is a whole number, not `{number}`"),
                ),
            );
        }
    };
    match crate::handlers::download(State(state), session.current_user(), path).await {
        Ok(response) => response,
        Err(error) => super::failure(Some(&session), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_to_an_older_version_is_a_rollback() {
        assert_eq!(kind(None, 1), "publication");
        assert_eq!(kind(Some(1), 2), "publication");
        assert_eq!(kind(Some(2), 1), "rollback");
        assert_eq!(kind(Some(2), 2), "republication");
    }

    #[test]
    fn digests_are_shortened_to_twelve_digits() {
        assert_eq!(short(&"a".repeat(64)), "a".repeat(12));
        assert_eq!(short("abc"), "abc");
    }
}
