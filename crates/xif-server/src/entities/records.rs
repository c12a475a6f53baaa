//! Record operations on an entity's table: read by identifier, list, create, create-or-update,
//! delete. Values take the JSON forms of action inputs (`xif-sdk`'s types table) and are checked
//! the same way (`xif_host::check_value`); each data type maps to the dialect's column type both
//! ways through sqlx's own types (chrono for dates and times, rust_decimal for exact decimals,
//! which SQLite stores as text).
//!
//! [`Records`] keeps each published definition's [`Plan`]s, so that a request looks its entity
//! up and reuses its statements rather than building them.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};
use xif_definition::Definition;

use super::sql::{Dialect, Kind, Plan};
use super::{Database, EntityError};

/// A record: attribute names as the definition writes them, to values.
pub type Record = Map<String, Value>;

/// Why a record operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No version of the extension is published and running.
    #[error("no version of extension `{extension}` is published and running")]
    NotRunning {
        /// The extension.
        extension: String,
    },
    /// The published definition has no such entity.
    #[error("extension `{extension}` has no entity `{entity}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownEntity {
        /// The extension.
        extension: String,
        /// The name asked for.
        entity: String,
        /// The closest entity, if one is close.
        suggestion: Option<String>,
    },
    /// No record has the identifier.
    #[error("entity `{entity}` has no record `{identifier}`")]
    NotFound {
        /// The entity.
        entity: String,
        /// The identifier, as given.
        identifier: String,
    },
    /// `PUT` on a missing record of an entity whose identifier the database numbers.
    #[error(
        "entity `{entity}` has no record `{identifier}`; its records are created with POST, which the database \
         numbers (`{attribute}`), not with PUT"
    )]
    NotCreatedByPut {
        /// The entity.
        entity: String,
        /// The identifier, as given.
        identifier: String,
        /// The auto-numbered identifier attribute.
        attribute: String,
    },
    /// A unique column already holds the value.
    #[error("{}", conflict_message(entity, attribute.as_deref()))]
    Conflict {
        /// The entity.
        entity: String,
        /// The attribute whose value is taken, when the database said which.
        attribute: Option<String>,
    },
    /// A filter, sort key, limit or offset is not one the entity takes.
    #[error("query parameter `{parameter}` {problem}")]
    InvalidFilter {
        /// The query parameter, as given (shortened).
        parameter: String,
        /// What is wrong with it: a predicate that follows the parameter's name ("must be …",
        /// "is not …"), so that the message says the name once.
        problem: String,
    },
    /// The record's values do not fit the entity; each problem names its attribute.
    #[error("{}", .0.join("; "))]
    InvalidInput(Vec<String>),
    /// The logical database cannot be used (not mapped, or its connection is down).
    #[error(transparent)]
    Database(#[from] EntityError),
    /// The database did not answer the statement.
    #[error(
        "the database of entity `{entity}` (logical database `{logical}` of extension `{extension}`{}) cannot be \
         reached now ({reason}); nothing was read or changed",
        connection.as_ref().map(|name| format!(", database connection `{name}`")).unwrap_or_default()
    )]
    Unavailable {
        /// The connection the logical database is mapped to, when known.
        connection: Option<String>,
        /// The extension.
        extension: String,
        /// The entity.
        entity: String,
        /// Its logical database.
        logical: String,
        /// What failed, without the connection's URL.
        reason: String,
    },
    /// A foreign key of the database refuses the change: the record refers to one that does
    /// not exist, or other records refer to it.
    #[error(
        "the database refused the change to the record of `{entity}`: it refers to a record that does not exist, \
         or other records refer to it{}; create the record it refers to, or change those that refer to it first",
        constraint.as_ref().map(|c| format!(" (foreign key `{c}`)")).unwrap_or_default()
    )]
    Reference {
        /// The entity.
        entity: String,
        /// The foreign key's name, when the database says it.
        constraint: Option<String>,
    },
    /// The database holds a value the attribute's type cannot take.
    #[error(
        "{} of `{entity}` holds in attribute `{attribute}` a value that is not a valid {data_type}; correct it in \
         the database (or write the record again with a valid value)",
        record.as_ref().map(|record| format!("record `{record}`")).unwrap_or_else(|| "a record".to_owned())
    )]
    InvalidStoredValue {
        /// The entity.
        entity: String,
        /// The record's identifier, when it could be read.
        record: Option<String>,
        /// The attribute.
        attribute: String,
        /// The attribute's data type.
        data_type: String,
    },
    /// The table does not fit the definition, or the database failed otherwise: logged, not
    /// shown.
    #[error("entity `{entity}`: {detail}")]
    Internal {
        /// The entity.
        entity: String,
        /// What the database said.
        detail: String,
    },
}

fn conflict_message(entity: &str, attribute: Option<&str>) -> String {
    match attribute {
        Some(attribute) => format!(
            "another record of `{entity}` has the same `{attribute}`, which must be unique; give another value or update \
             that record"
        ),
        None => format!("the record conflicts with another record of `{entity}` on a value that must be unique"),
    }
}

