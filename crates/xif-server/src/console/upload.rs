//! Service Center: Upload & Publish an Extension.
//!
//! A `multipart/form-data` form whose anti-forgery token comes first, so that it is checked
//! before the file is read; the file part is streamed into the API's own upload
//! ([`crate::handlers::receive_upload`]: the same limits, checks and messages), the extension's
//! name taken from the archive. Once stored, the browser goes on to the extension's publish
//! page for that version. Without scripts the form posts as any form; with them, `upload.js`
//! sends the same form with a progress bar.

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::{Nav, Session};
use crate::AppState;
use crate::error::ApiError;
use crate::handlers::{Incoming, may_upload, receive_upload};

/// `GET /console/upload` (the form) and `POST /console/upload` (the upload).
pub(super) fn routes() -> Router<AppState> {
    // The upload's size is limited by the API's own limit, checked as the file streams in.
    Router::new().route("/upload", get(form).post(upload).layer(DefaultBodyLimit::disable()))
}

/// What the form shows next to its file input after a refusal.
#[derive(Default)]
struct Refusal {
    /// The refusal, as a sentence.
    message: String,
    /// The definition's or archive's problems, one a line.
    problems: Vec<String>,
    /// A version this archive already is: a link to publish it.
    existing: Option<(String, i64)>,
}

/// Where a version is published from (the extension's publish page).
fn publish_url(extension: &str, number: i64) -> String {
    format!("/console/extensions/{extension}/publish?version={number}")
}

/// The upload page: the form, and `refusal` next to its file input.
fn page(state: &AppState, session: &Session, status: StatusCode, refusal: Option<&Refusal>) -> Response {
    let limit = super::size(i64::try_from(state.limits.max_upload).unwrap_or(i64::MAX));
    let signed = !state.limits.trusted_keys.is_empty();
    let described = if refusal.is_some() { "file-help file-error" } else { "file-help" };
    let content = html! {
        h1 { "Upload & Publish an Extension" }
        p { "Choose an extension's " code { ".xif" } " archive (as " code { "xif save" } " makes it). It is checked as "
            code { "xif publish" } " checks it; once stored, you see what publishing it changes before you confirm." }
        @if signed {
            div class="notice" { p { "This server accepts only archives signed by a trusted key: publish signed archives with "
                code { "xif publish --sign KEY" } "." } }
        }
        form id="upload-form" class="stack upload" method="post" action="/console/upload" enctype="multipart/form-data" {
            (session.csrf_input())
            div class="field" {
                label for="file" { "Extension archive (.xif)" }
                input id="file" name="file" type="file" accept=".xif" required aria-describedby=(described)
                    aria-invalid=[refusal.map(|_| "true")];
                p id="file-help" class="muted" { "At most " (limit) "." }
                @if let Some(refusal) = refusal {
                    div class="field-error" id="file-error" role="alert" {
                        p { (refusal.message) }
                        @if !refusal.problems.is_empty() {
                            ul class="problems" { @for problem in &refusal.problems { li { code { (problem) } } } }
                        }
                        @if let Some((extension, number)) = &refusal.existing {
                            p { a href=(publish_url(extension, *number)) { "Publish version " (number) " of " (extension) } }
                        }
                    }
                }
            }
            div id="upload-progress" class="progress" hidden {
                label for="upload-bar" { "Sending the archive" }
                progress id="upload-bar" max="100" value="0" { "0%" }
                p id="upload-figures" aria-live="polite" {}
            }
            button type="submit" class="primary" { "Upload" }
        }
    };
    let mut response = super::render("Upload & Publish an Extension", session, Nav::Upload, content);
    *response.status_mut() = status;
    response
}

/// `GET /console/upload`: the form, for users who may upload (403 for others).
async fn form(State(state): State<AppState>, session: Session) -> Response {
    if let Err(error) = may_upload(&session.user) {
        return super::failure(Some(&session), &error);
    }
    page(&state, &session, StatusCode::OK, None)
}

/// A refusal as the form shows it, with the API's status.
fn refused(state: &AppState, session: &Session, error: &ApiError) -> Response {
    let refusal =
        Refusal { message: super::sentence(error.message()), problems: error.problems().to_vec(), existing: None };
    page(state, session, error.status(), Some(&refusal))
}

/// `POST /console/upload`: checks the anti-forgery token (the first field), then streams the
/// file (the second) into the API's upload; goes on to the publish page of the version stored.
async fn upload(
    State(state): State<AppState>,
    session: Session,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Err(error) = may_upload(&session.user) {
        return super::failure(Some(&session), &error);
    }
    let not_a_form = |detail: String| {
        ApiError::new(
            xif_api::ErrorCode::InvalidRequest,
            format!("the upload is not the form this page sends ({detail}); reload the page and send it again"),
        )
    };
    let mut multipart = match multipart {
        Ok(multipart) => multipart,
        Err(rejection) => return super::failure(Some(&session), &not_a_form(rejection.body_text())),
    };
    // The anti-forgery token first, before any byte of the file is read.
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("_csrf") => field.text().await.ok(),
        _ => None,
    };
    if !token.is_some_and(|token| session.csrf_matches(&token)) {
        tracing::warn!(user = %session.user.name, "console upload refused: no valid anti-forgery token first");
        return super::failure(
            Some(&session),
            &ApiError::new(
                xif_api::ErrorCode::ForgedRequest,
                "this form was not sent from a page of this Service Center session (its anti-forgery token is \
                 missing or wrong, or not its first field); reload the page and send it again",
            ),
        );
    }
    let field = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("file") => field,
        Ok(_) => return super::failure(Some(&session), &not_a_form("it has no file".to_owned())),
        Err(error) => return super::failure(Some(&session), &not_a_form(error.body_text())),
    };
    if field.file_name().is_none_or(str::is_empty) {
        let error = ApiError::new(xif_api::ErrorCode::InvalidRequest, "choose a .xif file to upload");
        return refused(&state, &session, &error);
    }
    let no_headers = HeaderMap::new();
    let incoming = Incoming { expected_name: None, announced: None, declared_length: None, headers: &no_headers };
    match receive_upload(&state, &session.user, incoming, field).await {
        Ok((_, response)) if response.created => {
            super::see_other(&publish_url(&response.version.extension, response.version.number))
        }
        Ok((_, response)) => {
            let version = response.version;
            let refusal = Refusal {
                message: format!(
                    "This archive was already uploaded as version {} of {}, by {}: nothing new was stored.",
                    version.number, version.extension, version.uploaded_by
                ),
                problems: Vec::new(),
                existing: Some((version.extension, version.number)),
            };
            page(&state, &session, StatusCode::CONFLICT, Some(&refusal))
        }
        Err(error) if error.status().is_server_error() => super::failure(Some(&session), &error),
        Err(error) => refused(&state, &session, &error),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_publish_page_of_a_version_is_where_an_upload_goes_on() {
        assert_eq!(super::publish_url("orders", 3), "/console/extensions/orders/publish?version=3");
    }
}
