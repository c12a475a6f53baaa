//! Service Center: PLACEHOLDER (filled in by its part of step 12).

use axum::Router;

use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