/// A value bound to a statement, typed for the column. `None` is SQL `NULL`.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// Text, Email, Phone Number.
    Text(Option<String>),
    /// Integer.
    Integer(Option<i32>),
    /// Long Integer (and limits and offsets).
    LongInteger(Option<i64>),
    /// Decimal, Currency.
    Decimal(Option<Decimal>),
    /// Boolean.
    Boolean(Option<bool>),
    /// Date Time.
    DateTime(Option<NaiveDateTime>),
    /// Date.
    Date(Option<NaiveDate>),
    /// Time.
    Time(Option<NaiveTime>),
    /// Binary Data.
    Binary(Option<Vec<u8>>),
}

impl Bound {
    /// `NULL` of `kind`.
    pub fn null(kind: Kind) -> Self {
        match kind {
            Kind::Text => Bound::Text(None),
            Kind::Integer => Bound::Integer(None),
            Kind::LongInteger => Bound::LongInteger(None),
            Kind::Decimal => Bound::Decimal(None),
            Kind::Boolean => Bound::Boolean(None),
            Kind::DateTime => Bound::DateTime(None),
            Kind::Date => Bound::Date(None),
            Kind::Time => Bound::Time(None),
            Kind::Binary => Bound::Binary(None),
        }
    }

    /// The value of `kind` that `text` (a query parameter, a path's identifier) writes, or what
    /// it must be instead.
    pub fn from_text(kind: Kind, text: &str) -> Result<Self, String> {
        let shown: String = text.chars().take(64).collect();
        Ok(match kind {
            Kind::Text => Bound::Text(Some(text.to_owned())),
            Kind::Integer => Bound::Integer(Some(
                text.parse()
                    .map_err(|_| format!("must be an integer from -2147483648 to 2147483647, found `{shown}`"))?,
            )),
            Kind::LongInteger => Bound::LongInteger(Some(
                text.parse().map_err(|_| format!("must be an integer that fits in 64 bits, found `{shown}`"))?,
            )),
            Kind::Decimal => Bound::Decimal(Some(
                Decimal::from_str_exact(text).map_err(|_| format!("must be a decimal number, found `{shown}`"))?,
            )),
            Kind::Boolean => Bound::Boolean(Some(match text {
                "true" => true,
                "false" => false,
                _ => return Err(format!("must be `true` or `false`, found `{shown}`")),
            })),
            Kind::DateTime => Bound::DateTime(Some(
                NaiveDateTime::from_str(text)
                    .map_err(|_| format!("must be a date and time like 2024-01-31T09:30:00, found `{shown}`"))?,
            )),
            Kind::Date => Bound::Date(Some(
                NaiveDate::from_str(text).map_err(|_| format!("must be a date like 2024-01-31, found `{shown}`"))?,
            )),
            Kind::Time => Bound::Time(Some(
                NaiveTime::from_str(text).map_err(|_| format!("must be a time like 09:30:00, found `{shown}`"))?,
            )),
            Kind::Binary => Bound::Binary(Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| "must be base64 text".to_owned())?,
            )),
        })
    }

    /// The value of `kind` of a JSON value already checked against the attribute's type.
    fn from_checked(kind: Kind, value: &Value) -> Result<Self, String> {
        match (kind, value) {
            (_, Value::Null) => Ok(Bound::null(kind)),
            (Kind::Integer, Value::Number(number)) => number
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| Bound::Integer(Some(n)))
                .ok_or_else(|| "must be an integer from -2147483648 to 2147483647".to_owned()),
            (Kind::LongInteger, Value::Number(number)) => number
                .as_i64()
                .map(|n| Bound::LongInteger(Some(n)))
                .ok_or_else(|| "must be an integer that fits in 64 bits".to_owned()),
            (Kind::Boolean, Value::Bool(flag)) => Ok(Bound::Boolean(Some(*flag))),
            (_, Value::String(text)) => Bound::from_text(kind, text),
            (_, Value::Number(number)) => Bound::from_text(kind, &number.to_string()),
            _ => Err("is not a value of its type".to_owned()),
        }
    }

    /// The value as the identifier in a URL's path.
    fn to_path_segment(&self) -> String {
        let text = match self {
            Bound::Text(Some(text)) => text.clone(),
            Bound::Integer(Some(n)) => n.to_string(),
            Bound::LongInteger(Some(n)) => n.to_string(),
            Bound::Decimal(Some(n)) => n.to_string(),
            Bound::Boolean(Some(flag)) => flag.to_string(),
            Bound::DateTime(Some(value)) => value.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            Bound::Date(Some(value)) => value.format("%Y-%m-%d").to_string(),
            Bound::Time(Some(value)) => value.format("%H:%M:%S%.f").to_string(),
            Bound::Binary(Some(bytes)) => base64::engine::general_purpose::STANDARD.encode(bytes),
            _ => String::new(),
        };
        // Percent-encoding of one path segment: every byte but the unreserved ones (RFC 3986).
        // Hand-written for these few lines, as no crate of the workspace encodes a segment.
        let mut segment = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                segment.push(char::from(byte));
            } else {
                segment.push_str(&format!("%{byte:02X}"));
            }
        }
        segment
    }
}

