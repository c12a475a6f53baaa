//! Signing in and out of Service Center.
//!
//! The sign-in form is protected against cross-site posting by a double-submitted random
//! value (a cookie of its own and a hidden field that must match): there is no session yet to
//! derive an anti-forgery token from. Signing in runs the API's login, throttled alike.

use axum::Router;
use axum::extract::State;

use super::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;

use super::{COOKIE, Nav, Posted, ROOT, SESSION_LIFETIME, Session, constant_time_eq, cookie, field_error};
use crate::AppState;
use crate::auth::PeerAddress;

/// The cookie of the sign-in form's anti-forgery value.
const SIGN_IN_COOKIE: &str = "xif_sign_in";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/sign-in", get(form).post(sign_in)).route("/sign-out", post(sign_out))
}

/// Whether `path` is a console page to come back to after signing in: a path of this console,
/// never another site (`//host`) or a script.
pub(super) fn is_console_path(path: &str) -> bool {
    (path == ROOT || path.starts_with("/console/"))
        && !path.starts_with("/console/sign-")
        && !path.contains("//")
        && !path.contains('\\')
        && path.bytes().all(|byte| byte.is_ascii_graphic())
}

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

/// The sign-in page, and a new anti-forgery value for its form.
async fn form(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    headers: HeaderMap,
    Query(next): Query<Next>,
    session: Option<Session>,
) -> Response {
    // Signed in already: straight on.
    if session.is_some() {
        return super::see_other(
            next.next.as_deref().filter(|next| is_console_path(next)).unwrap_or("/console/extensions"),
        );
    }
    sign_in_page(secure(&state, peer, &headers), StatusCode::OK, "", next.next.as_deref(), None, None)
}

