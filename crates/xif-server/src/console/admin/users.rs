//! `/console/users`: the users, adding one, granting and revoking permissions, removing one.

use axum::Router;
use axum::extract::{Path, State};

use crate::console::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use xif_api::{ErrorCode, Permission};

use super::super::{Nav, Posted, Session, field_error, html_response, page, when};
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::names::UserName;
use crate::paging::Paging;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(add))
        .route("/users/{name}/grant", post(grant))
        .route("/users/{name}/revoke", post(revoke))
        .route("/users/{name}/remove", post(remove))
}

/// The add-a-user form as posted.
#[derive(serde::Deserialize, Default)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    administrator: Option<String>,
}

/// A permission to grant or revoke, as posted.
#[derive(serde::Deserialize)]
struct PermissionForm {
    permission: String,
}

/// The add form's state when it is shown again: the name kept, an error next to its field.
#[derive(Default)]
struct AddState {
    name: String,
    administrator: bool,
    name_error: Option<String>,
    password_error: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    paging: Result<Paging<String>, ApiError>,
    Query(notice): Query<crate::console::Notice>,
) -> Response {
    if let Some(refused) = super::refused(&session, "managing users") {
        return refused;
    }
    let notice = notice.verified(&session).map(str::to_owned);
    users_page(&state, &session, paging, StatusCode::OK, AddState::default(), notice, None).await
}

/// The users page, answered with `status`: the list (or its error), `notice` or `error` above
/// it, and the add form in state `add`.
async fn users_page(
    state: &AppState,
    session: &Session,
    paging: Result<Paging<String>, ApiError>,
    status: StatusCode,
    add: AddState,
    notice: Option<String>,
    error: Option<&ApiError>,
) -> Response {
    let paging = match paging {
        Ok(paging) => paging,
        Err(error) => return super::fail(session, &error),
    };
    let listed = match crate::handlers::users(State(state.clone()), session.current_user(), paging).await {
        Ok(listed) => listed,
        Err(error) => return super::fail(session, &error),
    };
    let users = &listed.items;
    let content = html! {
        h1 { "Users" }
        @if let Some(notice) = notice { div class="notice" role="status" { p { (notice) } } }
        @if let Some(error) = error {
            div class="error" role="alert" id="users-error" { p { (super::said(error.message())) } }
        }
        table class="list users" {
            caption class="visually-hidden" { "Users" }
            thead { tr {
                th scope="col" { "Name" }
                th scope="col" { "Administrator" }
                th scope="col" { "Permissions" }
                th scope="col" { "Created" }
                th scope="col" { "Actions" }
            } }
            tbody {
                @for user in users {
                    tr {
                        th scope="row" { (user.name) @if user.name.eq_ignore_ascii_case(&session.user.name) { " " span class="muted" { "(you)" } } }
                        td data-label="Administrator" { @if user.administrator { span class="ok" { "yes" } } @else { "no" } }
                        td data-label="Permissions" { (permissions(session, &user.name, &user.permissions)) }
                        td data-label="Created" { (when(&user.created_at)) }
                        td data-label="Actions" { (actions(session, &user.name, &user.permissions)) }
                    }
                }
            }
        }
        @if listed.more() {
            @if let Some(last) = users.last() {
                p { a href={ "/console/users?after=" (last.name) } { "Next users" } }
            }
        }
        h2 id="add-user" { "Add a user" }
        (add_form(session, &add))
    };
    html_response(status, page("Users", Some(session), Nav::Users, content))
}

/// The permissions `user` holds, each with a button that revokes it.
fn permissions(session: &Session, user: &str, held: &[Permission]) -> Markup {
    html! {
        @if held.is_empty() { span class="muted" { "none" } }
        ul class="permissions" {
            @for permission in held {
                li {
                    code { (permission.name()) }
                    form class="inline" method="post" action={ "/console/users/" (user) "/revoke" } {
                        (session.csrf_input())
                        input type="hidden" name="permission" value=(permission.name());
                        button type="submit" class="link" aria-label={ "Revoke " (permission.name()) " from " (user) } { "revoke" }
                    }
                }
            }
        }
    }
}

/// Granting a permission `user` does not hold yet, and removing them.
fn actions(session: &Session, user: &str, held: &[Permission]) -> Markup {
    let missing: Vec<Permission> =
        Permission::ALL.into_iter().filter(|permission| !held.contains(permission)).collect();
    let select = format!("grant-{user}");
    html! {
        div class="user-actions" {
            @if !missing.is_empty() {
                form class="inline" method="post" action={ "/console/users/" (user) "/grant" } {
                    (session.csrf_input())
                    label class="visually-hidden" for=(select) { "Permission to grant to " (user) }
                    select id=(select) name="permission" {
                        @for permission in &missing { option value=(permission.name()) { (permission.name()) } }
                    }
                    button type="submit" { "Grant" }
                }
            }
            form class="inline" method="post" action={ "/console/users/" (user) "/remove" }
                data-confirm={ "Remove user " (user) "? Their tokens stop working at once." } {
                (session.csrf_input())
                button type="submit" class="danger" aria-label={ "Remove " (user) } { "Remove" }
            }
        }
    }
}

