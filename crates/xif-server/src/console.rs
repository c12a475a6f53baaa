//! Service Center: the web console the server serves itself, at `/console/`.
//!
//! Pages are HTML rendered on the server from [`maud`] templates, with a little progressive
//! enhancement (htmx, taken from its npm package and embedded in the binary; see
//! `assets/`); every page and form works without scripts, except the upload's progress bar
//! and the live log, which say so.
//!
//! - **Sessions** are API tokens: signing in runs the API's login ([`crate::handlers::sign_in`],
//!   same throttling and messages) and keeps the token it makes in an `HttpOnly`,
//!   `SameSite=Strict` cookie (`Secure` under TLS) that lasts [`SESSION_LIFETIME`]. Each request
//!   looks the token up as the API does (cached, revocable, expiring); signing out revokes it.
//!   A session is therefore a token the user sees among their tokens, and can revoke from
//!   anywhere.
//! - **Forms** carry an anti-forgery token ([`csrf_token`], derived from the session's token:
//!   nobody who cannot read the cookie can compute it), checked by [`Posted`] before the form
//!   is read; htmx sends it as the `X-CSRF-Token` header.
//! - **Permissions** are the API's: pages call the API's handlers with the session's user, so a
//!   page shows and allows exactly what the API allows that user; administration pages answer
//!   403 to others.

mod activity;
mod admin;
mod assets;
mod extension;
mod extensions;
mod signin;
mod upload;

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::UserRecord;

/// The cookie that holds a session's token.
pub(crate) const COOKIE: &str = "xif_session";

/// How long a session lasts: a working day, after which the user signs in again.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Where the console lives.
pub(crate) const ROOT: &str = "/console";

/// The console's routes, nested at [`ROOT`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/extensions") }))
        .merge(assets::routes())
        .merge(signin::routes())
        .merge(extensions::routes())
        .merge(extension::routes())
        .merge(activity::routes())
        .merge(upload::routes())
        .merge(admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every answer of the console, errors and redirects included, carries the same guards.
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            secure_headers(response.headers_mut());
            response
        }))
}

/// A console page asked for with a method it does not take.
async fn method_not_allowed(session: Option<Session>) -> Response {
    failure(
        session.as_ref(),
        &ApiError::new(xif_api::ErrorCode::MethodNotAllowed, "this page of Service Center does not take that method"),
    )
}

/// A console page nobody has.
async fn not_found(session: Option<Session>) -> Response {
    failure(
        session.as_ref(),
        &ApiError::new(xif_api::ErrorCode::NoSuchEndpoint, "there is no such page in Service Center"),
    )
}

/// The signed-in user of a console request, from the session cookie.
///
/// Without a valid session, a page asked for is redirected to the sign-in page (which comes
/// back to it), and an htmx request is told to go there (`HX-Redirect`).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The user, as the token's lookup found it.
    pub user: UserRecord,
    /// The session's token, as sent to the API's handlers that forward it (logs of other
    /// nodes). Never rendered.
    pub token: String,
    /// The token's id among the user's tokens.
    pub token_id: i64,
    /// The anti-forgery token each form of this session carries.
    pub csrf: String,
}

impl Session {
    /// The API's view of the caller: the handlers take a [`crate::auth::CurrentUser`].
    pub fn current_user(&self) -> crate::auth::CurrentUser {
        crate::auth::CurrentUser(self.user.clone())
    }

    /// The headers an API handler reads the caller's token from (to forward it to other nodes).
    pub fn authorization(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    /// Whether `given` is this session's anti-forgery token, compared in constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), given.as_bytes())
    }

    /// The hidden input every form of this session carries.
    pub fn csrf_input(&self) -> Markup {
        html! { input type="hidden" name="_csrf" value=(self.csrf); }
    }

    /// Whether the user may upload and publish.
    pub fn may_publish(&self) -> bool {
        self.user.has(xif_api::Permission::AllowExtensions)
    }
}

/// Compares two byte strings in time that depends on their lengths only (`subtle`'s, the
/// constant-time comparison the RustCrypto crates use).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The anti-forgery token of the session whose token is `token`: a digest of it under a label
/// of its own, so that it says nothing of the token, and cannot be made without it.
pub(crate) fn csrf_token(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"xif console anti-forgery\0");
    hasher.update(token.as_bytes());
    hex::encode(hasher.finalize())
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether the request came through htmx (which then follows `HX-Redirect`).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Where to go to sign in, coming back to `parts`' page afterwards when it was a page read.
fn sign_in_redirect(parts: &Parts) -> Response {
    let back = (parts.method == Method::GET)
        .then(|| {
            parts.extensions.get::<axum::extract::OriginalUri>().map_or_else(|| parts.uri.clone(), |uri| uri.0.clone())
        })
        .and_then(|uri| uri.path_and_query().map(|path| path.as_str().to_owned()))
        .filter(|path| signin::is_console_path(path));
    let target = match back {
        Some(back) => {
            format!("{ROOT}/sign-in?next={}", form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>())
        }
        None => format!("{ROOT}/sign-in"),
    };
    if is_htmx(&parts.headers) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        response
    } else {
        Redirect::to(&target).into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, COOKIE).filter(|token| !token.is_empty()) else {
            return Err(sign_in_redirect(parts));
        };
        match crate::auth::caller_for_token(state, token).await {
            // Only a user's own token is a session: a module token in the cookie is no session.
            Ok(caller) if caller.scope.is_none() => Ok(Session {
                user: caller.user,
                token: token.to_owned(),
                token_id: caller.token_id,
                csrf: csrf_token(token),
            }),
            Ok(_) => Err(sign_in_redirect(parts)),
            Err(error) => match error.code() {
                xif_api::ErrorCode::InvalidToken | xif_api::ErrorCode::TokenExpired => Err(sign_in_redirect(parts)),
                _ => Err(failure(None, &error)),
            },
        }
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Session as FromRequestParts<AppState>>::from_request_parts(parts, state).await.ok())
    }
}

