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
pub mod broker;
pub mod connections;
pub mod filter;
pub mod mapping;
pub mod records;
pub mod sandbox;
pub mod secrets;
pub mod sql;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::store::{ConnectionRecord, MetadataStore};

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

    /// Closes the pool: waits for the connections in use to come back, closes every one.
    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::MySql(pool) => pool.close().await,
            Database::Sqlite(pool) => pool.close().await,
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
///
/// Mappings and connections are read from the metadata store once and kept in memory, reloaded
/// when they change (on this node at once, on the others through [`crate::cluster::Event::ConnectionsChanged`]);
/// pools are built at first use and kept while their connection is unchanged. The fast path of
/// [`Entities::database`] is a read-locked map lookup and a pool's clone: no metadata query.
pub struct Entities {
    metadata: Arc<dyn MetadataStore>,
    keys: secrets::KeySource,
    data_dir: PathBuf,
    cache: RwLock<Cache>,
}

impl fmt::Debug for Entities {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Entities").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

/// What is kept in memory.
#[derive(Default)]
struct Cache {
    /// Whether `mappings` and `connections` reflect the store (false: reload at next use).
    loaded: bool,
    /// `extension\0logical` in lower case → the connection's key (its name in lower case).
    mappings: HashMap<String, String>,
    /// Connections by key.
    connections: HashMap<String, ConnectionRecord>,
    /// Pools by connection key, with the sealed URL they were built from.
    pools: HashMap<String, (String, Database)>,
    /// The pools of extensions' own SQL ([`Entities::sdk_database`]), by
    /// `connection key\0extension` in lower case, with the sealed URL they were built from.
    sdk_pools: HashMap<String, (String, Database)>,
}

/// The key of an extension's own pool on connection `connection` (a connection key).
fn sdk_key(connection: &str, extension: &str) -> String {
    let mut key = format!("{connection}\0{extension}");
    key.make_ascii_lowercase();
    key
}

/// The connection key part of a key of [`Cache::sdk_pools`].
fn connection_of(sdk_key: &str) -> &str {
    sdk_key.split('\0').next().unwrap_or_default()
}

fn mapping_key(extension: &str, logical: &str) -> String {
    let mut key = String::with_capacity(extension.len() + logical.len() + 1);
    key.push_str(extension);
    key.push('\0');
    key.push_str(logical);
    key.make_ascii_lowercase();
    key
}

impl Entities {
    /// The entities service over `metadata`, with connections' secrets under `keys`; SQLite files
    /// inside `data_dir` are refused.
    pub fn new(metadata: Arc<dyn MetadataStore>, keys: secrets::KeySource, data_dir: &Path) -> Self {
        Self { metadata, keys, data_dir: data_dir.to_owned(), cache: RwLock::new(Cache::default()) }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the secrets key comes from.
    pub fn keys(&self) -> &secrets::KeySource {
        &self.keys
    }

    /// The pool of the connection `extension`'s logical database `logical` is mapped to.
    pub async fn database(&self, extension: &str, logical: &str) -> Result<Database, EntityError> {
        self.pool(extension, logical, false).await
    }

    /// The pool for `extension`'s own SQL (`xif_sdk::database`) on the connection its logical
    /// database `logical` is mapped to: its own, apart from the records API's and other
    /// extensions', with the guards of [`sandbox`].
    pub async fn sdk_database(&self, extension: &str, logical: &str) -> Result<Database, EntityError> {
        self.pool(extension, logical, true).await
    }

    async fn pool(&self, extension: &str, logical: &str, sandboxed: bool) -> Result<Database, EntityError> {
        let key = mapping_key(extension, logical);
        for _ in 0..2 {
            let record = {
                let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.loaded {
                    let Some(connection) = cache.mappings.get(&key) else {
                        return Err(EntityError::MissingConfiguration {
                            extension: extension.to_owned(),
                            logical: logical.to_owned(),
                        });
                    };
                    let kept = if sandboxed {
                        cache.sdk_pools.get(&sdk_key(connection, extension))
                    } else {
                        cache.pools.get(connection)
                    };
                    if let Some((_, database)) = kept {
                        return Ok(database.clone());
                    }
                    cache.connections.get(connection).cloned()
                } else {
                    None
                }
            };
            match record {
                Some(record) => return self.build(record, sandboxed.then_some(extension)).await,
                None => self.reload().await.map_err(|error| {
                    tracing::error!(%error, "cannot read the database mappings");
                    EntityError::Unavailable(
                        "the server cannot read its database mappings now (its metadata store is unavailable);                          try again shortly"
                            .into(),
                    )
                })?,
            }
        }
        Err(EntityError::Unavailable("the database mappings changed while being read; try again".into()))
    }

    /// The name of the connection `extension`'s logical database `logical` is mapped to, as
    /// known to this node now (for messages).
    pub fn connection_name(&self, extension: &str, logical: &str) -> Option<String> {
        let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = cache.mappings.get(&mapping_key(extension, logical))?;
        cache.connections.get(key).map(|record| record.name.clone())
    }

    /// Of `logicals`, those of `extension` mapped to no connection.
    pub async fn missing_configuration(&self, extension: &str, logicals: &[String]) -> Vec<String> {
        if !self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).loaded
            && let Err(error) = self.reload().await
        {
            tracing::warn!(%error, "cannot read the database mappings");
            return Vec::new();
        }
        let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        logicals
            .iter()
            .filter(|logical| !cache.mappings.contains_key(&mapping_key(extension, logical)))
            .cloned()
            .collect()
    }

