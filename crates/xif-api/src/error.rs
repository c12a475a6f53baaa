//! Every error code the API answers with, in one table: its stable name, its HTTP status and
//! what a command-line client makes of it. The server, the client, the 1-Click Publish and the
//! CLI all use this enum, so that nothing matches on strings and nothing drifts.

use serde::{Deserialize, Serialize};

/// What a client's exit code says of an error the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The server refused the request: a permission, a conflict, bad input, a token.
    Refused,
    /// The called action ran and failed: its own error, a crash, a time-out.
    CallFailed,
    /// The server cannot serve the request now (busy, or its storage out of reach): the same
    /// request may succeed later.
    Unavailable,
}

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal, $class:ident, $doc:literal;)*) => {
        /// A stable error code, as sent in [`ErrorDetail::code`](crate::ErrorDetail).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
            /// A code this client does not know: a newer server's.
            Unrecognised,
        }

        impl ErrorCode {
            /// Every code the server answers with.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as written on the wire.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unrecognised => "unrecognised",
                }
            }

            /// The HTTP status it is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                    ErrorCode::Unrecognised => 500,
                }
            }

            /// What it means for a client's exit code.
            pub const fn class(self) -> ErrorClass {
                match self {
                    $(ErrorCode::$variant => ErrorClass::$class,)*
                    ErrorCode::Unrecognised => ErrorClass::Refused,
                }
            }

            /// The code written `name`, or [`ErrorCode::Unrecognised`].
            pub fn parse(name: &str) -> ErrorCode {
                match name {
                    $($code => ErrorCode::$variant,)*
                    _ => ErrorCode::Unrecognised,
                }
            }
        }
    };
}