fn json_of_date_time(value: NaiveDateTime) -> Value {
    Value::String(value.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn json_of_time(value: NaiveTime) -> Value {
    Value::String(value.format("%H:%M:%S%.f").to_string())
}

fn json_of_bytes(bytes: Vec<u8>) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

macro_rules! bind_values {
    ($query:expr, $values:expr, decimal: $decimal:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                Bound::Text(value) => query.bind(value),
                Bound::Integer(value) => query.bind(value),
                Bound::LongInteger(value) => query.bind(value),
                Bound::Decimal(value) => query.bind(value.map($decimal)),
                Bound::Boolean(value) => query.bind(value),
                Bound::DateTime(value) => query.bind(value),
                Bound::Date(value) => query.bind(value),
                Bound::Time(value) => query.bind(value),
                Bound::Binary(value) => query.bind(value),
            };
        }
        query
    }};
}

/// Decodes the columns of `row` as `plan` says, into a record. The dialects whose types sqlx
/// decodes the same way share it; SQLite's exact decimals, stored by column affinity as text,
/// integer or real, are read as whichever they are.
macro_rules! decode_row {
    ($row:expr, $plan:expr, decimal: $decimal:expr) => {{
        let row = $row;
        let mut record = Record::new();
        for (index, column) in $plan.columns.iter().enumerate() {
            let decoded = (|| -> Result<Option<Value>, sqlx::Error> {
                Ok(match column.kind {
                    Kind::Text => row.try_get::<Option<String>, _>(index)?.map(Value::String),
                    Kind::Integer => integer::<_, i32>(row, index)?.map(Value::from),
                    Kind::LongInteger => integer::<_, i64>(row, index)?.map(Value::from),
                    Kind::Decimal => $decimal(row, index, column.spec.decimals.as_ref().map(|d| d.value))?,
                    Kind::Boolean => row.try_get::<Option<bool>, _>(index)?.map(Value::Bool),
                    Kind::DateTime => row.try_get::<Option<NaiveDateTime>, _>(index)?.map(json_of_date_time),
                    Kind::Date => row
                        .try_get::<Option<NaiveDate>, _>(index)?
                        .map(|d| Value::String(d.format("%Y-%m-%d").to_string())),
                    Kind::Time => row.try_get::<Option<NaiveTime>, _>(index)?.map(json_of_time),
                    Kind::Binary => row.try_get::<Option<Vec<u8>>, _>(index)?.map(json_of_bytes),
                })
            })();
            let value = match decoded {
                Ok(value) => value,
                // A value the column holds that the attribute's type cannot take: named by its
                // record and attribute, so that the client is told which to correct.
                Err(sqlx::Error::ColumnDecode { source, .. } | sqlx::Error::Decode(source)) => {
                    let record = $plan.identifier.filter(|identifier| *identifier != index).and_then(|identifier| {
                        integer::<_, i64>(row, identifier)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string())
                            .or_else(|| row.try_get::<Option<String>, _>(identifier).ok().flatten())
                    });
                    return Err(sqlx::Error::ColumnDecode {
                        index: index.to_string(),
                        source: Box::new(Undecodable {
                            attribute: column.attribute.clone(),
                            data_type: column.spec.data_type.value.to_string(),
                            record,
                            detail: source.to_string(),
                        }),
                    });
                }
                Err(other) => return Err(other),
            };
            record.insert(column.attribute.clone(), value.unwrap_or(Value::Null));
        }
        Ok::<Record, sqlx::Error>(record)
    }};
}

/// A value a row holds that its attribute's type cannot take (SQLite's `'abc'` in an Integer
/// column, a number too large for it, PostgreSQL's `NaN` as a Decimal): which attribute of which
/// record, and what the decoder said (logged, not answered).
#[derive(Debug, thiserror::Error)]
#[error("attribute `{attribute}`: {detail}")]
struct Undecodable {
    attribute: String,
    data_type: String,
    /// The record's identifier, when it could be read.
    record: Option<String>,
    detail: String,
}

/// An integer column of any width (`smallint`, `integer`, `bigint`, a forced mapping's), read
/// as `T`; a value `T` cannot hold is a decode error naming the column, never a wrong number.
fn integer<R, T>(row: &R, index: usize) -> Result<Option<T>, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    T: TryFrom<i64>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i16: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let wide = match row.try_get::<Option<i64>, _>(index) {
        Ok(value) => value,
        Err(first) => match row.try_get::<Option<i32>, _>(index) {
            Ok(value) => value.map(i64::from),
            Err(_) => match row.try_get::<Option<i16>, _>(index) {
                Ok(value) => value.map(i64::from),
                Err(_) => return Err(first),
            },
        },
    };
    wide.map(|n| {
        T::try_from(n).map_err(|_| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: format!("{n} does not fit the attribute's integer type").into(),
        })
    })
    .transpose()
}

