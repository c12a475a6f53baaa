//! Service Center: the other tabs of an extension's page: consumers, entities and their
//! mapping, the running version's log (following live), the integration log, and the API
//! description. PLACEHOLDER (filled in by its part of step 12).

use axum::Router;

use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