    /// The logical databases of the running version of `extension` mapped to no connection
    /// ("missing configuration"); none when no version runs here.
    pub async fn missing_for(&self, runtime: &crate::Runtime, extension: &str) -> Vec<String> {
        let Some(definition) = runtime.definition(extension).await else { return Vec::new() };
        let logicals: Vec<String> =
            mapping::logical_databases(&definition).into_iter().map(|(logical, _)| logical).collect();
        if logicals.is_empty() {
            return Vec::new();
        }
        self.missing_configuration(extension, &logicals).await
    }

    /// The target of a stored connection, its URL decrypted.
    pub(crate) fn target(&self, record: &ConnectionRecord) -> Result<connections::Target, String> {
        let url = self.keys.key()?.open(&record.name, &record.sealed)?;
        connections::Target::parse(&url, &self.data_dir)
    }

    /// Builds the pool of `record` (for the own SQL of `extension` when given) and keeps it,
    /// unless the connection changed meanwhile.
    async fn build(&self, record: ConnectionRecord, extension: Option<&str>) -> Result<Database, EntityError> {
        let unavailable = |message: String| {
            EntityError::Unavailable(format!("database connection `{}` cannot be used: {message}", record.name))
        };
        let target = self.target(&record).map_err(unavailable)?;
        let database = target.connect_with(&self.data_dir, extension.is_some()).await.map_err(|message| {
            tracing::warn!(connection = %record.name, %message, "cannot connect to a database connection");
            unavailable(message)
        })?;
        let key = record.name.to_lowercase();
        let kept = {
            let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let current = cache.connections.get(&key).is_some_and(|now| now.sealed == record.sealed);
            let (pools, key) = match extension {
                Some(extension) => (&mut cache.sdk_pools, sdk_key(&key, extension)),
                None => (&mut cache.pools, key),
            };
            match pools.get(&key) {
                // Another request built one first: use that one.
                Some((_, existing)) => Some(existing.clone()),
                None if current => {
                    pools.insert(key, (record.sealed.clone(), database.clone()));
                    None
                }
                // Removed or replaced meanwhile: used for this request only.
                None => None,
            }
        };
        match kept {
            Some(existing) => {
                database.close().await;
                Ok(existing)
            }
            None => Ok(database),
        }
    }

    /// Reads the connections and mappings again; pools of connections removed or replaced are
    /// closed (in the background: requests using them finish first).
    pub async fn reload(&self) -> Result<(), crate::store::StoreError> {
        let records = self.metadata.connections().await?;
        let mappings = self.metadata.mappings().await?;
        let closed = {
            let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.connections = records.into_iter().map(|record| (record.name.to_lowercase(), record)).collect();
            cache.mappings = mappings
                .into_iter()
                .map(|mapping| (mapping_key(&mapping.extension, &mapping.logical), mapping.connection.to_lowercase()))
                .collect();
            let stale: Vec<String> = cache
                .pools
                .iter()
                .filter(|(key, (sealed, _))| cache.connections.get(*key).is_none_or(|record| &record.sealed != sealed))
                .map(|(key, _)| key.clone())
                .collect();
            let stale_sdk: Vec<String> = cache
                .sdk_pools
                .iter()
                .filter(|(key, (sealed, _))| {
                    cache.connections.get(connection_of(key)).is_none_or(|record| &record.sealed != sealed)
                })
                .map(|(key, _)| key.clone())
                .collect();
            cache.loaded = true;
            let mut closed: Vec<Database> =
                stale.iter().filter_map(|key| cache.pools.remove(key)).map(|(_, database)| database).collect();
            closed.extend(stale_sdk.iter().filter_map(|key| cache.sdk_pools.remove(key)).map(|(_, database)| database));
            closed
        };
        for database in closed {
            tokio::spawn(async move { database.close().await });
        }
        Ok(())
    }