fn decimal_exact<R: sqlx::Row>(row: &R, index: usize, _decimals: Option<i64>) -> Result<Option<Value>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    Decimal: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(row.try_get::<Option<Decimal>, _>(index)?.map(|d| Value::String(d.to_string())))
}

/// SQLite's decimal, whichever storage class holds it, written with the attribute's declared
/// decimals when it has them (`1200.50`, as the other databases' `numeric(12,2)` give it).
fn decimal_sqlite(
    row: &sqlx::sqlite::SqliteRow,
    index: usize,
    decimals: Option<i64>,
) -> Result<Option<Value>, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(None);
    }
    let text = match raw.type_info().name() {
        "INTEGER" => row.try_get::<i64, _>(index)?.to_string(),
        "REAL" => row.try_get::<f64, _>(index)?.to_string(),
        _ => row.try_get::<String, _>(index)?,
    };
    let exact = match Decimal::from_str_exact(text.trim()) {
        Ok(mut decimal) => {
            if let Some(decimals) = decimals.and_then(|d| u32::try_from(d).ok())
                && decimal.scale() < decimals
            {
                decimal.rescale(decimals);
            }
            decimal.to_string()
        }
        // `inf`, `NaN`, `abc`, a REAL beyond a decimal's 28 digits: not a decimal.
        Err(_) => {
            let shown: String = text.chars().take(40).collect();
            return Err(sqlx::Error::Decode(format!("`{shown}` is not a decimal number").into()));
        }
    };
    Ok(Some(Value::String(exact)))
}

/// Whether a decimal `bound` fits the attribute's declared digits (`length` in all, `decimals`
/// after the point), or what it must be instead: the databases would refuse it, round it
/// silently (`1.239` into `1.24`) or, SQLite, keep it as it is.
fn fits_digits(spec: &xif_definition::TypeSpec, bound: &Bound) -> Result<(), String> {
    let Bound::Decimal(Some(value)) = bound else { return Ok(()) };
    let value = value.normalize();
    let decimals = spec.decimals.as_ref().map(|d| d.value);
    if let Some(decimals) = decimals
        && i64::from(value.scale()) > decimals
    {
        return Err(format!("has {} digits after the point, and the attribute takes {decimals}", value.scale()));
    }
    if let Some(length) = spec.length.as_ref().map(|l| l.value) {
        let whole = length - decimals.unwrap_or(0);
        let digits = value.trunc().abs().to_string().trim_start_matches('0').len();
        if i64::try_from(digits).unwrap_or(i64::MAX) > whole {
            return Err(format!(
                "has {digits} digits before the point, and the attribute takes {whole} ({length} in all, {} after \
                 the point)",
                decimals.unwrap_or(0)
            ));
        }
    }
    Ok(())
}

/// Runs `sql` with `values` and returns its rows as records.
async fn fetch(database: &Database, plan: &Plan, sql: &str, values: Vec<Bound>) -> Result<Vec<Record>, sqlx::Error> {
    match database {
        Database::Postgres(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| decode_row!(row, plan, decimal: decimal_exact)).collect()
        }
        Database::MySql(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| decode_row!(row, plan, decimal: decimal_exact)).collect()
        }
        Database::Sqlite(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d: Decimal| d.to_string());
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| decode_row!(row, plan, decimal: decimal_sqlite)).collect()
        }
    }
}

/// The bytes of records one list page may answer (their JSON, about): a page stops early
/// past them, its `Link` giving the offset of the first record left out.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// Runs `sql` with `values` and returns its rows as records, read one by one until their
/// bytes pass `budget` (the first record is answered whatever its size): the records, and
/// whether some were left out.
async fn fetch_within(
    database: &Database,
    plan: &Plan,
    sql: &str,
    values: Vec<Bound>,
    budget: usize,
) -> Result<(Vec<Record>, bool), sqlx::Error> {
    use futures_util::TryStreamExt as _;
    macro_rules! within {
        ($rows:expr, $decimal:expr) => {{
            let mut rows = $rows;
            let mut records = Vec::new();
            let mut bytes = 0usize;
            while let Some(row) = rows.try_next().await? {
                let record = decode_row!(&row, plan, decimal: $decimal)?;
                bytes = bytes.saturating_add(super::broker::row_size(&record));
                if bytes > budget && !records.is_empty() {
                    return Ok((records, true));
                }
                records.push(record);
            }
            Ok((records, false))
        }};
    }
    match database {
        Database::Postgres(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            within!(query.fetch(pool), decimal_exact)
        }
        Database::MySql(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            within!(query.fetch(pool), decimal_exact)
        }
        Database::Sqlite(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d: Decimal| d.to_string());
            within!(query.fetch(pool), decimal_sqlite)
        }
    }
}

