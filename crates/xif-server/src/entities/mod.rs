//! Entities at runtime (step 11): the server's database connections, the mapping of each
//! published extension's logical databases onto them, the checks of a mapping against the
//! database, and the record operations modules use.
//!
//! Shared shape, so that the parts can be built apart:
//! - [`Entities::database`] gives the pool of the connection a logical database of an
//!   extension is mapped to, or says why not ([`EntityError::MissingConfiguration`],
//!   [`EntityError::Unavailable`]). Record operations and the SDK's database access both go
//!   through it.
//! - [`Database`] is one pool of one of the three kinds; SQL is written per dialect.

pub mod api;
pub mod filter;
pub mod records;
pub mod sql;

use std::fmt;

/// A pool of connections to one database connection of the server.
#[derive(Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    MySql(sqlx::MySqlPool),
    /// SQLite (a file the server opens).
    Sqlite(sqlx::SqlitePool),
}

impl Database {
    /// The dialect's name, as in messages: `PostgreSQL`, `MySQL`, `SQLite`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "PostgreSQL",
            Database::MySql(_) => "MySQL",
            Database::Sqlite(_) => "SQLite",
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may hold a password.
        write!(formatter, "Database({})", self.kind())
    }
}

/// Why an entity's database cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntityError {
    /// The logical database of a published extension is mapped to no connection.
    #[error(
        "extension `{extension}` is missing configuration: its logical database `{logical}` is mapped to no database \
         connection; an administrator maps it with `xif admin connection map {extension} {logical} CONNECTION`"
    )]
    MissingConfiguration {
        /// The extension.
        extension: String,
        /// Its logical database.
        logical: String,
    },
    /// The extension has no logical database of that name.
    #[error("extension `{extension}` has no logical database `{logical}`")]
    UnknownDatabase {
        /// The extension.
        extension: String,
        /// The name asked for.
        logical: String,
    },
    /// The database did not answer; a message a person can act on, without the URL's secret.
    #[error("{0}")]
    Unavailable(String),
}

/// The server's database connections and the mappings of extensions' logical databases.
#[derive(Debug, Default)]
pub struct Entities {}

impl Entities {
    /// The pool of the connection `extension`'s logical database `logical` is mapped to.
    pub async fn database(&self, extension: &str, logical: &str) -> Result<Database, EntityError> {
        Err(EntityError::MissingConfiguration { extension: extension.to_owned(), logical: logical.to_owned() })
    }
}