/// A page's query string, as axum's `Query` reads it, refused as a console page (400, in the
/// layout) rather than in plain text when it is not what the page takes.
pub(crate) struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(query)) => Ok(Query(query)),
            Err(rejection) => Err(failure(
                None,
                &ApiError::new(
                    xif_api::ErrorCode::InvalidRequest,
                    format!("the address's query is not what this page takes: {}", rejection.body_text()),
                ),
            )),
        }
    }
}

/// The body of a console form: at most [`FORM_LIMIT`] bytes, within the server's body timeout
/// (a client that trickles a form does not hold a connection for longer).
pub(crate) async fn form_body(state: &AppState, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.limits.connections.body_timeout;
    match tokio::time::timeout(limit, axum::body::to_bytes(body, FORM_LIMIT)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => {
            Err(ApiError::new(xif_api::ErrorCode::PayloadTooLarge, format!("a form takes at most {FORM_LIMIT} bytes")))
        }
        Err(_) => Err(ApiError::request_timeout(limit)),
    }
}

/// Whether a form came as forms do (`application/x-www-form-urlencoded`; none is taken as one
/// too, as some clients send none).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_none_or(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// The largest form the console takes (the upload is not a form of this kind).
const FORM_LIMIT: usize = 64 * 1024;

/// A form posted by a signed-in user, its anti-forgery token checked before it is read: the
/// session and the form's fields (`_csrf` and unknown fields ignored).
pub(crate) struct Posted<T> {
    /// Who posted it.
    pub session: Session,
    /// Its fields.
    pub form: T,
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = <Session as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        if !is_form(&parts.headers) {
            return Err(failure(
                Some(&session),
                &ApiError::new(
                    xif_api::ErrorCode::UnsupportedMediaType,
                    "a Service Center form is sent as application/x-www-form-urlencoded",
                ),
            ));
        }
        let bytes = form_body(state, body).await.map_err(|error| failure(Some(&session), &error))?;
        let from_header = parts.headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).map(str::to_owned);
        let from_form =
            form_urlencoded::parse(&bytes).find(|(key, _)| key == "_csrf").map(|(_, value)| value.into_owned());
        if !from_header.or(from_form).is_some_and(|given| session.csrf_matches(&given)) {
            tracing::warn!(user = %session.user.name, path = %parts.uri.path(), "console form refused: no valid anti-forgery token");
            return Err(failure(
                Some(&session),
                &ApiError::new(
                    xif_api::ErrorCode::ForgedRequest,
                    "this form was not sent from a page of this Service Center session (its anti-forgery token is \
                     missing or wrong); reload the page and send it again",
                ),
            ));
        }
        match serde_urlencoded::from_bytes::<T>(&bytes) {
            Ok(form) => Ok(Posted { session, form }),
            Err(error) => Err(failure(
                Some(&session),
                &ApiError::new(
                    xif_api::ErrorCode::InvalidRequest,
                    format!("the form is not what this page takes: {error}"),
                ),
            )),
        }
    }
}

/// Which part of the console a page belongs to, marked in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// The list of extensions and their pages.
    Extensions,
    /// Upload & Publish an Extension.
    Upload,
    /// Users and their permissions.
    Users,
    /// The user's own tokens.
    Tokens,
    /// Database connections.
    Connections,
    /// The nodes of the farm.
    Nodes,
    /// Publication locks.
    Locks,
    /// None (sign-in, errors).
    None,
}

