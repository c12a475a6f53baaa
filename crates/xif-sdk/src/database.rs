//! An action's access to the logical databases of its extension, as the platform's
//! `DatabaseAccess.ForExternalDatabase`, without the connection's credentials.
//!
//! ```no_run
//! # fn run() -> Result<(), xif_sdk::ActionError> {
//! let database = xif_sdk::database("main")?;
//! database.execute("INSERT INTO customers (name, age) VALUES ($1, $2)", &xif_sdk::params!["Ann", 42]?)?;
//! for row in database.query("SELECT name, age FROM customers WHERE age > $1", &xif_sdk::params![18]?)? {
//!     let name: String = row.get("name")?;
//!     let age: Option<i32> = row.get("age")?;
//! }
//! # Ok(()) }
//! ```
//!
//! The SQL runs on the database connection the server's administrator mapped the logical
//! database to (`xif admin connection map`), in that database's dialect: parameters are `$1`,
//! `$2` for PostgreSQL and `?` for MySQL and SQLite. Values travel in the platform's JSON forms
//! (see [`crate::types`]): numbers, strings for decimals, dates and times, base64 for binary
//! data. A query blocks the calling thread until the host answers; other calls go on meanwhile.
//!
//! Each query is one statement that commits on its own, on whichever pooled connection the
//! server takes: `BEGIN` and `COMMIT` in separate queries do not make a transaction (write one
//! statement, such as `INSERT … SELECT` or `UPDATE … WHERE`, where several must hold together).
//! A query has the call's time limit, and returns at most 10,000 rows (more is an error: use
//! `LIMIT` and read in pages).

use serde::de::DeserializeOwned;

use crate::ActionError;
use crate::serve::{CallContext, current_call};

/// A parameter of a query, in the platform's JSON form; [`crate::params!`] makes them.
pub type Param = serde_json::Value;

/// A logical database of the extension, during one call of an action.
///
/// Obtained with [`database`] on the thread that runs the call; it may be handed to other
/// threads, and works until the call returns (the host refuses queries of a call that ended).
#[derive(Clone)]
pub struct Database {
    name: String,
    context: CallContext,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Database").field("name", &self.name).field("call", &self.context.call).finish()
    }
}

/// The logical database `name` of this extension (`main` is the one entities use when they
/// name none), for the call the current thread runs.
///
/// Fails outside a call of an action (in `main`, or on a thread the action did not get the
/// handle to). A logical database the definition does not declare, or that the server has not
/// mapped to a connection, fails at the first query, with the host's explanation.
pub fn database(name: &str) -> Result<Database, ActionError> {
    let context = current_call().ok_or_else(|| {
        ActionError::new(
            "no_call",
            format!(
                "logical database `{name}` can only be used during a call of an action: call `xif_sdk::database` \
                 in the action (or pass the `Database` it returns to the threads that need it)"
            ),
        )
    })?;
    Ok(Database { name: name.to_owned(), context })
}

impl Database {
    /// The logical database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` (one statement) with `params` and returns its rows.
    pub fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, ActionError> {
        let (rows, _) = self.context.channel.query(self.context.call, &self.name, sql, params.to_vec())?;
        Ok(rows.into_iter().map(Row).collect())
    }

    /// Runs `sql` (one statement) with `params` and returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, ActionError> {
        let (_, affected) = self.context.channel.query(self.context.call, &self.name, sql, params.to_vec())?;
        Ok(affected)
    }
}

/// One row of a query's result: column name to value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(xif_protocol::Row);

impl Row {
    /// The value of column `column` as a `T` of the platform's types ([`crate::types`]), or an
    /// `Option` of one for a column that may be NULL. The name is matched exactly first, then
    /// ignoring case (PostgreSQL folds unquoted names to lower case).
    pub fn get<T: DeserializeOwned>(&self, column: &str) -> Result<T, ActionError> {
        let value = self.value(column).ok_or_else(|| {
            let columns: Vec<&str> = self.columns().collect();
            ActionError::new(
                "invalid_column",
                format!("the row has no column `{column}`; its columns are: {}", columns.join(", ")),
            )
        })?;
        // A number where text is expected (SQLite keeps a DECIMAL column's values as INTEGER
        // or REAL): read from the number's own text, so that a `Decimal` is exactly what was
        // stored and never passes through a float of this side.
        let read = serde_json::from_value(value.clone()).or_else(|error| match value {
            serde_json::Value::Number(number) => {
                serde_json::from_value(serde_json::Value::String(number.to_string())).map_err(|_| error)
            }
            _ => Err(error),
        });
        read.map_err(|error| {
            let problem = if value.is_null() {
                "it is NULL: read it as an `Option`".to_owned()
            } else {
                format!("{value} cannot be read as `{}`: {error}", std::any::type_name::<T>())
            };
            ActionError::new("invalid_column", format!("column `{column}`: {problem}"))
        })
    }

