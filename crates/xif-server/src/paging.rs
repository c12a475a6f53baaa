//! Pages of the lists (extensions, an extension's versions and publications, users): the
//! `limit` and `after` query parameters, read and checked before the handler runs ([`Paging`]),
//! and the answer ([`Listed`]): a JSON array, with a `Link: <…?after=X&limit=N>; rel="next"`
//! header when another page follows (RFC 8288, as GitHub's API does), so that the body keeps the
//! shape it had before lists were paged.

use axum::Json;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use xif_api::{ErrorCode, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};

use crate::error::ApiError;
use crate::store::Page;

/// What a list is ordered by, which is what its cursor (`after`) is.
pub trait Cursor: Sized + Clone + Send {
    /// What the cursor is, in words, for the message that refuses one.
    const WHAT: &'static str;
    /// The cursor in `text`; `None` when it is not one.
    fn parse(text: &str) -> Option<Self>;
}

impl Cursor for String {
    const WHAT: &'static str = "the last name of the previous page";

    /// A name's characters (those of user names, which include those of extension names), so
    /// that what reaches the database is only ever a possible name.
    fn parse(text: &str) -> Option<Self> {
        (!text.is_empty()
            && text.len() <= crate::names::MAX_USER_NAME
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')))
        .then(|| text.to_owned())
    }
}

impl Cursor for i64 {
    const WHAT: &'static str = "the last number of the previous page, a whole number";

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().filter(|number: &i64| *number >= 0)
    }
}

/// The page a request asks for: `after` (a cursor, see [`Cursor`]) and `limit` (1 to
/// [`PAGE_LIMIT_MAX`], [`PAGE_LIMIT_DEFAULT`] when not given). Other query parameters are
/// ignored; a bad `limit` or `after`, or either given twice, is refused with `400
/// invalid_request` saying what is taken.
#[derive(Debug, Clone)]
pub struct Paging<K> {
    after: Option<K>,
    limit: u32,
    /// The request's path, from the root (the API's prefix included), for the next page's URL.
    path: String,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

impl<K: Cursor, S: Send + Sync> FromRequestParts<S> for Paging<K> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // The nested router sees its own part of the path; the link names the whole of it.
        let path = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.path(), |uri| uri.0.path());
        let mut paging = Paging { after: None, limit: PAGE_LIMIT_DEFAULT, path: path.to_owned() };
        let (mut limit_seen, mut after_seen) = (false, false);
        let query = parts.uri.query().unwrap_or_default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let seen = match &*key {
                "limit" => &mut limit_seen,
                "after" => &mut after_seen,
                _ => continue,
            };
            if std::mem::replace(seen, true) {
                return Err(invalid(format!("`{key}` is given twice; give it once")));
            }
            if key == "limit" {
                paging.limit =
                    value.parse().ok().filter(|limit| (1..=PAGE_LIMIT_MAX).contains(limit)).ok_or_else(|| {
                        invalid(format!(
                            "`limit` is a number from 1 to {PAGE_LIMIT_MAX} ({PAGE_LIMIT_DEFAULT} when not given), \
                             not `{}`",
                            shown(&value)
                        ))
                    })?;
            } else {
                paging.after = Some(K::parse(&value).ok_or_else(|| {
                    invalid(format!("`after` is {}, not `{}`; follow the `Link` header", K::WHAT, shown(&value)))
                })?);
            }
        }
        Ok(paging)
    }
}

/// The `sha256` query parameter of an extension's versions: only the version whose archive has
/// this SHA-256 (hex, in either case), found by index, so that a client learns whether an archive was
/// uploaded without reading every version. `None` when not given.
#[derive(Debug, Clone)]
pub struct DigestFilter(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for DigestFilter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut found = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key != "sha256" {
                continue;
            }
            if found.is_some() {
                return Err(invalid("`sha256` is given twice; give it once".into()));
            }
            if value.len() != 64 || !value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "`sha256` is a SHA-256 in 64 hexadecimal digits, not `{}`",
                    shown(&value)
                )));
            }
            // Stored in lower case, as the server computes them.
            found = Some(value.to_ascii_lowercase());
        }
        Ok(DigestFilter(found))
    }
}

/// `value` as quoted in a message: cut, so that a long parameter does not make a long answer.
fn shown(value: &str) -> String {
    const SHOWN: usize = 32;
    if value.chars().count() > SHOWN {
        format!("{}…", value.chars().take(SHOWN).collect::<String>())
    } else {
        value.into()
    }
}

impl<K: Clone> Paging<K> {
    /// The page after `after` (the first when `None`) of `limit` items, asked for by the
    /// server itself (Service Center reads every page of a list through the API's handlers).
    pub(crate) fn new(after: Option<K>, limit: u32) -> Self {
        Paging { after, limit, path: String::new() }
    }

    /// The page to read from the store: one item more than the limit, which tells whether
    /// another page follows.
    pub fn page(&self) -> Page<K> {
        Page { after: self.after.clone(), limit: self.limit + 1 }
    }

    /// The answer with `items` (read with [`Paging::page`]): the first `limit` of them, each
    /// shown by `show`, and a link to the next page, after the cursor of the last one shown,
    /// when there was one item more.
    pub fn answer<R, T: Serialize>(
        &self,
        mut items: Vec<R>,
        cursor: impl Fn(&R) -> String,
        show: impl FnMut(R) -> T,
    ) -> Listed<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("after", &cursor(last))
                    .append_pair("limit", &self.limit.to_string())
                    .finish();
                format!("<{}?{query}>; rel=\"next\"", self.path)
            })
        } else {
            None
        };
        Listed { items: items.into_iter().map(show).collect(), next }
    }
}

/// A page of a list, as answered: a JSON array, and the `Link` header to the next page when
/// there is one.
#[derive(Debug)]
pub struct Listed<T> {
    /// The items of the page.
    pub items: Vec<T>,
    /// The `Link` header's value, when another page follows.
    next: Option<String>,
}

impl<T> Listed<T> {
    /// Whether another page follows (the console links to it).
    pub(crate) fn more(&self) -> bool {
        self.next.is_some()
    }

    /// The cursor (`after`) of the next page, when another page follows.
    pub(crate) fn next_after(&self) -> Option<String> {
        let link = self.next.as_deref()?;
        let query = link.split_once('?')?.1.split_once('>')?.0;
        form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "after").map(|(_, value)| value.into_owned())
    }
}

impl<T: Serialize> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        match self.next {
            Some(link) => ([(header::LINK, link)], Json(self.items)).into_response(),
            None => Json(self.items).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pages_cursor_is_read_back_from_its_link() {
        let paging = Paging::<i64> { after: None, limit: 2, path: "/api/v1/extensions/Echo/versions".into() };
        let listed = paging.answer(vec![1_i64, 2, 3], i64::to_string, |number| number);
        assert_eq!(listed.items, [1, 2]);
        assert_eq!(listed.next_after().as_deref(), Some("2"));
        let last = paging.answer(vec![3_i64], i64::to_string, |number| number);
        assert_eq!(last.next_after(), None);
        let names =
            Paging::<String>::new(None, 1).answer(vec!["a b".to_owned(), "c".to_owned()], Clone::clone, |name| name);
        assert_eq!(names.next_after().as_deref(), Some("a b"));
    }
}
