//! Database connections: what a URL names (PostgreSQL, MySQL/MariaDB, an SQLite file), how it is
//! shown (redacted), the pools built on it, the `SELECT 1` test, and the administrators' API
//! (`/connections`).
//!
//! A URL's secret never leaves this module but to sqlx: it is stored sealed (see
//! [`super::secrets`]), shown redacted, and scrubbed from any error text before that is shown
//! or logged.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use xif_api::{ConnectionKind, ErrorCode};

use super::Database;
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::store::ConnectionRecord;

/// Connections each pool keeps at most.
pub const MAX_CONNECTIONS: u32 = 10;

/// How long connecting, or waiting for a pooled connection, may take before the database counts
/// as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A URL read: its kind and what sqlx is given.
#[derive(Debug, Clone)]
pub struct Target {
    /// What it reaches.
    pub kind: ConnectionKind,
    /// The URL as given, for sqlx (`mariadb://` as `mysql://`).
    url: String,
    /// For SQLite, the file.
    path: Option<PathBuf>,
}

impl Target {
    /// Reads `url`, checking what can be checked without connecting: the scheme, the syntax,
    /// and for SQLite that the file exists, is a file, and is not in the server's `data_dir`.
    pub fn parse(url: &str, data_dir: &Path) -> Result<Self, String> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        let example = "give `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `mysql://USER:PASSWORD@HOST:PORT/DATABASE` \
                       (or `mariadb://…`), or `sqlite:///ABSOLUTE/PATH` of an existing file";
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => {
                known_parameters(url, POSTGRES_PARAMETERS, "PostgreSQL")?;
                sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(|_| format!("`{}` is not a PostgreSQL URL sqlx can read; {example}", redact(url)))?;
                Ok(Self { kind: ConnectionKind::Postgres, url: url.to_owned(), path: None })
            }
            Some("mysql" | "mariadb") => {
                let url = match url.split_once("://") {
                    Some((_, rest)) => format!("mysql://{rest}"),
                    None => url.to_owned(),
                };
                known_parameters(&url, MYSQL_PARAMETERS, "MySQL")?;
                sqlx::mysql::MySqlConnectOptions::from_str(&url)
                    .map_err(|_| format!("`{}` is not a MySQL URL sqlx can read; {example}", redact(&url)))?;
                Ok(Self { kind: ConnectionKind::Mysql, url, path: None })
            }
            Some("sqlite") => {
                let path = sqlite_path(url, data_dir)?;
                Ok(Self { kind: ConnectionKind::Sqlite, url: url.to_owned(), path: Some(path) })
            }
            _ => {
                // A bare path is most likely an SQLite file: say how to write it.
                let hint = if url.starts_with('/') {
                    format!(" (for that SQLite file: `sqlite://{url}`)")
                } else {
                    String::new()
                };
                Err(format!("`{}` is not a database URL xif can use{hint}; {example}", shown(url)))
            }
        }
    }

    /// The kind as stored.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind)
    }

    /// Connects a pool: one connection made first, alone, whose failure says why (refused,
    /// authentication, unknown database: a pool's would only say that it timed out, sqlx
    /// retrying until then), within [`TIMEOUT`]; the pool then connects as it needs.
    ///
    /// sqlx's statement logging is off on every pool: no SQL text nor value of an extension's
    /// data reaches the server's log.
    pub async fn connect(&self, data_dir: &Path) -> Result<Database, String> {
        self.connect_with(data_dir, false).await
    }

    /// Like [`Target::connect`]; when `sandboxed`, a pool for an extension's own SQL, with the
    /// guards of [`super::sandbox`] (a small pool, database-side time limits, SQLite's
    /// authorizer, connections reset on release).
    pub async fn connect_with(&self, data_dir: &Path, sandboxed: bool) -> Result<Database, String> {
        use sqlx::{ConnectOptions as _, Connection as _};
        let most = if sandboxed { super::sandbox::MAX_CONNECTIONS } else { MAX_CONNECTIONS };
        let connecting = async {
            match self.kind {
                ConnectionKind::Postgres => {
                    let mut options = sqlx::postgres::PgConnectOptions::from_str(&self.url)
                        .map_err(|error| error.to_string())?
                        .disable_statement_logging();
                    if sandboxed {
                        let limit = super::sandbox::QUERY_DEADLINE.as_millis().to_string();
                        options = options.options([("statement_timeout", limit.as_str())]);
                    }
                    let first =
                        sqlx::PgConnection::connect_with(&options).await.map_err(|error| self.describe(&error))?;
                    first.close().await.ok();
                    let mut pool = sqlx::postgres::PgPoolOptions::new().max_connections(most).acquire_timeout(TIMEOUT);
                    if sandboxed {
                        pool = pool.after_release(|connection, _| Box::pin(super::sandbox::reset_postgres(connection)));
                    }
                    Ok(Database::Postgres(pool.connect_lazy_with(options)))
                }
                ConnectionKind::Mysql => {
                    let options = sqlx::mysql::MySqlConnectOptions::from_str(&self.url)
                        .map_err(|error| error.to_string())?
                        .disable_statement_logging();
                    let first =
                        sqlx::MySqlConnection::connect_with(&options).await.map_err(|error| self.describe(&error))?;
                    first.close().await.ok();
                    let mut pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(most).acquire_timeout(TIMEOUT);
                    if sandboxed {
                        pool = pool
                            .after_connect(|connection, _| Box::pin(super::sandbox::limit_mysql(connection)))
                            .after_release(|connection, _| Box::pin(super::sandbox::reset_mysql(connection)));
                    }
                    Ok(Database::MySql(pool.connect_lazy_with(options)))
                }
                ConnectionKind::Sqlite => {
                    // Checked again: the file may have gone, or become a link into the data
                    // directory, since it was added.
                    let path = sqlite_path(&self.url, data_dir)?;
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(false)
                        .busy_timeout(TIMEOUT)
                        .foreign_keys(true)
                        .disable_statement_logging();
                    let first =
                        sqlx::SqliteConnection::connect_with(&options).await.map_err(|error| self.describe(&error))?;
                    first.close().await.ok();
                    let mut pool =
                        sqlx::sqlite::SqlitePoolOptions::new().max_connections(most).acquire_timeout(TIMEOUT);
                    if sandboxed {
                        pool = pool.after_connect(|connection, _| Box::pin(super::sandbox::guard_sqlite(connection)));
                    }
                    Ok(Database::Sqlite(pool.connect_lazy_with(options)))
                }
            }
        };
        match tokio::time::timeout(TIMEOUT, connecting).await {
            Ok(result) => result,
            Err(_) => Err(format!("{} did not answer within {} seconds", self.place(), TIMEOUT.as_secs())),
        }
    }

    /// Where it points, for messages: `PostgreSQL at HOST:PORT`, `the SQLite file PATH`.
    pub fn place(&self) -> String {
        if let Some(path) = &self.path {
            return format!("the SQLite file `{}`", path.display());
        }
        let parsed = url::Url::parse(&self.url).ok();
        let host =
            parsed.as_ref().and_then(|url| url.host_str().map(str::to_owned)).unwrap_or_else(|| "localhost".into());
        let default = if self.kind == ConnectionKind::Postgres { 5432 } else { 3306 };
        let port = parsed.as_ref().and_then(url::Url::port).unwrap_or(default);
        format!("{} at {host}:{port}", self.kind.label())
    }

    fn user(&self) -> String {
        url::Url::parse(&self.url).map(|url| url.username().to_owned()).unwrap_or_default()
    }

    fn database(&self) -> String {
        url::Url::parse(&self.url).map(|url| url.path().trim_start_matches('/').to_owned()).unwrap_or_default()
    }

    /// A connection failure in plain words (refused, authentication failed, unknown database),
    /// without the URL's secret.
    pub fn describe(&self, error: &sqlx::Error) -> String {
        let place = self.place();
        let said = match error {
            sqlx::Error::Database(database) => {
                // MySQL's error number when it is MySQL (its SQLSTATE is too coarse), else the
                // SQLSTATE.
                let code = match database.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    Some(mysql) => mysql.number().to_string(),
                    None => database.code().map(|code| code.into_owned()).unwrap_or_default(),
                };
                match code.as_str() {
                    // PostgreSQL's invalid password / authorization; MySQL's access denied.
                    "28P01" | "28000" | "1045" => Some(format!(
                        "{place} refused the user `{}`: authentication failed (wrong user name or password)",
                        self.user()
                    )),
                    // PostgreSQL's and MySQL's unknown database.
                    "3D000" | "1049" => Some(format!("{place} has no database `{}`", self.database())),
                    // MySQL's access denied to a database: it may not exist, or not be the user's.
                    "1044" => Some(format!(
                        "{place} refused the user `{}` the database `{}`: it does not exist, or the user may not use it",
                        self.user(),
                        self.database()
                    )),
                    _ => None,
                }
            }
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                Some(format!("{place} refused the connection: is the database running there?"))
            }
            sqlx::Error::PoolTimedOut => Some(format!("{place} did not answer within {} seconds", TIMEOUT.as_secs())),
            _ => None,
        };
        let text = said.unwrap_or_else(|| format!("{place}: {error}"));
        scrub(&text, &self.url)
    }

    /// Connects and runs `SELECT 1`, within [`TIMEOUT`]: what happened, in words.
    pub async fn test(&self, data_dir: &Path) -> (bool, String) {
        let started = Instant::now();
        let database = match self.connect(data_dir).await {
            Ok(database) => database,
            Err(message) => return (false, message),
        };
        let query = async {
            match &database {
                Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                Database::MySql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            }
        };
        let outcome = match tokio::time::timeout(TIMEOUT, query).await {
            Ok(Ok(())) => {
                (true, format!("{} answered `SELECT 1` in {} ms", self.place(), started.elapsed().as_millis()))
            }
            Ok(Err(error)) => (false, self.describe(&error)),
            Err(_) => {
                (false, format!("{} did not answer `SELECT 1` within {} seconds", self.place(), TIMEOUT.as_secs()))
            }
        };
        database.close().await;
        outcome
    }
}

