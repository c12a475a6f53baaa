//! `/console/tokens`: the signed-in user's own tokens (their sessions, the API's logins and
//! module tokens), creating a module token (shown once, on the answer to its form only), and
//! revoking one.

use axum::Router;
use axum::extract::{Path, State};

use crate::console::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use xif_api::ErrorCode;

use super::super::{Nav, Posted, Session, field_error, html_response, page, see_other, when};
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/tokens", get(list).post(create)).route("/tokens/{id}/revoke", post(revoke))
}

/// The lifetimes offered for a module token, in seconds; `None` is the server's default.
const LIFETIMES: [(&str, &str); 5] = [
    ("", "The server's default"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("2592000", "30 days"),
    ("31536000", "1 year"),
];

/// What the list says after a change (`?revoked=ID`).
#[derive(serde::Deserialize, Default)]
struct Done {
    revoked: Option<i64>,
}

/// The create-a-module-token form as posted.
#[derive(serde::Deserialize, Default)]
struct CreateForm {
    #[serde(default)]
    module: String,
    #[serde(default)]
    extensions: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    lifetime: String,
}

/// The create form's errors, each shown next to its field, or above the form.
#[derive(Default)]
struct Errors {
    module: Option<String>,
    extensions: Option<String>,
    lifetime: Option<String>,
    form: Option<String>,
}

async fn list(State(state): State<AppState>, session: Session, Query(done): Query<Done>) -> Response {
    let notice =
        done.revoked.map(|id| html! { div class="notice" role="status" { p { "Token " (id) " was revoked." } } });
    tokens_page(&state, &session, StatusCode::OK, notice, &CreateForm::default(), &Errors::default()).await
}

/// The tokens page answered with `status`: `above` the list (a notice, the new token), the
/// create form as `form` was filled with `errors`.
async fn tokens_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    above: Option<Markup>,
    form: &CreateForm,
    errors: &Errors,
) -> Response {
    let tokens = match crate::handlers::tokens(State(state.clone()), session.current_user()).await {
        Ok(tokens) => tokens.0,
        Err(error) => return super::fail(session, &error),
    };
    let active: Vec<&xif_api::Token> = tokens.iter().filter(|token| token.revoked_at.is_none()).collect();
    let may_create = session.user.administrator || session.may_publish();
    let content = html! {
        h1 { "My tokens" }
        (above.unwrap_or_default())
        p class="hint" { "Every sign-in (here, or with " code { "xif login" } ") is a token; module tokens let applications call extensions." }
        @if active.is_empty() {
            p class="empty" { "You have no active token." }
        } @else {
            table class="list tokens" {
                caption class="visually-hidden" { "My active tokens" }
                thead { tr {
                    th scope="col" { "Id" }
                    th scope="col" { "Label" }
                    th scope="col" { "Module scope" }
                    th scope="col" { "Created" }
                    th scope="col" { "Expires" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for token in &active {
                        @let current = token.id == session.token_id;
                        tr class=[current.then_some("current")] {
                            th scope="row" { (token.id) }
                            td data-label="Label" {
                                (token.label.as_deref().unwrap_or("—"))
                                @if current { " " strong class="this-session" { "this session" } }
                            }
                            td data-label="Module scope" {
                                @match &token.module {
                                    Some(module) => { code { (module) } " on " (token.extensions.join(", ")) },
                                    None => span class="muted" { "none (acts as you)" },
                                }
                            }
                            td data-label="Created" { (when(&token.created_at)) }
                            td data-label="Expires" { @match &token.expires_at { Some(at) => (when(at)), None => span class="muted" { "never" } } }
                            td data-label="Actions" {
                                form class="inline" method="post" action={ "/console/tokens/" (token.id) "/revoke" }
                                    data-confirm=(if current { "Revoke this session's token? You will be signed out.".to_owned() } else { format!("Revoke token {}? What uses it stops working at once.", token.id) }) {
                                    (session.csrf_input())
                                    button type="submit" class="danger"
                                        aria-label=(if current { format!("Revoke and sign out (token {})", token.id) } else { format!("Revoke token {}", token.id) }) {
                                        @if current { "Revoke and sign out" } @else { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 id="create-token" { "Create a module token" }
        @if may_create {
            (create_form(session, form, errors))
        } @else {
            p class="muted" { "Module tokens are made by administrators and users with the permission allow-extensions." }
        }
    };
    html_response(status, page("My tokens", Some(session), Nav::Tokens, content))
}

/// The `aria-invalid` of a field whose error, if any, is `error`.
fn invalid(error: Option<&String>) -> Option<&'static str> {
    error.map(|_| "true")
}

/// The form that creates a module token.
fn create_form(session: &Session, form: &CreateForm, errors: &Errors) -> Markup {
    html! {
        @if let Some(error) = &errors.form { div class="error" role="alert" id="token-error" { p { (error) } } }
        form class="stack" method="post" action="/console/tokens" {
            (session.csrf_input())
            label for="token-module" { "Module name" }
            input id="token-module" name="module" type="text" required autocomplete="off" value=(form.module)
                aria-invalid=[invalid(errors.module.as_ref())]
                aria-describedby=[errors.module.as_ref().map(|_| "token-module-error")];
            (field_error("token-module-error", errors.module.as_deref()))
            label for="token-extensions" { "Extensions it may use" }
            input id="token-extensions" name="extensions" type="text" required autocomplete="off" value=(form.extensions)
                aria-invalid=[invalid(errors.extensions.as_ref())]
                aria-describedby={ "token-extensions-hint" @if errors.extensions.is_some() { " token-extensions-error" } };
            p class="hint" id="token-extensions-hint" { "Names of uploaded extensions, separated by commas or spaces." }
            (field_error("token-extensions-error", errors.extensions.as_deref()))
            label for="token-label" { "Label (optional)" }
            input id="token-label" name="label" type="text" autocomplete="off" value=(form.label);
            label for="token-lifetime" { "Lifetime" }
            select id="token-lifetime" name="lifetime"
                aria-invalid=[invalid(errors.lifetime.as_ref())]
                aria-describedby=[errors.lifetime.as_ref().map(|_| "token-lifetime-error")] {
                @for (seconds, label) in LIFETIMES { option value=(seconds) selected[form.lifetime == seconds] { (label) } }
            }
            (field_error("token-lifetime-error", errors.lifetime.as_deref()))
            button type="submit" class="primary" { "Create token" }
        }
    }
}

/// Creates a module token and shows it, this once, above the list; errors go next to their
/// field.
async fn create(State(state): State<AppState>, posted: Posted<CreateForm>) -> Response {
    let Posted { session, form } = posted;
    let lifetime = form.lifetime.trim();
    let expires_in = if lifetime.is_empty() {
        None
    } else {
        match lifetime.parse::<u64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                let errors =
                    Errors { lifetime: Some("Choose one of the lifetimes offered.".into()), ..Errors::default() };
                return tokens_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, None, &form, &errors).await;
            }
        }
    };
    let request = xif_api::NewModuleToken {
        module: form.module.trim().to_owned(),
        extensions: form
            .extensions
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        label: Some(form.label.trim().to_owned()).filter(|label| !label.is_empty()),
        expires_in,
    };
    match crate::handlers::create_token(State(state.clone()), session.current_user(), ApiJson(request)).await {
        Ok((_, created)) => {
            let created = created.0;
            let shown = html! {
                div class="notice new-token" role="status" {
                    p { "Module token " (created.token_id) " for " code { (created.module) } " was created. "
                        strong { "Copy it now: it is shown this once and never again." } }
                    div class="token-value" {
                        label for="new-token" { "The new token" }
                        input id="new-token" type="text" readonly value=(created.token) class="mono";
                        button type="button" class="copy" data-copy="new-token" { "Copy" }
                        span class="copied" aria-live="polite" {}
                    }
                }
            };
            let mut response = tokens_page(
                &state,
                &session,
                StatusCode::CREATED,
                Some(shown),
                &CreateForm::default(),
                &Errors::default(),
            )
            .await;
            // Shown once: no cache, and no history entry to come back to it.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            let message = Some(super::said(error.message()));
            let mut errors = Errors::default();
            match error.code() {
                ErrorCode::InvalidTokenLifetime => errors.lifetime = message,
                ErrorCode::UnknownExtension => errors.extensions = message,
                ErrorCode::InvalidRequest if error.message().contains("module name") => errors.module = message,
                ErrorCode::InvalidRequest => errors.extensions = message,
                ErrorCode::MissingPermission | ErrorCode::AdministratorOnly => return super::fail(&session, &error),
                _ => errors.form = message,
            }
            tokens_page(&state, &session, error.status(), None, &form, &errors).await
        }
    }
}

/// Revokes one of the user's tokens; revoking this session's signs out.
async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<serde::de::IgnoredAny>,
) -> Response {
    let session = posted.session;
    let Ok(id) = id.parse::<i64>() else {
        return super::fail(
            &session,
            &ApiError::new(ErrorCode::InvalidPath, format!("`{id}` is not a token id (a whole number)")),
        );
    };
    match crate::handlers::revoke_token(State(state), session.current_user(), ApiPath(id)).await {
        Ok(_) if id == session.token_id => {
            let mut response = see_other("/console/sign-in");
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("xif_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            );
            response
        }
        Ok(_) => see_other(&format!("/console/tokens?revoked={id}")),
        Err(error) => super::fail(&session, &error),
    }
}