error_codes! {
    // Requests
    InvalidRequest = "invalid_request", 400, Refused, "The body is not what the endpoint takes.";
    InvalidPath = "invalid_path", 400, Refused, "A name or number in the path is not valid.";
    NoSuchEndpoint = "no_such_endpoint", 404, Refused, "There is no such endpoint.";
    ForgedRequest = "forged_request", 403, Refused, "A Service Center form came without its session's anti-forgery token (from another site, or a page of an ended session).";
    MethodNotAllowed = "method_not_allowed", 405, Refused, "The endpoint does not take this method; `Allow` lists those it takes.";
    RequestTimeout = "request_timeout", 408, Refused, "The request's body did not arrive in time, or came too slowly.";
    PayloadTooLarge = "payload_too_large", 413, Refused, "The request body is larger than the endpoint takes.";
    UnsupportedMediaType = "unsupported_media_type", 415, Refused, "The body is not of the content type the endpoint takes.";
    // Authentication
    Unauthenticated = "unauthenticated", 401, Refused, "The endpoint needs an API token and none came.";
    InvalidToken = "invalid_token", 401, Refused, "The token is unknown or was revoked.";
    TokenExpired = "token_expired", 401, Refused, "The token has expired.";
    InvalidCredentials = "invalid_credentials", 401, Refused, "Wrong user name or password.";
    TooManyAttempts = "too_many_attempts", 429, Refused, "Too many login attempts; retry after the `Retry-After` seconds.";
    ServerBusy = "server_busy", 503, Unavailable, "The server is too busy to take the request now; retry after the `Retry-After` seconds.";
    MissingPermission = "missing_permission", 403, Refused, "The user lacks a permission, which the message names.";
    AdministratorOnly = "administrator_only", 403, Refused, "Only administrators may do this.";
    OutOfScope = "out_of_scope", 403, Refused, "A module token may not do this: it may only call, and use the records of, the extensions it is scoped to, and declare its own module's dependencies; the message names the scope.";
    // Users and tokens
    InvalidUserName = "invalid_user_name", 400, Refused, "The user name does not follow the rules.";
    WeakPassword = "weak_password", 400, Refused, "The password is too short.";
    UnknownPermission = "unknown_permission", 400, Refused, "No permission or role has this name.";
    UserExists = "user_exists", 409, Refused, "A user of this name exists already.";
    UnknownUser = "unknown_user", 404, Refused, "There is no such user.";
    CannotRemoveSelf = "cannot_remove_self", 400, Refused, "An administrator cannot remove their own account.";
    UnknownToken = "unknown_token", 404, Refused, "The user has no such active token.";
    InvalidTokenLifetime = "invalid_token_lifetime", 400, Refused, "The token lifetime asked for is not within the server's bounds.";
    // Uploads
    MissingDigest = "missing_digest", 400, Refused, "The upload did not say its SHA-256.";
    InvalidDigest = "invalid_digest", 400, Refused, "The announced SHA-256 is not 64 hexadecimal digits.";
    DigestMismatch = "digest_mismatch", 400, Refused, "The bytes received do not have the announced SHA-256.";
    UploadTooLarge = "upload_too_large", 413, Refused, "The upload is larger than the server takes.";
    UploadInterrupted = "upload_interrupted", 400, Refused, "The upload ended before it was complete.";
    InvalidArchive = "invalid_archive", 422, Refused, "The upload is not a valid XIF.";
    InvalidExtension = "invalid_extension", 422, Refused, "The extension in the archive does not verify.";
    NameMismatch = "name_mismatch", 400, Refused, "The archive holds another extension than the path names.";
    SignatureRequired = "signature_required", 403, Refused, "The server takes only signed archives, and this one came without a signature.";
    InvalidSignature = "invalid_signature", 422, Refused, "The signature does not verify against the archive.";
    UntrustedSignature = "untrusted_signature", 403, Refused, "The archive is signed by a key the server does not trust.";
    StorageFull = "storage_full", 507, Refused, "The server has no space left to store the request; nothing was kept.";
    StorageUnavailable = "storage_unavailable", 503, Unavailable, "The server cannot reach its database or object store now; retry after the `Retry-After` seconds.";
    // Extensions, versions, publications
    UnknownExtension = "unknown_extension", 404, Refused, "No version of the extension was uploaded.";
    UnknownVersion = "unknown_version", 404, Refused, "The extension has no such version.";
    PublicationInProgress = "publication_in_progress", 409, Refused, "Another publication of the extension holds its lock.";
    StaleVersion = "stale_version", 409, Refused, "Another version is published than the one the request expected.";
    DeployFailed = "deploy_failed", 422, Refused, "The version did not start, so it was not published; the old one keeps serving.";
    NoLock = "no_lock", 404, Refused, "No publication lock is held on the extension.";
    UnknownNode = "unknown_node", 404, Refused, "No live node of the farm has that name.";
    IsolationUnavailable = "isolation_unavailable", 503, Refused, "This server's kernel cannot isolate extensions, and it may not run them unisolated.";
    // Records of entities
    UnknownEntity = "unknown_entity", 404, Refused, "The published version of the extension has no such entity.";
    RecordNotFound = "record_not_found", 404, Refused, "The entity has no record with that identifier.";
    RecordConflict = "record_conflict", 409, Refused, "Another record holds a value that must be unique; the message names the attribute when the database says which.";
    InvalidFilter = "invalid_filter", 400, Refused, "A filter, sort key, limit or offset of a list of records is not one the entity takes; the message names the query parameter.";
    MissingConfiguration = "missing_configuration", 409, Refused, "A logical database of the extension is mapped to no database connection; the message names it and the `xif admin connection map` command.";
    InvalidStoredValue = "invalid_stored_value", 502, Refused, "The entity's database holds a value its attribute's type cannot take (text in an Integer column, a number too large, NaN as a Decimal); the message names the record and the attribute to correct.";
    DatabaseUnavailable = "database_unavailable", 503, Unavailable, "The entity's database cannot be reached now; the message names it; retry after the `Retry-After` seconds.";
    // Calls
    ExtensionNotRunning = "extension_not_running", 404, Refused, "No version of the extension is published and running.";
    ExtensionFailed = "extension_failed", 503, CallFailed, "The extension crashed repeatedly and was stopped.";
    UnknownAction = "unknown_action", 404, Refused, "The extension has no such action.";
    InvalidInput = "invalid_input", 400, Refused, "The inputs do not fit the action.";
    ActionFailed = "action_failed", 422, CallFailed, "The action returned its own error.";
    ActionTimeout = "action_timeout", 504, CallFailed, "The action did not finish within its time limit.";
    ExtensionCrashed = "extension_crashed", 502, CallFailed, "The extension's process ended during the call.";
    ExtensionProtocolError = "extension_protocol_error", 502, CallFailed, "The extension broke the protocol and was stopped.";
    // Database connections and mappings
    UnknownConnection = "unknown_connection", 404, Refused, "There is no database connection of that name.";
    ConnectionExists = "connection_exists", 409, Refused, "A database connection of that name exists already.";
    InvalidConnection = "invalid_connection", 400, Refused, "The connection's name or URL is not one the server takes; the message says why.";
    ConnectionInUse = "connection_in_use", 409, Refused, "Logical databases are mapped to the connection; the message names them.";
    SecretsKeyMissing = "secrets_key_missing", 409, Refused, "The farm was started without a secrets key (--secrets-key), so it cannot store a connection's secret.";
    UnknownLogicalDatabase = "unknown_logical_database", 404, Refused, "The published version of the extension has no entity in that logical database.";
    MappingMismatch = "mapping_mismatch", 422, Refused, "The database does not fit the entities; `problems` lists each mismatch, located in the definition.";
    // The server
    Internal = "internal", 500, Refused, "The server failed; the detail is in its log, never in the answer.";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.name()), "`{code}` twice");
            assert_eq!(ErrorCode::parse(code.name()), *code);
            assert!((400..600).contains(&code.status()), "`{code}`: {}", code.status());
        }
        assert_eq!(ErrorCode::parse("from_a_newer_server"), ErrorCode::Unrecognised);
    }
}
