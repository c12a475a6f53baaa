//! Service Center's administration: users and their permissions, the user's own tokens,
//! database connections and their mappings, the nodes of the farm, and publication locks.
//!
//! Every page calls the API's handlers with the session's user, so it checks and says exactly
//! what the API does: pages for administrators only answer the API's 403 to everyone else, on
//! GET and POST alike (the navigation hides them too).

mod connections;
mod farm;
mod tokens;
mod users;

use axum::Router;
use axum::response::Response;

use super::Session;
use crate::AppState;
use crate::error::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new().merge(users::routes()).merge(tokens::routes()).merge(connections::routes()).merge(farm::routes())
}

/// The API's 403 page when `session`'s user is not an administrator, checked before anything
/// else so that a user who is not one learns nothing more (not even that a name is invalid);
/// `None` for an administrator.
fn refused(session: &Session, what: &str) -> Option<Response> {
    session.current_user().administrator_for(what).err().map(|error| super::failure(Some(session), &error))
}

/// The error page of `error` for `session`.
fn fail(session: &Session, error: &ApiError) -> Response {
    super::failure(Some(session), error)
}

/// `message` (the API's, in lower case) as a sentence ending with a full stop.
fn said(message: &str) -> String {
    let sentence = super::sentence(message.trim_end());
    if sentence.ends_with(['.', '!', '?', ')']) { sentence } else { sentence + "." }
}

#[cfg(test)]
mod tests {
    use super::said;

    #[test]
    fn the_apis_messages_are_said_as_sentences() {
        assert_eq!(said("passwords have at least 12 characters"), "Passwords have at least 12 characters.");
        assert_eq!(said("done already."), "Done already.");
        assert_eq!(said("see `xif admin` (its help)"), "See `xif admin` (its help)");
    }
}
