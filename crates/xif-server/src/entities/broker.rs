//! The extension's own queries on its logical databases (`xif_sdk::database`): the runtime gives
//! each extension process a [`Broker`], through which the host runs the SQL an action sends on
//! the pool its logical database is mapped to ([`Entities::database`]). The credentials stay in
//! the server, and the extension compiles no database driver.
//!
//! Parameters arrive and cells leave in the platform's JSON forms (numbers; exact decimals,
//! dates and times as strings; base64 for bytes). PostgreSQL types its parameters itself, so
//! each statement is prepared first (sqlx caches it per connection) and each value is bound as
//! the type the database expects; MySQL and SQLite convert what they are given, so values are
//! bound as their JSON kind says. Binary Data arrives as `{"base64": "…"}` (the SDK tags it),
//! so that it is bound as bytes everywhere.

use std::str::FromStr as _;
use std::sync::Arc;

use base64::Engine as _;
use futures_util::TryStreamExt as _;
use serde_json::Value;
use sqlx::{Column as _, Either, Executor as _, Row as _, Statement as _, TypeInfo as _, ValueRef as _};
use xif_host::{ActionFailure, QueryFuture, QueryRows, Row};

use super::{Database, Entities, EntityError, sandbox};

/// Runs the queries of one extension's process on the databases its logical databases are
/// mapped to.
pub struct Broker {
    entities: Arc<Entities>,
    extension: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Broker").field("extension", &self.extension).finish()
    }
}

impl Broker {
    /// The broker of `extension`'s queries.
    pub fn new(entities: Arc<Entities>, extension: &str) -> Self {
        Self { entities, extension: extension.to_owned() }
    }
}

impl xif_host::Databases for Broker {
    fn query<'a>(&'a self, logical: &'a str, sql: &'a str, params: Vec<Value>, max_rows: usize) -> QueryFuture<'a> {
        Box::pin(async move {
            let database = self.entities.sdk_database(&self.extension, logical).await.map_err(|error| match error {
                EntityError::MissingConfiguration { .. } => failure("missing_configuration", error.to_string()),
                EntityError::UnknownDatabase { .. } => failure("unknown_database", error.to_string()),
                EntityError::Unavailable(reason) => {
                    failure("database_unavailable", format!("logical database `{logical}` is unavailable: {reason}"))
                }
            })?;
            run(&database, logical, sql, &params, max_rows).await
        })
    }
}

/// Queries on databases given by logical database name rather than mapped: `xif call
/// --database main=URL` on the author's machine.
pub struct Direct {
    databases: Vec<(String, Database)>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URLs.
        let names: Vec<&str> = self.databases.iter().map(|(logical, _)| logical.as_str()).collect();
        formatter.debug_struct("Direct").field("logical_databases", &names).finish()
    }
}

impl Direct {
    /// Connects a pool to each `(logical database, URL)`, in the URL forms of `xif admin
    /// connection add`; an error names the logical database and never the password.
    pub async fn connect(urls: &[(String, String)]) -> Result<Self, String> {
        // No data directory of a server to keep SQLite URLs out of: an empty directory stands in.
        let nowhere = tempfile::tempdir().map_err(|error| format!("cannot make a temporary directory: {error}"))?;
        let mut databases = Vec::new();
        for (logical, url) in urls {
            let target = super::connections::Target::parse(url, nowhere.path())
                .map_err(|error| format!("logical database `{logical}`: {error}"))?;
            let database = target
                .connect_with(nowhere.path(), true)
                .await
                .map_err(|error| format!("logical database `{logical}`: {error}"))?;
            databases.push((logical.clone(), database));
        }
        Ok(Self { databases })
    }
}

impl xif_host::Databases for Direct {
    fn query<'a>(&'a self, logical: &'a str, sql: &'a str, params: Vec<Value>, max_rows: usize) -> QueryFuture<'a> {
        Box::pin(async move {
            let Some((_, database)) = self.databases.iter().find(|(name, _)| name.eq_ignore_ascii_case(logical)) else {
                return Err(failure(
                    "missing_configuration",
                    format!("logical database `{logical}` was given no database: add `--database {logical}=URL`"),
                ));
            };
            run(database, logical, sql, &params, max_rows).await
        })
    }
}

