//! Service Center: an extension's page (overview: versions, publish, roll back, validate-only,
//! the publication lock, the publication history, downloads), and the frame with tabs that
//! every page of an extension shares (see also `activity.rs`).

use axum::Router;
use axum::response::Response;
use maud::{Markup, html};

use super::{Nav, Session};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}

/// The pages of an extension, each a tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
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
#[allow(dead_code)]
pub(super) fn frame(session: &Session, name: &str, tab: Tab, content: Markup) -> Response {
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
        nav aria-label="Breadcrumb" class="crumbs" { a href="/console/extensions" { "Extensions" } " / " }
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
    super::render(name, session, Nav::Extensions, content)
}
