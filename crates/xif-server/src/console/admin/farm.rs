//! `/console/nodes` (each node of the farm, whether it is live, and what it runs) and
//! `/console/locks` (publication locks held, and breaking one).

use axum::Router;
use axum::extract::State;

use crate::console::Query;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::super::{Nav, Session, render, when};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/nodes", get(nodes)).route("/locks", get(locks))
}

async fn nodes(State(state): State<AppState>, session: Session) -> Response {
    if let Some(refused) = super::refused(&session, "listing the nodes of the farm") {
        return refused;
    }
    let nodes = match crate::handlers::nodes(State(state), session.current_user()).await {
        Ok(nodes) => nodes.0,
        Err(error) => return super::fail(&session, &error),
    };
    let live = nodes.iter().filter(|node| node.live).count();
    let content = html! {
        h1 { "Nodes" }
        p { (nodes.len()) " node" @if nodes.len() != 1 { "s" } ", " (live) " live." }
        @for node in &nodes {
            section class="node" aria-labelledby={ "node-" (node.id) } {
                h2 id={ "node-" (node.id) } {
                    (node.name) " "
                    @if node.live { span class="badge ok" { "live" } } @else { span class="badge bad" { "not live" } }
                }
                dl class="facts" {
                    dt { "Address" } dd { code { (node.address) } }
                    dt { "Health" } dd {
                        @if node.live { span class="ok" { "beating" } } @else { span class="bad" { "no recent heartbeat" } }
                    }
                    dt { "Last seen" } dd { (when(&node.heartbeat)) }
                    dt { "Started" } dd { (when(&node.started)) }
                    dt { "xif version" } dd { (node.version) }
                }
                @if node.extensions.is_empty() {
                    p class="empty" { "It runs no extension." }
                } @else {
                    table class="list node-extensions" {
                        caption { "Extensions on " (node.name) }
                        thead { tr { th scope="col" { "Extension" } th scope="col" { "Running version" } th scope="col" { "Last deploy" } } }
                        tbody {
                            @for extension in &node.extensions {
                                tr {
                                    th scope="row" { a href={ "/console/extensions/" (extension.name) } { (extension.name) } }
                                    td data-label="Running version" {
                                        @match extension.running { Some(number) => { "version " (number) }, None => span class="muted" { "none" } }
                                    }
                                    td data-label="Last deploy" {
                                        @match &extension.failure { Some(failure) => span class="bad" { "failed: " (failure) }, None => span class="ok" { "succeeded" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render("Nodes", &session, Nav::Nodes, content)
}

async fn locks(
    State(state): State<AppState>,
    session: Session,
    Query(notice): Query<crate::console::Notice>,
) -> Response {
    if let Some(refused) = super::refused(&session, "managing publication locks") {
        return refused;
    }
    let locks = match crate::handlers::locks(State(state), session.current_user()).await {
        Ok(locks) => locks.0,
        Err(error) => return super::fail(&session, &error),
    };
    let content = html! {
        h1 { "Publication locks" }
        @if let Some(text) = notice.verified(&session) {
            div class="notice" role="status" { p { (text) } }
        }
        p class="hint" { "A publication holds its extension's lock while it deploys; a holder that died holds it no longer than its lease." }
        @if locks.is_empty() {
            p class="empty" { "No publication holds a lock." }
        } @else {
            table class="list locks" {
                caption class="visually-hidden" { "Publication locks held" }
                thead { tr {
                    th scope="col" { "Extension" }
                    th scope="col" { "Holder" }
                    th scope="col" { "Since" }
                    th scope="col" { "Lease ends" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for lock in &locks {
                        tr {
                            th scope="row" { a href={ "/console/extensions/" (lock.extension) } { (lock.extension) } }
                            td data-label="Holder" { (lock.holder) }
                            td data-label="Since" { (when(&lock.since)) }
                            td data-label="Lease ends" { (when(&lock.lease_until)) }
                            td data-label="Actions" {
                                form class="inline" method="post" action={ "/console/extensions/" (lock.extension) "/lock/break" }
                                    data-confirm={ "Break the publication lock of " (lock.extension) "? A publication still running may then clash with another." } {
                                    (session.csrf_input())
                                    input type="hidden" name="back" value="locks";
                                    button type="submit" class="danger" aria-label={ "Break the lock of " (lock.extension) } { "Break" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render("Publication locks", &session, Nav::Locks, content)
}