fn failure(code: &str, message: String) -> ActionFailure {
    ActionFailure { code: code.to_owned(), message }
}

/// Runs `sql` with `params` on `database`, at most `max_rows` rows back.
pub async fn run(
    database: &Database,
    logical: &str,
    sql: &str,
    params: &[Value],
    max_rows: usize,
) -> Result<QueryRows, ActionFailure> {
    let failed = |error: sqlx::Error| database_failure(logical, database.kind(), &error);
    match database {
        Database::Postgres(pool) => {
            let mut connection = pool.acquire().await.map_err(failed)?;
            let statement = (&mut *connection).prepare(sql).await.map_err(failed)?;
            let types: Vec<sqlx::postgres::PgTypeInfo> = match statement.parameters() {
                Some(Either::Left(types)) => types.to_vec(),
                _ => Vec::new(),
            };
            count_parameters(logical, types.len(), params.len())?;
            let mut query = statement.query();
            for (index, (value, type_info)) in params.iter().zip(&types).enumerate() {
                query = bind_postgres(query, index + 1, value, type_info.name())
                    .map_err(|message| failure("invalid_parameter", message))?;
            }
            collect(connection.fetch_many(query), logical, max_rows, postgres_row)
                .await
                .map_err(|error| error.unwrap_or_else(|error| database_failure(logical, database.kind(), &error)))
        }
        Database::MySql(pool) => {
            let mut query = sqlx::query(sql);
            for (index, value) in params.iter().enumerate() {
                query = bind_loose!(query, index + 1, value);
            }
            collect(pool.fetch_many(query), logical, max_rows, mysql_row)
                .await
                .map_err(|error| error.unwrap_or_else(|error| database_failure(logical, database.kind(), &error)))
        }
        Database::Sqlite(pool) => {
            let mut query = sqlx::query(sql);
            for (index, value) in params.iter().enumerate() {
                query = bind_loose!(query, index + 1, value);
            }
            let mut connection = pool.acquire().await.map_err(failed)?;
            {
                let mut handle = connection.lock_handle().await.map_err(failed)?;
                sandbox::single_statement(&mut handle, sql).map_err(|message| {
                    failure(
                        "refused_statement",
                        format!("a query on logical database `{logical}` was refused: {message}"),
                    )
                })?;
                // Stopped inside SQLite past its deadline, not only forgotten here: a runaway
                // statement would keep the connection (and the file's lock) for good.
                let deadline = std::time::Instant::now() + sandbox::QUERY_DEADLINE;
                handle.set_progress_handler(1000, move || std::time::Instant::now() < deadline);
            }
            collect(connection.fetch_many(query), logical, max_rows, sqlite_row)
                .await
                .map_err(|error| error.unwrap_or_else(|error| database_failure(logical, database.kind(), &error)))
        }
    }
}

fn count_parameters(logical: &str, expected: usize, given: usize) -> Result<(), ActionFailure> {
    if expected == given {
        return Ok(());
    }
    Err(failure(
        "invalid_parameter",
        format!("the query on logical database `{logical}` has {expected} parameters, but {given} values were given"),
    ))
}