    /// Connections or mappings changed on this node: reload here, and tell the other nodes.
    pub async fn changed(&self, cluster: &crate::cluster::Cluster) {
        self.refresh().await;
        cluster.notify(crate::cluster::Event::ConnectionsChanged).await;
    }

    /// Reloads, or when the store cannot be read, forgets what is known so that the next use
    /// reads it again.
    pub async fn refresh(&self) {
        if let Err(error) = self.reload().await {
            tracing::warn!(%error, "cannot read the database mappings; they are read again at next use");
            self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).loaded = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MappingRecord;

    #[tokio::test]
    async fn a_mapped_logical_database_gives_its_pool_until_the_mapping_goes() {
        let directory = tempfile::tempdir().expect("a directory");
        let data = directory.path().join("data");
        std::fs::create_dir(&data).expect("data directory");
        let metadata: Arc<dyn MetadataStore> =
            Arc::new(crate::SqliteStore::open(&data.join("metadata.sqlite")).await.expect("opened"));
        let keys = secrets::KeySource::Local(data.join(secrets::KEY_FILE));
        let entities = Entities::new(Arc::clone(&metadata), keys.clone(), &data);
        let missing = entities.database("Shop", "main").await.expect_err("not mapped");
        assert!(matches!(missing, EntityError::MissingConfiguration { .. }), "{missing}");

        let file = directory.path().join("shop.db");
        std::fs::write(&file, b"").expect("an empty SQLite file");
        let url = format!("sqlite://{}", file.display());
        let record = ConnectionRecord {
            name: "Shop".into(),
            kind: "sqlite".into(),
            sealed: keys.key().expect("a key").seal("Shop", &url).expect("sealed"),
            redacted: url.clone(),
            added_by: "admin".into(),
            added_at: "2026-11-30T00:00:00Z".into(),
        };
        assert!(metadata.add_connection(&record).await.expect("added"));
        let mapping = MappingRecord {
            extension: "shop".into(),
            logical: "MAIN".into(),
            connection: "shop".into(),
            mapped_by: "admin".into(),
            mapped_at: "2026-11-30T00:00:00Z".into(),
        };
        assert!(metadata.map_database(&mapping).await.expect("mapped"));
        // Cached as unmapped until told.
        assert!(entities.database("Shop", "main").await.is_err());
        entities.refresh().await;
        let Database::Sqlite(pool) = entities.database("Shop", "main").await.expect("mapped") else {
            panic!("not SQLite")
        };
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.expect("answered");
        assert_eq!(one, 1);
        let Database::Sqlite(again) = entities.database("SHOP", "Main").await.expect("mapped") else {
            panic!("not SQLite")
        };
        assert!(!again.is_closed());
        assert_eq!(entities.connection_name("shop", "main").as_deref(), Some("Shop"));

        // Removed: its pool is closed, and the logical database misses configuration again.
        assert!(metadata.remove_connection("SHOP").await.expect("removed"));
        entities.refresh().await;
        assert!(matches!(entities.database("Shop", "main").await, Err(EntityError::MissingConfiguration { .. })));
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !pool.is_closed() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the old pool is closed");

        // A file that went away: unavailable, naming the connection.
        assert!(metadata.add_connection(&record).await.expect("added again"));
        assert!(metadata.map_database(&mapping).await.expect("mapped again"));
        std::fs::remove_file(&file).expect("removed");
        entities.refresh().await;
        let unavailable = entities.database("Shop", "main").await.expect_err("no file");
        assert!(
            matches!(&unavailable, EntityError::Unavailable(message) if message.contains("`Shop`") && message.contains("does not exist")),
            "{unavailable}"
        );
    }
}