/// Runs `sql` with `values`: the rows it affected and, on MySQL, the number it assigned.
async fn execute(database: &Database, sql: &str, values: Vec<Bound>) -> Result<(u64, Option<u64>), sqlx::Error> {
    match database {
        Database::Postgres(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            Ok((query.execute(pool).await?.rows_affected(), None))
        }
        Database::MySql(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d| d);
            let done = query.execute(pool).await?;
            Ok((done.rows_affected(), Some(done.last_insert_id())))
        }
        Database::Sqlite(pool) => {
            let query = bind_values!(sqlx::query(sql), values, decimal: |d: Decimal| d.to_string());
            Ok((query.execute(pool).await?.rows_affected(), None))
        }
    }
}

/// The error a failed statement is to the client.
fn database_error(error: sqlx::Error, extension: &str, plan: &Plan) -> RecordError {
    use sqlx::error::ErrorKind;
    let unavailable = |reason: String| RecordError::Unavailable {
        connection: None,
        extension: extension.to_owned(),
        entity: plan.entity.clone(),
        logical: plan.logical.clone(),
        reason,
    };
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().map(|code| code.into_owned()).unwrap_or_default();
            let mysql = database.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|error| error.number());
            // The database's own words go to the log, never to the client: ours name the
            // entity, the attribute or constraint, and the kind of problem.
            tracing::info!(entity = %plan.entity, code = %code, message = %database.message(), "the database refused a record statement");
            let attribute = column_named(plan, database.as_ref());
            // SQLite names a CHECK constraint only in its message (`CHECK constraint failed: NAME`).
            let constraint = database
                .constraint()
                .or_else(|| database.message().strip_prefix("CHECK constraint failed: "))
                .map(|name| name.chars().take(64).collect::<String>());
            let on = |what: &str| match (&attribute, &constraint) {
                (Some(attribute), _) => format!("attribute `{attribute}` of `{}` {what}", plan.entity),
                (None, Some(constraint)) => {
                    format!("a value of the record of `{}` {what} (constraint `{constraint}`)", plan.entity)
                }
                (None, None) => format!("a value of the record of `{}` {what}", plan.entity),
            };
            // MySQL 3819: a CHECK constraint is violated (sqlx gives it no kind).
            let kind = if mysql == Some(3819) { ErrorKind::CheckViolation } else { database.kind() };
            match kind {
                ErrorKind::UniqueViolation => {
                    return RecordError::Conflict {
                        entity: plan.entity.clone(),
                        attribute: conflicting(plan, database.as_ref()),
                    };
                }
                ErrorKind::NotNullViolation => {
                    return RecordError::InvalidInput(vec![on(
                        "must have a value: the database's column takes no null",
                    )]);
                }
                ErrorKind::CheckViolation => {
                    return RecordError::InvalidInput(vec![on(&format!(
                        "is refused by a check of the database{}",
                        constraint
                            .as_ref()
                            .filter(|_| attribute.is_some())
                            .map(|c| format!(" (constraint `{c}`)"))
                            .unwrap_or_default()
                    ))]);
                }
                ErrorKind::ForeignKeyViolation => {
                    return RecordError::Reference { entity: plan.entity.clone(), constraint };
                }
                _ => {}
            }
            // A value the column cannot hold: PostgreSQL's data exceptions (22…: too long, out
            // of range), MySQL's 1264 (out of range), 1292 and 1366 (incorrect value), 1406
            // (too long).
            if code.starts_with("22") || matches!(mysql, Some(1264 | 1292 | 1366 | 1406)) {
                return RecordError::InvalidInput(vec![on(
                    "was refused by the database: too long, out of range or of a form its column does not take",
                )]);
            }
            // PostgreSQL: connection exceptions (08…), the server shutting down or out of
            // connections (57P01-57P03, 53300); MySQL: shutdown in progress (1053), too many
            // connections (1040, 1203).
            let down = code.starts_with("08")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "53300")
                || matches!(mysql, Some(1053 | 1040 | 1203));
            if down {
                return unavailable("it is shutting down or refuses connections".into());
            }
            RecordError::Internal { entity: plan.entity.clone(), detail: error.to_string() }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            unavailable("the connection failed".into())
        }
        sqlx::Error::ColumnDecode { source, .. } if source.is::<Undecodable>() => {
            let Some(undecodable) = source.downcast_ref::<Undecodable>() else {
                return RecordError::Internal { entity: plan.entity.clone(), detail: error.to_string() };
            };
            tracing::warn!(entity = %plan.entity, record = ?undecodable.record, %undecodable, "a stored value cannot be read as its attribute's type");
            RecordError::InvalidStoredValue {
                entity: plan.entity.clone(),
                record: undecodable.record.as_ref().map(|record| record.chars().take(64).collect()),
                attribute: undecodable.attribute.clone(),
                data_type: undecodable.data_type.clone(),
            }
        }
        sqlx::Error::PoolTimedOut => unavailable("no connection was free or could be opened in time".into()),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => unavailable("its pool is closed".into()),
        _ => RecordError::Internal { entity: plan.entity.clone(), detail: error.to_string() },
    }
}