/// The kind as stored in the database.
pub const fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Postgres => "postgres",
        ConnectionKind::Mysql => "mysql",
        ConnectionKind::Sqlite => "sqlite",
    }
}

/// The kind stored as `name`.
pub fn kind_of(name: &str) -> ConnectionKind {
    match name {
        "postgres" => ConnectionKind::Postgres,
        "mysql" => ConnectionKind::Mysql,
        _ => ConnectionKind::Sqlite,
    }
}

/// `url` as shown: its password (and any parameter named like one) replaced by `***`; an SQLite
/// URL, which holds no secret, as it is.
pub fn redact(url: &str) -> String {
    if url.to_ascii_lowercase().starts_with("sqlite://") && !url.contains('?') {
        return url.to_owned();
    }
    crate::postgres::redact(url)
}

/// `text` with the password of `url` (raw and percent-decoded) replaced by `***`: sqlx's own
/// messages do not quote URLs, but nothing is shown on that trust alone.
fn scrub(text: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else { return text.to_owned() };
    let mut text = text.to_owned();
    if let Some(password) = parsed.password().filter(|password| password.len() >= 2) {
        text = text.replace(password, "***");
        // The same percent-decoded, as sqlx uses it.
        let decoded =
            form_urlencoded::parse(format!("p={password}").as_bytes()).next().map(|(_, value)| value.into_owned());
        if let Some(decoded) = decoded.filter(|decoded| decoded.len() >= 2) {
            text = text.replace(&decoded, "***");
        }
    }
    text
}

