//! The host's side of an extension's queries on its logical databases: which databases the
//! definition declares, the [`Databases`] a host is given to run queries on, and the answers.
//!
//! The host runs each query as a task of its own, so that a slow query holds up neither other
//! calls nor other queries, with a time limit, a cap on rows, and the frame limit on the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use xif_definition::Definition;
use xif_protocol::{ActionFailure, HostMessage, MAX_FRAME, Row, encode};

/// What a query returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// Its rows, in order, each column name to value in the platform's JSON forms.
    pub rows: Vec<Row>,
    /// The rows it changed.
    pub affected: u64,
}

/// A query in progress, as [`Databases::query`] returns it.
pub type QueryFuture<'a> = Pin<Box<dyn Future<Output = Result<QueryRows, ActionFailure>> + Send + 'a>>;

/// Where the host runs an extension's queries: the database connections its logical databases
/// are mapped to. The server implements it over its connections; the credentials stay there.
pub trait Databases: Send + Sync + std::fmt::Debug + 'static {
    /// Runs `sql` with `params` on logical database `logical` (one the definition declares),
    /// returning at most `max_rows` rows (more is an error, not a truncation). Errors carry a
    /// code (`database_error`, `database_unavailable`, `missing_configuration`) and a message
    /// for the extension's author that names the logical database and never a URL.
    fn query<'a>(
        &'a self,
        logical: &'a str,
        sql: &'a str,
        params: Vec<serde_json::Value>,
        max_rows: usize,
    ) -> QueryFuture<'a>;
}

/// How an extension's queries are run.
#[derive(Debug, Clone)]
pub struct DatabaseAccess {
    /// Where they run; `None` refuses every query as not available here (`xif call`).
    pub databases: Option<Arc<dyn Databases>>,
    /// The logical databases the definition declares ([`logical_databases`]).
    pub declared: Vec<String>,
    /// How long one query may take.
    pub query_timeout: Duration,
    /// Rows one query may return.
    pub max_rows: usize,
}

impl DatabaseAccess {
    /// No database to run queries on, with the defaults: 30 s a query, 10,000 rows.
    pub fn none() -> Self {
        Self { databases: None, declared: Vec::new(), query_timeout: Duration::from_secs(30), max_rows: 10_000 }
    }

    /// Queries of the extension of `definition` run on `databases`, with the defaults.
    pub fn new(definition: &Definition, databases: Option<Arc<dyn Databases>>) -> Self {
        Self { databases, declared: logical_databases(definition), ..Self::none() }
    }
}

impl Default for DatabaseAccess {
    fn default() -> Self {
        Self::none()
    }
}

/// The logical databases `definition` declares: those its entities name (`main` for an entity
/// that names none), each once, in the order first named.
pub fn logical_databases(definition: &Definition) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for entity in &definition.entities {
        let name = entity.database_name();
        if !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    names
}

fn failure(code: &str, message: String) -> ActionFailure {
    ActionFailure { code: code.to_owned(), message }
}

/// Runs query `id` and returns the frame of its answer.
pub(crate) async fn answer(
    access: &DatabaseAccess,
    id: u64,
    database: String,
    sql: String,
    params: Vec<serde_json::Value>,
) -> Vec<u8> {
    let outcome = run(access, &database, &sql, params).await;
    let message = match outcome {
        Ok(QueryRows { rows, affected }) => HostMessage::Rows { id, rows, affected },
        Err(error) => HostMessage::QueryFailed { id, error },
    };
    let frame = encode(&message);
    if frame.len() - 4 > MAX_FRAME {
        return encode(&HostMessage::QueryFailed {
            id,
            error: failure(
                "result_too_large",
                format!(
                    "the result of a query on logical database `{database}` is over the limit of {} MiB; select fewer \
                     rows or columns (with LIMIT, or in pages)",
                    MAX_FRAME >> 20
                ),
            ),
        });
    }
    frame
}