/// The form that adds a user.
fn add_form(session: &Session, add: &AddState) -> Markup {
    html! {
        form class="stack" method="post" action="/console/users" {
            (session.csrf_input())
            label for="new-name" { "User name" }
            input id="new-name" name="name" type="text" required autocomplete="off" value=(add.name)
                maxlength=(crate::names::MAX_USER_NAME)
                aria-invalid=[add.name_error.as_ref().map(|_| "true")]
                aria-describedby=[add.name_error.as_ref().map(|_| "new-name-error")];
            (field_error("new-name-error", add.name_error.as_deref()))
            label for="new-password" { "Password" }
            input id="new-password" name="password" type="password" required autocomplete="new-password"
                aria-invalid=[add.password_error.as_ref().map(|_| "true")]
                aria-describedby={ "new-password-hint" @if add.password_error.is_some() { " new-password-error" } };
            p class="hint" id="new-password-hint" { "At least 12 characters." }
            (field_error("new-password-error", add.password_error.as_deref()))
            div class="check" {
                input id="new-administrator" name="administrator" type="checkbox" value="on" checked[add.administrator];
                label for="new-administrator" { "Administrator (manages users, connections, nodes and locks)" }
            }
            button type="submit" class="primary" { "Add user" }
        }
    }
}

/// Adds a user; an error is shown next to the field it is about, the name kept (never the
/// password).
async fn add(
    State(state): State<AppState>,
    paging: Result<Paging<String>, ApiError>,
    posted: Posted<AddForm>,
) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, "managing users") {
        return refused;
    }
    let administrator = form.administrator.is_some();
    let request = xif_api::NewUser {
        name: form.name.trim().to_owned(),
        password: form.password,
        administrator,
        grant: Vec::new(),
    };
    let name = request.name.clone();
    match crate::handlers::add_user(State(state.clone()), session.current_user(), ApiJson(request)).await {
        Ok(_) => crate::console::see_other_saying(&session, "/console/users", &format!("User {name} was added.")),
        Err(error) => {
            let mut add = AddState { name, administrator, ..AddState::default() };
            let message = Some(super::said(error.message()));
            match error.code() {
                ErrorCode::InvalidUserName | ErrorCode::UserExists => add.name_error = message,
                ErrorCode::WeakPassword => add.password_error = message,
                _ => return super::fail(&session, &error),
            }
            users_page(&state, &session, paging, error.status(), add, None, None).await
        }
    }
}

async fn grant(State(state): State<AppState>, Path(name): Path<String>, posted: Posted<PermissionForm>) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, "managing users") {
        return refused;
    }
    let name = match crate::names::parse::<UserName>(&name) {
        Ok(name) => name,
        Err(error) => return super::fail(&session, &error),
    };
    let request = xif_api::Grant { permission: form.permission };
    match crate::handlers::grant(State(state), session.current_user(), ApiPath(name), ApiJson(request)).await {
        Ok(user) => crate::console::see_other_saying(
            &session,
            "/console/users",
            &format!("The permissions of {} were changed.", user.0.name),
        ),
        Err(error) => super::fail(&session, &error),
    }
}

async fn revoke(State(state): State<AppState>, Path(name): Path<String>, posted: Posted<PermissionForm>) -> Response {
    let Posted { session, form } = posted;
    if let Some(refused) = super::refused(&session, "managing users") {
        return refused;
    }
    let name = match crate::names::parse::<UserName>(&name) {
        Ok(name) => name,
        Err(error) => return super::fail(&session, &error),
    };
    match crate::handlers::revoke(State(state), session.current_user(), ApiPath((name, form.permission))).await {
        Ok(user) => crate::console::see_other_saying(
            &session,
            "/console/users",
            &format!("The permissions of {} were changed.", user.0.name),
        ),
        Err(error) => super::fail(&session, &error),
    }
}

/// Removes a user; the API's refusal (oneself, an unknown user) is shown above the list.
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    paging: Result<Paging<String>, ApiError>,
    posted: Posted<serde::de::IgnoredAny>,
) -> Response {
    let session = posted.session;
    if let Some(refused) = super::refused(&session, "managing users") {
        return refused;
    }
    let parsed = match crate::names::parse::<UserName>(&name) {
        Ok(name) => name,
        Err(error) => return super::fail(&session, &error),
    };
    match crate::handlers::remove_user(State(state.clone()), session.current_user(), ApiPath(parsed)).await {
        Ok(_) => crate::console::see_other_saying(&session, "/console/users", &format!("User {name} was removed.")),
        Err(error) => {
            users_page(&state, &session, paging, error.status(), AddState::default(), None, Some(&error)).await
        }
    }
}
