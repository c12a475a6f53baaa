//! Passwords (argon2), API tokens (random, stored as their SHA-256), and the extractor that
//! turns a bearer token into the calling user.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::UserRecord;
use xif_api::ErrorCode;

/// The argon2 hash of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| ApiError::internal(format!("no randomness: {error}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(ApiError::internal)
}

/// Whether `password` matches `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A new secret: `prefix` and 32 random bytes in hex.
pub fn random_secret(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ApiError::internal(format!("no randomness: {error}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// How a token is stored: its SHA-256, so that the database never holds a usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The user whose token came with the request.
pub struct CurrentUser(pub UserRecord);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let Some(token) = header.and_then(|value| value.strip_prefix("Bearer ")).map(str::trim) else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "this endpoint needs an API token: log in with `POST /api/v1/login` and send `Authorization: Bearer TOKEN`",
            ));
        };
        let hash = token_hash(token);
        if let Some(user) = state.tokens.get(&hash) {
            return Ok(CurrentUser(user));
        }
        match state.metadata.token_user(&hash).await? {
            Some(user) => {
                state.tokens.put(hash, user.clone());
                Ok(CurrentUser(user))
            }
            None => Err(ApiError::new(
                ErrorCode::InvalidToken,
                "the API token is unknown or was revoked; log in again for a new one",
            )),
        }
    }
}

impl CurrentUser {
    /// Refuses anyone but administrators.
    pub fn administrator(&self) -> Result<&UserRecord, ApiError> {
        if self.0.administrator {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                ErrorCode::AdministratorOnly,
                format!("managing users needs an administrator, and `{}` is not one", self.0.name),
            ))
        }
    }
}

/// Recently seen tokens and their users, so that each request does not query the database.
/// Entries live a few seconds; revoking a token, removing a user or changing permissions clears
/// the whole cache, so those take effect at once.
#[derive(Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (UserRecord, std::time::Instant)>>,
}

const TOKEN_CACHE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<UserRecord> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(hash).filter(|(_, at)| at.elapsed() < TOKEN_CACHE_LIFETIME).map(|(user, _)| user.clone())
    }

    fn put(&self, hash: String, user: UserRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(hash, (user, std::time::Instant::now()));
    }

    /// Forgets every token: after a revocation or a change to a user.
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