/// The query parameters sqlx 0.8 reads from a PostgreSQL URL (`PgConnectOptions`'s URL parser);
/// `options[NAME]` too. sqlx logs any other one with its value ("ignoring unrecognized connect
/// parameter"), so [`known_parameters`] refuses them.
const POSTGRES_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The query parameters sqlx 0.8 reads from a MySQL URL (`MySqlConnectOptions`'s URL parser).
const MYSQL_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "charset",
    "collation",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "socket",
    "timezone",
    "time-zone",
];

/// Refuses a query parameter of `url` that sqlx does not read for `kind`, naming it (never its
/// value): sqlx would ignore it silently, or log it with its value, which may be a secret.
fn known_parameters(url: &str, known: &[&str], kind: &str) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(url) else { return Ok(()) };
    for (key, _) in parsed.query_pairs() {
        let taken = known.contains(&key.as_ref()) || (kind == "PostgreSQL" && key.starts_with("options["));
        if !taken {
            let key: String = key.chars().take(64).collect();
            return Err(format!(
                "the {kind} URL has a parameter `{key}` that is not one the server reads; remove it (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// `url` as an error shows it: as given when it cannot hold a password (no user part, no
/// `password` parameter), else redacted.
fn shown(url: &str) -> String {
    if url.contains('@') || url.to_ascii_lowercase().contains("password") { redact(url) } else { url.to_owned() }
}

/// The file an `sqlite://` URL names, checked: absolute, existing, a regular file, outside the
/// server's data directory (whose metadata an extension must never be pointed at), and not
/// another name (a hard link) of one of the data directory's own files.
fn sqlite_path(url: &str, data_dir: &Path) -> Result<PathBuf, String> {
    let rest = &url["sqlite://".len()..];
    if rest.contains('?') || rest.contains('#') {
        return Err("an `sqlite://` URL is a file's absolute path only, without parameters".into());
    }
    let path = Path::new(rest);
    if !path.is_absolute() {
        return Err(format!(
            "`{url}` is not an absolute path; write `sqlite:///ABSOLUTE/PATH` (three slashes for the root)"
        ));
    }
    let real = std::fs::canonicalize(path).map_err(|_| {
        format!(
            "the SQLite file `{}` does not exist (or cannot be reached); xif never creates one: create the \
             database first",
            path.display()
        )
    })?;
    if !real.is_file() {
        return Err(format!("`{}` is not a file", path.display()));
    }
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    if real.starts_with(&data) {
        return Err(format!(
            "the SQLite file `{}` is inside the server's data directory `{}`, which holds the server's own \
             metadata: an extension must not be pointed at it; keep the database elsewhere",
            path.display(),
            data.display()
        ));
    }
    if let Some(own) = same_file_in(&real, &data) {
        return Err(format!(
            "the SQLite file `{}` is another name (a hard link) of the server's own file `{own}` in its data \
             directory: an extension must not be pointed at it; keep the database elsewhere",
            path.display()
        ));
    }
    Ok(real)
}

/// The name of the file directly in `data` (`metadata.sqlite`, its `-wal` and `-shm`,
/// `secrets.key`, …) that `file` is the same file as (same device and inode), if any.
#[cfg(unix)]
fn same_file_in(file: &Path, data: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let wanted = std::fs::metadata(file).ok()?;
    let entries = std::fs::read_dir(data).ok()?;
    entries.flatten().find_map(|entry| {
        let metadata = entry.metadata().ok()?;
        (metadata.is_file() && metadata.dev() == wanted.dev() && metadata.ino() == wanted.ino())
            .then(|| entry.file_name().to_string_lossy().into_owned())
    })
}

/// Without inodes to compare, only the path is checked.
#[cfg(not(unix))]
fn same_file_in(_file: &Path, _data: &Path) -> Option<String> {
    None
}

/// A connection as the API shows it.
pub fn api(record: &ConnectionRecord, mappings: &[crate::store::MappingRecord]) -> xif_api::Connection {
    xif_api::Connection {
        name: record.name.clone(),
        kind: kind_of(&record.kind),
        url: record.redacted.clone(),
        added_by: record.added_by.clone(),
        added_at: record.added_at.clone(),
        mappings: mappings
            .iter()
            .filter(|mapping| mapping.connection.eq_ignore_ascii_case(&record.name))
            .map(|mapping| format!("{}/{}", mapping.extension, mapping.logical))
            .collect(),
    }
}

/// Whether `name` is a connection name: 1 to 63 ASCII letters, digits, `_`, `-` and `.`,
/// beginning with a letter.
fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidConnection,
            "a connection name is 1 to 63 ASCII letters, digits, `_`, `-` and `.`, beginning with a letter",
        ))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownConnection,
        format!("there is no database connection `{name}`; `xif admin connection list` lists them"),
    )
}