/// Whether cookies are marked `Secure`: when the server speaks TLS itself, or when the request
/// came from a trusted proxy (`--trusted-proxy`) that says its client spoke HTTPS to it
/// (`X-Forwarded-Proto: https`), as a balancer that ends TLS does.
fn secure(state: &AppState, peer: Option<std::net::IpAddr>, headers: &HeaderMap) -> bool {
    state.secure_cookies.load(std::sync::atomic::Ordering::Relaxed)
        || (peer.is_some_and(|peer| state.limits.login.trusted_proxies.iter().any(|proxy| proxy.contains(&peer)))
            && headers
                .get("x-forwarded-proto")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.rsplit(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")))
}

/// The sign-in page answered with `status`, the user name kept, and an error next to the
/// password (wrong credentials) or above the form (throttled, busy).
fn sign_in_page(
    secure: bool,
    status: StatusCode,
    user: &str,
    next: Option<&str>,
    credentials_error: Option<&str>,
    form_error: Option<&str>,
) -> Response {
    let value = match crate::auth::random_secret("") {
        Ok(value) => value,
        Err(error) => return super::failure(None, &error),
    };
    let next = next.filter(|next| is_console_path(next));
    let content = html! {
        div class="signin" {
            h1 { "Sign in to Service Center" }
            @if let Some(error) = form_error {
                div class="error" role="alert" id="signin-error" { p { (super::message(error)) } }
            }
            form method="post" action="/console/sign-in" class="stack" {
                input type="hidden" name="_csrf" value=(value);
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                label for="user" { "User name" }
                input id="user" name="user" type="text" autocomplete="username" required autofocus[user.is_empty()]
                    value=(user) maxlength=(crate::names::MAX_USER_NAME);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required
                    autofocus[!user.is_empty()]
                    aria-invalid=[credentials_error.map(|_| "true")]
                    aria-describedby=[credentials_error.map(|_| "password-error")];
                (field_error("password-error", credentials_error))
                button type="submit" class="primary" { "Sign in" }
            }
            p class="hint" { "The server's first administrator is " code { "admin" } "; its password was shown once when the server first started (or set with " code { "XIF_ADMIN_PASSWORD" } ")." }
        }
    };
    let mut response = super::html_response(status, super::page("Sign in", None, Nav::None, content));
    let secure = if secure { "; Secure" } else { "" };
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SIGN_IN_COOKIE}={value}; Path=/console/sign-in; HttpOnly; SameSite=Strict{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(serde::Deserialize)]
struct SignIn {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Checks the credentials as the API's login does and, when they are right, starts a session.
async fn sign_in(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Read as every console form is: bounded, and within the body timeout.
    let secure = secure(&state, peer, &headers);
    let form = match super::form_body(&state, body).await {
        Ok(bytes) if super::is_form(&headers) => serde_urlencoded::from_bytes::<SignIn>(&bytes).map_err(|error| {
            crate::error::ApiError::new(
                xif_api::ErrorCode::InvalidRequest,
                format!("the sign-in form is not what this page takes: {error}"),
            )
        }),
        Ok(_) => Err(crate::error::ApiError::new(
            xif_api::ErrorCode::UnsupportedMediaType,
            "the sign-in form is sent as application/x-www-form-urlencoded",
        )),
        Err(error) => Err(error),
    };
    let form = match form {
        Ok(form) => form,
        Err(error) => return super::failure(None, &error),
    };
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        tracing::warn!(peer = ?peer, "console sign-in refused: no valid anti-forgery value");
        return sign_in_page(
            secure,
            StatusCode::FORBIDDEN,
            &form.user,
            form.next.as_deref(),
            None,
            Some(
                "This sign-in form was not sent from this server's sign-in page (or it was open too long); sign in again.",
            ),
        );
    }
    let peer = crate::auth::client_address(peer, &headers, &state.limits.login.trusted_proxies);
    let user: String = form.user.trim().chars().take(crate::names::MAX_USER_NAME + 1).collect();
    let signed =
        crate::handlers::sign_in(&state, peer, &user, &form.password, SESSION_LIFETIME, Some("Service Center session"))
            .await;
    match signed {
        Ok((token, _, _, user)) => {
            tracing::info!(user = %user.name, "signed in to Service Center");
            let target = form.next.as_deref().filter(|next| is_console_path(next)).unwrap_or("/console/extensions");
            let mut response = super::see_other(target);
            let secure = if secure { "; Secure" } else { "" };
            let headers = response.headers_mut();
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_LIFETIME.as_secs()
            )) {
                headers.append(header::SET_COOKIE, cookie);
            }
            headers.append(
                header::SET_COOKIE,
                HeaderValue::from_static("xif_sign_in=; Path=/console/sign-in; HttpOnly; SameSite=Strict; Max-Age=0"),
            );
            response
        }
        Err(error) => {
            let status = error.status();
            let mut response = match error.code() {
                xif_api::ErrorCode::InvalidCredentials => sign_in_page(
                    secure,
                    status,
                    &user,
                    form.next.as_deref(),
                    Some("Wrong user name or password."),
                    None,
                ),
                _ => sign_in_page(secure, status, &user, form.next.as_deref(), None, Some(error.message())),
            };
            if let Some(seconds) = error.retry_after_seconds() {
                response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
    }
}

/// Ends the session: its token is revoked (on every node) and its cookie cleared.
async fn sign_out(State(state): State<AppState>, posted: Posted<serde::de::IgnoredAny>) -> Response {
    let session = posted.session;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Err(error) = state.metadata.revoke_token(session.user.id, session.token_id, &now).await {
        return super::failure(Some(&session), &error.into());
    }
    state.auth_changed().await;
    tracing::info!(user = %session.user.name, "signed out of Service Center");
    let mut response = super::see_other("/console/sign-in");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("xif_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_pages_are_come_back_to() {
        assert!(is_console_path("/console/extensions?q=a"));
        assert!(is_console_path("/console"));
        assert!(!is_console_path("//evil.example/console/"));
        assert!(!is_console_path("/console//evil.example"));
        assert!(!is_console_path("https://evil.example/"));
        assert!(!is_console_path("/console/sign-in"));
        assert!(!is_console_path("/api/v1/users"));
        assert!(!is_console_path("/console/\\evil"));
    }
}