/// The attribute whose column a NOT NULL, CHECK or data error names, when the database says
/// which (PostgreSQL's `column` field or `"name"`, MySQL `'name'`, SQLite `table.name`).
fn column_named(plan: &Plan, error: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<String> {
    let mut text = error.message().to_owned();
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        if let Some(column) = postgres.column() {
            return plan.columns.iter().find(|c| c.column == column).map(|c| c.attribute.clone());
        }
        text.push(' ');
        text.push_str(postgres.detail().unwrap_or_default());
    }
    plan.columns
        .iter()
        .find(|column| {
            let name = &column.column;
            text.contains(&format!("\"{name}\""))
                || text.contains(&format!("'{name}'"))
                || text.contains(&format!("{}.{name}", plan.table))
        })
        .map(|column| column.attribute.clone())
}

/// The attribute a unique violation names, when the database's message or detail says which
/// column (PostgreSQL `Key (name)=…`, MySQL `for key 'name'`, SQLite `table.name`).
fn conflicting(plan: &Plan, error: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<String> {
    let mut text = error.message().to_owned();
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        text.push(' ');
        text.push_str(postgres.detail().unwrap_or_default());
    }
    if let Some(constraint) = error.constraint() {
        text.push(' ');
        text.push_str(constraint);
    }
    if (text.contains("'PRIMARY'") || text.contains("_pkey"))
        && let Some(identifier) = plan.identifier
    {
        return Some(plan.columns[identifier].attribute.clone());
    }
    plan.columns
        .iter()
        .find(|column| {
            let name = &column.column;
            text.contains(&format!("({name})="))
                || text.contains(&format!("'{name}'"))
                || text.contains(&format!(".{name}'"))
                || text.contains(&format!("{}.{name}", plan.table))
        })
        .map(|column| column.attribute.clone())
}

/// The plans of one definition's entities, by the entity's name in lower case.
type Plans = Arc<HashMap<String, Arc<Plan>>>;

/// The plans of each running definition, by extension (lower case), with the definition they
/// were made from: a new one makes them again.
#[derive(Debug, Default)]
pub struct Records {
    plans: RwLock<HashMap<String, (Arc<Definition>, Plans)>>,
}

impl Records {
    /// The plan of `entity` of `definition`, the running definition of `extension`: made
    /// once per definition.
    pub fn plan(&self, extension: &str, definition: &Arc<Definition>, entity: &str) -> Result<Arc<Plan>, RecordError> {
        let key = extension.to_ascii_lowercase();
        let cached = {
            let plans = self.plans.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            plans.get(&key).filter(|(seen, _)| Arc::ptr_eq(seen, definition)).map(|(_, plans)| Arc::clone(plans))
        };
        let plans = match cached {
            Some(plans) => plans,
            None => {
                let plans: HashMap<String, Arc<Plan>> = definition
                    .entities
                    .iter()
                    .map(|entity| (entity.name.value.to_ascii_lowercase(), Arc::new(Plan::new(definition, entity))))
                    .collect();
                let plans = Arc::new(plans);
                self.plans
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, (Arc::clone(definition), Arc::clone(&plans)));
                plans
            }
        };
        // Entity names are ASCII (the path's rule), so the lower case is cheap and exact.
        let lookup = entity.to_ascii_lowercase();
        plans.get(&lookup).cloned().ok_or_else(|| RecordError::UnknownEntity {
            extension: definition.extension.name.value.clone(),
            entity: entity.to_owned(),
            suggestion: xif_diagnostics::did_you_mean(
                entity,
                definition.entities.iter().map(|e| e.name.value.as_str()),
            )
            .map(str::to_owned),
        })
    }
}

/// The entity of one request, on its database.
pub struct Table<'a> {
    /// The extension, as the path names it.
    pub extension: &'a str,
    /// The definition it runs.
    pub definition: &'a Definition,
    /// The entity.
    pub plan: &'a Plan,
    /// Its database.
    pub database: &'a Database,
}