/// The stored connection called `name` (regardless of case).
pub(crate) async fn find(state: &AppState, name: &str) -> Result<ConnectionRecord, ApiError> {
    state
        .metadata
        .connections()
        .await?
        .into_iter()
        .find(|record| record.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| unknown(name))
}

/// `GET /connections`.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<xif_api::Connection>>, ApiError> {
    user.administrator_for("listing database connections")?;
    let mappings = state.metadata.mappings().await?;
    Ok(Json(state.metadata.connections().await?.iter().map(|record| api(record, &mappings)).collect()))
}

/// `POST /connections`: checks the URL (not by connecting: `test` does), seals it and records it.
pub async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<xif_api::NewConnection>,
) -> Result<(StatusCode, Json<xif_api::Connection>), ApiError> {
    let administrator = user.administrator_for("adding a database connection")?;
    check_name(&new.name)?;
    let target = Target::parse(new.url.trim(), state.entities.data_dir())
        .map_err(|message| ApiError::new(ErrorCode::InvalidConnection, message))?;
    let key = state.entities.keys().key().map_err(|message| {
        if matches!(state.entities.keys(), super::secrets::KeySource::Missing) {
            ApiError::new(ErrorCode::SecretsKeyMissing, message)
        } else {
            ApiError::internal(message)
        }
    })?;
    let sealed = key.seal(&new.name, new.url.trim()).map_err(ApiError::internal)?;
    let record = ConnectionRecord {
        name: new.name.clone(),
        kind: target.kind_name().to_owned(),
        sealed,
        redacted: redact(new.url.trim()),
        added_by: administrator.name.clone(),
        added_at: now(),
    };
    if !state.metadata.add_connection(&record).await? {
        return Err(ApiError::new(
            ErrorCode::ConnectionExists,
            format!(
                "a database connection `{}` exists already; remove it first (`xif admin connection remove {}`) to \
                 replace it",
                new.name, new.name
            ),
        ));
    }
    tracing::info!(connection = %record.name, kind = %record.kind, by = %administrator.name, "database connection added");
    state.entities.changed(&state.cluster).await;
    Ok((StatusCode::CREATED, Json(api(&record, &[]))))
}