/// Reads a query's results: its rows, turned into JSON by `convert`, and what it changed.
/// `Err(Ok(failure))` is a failure of this side (too many rows, a cell without a JSON form),
/// `Err(Err(error))` the database's.
async fn collect<'a, R, Q>(
    stream: impl futures_util::Stream<Item = Result<Either<Q, R>, sqlx::Error>> + 'a,
    logical: &str,
    max_rows: usize,
    convert: fn(&R) -> Result<Row, String>,
) -> Result<QueryRows, Result<ActionFailure, sqlx::Error>>
where
    Q: Affected,
{
    let mut stream = std::pin::pin!(stream);
    let mut answer = QueryRows::default();
    let mut bytes = 0usize;
    while let Some(item) = stream.try_next().await.map_err(Err)? {
        match item {
            Either::Left(result) => answer.affected += result.affected(),
            Either::Right(row) => {
                if answer.rows.len() == max_rows {
                    return Err(Ok(failure(
                        "too_many_rows",
                        format!(
                            "a query on logical database `{logical}` returned more than {max_rows} rows; add a LIMIT \
                             and read the rows in pages"
                        ),
                    )));
                }
                let row = convert(&row).map_err(|message| Ok(failure("invalid_column", message)))?;
                // Counted while reading, so that a query of huge rows stops at the budget
                // rather than after all its rows are in memory.
                bytes = bytes.saturating_add(row_size(&row));
                if bytes > MAX_RESULT_BYTES {
                    return Err(Ok(failure(
                        "result_too_large",
                        format!(
                            "a query on logical database `{logical}` returned more than {} MiB; select fewer columns \
                             or rows (a LIMIT), and read large values in parts",
                            MAX_RESULT_BYTES >> 20
                        ),
                    )));
                }
                answer.rows.push(row);
            }
        }
    }
    Ok(answer)
}

/// The bytes of rows one query may answer (their JSON, about): less than a frame to the
/// extension holds (64 MiB, `xif_protocol::MAX_FRAME`), which the host checks once encoded.
pub const MAX_RESULT_BYTES: usize = 48 * 1024 * 1024;

/// About the bytes of `row` as JSON: names, values, quotes and separators.
pub(crate) fn row_size(row: &Row) -> usize {
    row.iter().map(|(name, value)| name.len() + 4 + value_size(value)).sum::<usize>() + 2
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(value_size).sum::<usize>() + items.len() + 2,
        Value::Object(object) => {
            object.iter().map(|(name, value)| name.len() + 4 + value_size(value)).sum::<usize>() + 2
        }
        _ => 24,
    }
}

/// The rows a statement changed, whichever the database.
trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::mysql::MySqlQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The extension's error for a database's error: the database's own message, which the
/// author needs, under the logical database's name; never the connection's URL (sqlx's errors
/// do not carry it).
fn database_failure(logical: &str, kind: &str, error: &sqlx::Error) -> ActionFailure {
    match error {
        sqlx::Error::Database(error) => failure(
            "database_error",
            format!("logical database `{logical}` ({kind}) refused the query: {}", error.message()),
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => failure(
            "database_unavailable",
            format!("logical database `{logical}` ({kind}) is unavailable: {error}; try again later"),
        ),
        other => failure("database_error", format!("a query on logical database `{logical}` ({kind}) failed: {other}")),
    }
}

/// Binds a JSON value as its kind says, for databases that convert what they are given.
macro_rules! bind_loose {
    ($query:expr, $position:expr, $value:expr) => {
        match $value {
            Value::Null => $query.bind(Option::<String>::None),
            Value::Bool(value) => $query.bind(*value),
            Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
                (Some(value), _, _) => $query.bind(value),
                (None, Some(value), _) => $query.bind(value.to_string()),
                (None, None, Some(value)) => $query.bind(value),
                (None, None, None) => $query.bind(number.to_string()),
            },
            Value::String(value) => $query.bind(value.clone()),
            Value::Object(object) if binary(object).is_some() => $query.bind(binary(object)),
            other => {
                return Err(failure(
                    "invalid_parameter",
                    format!(
                        "parameter {} is {}, which no database column holds: pass a string, number, boolean or null",
                        $position,
                        kind_of(other)
                    ),
                ))
            }
        }
    };
}
use bind_loose;