impl Table<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::of(self.database)
    }

    fn identifier(&self) -> Result<usize, RecordError> {
        self.plan.identifier.ok_or_else(|| {
            RecordError::InvalidInput(vec![format!(
                "entity `{}` has no identifier attribute, so its records cannot be named one by one",
                self.plan.entity
            )])
        })
    }

    /// The identifier `text` (from the path) as the identifier's type.
    fn identifier_value(&self, text: &str) -> Result<(usize, Bound), RecordError> {
        let index = self.identifier()?;
        let column = &self.plan.columns[index];
        let value = Bound::from_text(column.kind, text).map_err(|problem| {
            RecordError::InvalidInput(vec![format!(
                "the identifier `{}` of `{}` {problem}",
                column.attribute, self.plan.entity
            )])
        })?;
        Ok((index, value))
    }

    fn fail(&self, error: sqlx::Error) -> RecordError {
        database_error(error, self.extension, self.plan)
    }

    /// The record whose identifier is `identifier`.
    pub async fn read(&self, identifier: &str) -> Result<Record, RecordError> {
        let (_, value) = self.identifier_value(identifier)?;
        let sql = &self.plan.statements(self.dialect()).read;
        let mut records = fetch(self.database, self.plan, sql, vec![value]).await.map_err(|e| self.fail(e))?;
        records.pop().ok_or_else(|| RecordError::NotFound {
            entity: self.plan.entity.clone(),
            identifier: identifier.chars().take(64).collect(),
        })
    }

    /// The records `query` selects, at most [`MAX_PAGE_BYTES`] of them (about) but one: the
    /// records, and whether the page stopped early on that budget.
    pub async fn list(&self, query: super::filter::ListQuery) -> Result<(Vec<Record>, bool), RecordError> {
        let conditions: Vec<_> = query.conditions.iter().map(|(index, operator, _)| (*index, *operator)).collect();
        let sql = self.plan.list(self.dialect(), &conditions, &query.order);
        let mut values: Vec<Bound> = query.conditions.into_iter().map(|(_, _, value)| value).collect();
        values.push(Bound::LongInteger(Some(i64::from(query.limit))));
        values.push(Bound::LongInteger(Some(i64::try_from(query.offset).unwrap_or(i64::MAX))));
        fetch_within(self.database, self.plan, &sql, values, MAX_PAGE_BYTES).await.map_err(|e| self.fail(e))
    }

    /// `body`'s values checked against the entity: each given attribute's index and value,
    /// with the problems found, each naming its attribute.
    fn values(&self, body: &Value) -> Result<Vec<(usize, Bound)>, RecordError> {
        let Value::Object(given) = body else {
            return Err(RecordError::InvalidInput(vec![format!(
                "a record of `{}` is a JSON object of attribute names to values",
                self.plan.entity
            )]));
        };
        let mut problems = Vec::new();
        let mut values = Vec::with_capacity(given.len());
        for (name, value) in given {
            let Some((index, column)) = self.plan.column(name) else {
                let names = self.plan.columns.iter().map(|column| column.attribute.as_str());
                let hint = xif_diagnostics::did_you_mean(name, names)
                    .map(|close| format!("; did you mean `{close}`?"))
                    .unwrap_or_default();
                let name: String = name.chars().take(64).collect();
                problems.push(format!("`{name}` is not an attribute of `{}`{hint}", self.plan.entity));
                continue;
            };
            if values.iter().any(|(seen, _)| *seen == index) {
                problems.push(format!("attribute `{}` is given twice", column.attribute));
                continue;
            }
            let checked = if value.is_null() {
                if column.mandatory {
                    problems.push(format!(
                        "attribute `{}` of `{}` is mandatory: it cannot be null",
                        column.attribute, self.plan.entity
                    ));
                    continue;
                }
                Ok(Value::Null)
            } else {
                xif_host::check_value(self.definition, &column.spec, value).map_err(|(_, problem)| problem)
            };
            let bound = checked
                .and_then(|checked| Bound::from_checked(column.kind, &checked))
                .and_then(|bound| fits_digits(&column.spec, &bound).map(|()| bound));
            match bound {
                Ok(bound) => values.push((index, bound)),
                Err(problem) => {
                    problems.push(format!("attribute `{}` of `{}` {problem}", column.attribute, self.plan.entity));
                }
            }
        }
        if problems.is_empty() { Ok(values) } else { Err(RecordError::InvalidInput(problems)) }
    }

    /// Completes `values` for a new record: defaults of omitted attributes, and a problem for
    /// each omitted mandatory one (not an auto-numbered identifier, which the database assigns).
    fn complete(&self, values: &mut Vec<(usize, Bound)>) -> Result<(), RecordError> {
        let mut problems = Vec::new();
        for (index, column) in self.plan.columns.iter().enumerate() {
            if values.iter().any(|(given, _)| *given == index) || column.auto_number {
                continue;
            }
            match &column.default {
                Some(default) => match Bound::from_checked(column.kind, default) {
                    Ok(bound) => values.push((index, bound)),
                    Err(problem) => problems.push(format!("the default of attribute `{}` {problem}", column.attribute)),
                },
                None if column.mandatory => problems.push(format!(
                    "a record of `{}` needs attribute `{}` ({}), which was not given",
                    self.plan.entity, column.attribute, column.spec.data_type.value
                )),
                None => {}
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(RecordError::InvalidInput(problems)) }
    }

    /// Inserts `values` (complete) and returns the stored record.
    async fn insert(&self, mut values: Vec<(usize, Bound)>) -> Result<Record, RecordError> {
        values.sort_by_key(|(index, _)| *index);
        let indexes: Vec<usize> = values.iter().map(|(index, _)| *index).collect();
        let dialect = self.dialect();
        let sql = self.plan.insert(dialect, &indexes);
        let identifier = self.plan.identifier;
        let given_identifier = identifier
            .and_then(|identifier| values.iter().find(|(index, _)| *index == identifier).map(|(_, v)| v.clone()));
        let bound: Vec<Bound> = values.into_iter().map(|(_, value)| value).collect();
        if dialect != Dialect::MySql {
            let mut records = fetch(self.database, self.plan, &sql, bound).await.map_err(|e| self.fail(e))?;
            return records.pop().ok_or_else(|| RecordError::Internal {
                entity: self.plan.entity.clone(),
                detail: "the insert returned no row".into(),
            });
        }
        // MySQL has no RETURNING: the record is read back by its identifier, given or assigned.
        let (_, assigned) = execute(self.database, &sql, bound).await.map_err(|e| self.fail(e))?;
        let Some(index) = identifier else {
            return Ok(Record::new());
        };
        let key = match given_identifier {
            Some(value) => value,
            None => match self.plan.columns[index].kind {
                Kind::Integer => Bound::Integer(assigned.and_then(|n| i32::try_from(n).ok())),
                _ => Bound::LongInteger(assigned.and_then(|n| i64::try_from(n).ok())),
            },
        };
        let sql = &self.plan.statements(dialect).read;
        let mut records = fetch(self.database, self.plan, sql, vec![key]).await.map_err(|e| self.fail(e))?;
        records.pop().ok_or_else(|| RecordError::Internal {
            entity: self.plan.entity.clone(),
            detail: "the inserted row was not found by its identifier".into(),
        })
    }

    /// Creates a record of `body` and returns it as stored, with its identifier's path segment.
    /// An auto-numbered identifier is the database's to assign: given, it is refused (it would
    /// take a number the database gives later, and that insert would fail).
    pub async fn create(&self, body: &Value) -> Result<(Record, String), RecordError> {
        if let Some(identifier) = self.plan.identifier.filter(|index| self.plan.columns[*index].auto_number)
            && let Value::Object(given) = body
            && let Some(name) =
                given.keys().find(|name| self.plan.column(name).is_some_and(|(index, _)| index == identifier))
        {
            return Err(RecordError::InvalidInput(vec![format!(
                "attribute `{name}` of `{}` is numbered by the database; leave it out",
                self.plan.entity
            )]));
        }
        let mut values = self.values(body)?;
        self.complete(&mut values)?;
        let record = self.insert(values).await?;
        let segment = self.segment(&record);
        Ok((record, segment))
    }

    fn segment(&self, record: &Record) -> String {
        let Some(index) = self.plan.identifier else { return String::new() };
        let column = &self.plan.columns[index];
        record
            .get(&column.attribute)
            .and_then(|value| Bound::from_checked(column.kind, value).ok())
            .map(|value| value.to_path_segment())
            .unwrap_or_default()
    }

    /// Updates the record `identifier` with the attributes `body` gives (others keep their
    /// values), or creates it when there is none: the stored record, and whether it was created.
    pub async fn put(&self, identifier: &str, body: &Value) -> Result<(Record, bool), RecordError> {
        let (index, key) = self.identifier_value(identifier)?;
        let mut values = self.values(body)?;
        if let Some(position) = values.iter().position(|(given, _)| *given == index) {
            if values[position].1 != key {
                return Err(RecordError::InvalidInput(vec![format!(
                    "attribute `{}` of the body differs from the identifier in the path; an identifier cannot be changed",
                    self.plan.columns[index].attribute
                )]));
            }
            values.remove(position);
        }
        let dialect = self.dialect();
        if !values.is_empty() {
            let indexes: Vec<usize> = values.iter().map(|(index, _)| *index).collect();
            let sql = self.plan.update(dialect, &indexes, index);
            let mut bound: Vec<Bound> = values.iter().map(|(_, value)| value.clone()).collect();
            bound.push(key.clone());
            let (affected, _) = execute(self.database, &sql, bound).await.map_err(|e| self.fail(e))?;
            if affected > 0 {
                return Ok((self.read(identifier).await?, false));
            }
        } else {
            match self.read(identifier).await {
                Ok(record) => return Ok((record, false)),
                Err(RecordError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        // An auto-numbered identifier is the database's to assign: a record created here with
        // one would take a number the database gives later.
        if self.plan.columns[index].auto_number {
            return Err(RecordError::NotCreatedByPut {
                entity: self.plan.entity.clone(),
                identifier: identifier.chars().take(64).collect(),
                attribute: self.plan.columns[index].attribute.clone(),
            });
        }
        values.push((index, key));
        self.complete(&mut values)?;
        Ok((self.insert(values).await?, true))
    }

    /// Deletes the record `identifier`.
    pub async fn delete(&self, identifier: &str) -> Result<(), RecordError> {
        let (_, value) = self.identifier_value(identifier)?;
        let sql = &self.plan.statements(self.dialect()).delete;
        let (affected, _) = execute(self.database, sql, vec![value]).await.map_err(|e| self.fail(e))?;
        if affected == 0 {
            return Err(RecordError::NotFound {
                entity: self.plan.entity.clone(),
                identifier: identifier.chars().take(64).collect(),
            });
        }
        Ok(())
    }
}
