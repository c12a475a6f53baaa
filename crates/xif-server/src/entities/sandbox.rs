//! The guards around an extension's own SQL (`xif_sdk::database`), which may be hostile: what
//! its connections may do, how long a statement may run, how many it runs at once.
//!
//! - Each extension gets pools of its own per connection ([`super::Entities::sdk_database`]),
//!   apart from the records API's and other extensions', of at most [`MAX_CONNECTIONS`]
//!   connections: the session state it leaves (temporary tables, `SET`, `search_path`) and the
//!   connections it holds reach no one else.
//! - SQLite: an authorizer refuses `ATTACH`/`DETACH` (and `VACUUM INTO`, which attaches), temporary
//!   and virtual tables, transactions (a lock kept past the query), `PRAGMA`s but a few that
//!   read the schema, and `load_extension`; the attached-databases limit is 0 and one value may
//!   be at most [`MAX_VALUE`] bytes; [`single_statement`] refuses SQL with a second statement;
//!   a progress handler stops a statement past its deadline.
//! - PostgreSQL: a `statement_timeout` given at connection start (the session default, which
//!   `DISCARD ALL` keeps); each connection is reset on release (`ROLLBACK`, `DISCARD ALL`, sqlx's
//!   statement cache cleared). A prepared query is one statement.
//! - MySQL/MariaDB: `max_statement_time` (MariaDB) or `max_execution_time` (MySQL) at connect;
//!   `ROLLBACK` on release. sqlx sends every query with arguments, even none, as a prepared
//!   statement (`COM_STMT_PREPARE`), which holds one statement.
//!
//! Hand-written: sqlx has no authorizer or limit setting; both are SQLite's C API, reached
//! through sqlx's raw handle and `libsqlite3-sys` (the crate sqlx links). The only `unsafe`
//! of the workspace is here, each block with why it is sound.
#![expect(unsafe_code, reason = "SQLite's authorizer and limits are only in its C API")]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::time::Duration;

use libsqlite3_sys as ffi;

/// How long one statement of an extension may run on the database's side: a second more than
/// the host's own limit on a query (the call timeout, 30 s by default), so that the action is
/// told `query_timeout` by the host, and the database then stops the statement and frees its
/// connection. (At the same 30 s, the database's stop won the race about as often as not, and
/// the action saw an `interrupted` database error instead.)
pub const QUERY_DEADLINE: Duration = Duration::from_secs(31);

/// Connections one extension holds at once on one database connection: its queries at once.
pub const MAX_CONNECTIONS: u32 = 4;

/// The largest SQLite value (text, blob, row) an extension's statement may make or read.
pub const MAX_VALUE: c_int = 64 * 1024 * 1024;

/// The `PRAGMA`s an extension may run, and only to read (with an argument naming a table or
/// index, or none).
const READ_PRAGMAS: &[&str] =
    &["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"];

/// Resets a PostgreSQL connection of an extension on release: what its session left (an open
/// transaction, temporary tables, settings, locks, prepared statements, and sqlx's cache of
/// them) is gone before the next query.
pub async fn reset_postgres(connection: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection as _, Executor as _};
    connection.execute("ROLLBACK").await?;
    connection.execute("DISCARD ALL").await?;
    connection.clear_cached_statements().await?;
    Ok(true)
}

/// Sets the statement time limit on a MySQL or MariaDB connection of an extension: MariaDB
/// counts seconds (`max_statement_time`), MySQL milliseconds (`max_execution_time`, SELECTs
/// only); each refuses the other's variable.
pub async fn limit_mysql(connection: &mut sqlx::MySqlConnection) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    let seconds = QUERY_DEADLINE.as_secs();
    if connection.execute(format!("SET SESSION max_statement_time = {seconds}").as_str()).await.is_err() {
        connection.execute(format!("SET SESSION max_execution_time = {}", seconds * 1000).as_str()).await?;
    }
    Ok(())
}

/// Ends what an extension left open on a MySQL or MariaDB connection (a transaction, its
/// locks) on release.
pub async fn reset_mysql(connection: &mut sqlx::MySqlConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Executor as _;
    connection.execute("ROLLBACK").await?;
    Ok(true)
}

/// Sets the authorizer and limits on a new SQLite connection of an extension.
pub async fn guard_sqlite(connection: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection this locked handle owns for now; the callback is a
    // plain function with no state (a null user pointer).
    unsafe {
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE);
        ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
    }
    Ok(())
}

fn text<'a>(pointer: *const c_char) -> Option<&'a str> {
    if pointer.is_null() {
        return None;
    }
    // SAFETY: SQLite passes NUL-terminated strings valid for the callback's duration.
    unsafe { CStr::from_ptr(pointer) }.to_str().ok()
}