/// The bytes of Binary Data as the SDK sends a parameter of it: `{"base64": "…"}`.
fn binary(object: &serde_json::Map<String, Value>) -> Option<Vec<u8>> {
    match (object.len(), object.get("base64").and_then(Value::as_str)) {
        (1, Some(text)) => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `value` as parameter `$position` of PostgreSQL type `type_name`, or says why it
/// cannot be one.
fn bind_postgres<'q>(
    query: PgQuery<'q>,
    position: usize,
    value: &Value,
    type_name: &str,
) -> Result<PgQuery<'q>, String> {
    let wrong = |expected: &str| {
        format!("parameter ${position} is of type {type_name}, which takes {expected}; {} was given", kind_of(value))
    };
    let text = || value.as_str().map(str::to_owned).or_else(|| value.as_number().map(ToString::to_string));
    macro_rules! bind {
        ($type:ty, $convert:expr) => {{
            if value.is_null() {
                Some(query.bind(Option::<$type>::None))
            } else {
                let converted: Option<$type> = $convert;
                converted.map(|converted| query.bind(converted))
            }
        }};
    }
    match type_name {
        "BOOL" => bind!(bool, value.as_bool()).ok_or_else(|| wrong("a boolean")),
        "INT2" => bind!(i16, integer(value).and_then(|value| i16::try_from(value).ok()))
            .ok_or_else(|| wrong("an integer from -32768 to 32767")),
        "INT4" => bind!(i32, integer(value).and_then(|value| i32::try_from(value).ok()))
            .ok_or_else(|| wrong("an Integer (32 bits)")),
        "INT8" => bind!(i64, integer(value)).ok_or_else(|| wrong("a Long Integer")),
        "FLOAT4" => bind!(f32, value.as_f64().map(|value| value as f32)).ok_or_else(|| wrong("a number")),
        "FLOAT8" => bind!(f64, value.as_f64()).ok_or_else(|| wrong("a number")),
        "NUMERIC" => bind!(rust_decimal::Decimal, text().and_then(|text| rust_decimal::Decimal::from_str(&text).ok()))
            .ok_or_else(|| wrong("a Decimal, such as \"12.50\"")),
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "citext" => {
            bind!(String, value.as_str().map(str::to_owned)).ok_or_else(|| wrong("text"))
        }
        "DATE" => bind!(chrono::NaiveDate, value.as_str().and_then(|text| text.parse().ok()))
            .ok_or_else(|| wrong("a Date, such as \"2024-01-31\"")),
        "TIME" => bind!(chrono::NaiveTime, value.as_str().and_then(|text| text.parse().ok()))
            .ok_or_else(|| wrong("a Time, such as \"09:30:00\"")),
        "TIMESTAMP" => bind!(chrono::NaiveDateTime, value.as_str().and_then(date_time))
            .ok_or_else(|| wrong("a Date Time, such as \"2024-01-31T09:30:00\"")),
        "TIMESTAMPTZ" => {
            bind!(chrono::DateTime<chrono::Utc>, value.as_str().and_then(date_time).map(|time| time.and_utc()))
                .ok_or_else(|| wrong("a Date Time in UTC, such as \"2024-01-31T09:30:00\""))
        }
        "BYTEA" => bind!(
            Vec<u8>,
            value.as_object().and_then(binary).or_else(|| value
                .as_str()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok()))
        )
        .ok_or_else(|| wrong("Binary Data in base64")),
        other => Err(format!(
            "parameter ${position} is of type {other}, which no platform data type maps to: cast it in the SQL, such \
             as `${position}::text`"
        )),
    }
}

fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

/// A Date Time in the platform's form (`2024-01-31T09:30:00`), or with a space, or with an
/// offset (then in UTC).
fn date_time(text: &str) -> Option<chrono::NaiveDateTime> {
    text.parse::<chrono::NaiveDateTime>()
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok())
        .or_else(|| chrono::DateTime::parse_from_rfc3339(text).ok().map(|time| time.naive_utc()))
}

fn date_time_text(time: chrono::NaiveDateTime) -> Value {
    Value::String(time.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number)
}

fn no_form(column: &str, type_name: &str) -> String {
    format!(
        "column `{column}` is of type {type_name}, which no platform data type maps to: cast it in the SQL (such as \
         `CAST({column} AS TEXT)`)"
    )
}

fn decode_failed(column: &str, type_name: &str, error: impl std::fmt::Display) -> String {
    format!("column `{column}` of type {type_name} cannot be read: {error}")
}

