//! The server's one error type, which becomes one JSON envelope. Internal failures are logged
//! with their detail and answered with a generic message: clients never see internals.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use xif_api::{ErrorBody, ErrorCode, ErrorDetail};

use crate::store::StoreError;

/// An error answered to a client: a code from the API's one table, which also gives the HTTP
/// status, and a message written for the user.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
    problems: Vec<String>,
}

impl ApiError {
    /// An error with a stable `code` and a `message` a person can act on.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None, problems: Vec::new() }
    }

    /// An error the client may retry after `wait` (at least a second, rounded up), which is sent
    /// as `Retry-After`; `message` is followed by when.
    pub fn retry_after(code: ErrorCode, message: &str, wait: std::time::Duration) -> Self {
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        let unit = if seconds == 1 { "second" } else { "seconds" };
        Self {
            code,
            message: format!("{message}; try again in {seconds} {unit}"),
            retry_after: Some(seconds),
            problems: Vec::new(),
        }
    }

    /// The same error listing `problems`, each for people, in the answer's `problems`.
    pub fn with_problems(mut self, problems: Vec<String>) -> Self {
        self.problems = problems;
        self
    }

    /// 403 for a missing permission, naming it.
    pub fn missing_permission(user: &str, permission: &str, action: &str) -> Self {
        Self::new(
            ErrorCode::MissingPermission,
            format!(
                "{action} needs the `{permission}` permission, which user `{user}` does not have; \
                 an administrator can grant it with `xif admin user grant {user} {permission}`"
            ),
        )
    }

    /// 408: the request's body did not arrive within `limit`.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorCode::RequestTimeout,
            format!("the request's body did not arrive within {} seconds; send it again", limit.as_secs()),
        )
    }

    /// 500: logs `error` and answers without it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(ErrorCode::Internal, "the server failed to handle the request; the failure is in its log")
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status its code answers with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problems it lists, each for people.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The seconds a client is told to wait before it tries again, if any.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_storage_full() {
            tracing::error!(%error, "storage full");
            return ApiError::new(
                ErrorCode::StorageFull,
                "the server has no space left to store this; nothing was kept: try again once an operator has freed space",
            );
        }
        if error.is_unavailable() {
            tracing::error!(%error, "storage unavailable");
            return ApiError::retry_after(
                ErrorCode::StorageUnavailable,
                "the server cannot reach its storage now; nothing was changed",
                std::time::Duration::from_secs(5),
            );
        }
        ApiError::internal(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::InvalidRequest,
        };
        ApiError::new(code, format!("the request body is not what this endpoint takes: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    /// A name or number in the path that is not valid is the client's error, said in words of
    /// the API (the names' own rules, `xif_server::names`); a path the router matched but the
    /// handler cannot read is the server's.
    fn from(rejection: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        let PathRejection::FailedToDeserializePathParams(failed) = &rejection else {
            return ApiError::internal(rejection.body_text());
        };
        let message = match failed.kind() {
            // A name type's own message, which says the rule.
            ErrorKind::DeserializeError { message, .. } | ErrorKind::Message(message) => message.clone(),
            ErrorKind::ParseErrorAtKey { value, expected_type, .. }
            | ErrorKind::ParseErrorAtIndex { value, expected_type, .. }
            | ErrorKind::ParseError { value, expected_type } => {
                let what = match *expected_type {
                    "i64" => "a whole number from -9223372036854775808 to 9223372036854775807",
                    other => other,
                };
                let value: String = value.chars().take(64).collect();
                format!("`{value}` in the path is not {what}")
            }
            ErrorKind::InvalidUtf8InPathParam { key } => format!("`{key}` in the path is not UTF-8"),
            _ => return ApiError::internal(rejection.body_text()),
        };
        ApiError::new(ErrorCode::InvalidPath, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, problems: self.problems } };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s, and whose body must arrive within the
/// server's body timeout: a client that sends its body slowly, or not at all, does not hold a
/// connection for longer.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<crate::AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &crate::AppState) -> Result<Self, ApiError> {
        let limit = state.limits.connections.body_timeout;
        match tokio::time::timeout(limit, Json::<T>::from_request(request, state)).await {
            Ok(Ok(Json(value))) => Ok(ApiJson(value)),
            Ok(Err(rejection)) => Err(rejection.into()),
            Err(_) => Err(ApiError::request_timeout(limit)),
        }
    }
}

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);