/// `DELETE /connections/{name}[?force=true]`: refused while logical databases are mapped to it,
/// unless forced (which removes those mappings too: their extensions then miss configuration).
pub async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    Force(force): Force,
) -> Result<StatusCode, ApiError> {
    let administrator = user.administrator_for("removing a database connection")?;
    let record = find(&state, &name).await?;
    let mapped: Vec<String> = state
        .metadata
        .mappings()
        .await?
        .into_iter()
        .filter(|mapping| mapping.connection.eq_ignore_ascii_case(&record.name))
        .map(|mapping| format!("`{}/{}`", mapping.extension, mapping.logical))
        .collect();
    if !mapped.is_empty() && !force {
        return Err(ApiError::new(
            ErrorCode::ConnectionInUse,
            format!(
                "database connection `{}` is in use by {}: map those to another connection first, or remove it with \
                 `--force` (they are then missing configuration)",
                record.name,
                mapped.join(", ")
            ),
        ));
    }
    if !state.metadata.remove_connection(&record.name).await? {
        return Err(unknown(&name));
    }
    tracing::info!(connection = %record.name, by = %administrator.name, unmapped = mapped.len(), "database connection removed");
    state.entities.changed(&state.cluster).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The `force` query parameter (`true` or `false`, `false` when absent): read by hand so that a
/// bad value is answered in the API's envelope, not as axum's plain-text rejection.
pub struct Force(pub bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Force {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let mut force = false;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key == "force" {
                force = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::new(
                            ErrorCode::InvalidRequest,
                            "the query parameter `force` is `true` or `false`",
                        ));
                    }
                };
            }
        }
        Ok(Force(force))
    }
}

/// `POST /connections/{name}/test`: connects and runs `SELECT 1`, within 5 seconds.
pub async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<xif_api::ConnectionTest>, ApiError> {
    user.administrator_for("testing a database connection")?;
    let record = find(&state, &name).await?;
    let started = Instant::now();
    let (ok, message) = match state.entities.target(&record) {
        Ok(target) => target.test(state.entities.data_dir()).await,
        Err(message) => (false, message),
    };
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(Json(xif_api::ConnectionTest { name: record.name, ok, message, millis }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_shown_without_their_secret() {
        let data = tempfile::tempdir().expect("a directory");
        let postgres = Target::parse("postgres://ann:hunter2@db:5433/sales", data.path()).expect("read");
        assert_eq!(postgres.kind, ConnectionKind::Postgres);
        assert_eq!(postgres.place(), "PostgreSQL at db:5433");
        let maria = Target::parse("mariadb://ann:hunter2@db/sales", data.path()).expect("read");
        assert_eq!(maria.kind, ConnectionKind::Mysql);
        assert_eq!(maria.place(), "MySQL at db:3306");
        assert!(!redact("mysql://ann:hunter2@db/sales").contains("hunter2"));
        assert!(!redact("postgres://db/sales?password=hunter2").contains("hunter2"));
        assert!(Target::parse("oracle://x", data.path()).is_err());
        assert_eq!(scrub("failed for hunter2 at db", "postgres://ann:hunter2@db/sales"), "failed for *** at db");
    }

    #[test]
    fn sqlite_files_must_exist_outside_the_data_directory() {
        let data = tempfile::tempdir().expect("a directory");
        let outside = tempfile::tempdir().expect("a directory");
        let file = outside.path().join("app.db");
        std::fs::write(&file, b"").expect("written");
        let url = format!("sqlite://{}", file.display());
        assert!(Target::parse(&url, data.path()).is_ok());
        assert_eq!(redact(&url), url);
        let missing = format!("sqlite://{}", outside.path().join("none.db").display());
        assert!(Target::parse(&missing, data.path()).expect_err("missing").contains("does not exist"));
        let inside = data.path().join("metadata.sqlite");
        std::fs::write(&inside, b"").expect("written");
        let inside = format!("sqlite://{}", inside.display());
        assert!(Target::parse(&inside, data.path()).expect_err("inside").contains("data directory"));
        assert!(Target::parse("sqlite://relative.db", data.path()).is_err());
    }
}