async fn run(
    access: &DatabaseAccess,
    database: &str,
    sql: &str,
    params: Vec<serde_json::Value>,
) -> Result<QueryRows, ActionFailure> {
    let Some(logical) = access.declared.iter().find(|declared| declared.eq_ignore_ascii_case(database)) else {
        let declared = if access.declared.is_empty() {
            "it declares none (a logical database is declared by the entities that name it)".to_owned()
        } else {
            format!(
                "it declares {}",
                access.declared.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
            )
        };
        return Err(failure(
            "unknown_database",
            format!("the extension has no logical database `{database}`: {declared}"),
        ));
    };
    let Some(databases) = &access.databases else {
        return Err(failure(
            "database_unavailable",
            format!(
                "logical database `{logical}` is not available when the extension runs locally (`xif call`) without \
                 `--database {logical}=URL`: the Platform Server runs queries on the connection an administrator \
                 maps it to"
            ),
        ));
    };
    match tokio::time::timeout(access.query_timeout, databases.query(logical, sql, params, access.max_rows)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(failure(
            "query_timeout",
            format!(
                "a query on logical database `{logical}` did not finish within {:?}; it was cancelled",
                access.query_timeout
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every query with the logical database it was given, or never.
    #[derive(Debug)]
    struct Echo {
        hang: bool,
    }

    impl Databases for Echo {
        fn query<'a>(
            &'a self,
            logical: &'a str,
            sql: &'a str,
            params: Vec<serde_json::Value>,
            _: usize,
        ) -> QueryFuture<'a> {
            Box::pin(async move {
                if self.hang {
                    std::future::pending::<()>().await;
                }
                let row = Row::from_iter([
                    ("logical".to_owned(), serde_json::Value::from(logical)),
                    ("sql".to_owned(), serde_json::Value::from(sql)),
                    ("params".to_owned(), serde_json::Value::from(params)),
                ]);
                Ok(QueryRows { rows: vec![row], affected: 1 })
            })
        }
    }

    fn access(databases: Option<Arc<dyn Databases>>) -> DatabaseAccess {
        DatabaseAccess {
            databases,
            declared: vec!["main".into(), "archive".into()],
            query_timeout: Duration::from_millis(100),
            max_rows: 10,
        }
    }

    #[tokio::test]
    async fn a_declared_database_is_queried_under_its_declared_name() {
        let access = access(Some(Arc::new(Echo { hang: false })));
        let rows = run(&access, "MAIN", "SELECT $1", vec![1.into()]).await.expect("rows");
        assert_eq!(rows.affected, 1);
        assert_eq!(rows.rows[0]["logical"], "main");
        assert_eq!(rows.rows[0]["params"], serde_json::json!([1]));
    }

    #[tokio::test]
    async fn an_undeclared_database_is_refused_naming_the_declared_ones() {
        let access = access(Some(Arc::new(Echo { hang: false })));
        let error = run(&access, "ghost", "SELECT 1", vec![]).await.expect_err("refused");
        assert_eq!(error.code, "unknown_database");
        assert!(error.message.contains("`ghost`") && error.message.contains("`main`, `archive`"), "{}", error.message);
        let none = DatabaseAccess::none();
        let error = run(&none, "main", "SELECT 1", vec![]).await.expect_err("refused");
        assert!(error.message.contains("declares none"), "{}", error.message);
    }

    #[tokio::test]
    async fn without_databases_a_query_says_it_is_not_available_here() {
        let error = run(&access(None), "main", "SELECT 1", vec![]).await.expect_err("refused");
        assert_eq!(error.code, "database_unavailable");
        assert!(error.message.contains("runs locally"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_query_over_its_time_limit_is_cancelled() {
        let access = access(Some(Arc::new(Echo { hang: true })));
        let frame = answer(&access, 7, "main".into(), "SELECT pg_sleep(60)".into(), vec![]).await;
        match xif_protocol::decode::<HostMessage>(&frame[4..]).expect("a message") {
            HostMessage::QueryFailed { id, error } => {
                assert_eq!((id, error.code.as_str()), (7, "query_timeout"));
                assert!(error.message.contains("`main`"), "{}", error.message);
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