fn postgres_row(row: &sqlx::postgres::PgRow) -> Result<Row, String> {
    let mut out = Row::new();
    for (index, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let type_name = column.type_info().name();
        let raw = row.try_get_raw(index).map_err(|error| decode_failed(name, type_name, error))?;
        if raw.is_null() {
            out.insert(name.to_owned(), Value::Null);
            continue;
        }
        macro_rules! get {
            ($type:ty) => {
                row.try_get::<$type, _>(index).map_err(|error| decode_failed(name, type_name, error))?
            };
        }
        let value = match type_name {
            "BOOL" => Value::Bool(get!(bool)),
            "INT2" => Value::from(get!(i16)),
            "INT4" => Value::from(get!(i32)),
            "INT8" => Value::from(get!(i64)),
            "FLOAT4" => number(f64::from(get!(f32))),
            "FLOAT8" => number(get!(f64)),
            "NUMERIC" => Value::String(get!(rust_decimal::Decimal).to_string()),
            "DATE" => Value::String(get!(chrono::NaiveDate).to_string()),
            "TIME" => Value::String(get!(chrono::NaiveTime).format("%H:%M:%S%.f").to_string()),
            "TIMESTAMP" => date_time_text(get!(chrono::NaiveDateTime)),
            "TIMESTAMPTZ" => date_time_text(get!(chrono::DateTime<chrono::Utc>).naive_utc()),
            "BYTEA" => Value::String(base64::engine::general_purpose::STANDARD.encode(get!(Vec<u8>))),
            "VOID" => Value::Null,
            _ => match row.try_get_unchecked::<String, _>(index) {
                Ok(text) if matches!(type_name, "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "citext") => Value::String(text),
                _ => return Err(no_form(name, type_name)),
            },
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

fn mysql_row(row: &sqlx::mysql::MySqlRow) -> Result<Row, String> {
    let mut out = Row::new();
    for (index, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let type_name = column.type_info().name();
        let raw = row.try_get_raw(index).map_err(|error| decode_failed(name, type_name, error))?;
        if raw.is_null() {
            out.insert(name.to_owned(), Value::Null);
            continue;
        }
        macro_rules! get {
            ($type:ty) => {
                row.try_get_unchecked::<$type, _>(index).map_err(|error| decode_failed(name, type_name, error))?
            };
        }
        let value = match type_name {
            "BOOLEAN" => Value::Bool(get!(bool)),
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => Value::from(get!(i64)),
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED" => {
                Value::from(get!(u64))
            }
            "FLOAT" => number(f64::from(get!(f32))),
            "DOUBLE" => number(get!(f64)),
            "DECIMAL" => Value::String(get!(rust_decimal::Decimal).to_string()),
            "DATE" => Value::String(get!(chrono::NaiveDate).to_string()),
            "TIME" => Value::String(get!(chrono::NaiveTime).format("%H:%M:%S%.f").to_string()),
            "DATETIME" => date_time_text(get!(chrono::NaiveDateTime)),
            "TIMESTAMP" => date_time_text(get!(chrono::DateTime<chrono::Utc>).naive_utc()),
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(get!(Vec<u8>)))
            }
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "JSON" => {
                Value::String(get!(String))
            }
            _ => return Err(no_form(name, type_name)),
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<Row, String> {
    let mut out = Row::new();
    for (index, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let declared = column.type_info().name().to_owned();
        let raw = row.try_get_raw(index).map_err(|error| decode_failed(name, &declared, error))?;
        if raw.is_null() {
            out.insert(name.to_owned(), Value::Null);
            continue;
        }
        // SQLite types values, not columns: the value's own storage class decides, but for
        // a column declared BOOLEAN, whose integers are truth values.
        let stored = raw.type_info().name().to_owned();
        macro_rules! get {
            ($type:ty) => {
                row.try_get_unchecked::<$type, _>(index).map_err(|error| decode_failed(name, &stored, error))?
            };
        }
        let value = match stored.as_str() {
            "INTEGER" | "BOOLEAN" if declared == "BOOLEAN" => Value::Bool(get!(i64) != 0),
            "INTEGER" | "BOOLEAN" => Value::from(get!(i64)),
            "REAL" => number(get!(f64)),
            "BLOB" => Value::String(base64::engine::general_purpose::STANDARD.encode(get!(Vec<u8>))),
            _ => Value::String(get!(String)),
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}