/// SQLite's authorizer: what an extension's statements may do.
extern "C" fn authorize(
    _: *mut c_void,
    action: c_int,
    first: *const c_char,
    second: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    match action {
        ffi::SQLITE_ATTACH
        | ffi::SQLITE_DETACH
        | ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW
        | ffi::SQLITE_DROP_TEMP_INDEX
        | ffi::SQLITE_DROP_TEMP_TABLE
        | ffi::SQLITE_DROP_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TEMP_VIEW
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_VTABLE
        | ffi::SQLITE_TRANSACTION
        | ffi::SQLITE_SAVEPOINT => ffi::SQLITE_DENY,
        ffi::SQLITE_PRAGMA => {
            let name = text(first).unwrap_or_default().to_ascii_lowercase();
            if READ_PRAGMAS.contains(&name.as_str()) { ffi::SQLITE_OK } else { ffi::SQLITE_DENY }
        }
        ffi::SQLITE_FUNCTION => {
            if text(second).is_some_and(|name| name.eq_ignore_ascii_case("load_extension")) {
                ffi::SQLITE_DENY
            } else {
                ffi::SQLITE_OK
            }
        }
        _ => ffi::SQLITE_OK,
    }
}

/// Refuses `sql` when it holds more than one statement (blanks, comments and lone `;` around
/// the one are fine): sqlx would run them all. Errors of the statement itself are left to the
/// query, which reports them.
pub fn single_statement(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>, sql: &str) -> Result<(), String> {
    let db = handle.as_raw_handle().as_ptr();
    let bytes = sql.as_bytes();
    let mut offset = 0usize;
    let mut statements = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        let Ok(length) = c_int::try_from(rest.len()) else { return Err("the SQL is too long".to_owned()) };
        let start = rest.as_ptr().cast::<c_char>();
        let mut statement = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `rest` outlives the call and its length is given (no NUL needed); the
        // statement prepared is finalized at once (finalizing null is a no-op); `tail` points
        // into `rest` or is null.
        let (code, used) = unsafe {
            let code = ffi::sqlite3_prepare_v2(db, start, length, &mut statement, &mut tail);
            if !statement.is_null() {
                statements += 1;
            }
            ffi::sqlite3_finalize(statement);
            let used = if tail.is_null() { rest.len() } else { usize::try_from(tail.offset_from(start)).unwrap_or(0) };
            (code, used)
        };
        // A second statement, or text after the first that does not prepare now (it may once
        // the first has run, such as on a table the first creates).
        if statements > 1 || (code != ffi::SQLITE_OK && offset > 0 && statements == 1) {
            return Err(
                "the SQL holds more than one statement; send one statement a query (nothing but comments after its `;`)"
                    .to_owned(),
            );
        }
        if code != ffi::SQLITE_OK || used == 0 {
            // The first statement's own error: the query reports it, before any other runs.
            break;
        }
        offset += used.min(rest.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    async fn guarded() -> sqlx::SqliteConnection {
        let mut connection = sqlx::SqliteConnection::connect("sqlite::memory:").await.expect("connected");
        guard_sqlite(&mut connection).await.expect("guarded");
        connection
    }

    #[tokio::test]
    async fn one_statement_passes_and_a_second_is_refused() {
        let mut connection = guarded().await;
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut connection).await.expect("created");
        let mut handle = connection.lock_handle().await.expect("locked");
        for sql in ["SELECT 1", "SELECT 1;", " SELECT 1 ; -- done\n ;; /* end */ ", "", "SELEC oops; SELECT 1"] {
            assert_eq!(single_statement(&mut handle, sql), Ok(()), "{sql}");
        }
        for sql in [
            "SELECT 1; SELECT 2",
            "SELECT 1; -- a comment\n; DELETE FROM t",
            "CREATE TABLE u (x); INSERT INTO u VALUES (1)",
            "SELECT 1; ATTACH DATABASE ':memory:' AS a",
            "; SELECT 1; SELECT 2",
        ] {
            assert!(single_statement(&mut handle, sql).is_err(), "{sql}");
        }
    }

    #[tokio::test]
    async fn the_authorizer_keeps_the_statement_in_its_database() {
        let mut connection = guarded().await;
        let directory = tempfile::tempdir().expect("a directory");
        let other = directory.path().join("other.sqlite");
        for sql in [
            format!("ATTACH DATABASE '{}' AS other", other.display()),
            format!("ATTACH DATABASE 'file:{}?mode=rwc' AS other", other.display()),
            format!("VACUUM INTO '{}'", other.display()),
            "CREATE TEMP TABLE t (x)".to_owned(),
            "CREATE VIRTUAL TABLE v USING fts5(x)".to_owned(),
            "PRAGMA writable_schema = ON".to_owned(),
            "BEGIN".to_owned(),
            "SAVEPOINT s".to_owned(),
            "SELECT load_extension('nothing')".to_owned(),
            "SELECT length(zeroblob(100000000))".to_owned(),
        ] {
            assert!(sqlx::query(&sql).execute(&mut connection).await.is_err(), "{sql} ran");
        }
        assert!(!other.exists(), "a file was written");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut connection).await.expect("created");
        let columns = sqlx::query("PRAGMA table_info(t)").fetch_all(&mut connection).await.expect("read");
        assert_eq!(columns.len(), 1);
    }
}