    /// The JSON value of column `column`, if the row has it (matched as [`Row::get`] does).
    pub fn value(&self, column: &str) -> Option<&serde_json::Value> {
        self.0
            .get(column)
            .or_else(|| self.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(column)).map(|(_, value)| value))
    }

    /// The names of the row's columns.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The row as a JSON object.
    pub fn into_map(self) -> xif_protocol::Row {
        self.0
    }
}

/// A value of the platform's types that can be a query parameter: its JSON form, but Binary
/// Data as `{"base64": "…"}`, so that the host binds bytes, not their base64 text, whatever the
/// database.
pub trait ToParam {
    /// The parameter's value.
    fn to_param(&self) -> Result<Param, ActionError>;
}

macro_rules! to_param_as_json {
    ($($type:ty),*) => {$(
        impl ToParam for $type {
            fn to_param(&self) -> Result<Param, ActionError> {
                param(self)
            }
        }
    )*};
}

to_param_as_json!(
    str,
    String,
    i32,
    i64,
    f64,
    bool,
    crate::types::Decimal,
    crate::types::Date,
    crate::types::Time,
    crate::types::DateTime
);

impl ToParam for crate::types::BinaryData {
    fn to_param(&self) -> Result<Param, ActionError> {
        let mut tagged = serde_json::Map::new();
        tagged.insert("base64".into(), param(self)?);
        Ok(Param::Object(tagged))
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Result<Param, ActionError> {
        self.as_ref().map_or(Ok(Param::Null), ToParam::to_param)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Result<Param, ActionError> {
        (**self).to_param()
    }
}

/// A value as a query parameter, in its JSON form (for types without [`ToParam`]).
pub fn param<T: serde::Serialize + ?Sized>(value: &T) -> Result<Param, ActionError> {
    serde_json::to_value(value)
        .map_err(|error| ActionError::new("invalid_parameter", format!("a query parameter cannot be written: {error}")))
}

/// The parameters of a query, from values of the platform's types ([`ToParam`]):
/// `database.query(sql, &params![name, age]?)`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        (|| -> ::core::result::Result<::std::vec::Vec<$crate::Param>, $crate::ActionError> {
            ::core::result::Result::Ok(::std::vec![$($crate::ToParam::to_param(&$value)?),*])
        })()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_read_typed_and_named_in_errors() {
        let row = Row(serde_json::from_str(r#"{"name":"Ann","age":42,"note":null,"amount":"12.50"}"#).expect("json"));
        assert_eq!(row.get::<String>("NAME").expect("by name, any case"), "Ann");
        assert_eq!(row.get::<i32>("age").expect("a number"), 42);
        assert_eq!(row.get::<Option<String>>("note").expect("NULL"), None);
        assert_eq!(row.get::<crate::types::Decimal>("amount").expect("exact").to_string(), "12.50");
        let error = row.get::<String>("note").expect_err("NULL into a String");
        assert!(error.message.contains("Option"), "{error}");
        let error = row.get::<i32>("missing").expect_err("no such column");
        assert!(error.message.contains("`missing`") && error.message.contains("age, amount, name, note"), "{error}");
    }

    /// SQLite's DECIMAL columns hold INTEGER or REAL values, which arrive as JSON numbers.
    #[test]
    fn decimals_are_read_from_json_numbers_exactly() {
        let row = Row(serde_json::from_str(r#"{"price":1200.5,"whole":12,"tiny":0.1,"name":"Ann"}"#).expect("json"));
        assert_eq!(row.get::<crate::types::Decimal>("price").expect("a number").to_string(), "1200.5");
        assert_eq!(row.get::<crate::types::Decimal>("whole").expect("an integer").to_string(), "12");
        assert_eq!(row.get::<crate::types::Decimal>("tiny").expect("exact").to_string(), "0.1");
        assert_eq!(
            row.get::<Option<crate::types::Decimal>>("whole").expect("optional").map(|d| d.to_string()),
            Some("12".into())
        );
        let error = row.get::<crate::types::Decimal>("name").expect_err("text that is no number");
        assert!(error.message.contains("`name`"), "{error}");
    }

    #[test]
    fn outside_a_call_there_is_no_database() {
        let error = database("main").expect_err("no call");
        assert_eq!(error.code, "no_call");
        assert!(error.message.contains("`main`"), "{error}");
    }

    #[test]
    fn parameters_take_the_platform_json_forms() {
        let amount: crate::types::Decimal = "12.50".parse().expect("a decimal");
        let bytes = crate::types::BinaryData(vec![1, 2, 3]);
        let params = params!["Ann", 42, amount, bytes, Option::<i32>::None, true].expect("params");
        assert_eq!(
            params,
            serde_json::json!(["Ann", 42, "12.50", {"base64": "AQID"}, null, true]).as_array().cloned().expect("array")
        );
    }
}