/// A whole page: the layout around `content`, titled `title`, its navigation showing only what
/// `session`'s user may use.
pub(crate) fn page(title: &str, session: Option<&Session>, nav: Nav, content: Markup) -> Markup {
    let link = |target: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(nav == target).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;
                @if let Some(session) = session { meta name="csrf-token" content=(session.csrf); }
                title { (title) " · xif Service Center" }
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("console.js")) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/extensions" { "xif " span { "Service Center" } }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                (link(Nav::Extensions, "/console/extensions", "Extensions"))
                                @if session.may_publish() { (link(Nav::Upload, "/console/upload", "Upload & Publish")) }
                                (link(Nav::Tokens, "/console/tokens", "My tokens"))
                                @if session.user.administrator {
                                    (link(Nav::Users, "/console/users", "Users"))
                                    (link(Nav::Connections, "/console/connections", "Connections"))
                                    (link(Nav::Nodes, "/console/nodes", "Nodes"))
                                    (link(Nav::Locks, "/console/locks", "Locks"))
                                }
                            }
                        }
                        form class="signout" method="post" action="/console/sign-out" {
                            (session.csrf_input())
                            span class="who" { (session.user.name) }
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (content)
                }
            }
        }
    }
}

/// `markup` as an HTML answer that no cache keeps and no other site frames.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(headers);
    response
}

/// Headers every console answer carries: scripts and styles from the server only, no framing,
/// no sniffing, no referrer to other sites.
pub(crate) fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// A page: `content` in the layout, answered 200.
pub(crate) fn render(title: &str, session: &Session, nav: Nav, content: Markup) -> Response {
    html_response(StatusCode::OK, page(title, Some(session), nav, content))
}

/// An error as a page, answered with the API's status for it: what went wrong, in the API's
/// words (never internals: those are logged by [`ApiError::internal`]).
pub(crate) fn failure(session: Option<&Session>, error: &ApiError) -> Response {
    let status = error.status();
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        status if status.is_server_error() => "Something failed",
        _ => "Cannot do that",
    };
    let content = html! {
        h1 { (title) }
        div class="error" role="alert" {
            p { (message(error.message())) }
            @if !error.problems().is_empty() {
                ul { @for problem in error.problems() { li { code { (problem) } } } }
            }
        }
        p { a href="/console/extensions" { "Back to the extensions" } }
    };
    let mut response = html_response(status, page(title, session, Nav::None, content));
    if let Some(seconds) = error.retry_after_seconds() {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// An error shown next to what caused it, inside a form: `None` shows nothing.
pub(crate) fn field_error(id: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p class="field-error" id=(id) role="alert" { (message(error)) }
        }
    }
}

/// A time as stored (RFC 3339), shown in UTC to the minute, in a `<time>` element.
pub(crate) fn when(at: &str) -> Markup {
    let shown = chrono::DateTime::parse_from_rfc3339(at)
        .map(|at| at.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| at.to_owned());
    html! { time datetime=(at) { (shown) } }
}

/// A size in bytes, for people.
pub(crate) fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `text` with its first letter made a capital: the API's messages start in lower case, to
/// follow what names them; shown alone, they are sentences.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// What a page says after a change it redirected to, carried in its address with a proof that
/// this session's server wrote it (a digest under the session's token): a link from anyone else
/// cannot make a page say "user admin was removed".
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Notice {
    notice: Option<String>,
    proof: Option<String>,
}

/// The proof of `text` for `session`.
fn notice_proof(session: &Session, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"xif console notice\0");
    hasher.update(session.token.as_bytes());
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

impl Notice {
    /// The notice, when this session's server wrote it.
    pub fn verified(&self, session: &Session) -> Option<&str> {
        let (text, proof) = (self.notice.as_deref()?, self.proof.as_deref()?);
        constant_time_eq(notice_proof(session, text).as_bytes(), proof.as_bytes()).then_some(text)
    }
}

/// A redirect (303) to `target` (a path without a query) that shows `text` there as a notice.
pub(crate) fn see_other_saying(session: &Session, target: &str, text: &str) -> Response {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", text)
        .append_pair("proof", &notice_proof(session, text))
        .finish();
    see_other(&format!("{target}?{encoded}"))
}

/// A message of the API's as a sentence, its `quoted` names (extensions, commands, users) shown
/// as code rather than with their backticks.
pub(crate) fn message(text: &str) -> Markup {
    code_spans(&sentence(text))
}

/// `text` with the names it puts in backticks shown as code.
pub(crate) fn code_spans(text: &str) -> Markup {
    html! {
        @for (index, part) in text.split('`').enumerate() {
            @if index % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// The class (colour) of a consumer's state or of a publication's impact on one, the API's
/// words: up to date or not affected is fine, outdated or not published is quiet, incompatible
/// is bad, anything else (possibly incompatible) a warning.
pub(crate) fn state_class(state: &str) -> &'static str {
    match state {
        "up to date" | "not affected" => "ok",
        "incompatible" => "bad",
        "outdated" | "not published" => "muted",
        _ => "warn",
    }
}

/// A redirect after a form was handled (303: the browser reads the target with GET).
pub(crate) fn see_other(target: &str) -> Response {
    Redirect::to(target).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anti_forgery_token_depends_on_the_session_and_does_not_show_it() {
        let one = csrf_token("xif_one");
        assert_eq!(one, csrf_token("xif_one"));
        assert_ne!(one, csrf_token("xif_two"));
        assert!(!one.contains("one"));
        assert_eq!(one.len(), 64);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; xif_session=xif_abc ; b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("xif_abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 1), "5.0 MiB");
    }
}
