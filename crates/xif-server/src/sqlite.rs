//! The embedded metadata store: SQLite in WAL mode, with its schema in `migrations/`.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Row, Sqlite, Transaction};
use xif_api::{Permission, Publication, Version};

use crate::store::{
    CallQuery, ConnectionRecord, LockRequest, MappingRecord, MetadataStore, NewToken, NewVersion, Page,
    PublicationRecord, PublishRefusal, StoreError, TokenOwner, TokenScope, UserRecord,
};

/// The schema, in order. Each runs once, in a transaction, and is recorded in
/// `schema_migrations`. Applied here rather than by `sqlx::migrate!`, whose macro would bring
/// sqlx's compile-time query machinery into every build for two statements' worth of work.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_module_dependencies.sql")),
    (3, include_str!("../migrations/0003_token_expiry.sql")),
    (4, include_str!("../migrations/0004_publication_lease.sql")),
    (5, include_str!("../migrations/0005_version_signatures.sql")),
    (6, include_str!("../migrations/0006_growth.sql")),
    (7, include_str!("../migrations/0007_connections.sql")),
    (8, include_str!("../migrations/0008_scopes_and_calls.sql")),
    (9, include_str!("../migrations/0009_calls_without_time_index.sql")),
    (10, include_str!("../migrations/0010_call_segments.sql")),
];

/// How a transaction that reads and then writes begins: it takes the write lock at once (waiting
/// for it under the busy timeout), rather than failing with "database is locked" when it
/// upgrades its read lock while another connection writes.
const WRITE: &str = "BEGIN IMMEDIATE";

/// SQLite behind [`MetadataStore`].
pub struct SqliteStore {
    pool: SqlitePool,
    /// The integration log's own connection, which commits without a sync to disk
    /// (`synchronous = NORMAL`): its entries already wait up to 200 ms in memory, a power loss
    /// may take the last commits of the log with it but leaves the database whole (WAL), and the
    /// syncs cost a loaded server about 3.5% of its calls. Every other write is synced.
    log: SqlitePool,
}

impl SqliteStore {
    async fn locks_where(&self, extension: Option<&str>) -> Result<Vec<xif_api::Lock>, StoreError> {
        let rows = sqlx::query(
            "SELECT extension, holder, since, lease_until FROM publication_locks \
             WHERE ?1 IS NULL OR extension = ?1 ORDER BY extension",
        )
        .bind(extension)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let lease_until: i64 = row.try_get("lease_until")?;
                Ok(xif_api::Lock {
                    extension: row.try_get("extension")?,
                    holder: row.try_get("holder")?,
                    since: row.try_get("since")?,
                    lease_until: crate::store::rfc3339_millis(lease_until),
                })
            })
            .collect()
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10))
            // No SQL text nor bound value (token hashes among them) in the server's log.
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        for (version, sql) in MIGRATIONS {
            let mut transaction = pool.begin().await?;
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *transaction)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(sql).execute(&mut *transaction).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))")
                    .bind(version)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
        }
        rewrite_old_log(&pool).await?;
        let log = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        Ok(Self { pool, log })
    }

    /// Whether the database at `path` holds this server's schema (looked at read-only, changing
    /// nothing); an error when it cannot be read.
    pub async fn initialised(path: &Path) -> Result<bool, StoreError> {
        use sqlx::Connection as _;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .read_only(true)
            .disable_statement_logging();
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .fetch_one(&mut connection)
        .await?;
        let applied: i64 = if tables == 0 {
            0
        } else {
            sqlx::query_scalar("SELECT count(*) FROM schema_migrations").fetch_one(&mut connection).await?
        };
        connection.close().await?;
        Ok(applied > 0)
    }

    /// Checks every page of the database (`PRAGMA quick_check`); the problems found, if any.
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check").fetch_all(&self.pool).await?;
        if problems.iter().all(|line| line == "ok") {
            Ok(())
        } else {
            Err(StoreError(problems.into_iter().take(5).collect::<Vec<_>>().join("; ")))
        }
    }
}

fn user(row: &SqliteRow) -> Result<UserRecord, sqlx::Error> {
    let mut permissions = Vec::new();
    if row.try_get::<bool, _>("allow_extensions")? {
        permissions.push(Permission::AllowExtensions);
    }
    if row.try_get::<bool, _>("allow_foreign_entities")? {
        permissions.push(Permission::AllowForeignEntities);
    }
    Ok(UserRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        administrator: row.try_get("administrator")?,
        permissions,
        created_at: row.try_get("created_at")?,
    })
}

fn version(row: &SqliteRow) -> Result<Version, sqlx::Error> {
    Ok(Version {
        extension: row.try_get("extension")?,
        number: row.try_get("number")?,
        declared_version: row.try_get("declared_version")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        uploaded_by: row.try_get("uploaded_by")?,
        uploaded_at: row.try_get("uploaded_at")?,
        published: row.try_get::<Option<i64>, _>("published_number")? == Some(row.try_get::<i64, _>("number")?),
        signed_by: row.try_get("signed_by")?,
    })
}

fn extension(row: &SqliteRow) -> Result<xif_api::Extension, sqlx::Error> {
    Ok(xif_api::Extension {
        name: row.try_get("name")?,
        published: row.try_get("published_number")?,
        versions: row.try_get("version_count")?,
        running: None,
        missing_configuration: Vec::new(),
    })
}

/// A query of versions with their extension's name and published number, `WHERE …` and the rest
/// appended.
macro_rules! versions_where {
    ($rest:literal) => {
        concat!(
            "SELECT e.name AS extension, e.published_number, v.number, v.declared_version, v.sha256, v.size, \
             v.uploaded_by, v.uploaded_at, v.signed_by FROM versions v JOIN extensions e ON e.id = v.extension_id ",
            $rest
        )
    };
}

/// The queries on the paths of listing and publishing, each answered through an index (a
/// test checks their plans), so that they cost the same with 10,000 versions as with ten.
mod hot {
    /// The version of an extension with a digest (upload: is it there already?).
    pub const VERSION_BY_DIGEST: &str = versions_where!("WHERE e.name = ? AND v.sha256 = ?");
    /// The number of an extension's next version: the end of the (extension, number) index.
    pub const NEXT_NUMBER: &str = "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE extension_id = ?";
    /// One version by extension id.
    pub const VERSION_BY_ID: &str = versions_where!("WHERE e.id = ? AND v.number = ?");
    /// One version by extension name.
    pub const VERSION: &str = versions_where!("WHERE e.name = ? AND v.number = ?");
    /// A page of an extension's versions. Numbers start at 1: 0 is before the first.
    pub const VERSIONS_PAGE: &str = versions_where!("WHERE e.name = ? AND v.number > ? ORDER BY v.number LIMIT ?");
    /// A page of the extensions. Names are never empty: '' is before the first. The range and
    /// the order are the name's index, in its collation (case-insensitive).
    pub const EXTENSIONS_PAGE: &str =
        "SELECT name, published_number, version_count FROM extensions WHERE name > ? ORDER BY name LIMIT ?";
    /// One extension.
    pub const EXTENSION: &str = "SELECT name, published_number, version_count FROM extensions WHERE name = ?";
    /// A page of an extension's publications. Ids start at 1.
    pub const PUBLICATIONS_PAGE: &str = "SELECT p.id, e.name, p.from_number, p.to_number, p.published_by, \
         p.published_at FROM publications p JOIN extensions e ON e.id = p.extension_id \
         WHERE e.name = ? AND p.id > ? ORDER BY p.id LIMIT ?";
    /// A page of the users, as [`EXTENSIONS_PAGE`].
    pub const USERS_PAGE: &str = "SELECT * FROM users WHERE name > ? ORDER BY name LIMIT ?";
    /// The modules that use an extension.
    pub const CONSUMERS: &str = "SELECT module, uses FROM module_dependencies WHERE extension = ? ORDER BY module";
    /// Every one of them, for the test of their plans.
    #[cfg(test)]
    pub const ALL: [&str; 10] = [
        VERSION_BY_DIGEST,
        NEXT_NUMBER,
        VERSION_BY_ID,
        VERSION,
        VERSIONS_PAGE,
        EXTENSIONS_PAGE,
        EXTENSION,
        PUBLICATIONS_PAGE,
        USERS_PAGE,
        CONSUMERS,
    ];
}

async fn extension_id(transaction: &mut Transaction<'_, Sqlite>, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT INTO extensions (name) VALUES (?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut **transaction)
        .await?;
    sqlx::query_scalar("SELECT id FROM extensions WHERE name = ?").bind(name).fetch_one(&mut **transaction).await
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn add_connection(&self, connection: &ConnectionRecord) -> Result<bool, StoreError> {
        let added = sqlx::query(
            "INSERT INTO database_connections (key, name, kind, sealed, redacted, added_by, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key) DO NOTHING",
        )
        .bind(connection.name.to_lowercase())
        .bind(&connection.name)
        .bind(&connection.kind)
        .bind(&connection.sealed)
        .bind(&connection.redacted)
        .bind(&connection.added_by)
        .bind(&connection.added_at)
        .execute(&self.pool)
        .await?;
        Ok(added.rows_affected() == 1)
    }

    async fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, kind, sealed, redacted, added_by, added_at FROM database_connections ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ConnectionRecord {
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    sealed: row.try_get("sealed")?,
                    redacted: row.try_get("redacted")?,
                    added_by: row.try_get("added_by")?,
                    added_at: row.try_get("added_at")?,
                })
            })
            .collect()
    }

    async fn remove_connection(&self, name: &str) -> Result<bool, StoreError> {
        let key = name.to_lowercase();
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM database_mappings WHERE connection_key = ?")
            .bind(&key)
            .execute(&mut *transaction)
            .await?;
        let removed =
            sqlx::query("DELETE FROM database_connections WHERE key = ?").bind(&key).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(removed.rows_affected() == 1)
    }

    async fn map_database(&self, mapping: &MappingRecord) -> Result<bool, StoreError> {
        // Only onto a connection that exists (the SELECT finds none otherwise).
        let mapped = sqlx::query(
            "INSERT INTO database_mappings \
             (extension_key, logical_key, extension, logical, connection_key, mapped_by, mapped_at) \
             SELECT ?1, ?2, ?3, ?4, key, ?6, ?7 FROM database_connections WHERE key = ?5 \
             ON CONFLICT (extension_key, logical_key) DO UPDATE SET extension = excluded.extension, \
             logical = excluded.logical, connection_key = excluded.connection_key, \
             mapped_by = excluded.mapped_by, mapped_at = excluded.mapped_at",
        )
        .bind(mapping.extension.to_lowercase())
        .bind(mapping.logical.to_lowercase())
        .bind(&mapping.extension)
        .bind(&mapping.logical)
        .bind(mapping.connection.to_lowercase())
        .bind(&mapping.mapped_by)
        .bind(&mapping.mapped_at)
        .execute(&self.pool)
        .await?;
        Ok(mapped.rows_affected() == 1)
    }

    async fn mappings(&self) -> Result<Vec<MappingRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.extension, m.logical, c.name AS connection, m.mapped_by, m.mapped_at \
             FROM database_mappings m JOIN database_connections c ON c.key = m.connection_key \
             ORDER BY m.extension_key, m.logical_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MappingRecord {
                    extension: row.try_get("extension")?,
                    logical: row.try_get("logical")?,
                    connection: row.try_get("connection")?,
                    mapped_by: row.try_get("mapped_by")?,
                    mapped_at: row.try_get("mapped_at")?,
                })
            })
            .collect()
    }

    async fn close(&self) {
        self.log.close().await;
        self.pool.close().await;
    }

    async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        administrator: bool,
        permissions: &[Permission],
        now: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, administrator, allow_extensions, allow_foreign_entities, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(administrator)
        .bind(permissions.contains(&Permission::AllowExtensions))
        .bind(permissions.contains(&Permission::AllowForeignEntities))
        .bind(now)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        self.user(name).await
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE name = ?").bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    async fn users(&self, page: &Page<String>) -> Result<Vec<UserRecord>, StoreError> {
        // Names are never empty: '' is before the first. The range is read by the name's index,
        // in its collation (case-insensitive), which the order uses too.
        let rows = sqlx::query(hot::USERS_PAGE)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
    }

    async fn set_permissions(&self, name: &str, permissions: &[Permission]) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE users SET allow_extensions = ?, allow_foreign_entities = ? WHERE name = ?")
            .bind(permissions.contains(&Permission::AllowExtensions))
            .bind(permissions.contains(&Permission::AllowForeignEntities))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM users WHERE name = ?").bind(name).execute(&self.pool).await?;
        Ok(removed.rows_affected() > 0)
    }

    async fn create_token(&self, token: NewToken<'_>) -> Result<i64, StoreError> {
        let scope = token.scope.map(TokenScope::columns).transpose()?;
        Ok(sqlx::query_scalar(
            "INSERT INTO tokens (user_id, token_hash, label, created_at, expires_at, module, extensions) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(token.user_id)
        .bind(token.hash)
        .bind(token.label)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(scope.as_ref().map(|(module, _)| module.as_str()))
        .bind(scope.as_ref().map(|(_, extensions)| extensions.as_str()))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn token_user(&self, hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT u.*, t.id AS token_id, t.expires_at AS token_expires_at, t.module AS token_module, \
             t.extensions AS token_extensions FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TokenOwner {
            user: user(&row)?,
            expires_at: row.try_get("token_expires_at")?,
            token_id: row.try_get("token_id")?,
            scope: TokenScope::from_columns(row.try_get("token_module")?, row.try_get("token_extensions")?)?,
        }))
    }

    async fn tokens(&self, user_id: i64) -> Result<Vec<xif_api::Token>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, label, created_at, revoked_at, expires_at, module, extensions FROM tokens WHERE user_id = ? ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let tokens = rows
            .iter()
            .map(|row| {
                let scope = TokenScope::from_columns(row.try_get("module")?, row.try_get("extensions")?)?;
                let (module, extensions) =
                    scope.map_or((None, Vec::new()), |scope| (Some(scope.module), scope.extensions));
                Ok(xif_api::Token {
                    id: row.try_get("id")?,
                    label: row.try_get("label")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    expires_at: row.try_get("expires_at")?,
                    module,
                    extensions,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(tokens)
    }

    async fn revoke_token(&self, user_id: i64, token_id: i64, now: &str) -> Result<bool, StoreError> {
        let revoked =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(token_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(revoked.rows_affected() > 0)
    }

    async fn version_by_digest(&self, extension: &str, sha256: &str) -> Result<Option<Version>, StoreError> {
        let row = sqlx::query(hot::VERSION_BY_DIGEST).bind(extension).bind(sha256).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(version).transpose()?)
    }

    async fn insert_version(&self, new: NewVersion) -> Result<Version, StoreError> {
        let mut transaction = self.pool.begin_with(WRITE).await?;
        let id = extension_id(&mut transaction, &new.extension).await?;
        // The last number, read from the end of the (extension, number) index.
        let number: i64 = sqlx::query_scalar(hot::NEXT_NUMBER).bind(id).fetch_one(&mut *transaction).await?;
        sqlx::query("UPDATE extensions SET version_count = version_count + 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO versions (extension_id, number, declared_version, sha256, size, uploaded_by, uploaded_at, \
             signed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(number)
        .bind(&new.declared_version)
        .bind(&new.sha256)
        .bind(new.size)
        .bind(&new.uploaded_by)
        .bind(&new.uploaded_at)
        .bind(&new.signed_by)
        .execute(&mut *transaction)
        .await?;
        let row = sqlx::query(hot::VERSION_BY_ID).bind(id).bind(number).fetch_one(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(version(&row)?)
    }

    async fn versions(&self, extension: &str, page: &Page<i64>) -> Result<Vec<Version>, StoreError> {
        // Numbers start at 1. Read by the (extension, number) index from the cursor on.
        let rows = sqlx::query(hot::VERSIONS_PAGE)
            .bind(extension)
            .bind(page.after.unwrap_or(0))
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(version).collect::<Result<_, _>>()?)
    }

    async fn version(&self, extension: &str, number: i64) -> Result<Option<Version>, StoreError> {
        let row = sqlx::query(hot::VERSION).bind(extension).bind(number).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(version).transpose()?)
    }

    async fn extensions(&self, page: &Page<String>) -> Result<Vec<xif_api::Extension>, StoreError> {
        let rows = sqlx::query(hot::EXTENSIONS_PAGE)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(extension).collect::<Result<_, _>>()?)
    }

    async fn extension(&self, name: &str) -> Result<Option<xif_api::Extension>, StoreError> {
        let row = sqlx::query(hot::EXTENSION).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(extension).transpose()?)
    }

    async fn lock(&self, request: &LockRequest<'_>) -> Result<Result<(), xif_api::Lock>, StoreError> {
        // Taken when free, or when the lease of its holder ran out (the holder died).
        let taken = sqlx::query(
            "INSERT INTO publication_locks (extension, holder, since, owner, lease_until) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (extension) DO UPDATE SET holder = excluded.holder, since = excluded.since, \
             owner = excluded.owner, lease_until = excluded.lease_until \
             WHERE publication_locks.lease_until < ?",
        )
        .bind(request.extension)
        .bind(request.holder)
        .bind(request.now)
        .bind(request.owner)
        .bind(request.lease_until)
        .bind(request.now_millis)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let lock = self.locks_where(Some(request.extension)).await?.into_iter().next();
        Ok(Err(lock.unwrap_or_else(|| xif_api::Lock {
            extension: request.extension.to_owned(),
            holder: "another publication".into(),
            since: request.now.to_owned(),
            lease_until: request.now.to_owned(),
        })))
    }

    async fn renew_lock(&self, extension: &str, owner: &str, lease_until: i64) -> Result<bool, StoreError> {
        let renewed = sqlx::query("UPDATE publication_locks SET lease_until = ? WHERE extension = ? AND owner = ?")
            .bind(lease_until)
            .bind(extension)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn unlock(&self, extension: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publication_locks WHERE extension = ? AND owner = ?")
            .bind(extension)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn break_lock(&self, extension: &str) -> Result<Option<xif_api::Lock>, StoreError> {
        let lock = self.locks_where(Some(extension)).await?.into_iter().next();
        sqlx::query("DELETE FROM publication_locks WHERE extension = ?").bind(extension).execute(&self.pool).await?;
        Ok(lock)
    }

    async fn locks(&self) -> Result<Vec<xif_api::Lock>, StoreError> {
        self.locks_where(None).await
    }

    async fn clear_locks(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publication_locks").execute(&self.pool).await?;
        Ok(())
    }

    async fn publish(
        &self,
        extension: &str,
        expected: Option<i64>,
        to: i64,
        by: &str,
        now: &str,
    ) -> Result<Result<Publication, PublishRefusal>, StoreError> {
        let mut transaction = self.pool.begin_with(WRITE).await?;
        let row = sqlx::query("SELECT id, published_number FROM extensions WHERE name = ?")
            .bind(extension)
            .fetch_one(&mut *transaction)
            .await?;
        let id: i64 = row.try_get("id")?;
        let actual: Option<i64> = row.try_get("published_number")?;
        if actual != expected {
            return Ok(Err(PublishRefusal::Stale { actual }));
        }
        sqlx::query("UPDATE extensions SET published_number = ? WHERE id = ?")
            .bind(to)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO publications (extension_id, from_number, to_number, published_by, published_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(actual)
        .bind(to)
        .bind(by)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Ok(Publication { extension: extension.to_owned(), from: actual, to, by: by.to_owned(), at: now.to_owned() }))
    }

    async fn set_dependencies(&self, module: &str, dependencies: &[xif_api::Dependency]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM module_dependencies WHERE module = ?").bind(module).execute(&mut *transaction).await?;
        for dependency in dependencies {
            let uses = serde_json::to_string(dependency).map_err(|error| StoreError(error.to_string()))?;
            sqlx::query("INSERT INTO module_dependencies (module, extension, version, uses) VALUES (?, ?, ?, ?)")
                .bind(module)
                .bind(&dependency.extension)
                .bind(dependency.version)
                .bind(uses)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn every_consumer_version(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT extension, version FROM module_dependencies").fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get::<String, _>("extension")?, row.try_get::<i64, _>("version")?))).collect()
    }

    async fn consumers(&self, extension: &str) -> Result<Vec<(String, xif_api::Dependency)>, StoreError> {
        let rows = sqlx::query(hot::CONSUMERS).bind(extension).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let module: String = row.try_get("module")?;
                let uses: String = row.try_get("uses")?;
                let dependency = serde_json::from_str(&uses).map_err(|error| StoreError(error.to_string()))?;
                Ok((module, dependency))
            })
            .collect()
    }

    async fn insert_calls(&self, calls: &[crate::calllog::CallEntry], node: &str) -> Result<(), StoreError> {
        // On the log's own connection, a row for each extension's entries (see `callsegments`).
        let mut transaction = self.log.begin_with(WRITE).await?;
        insert_segments(&mut transaction, calls, Some(node)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn calls(&self, query: &CallQuery<'_>) -> Result<crate::store::CallsFound, StoreError> {
        if query.limit == 0 {
            return Ok(crate::store::CallsFound { entries: Vec::new(), resume_before: None });
        }
        // Newest first, by the (extension, id) index, skipping the segments that cannot hold a
        // match by their columns; read until the page is full.
        let rows = sqlx::query(
            "SELECT id, extension, node, count, entries FROM call_segments WHERE extension = ?1 \
             AND (?2 IS NULL OR id <= ?2) AND (?3 IS NULL OR last_at >= ?3) AND (NOT ?4 OR failed > 0) \
             ORDER BY id DESC",
        )
        .bind(query.extension)
        .bind(crate::callsegments::segment_of(query.before_id))
        .bind(query.since_micros)
        .bind(query.failed)
        .fetch(&self.pool);
        crate::callsegments::read(rows, query).await
    }

    async fn sweep_calls(&self, before_micros: i64) -> Result<u64, StoreError> {
        // The segments all older than the retention go whole; those that began before it are
        // written again without their old entries.
        let mut transaction = self.pool.begin_with(WRITE).await?;
        let whole: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(count), 0) FROM call_segments WHERE first_at < ?1 AND last_at < ?1",
        )
        .bind(before_micros)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM call_segments WHERE first_at < ?1 AND last_at < ?1")
            .bind(before_micros)
            .execute(&mut *transaction)
            .await?;
        let mut removed = u64::try_from(whole).unwrap_or(0);
        let straddling = sqlx::query("SELECT id, entries FROM call_segments WHERE first_at < ?1")
            .bind(before_micros)
            .fetch_all(&mut *transaction)
            .await?;
        for row in straddling {
            let id: i64 = row.try_get("id")?;
            let pruned = crate::callsegments::prune(id, row.try_get("entries")?, before_micros)?;
            removed += pruned.removed;
            if pruned.count == 0 {
                sqlx::query("DELETE FROM call_segments WHERE id = ?").bind(id).execute(&mut *transaction).await?;
            } else {
                sqlx::query(
                    "UPDATE call_segments SET first_at = ?, last_at = ?, count = ?, failed = ?, entries = ? WHERE id = ?",
                )
                .bind(pruned.first_at)
                .bind(pruned.last_at)
                .bind(pruned.count)
                .bind(pruned.failed)
                .bind(&pruned.entries)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            }
        }
        transaction.commit().await?;
        Ok(removed)
    }

    async fn publications(&self, extension: &str, page: &Page<i64>) -> Result<Vec<PublicationRecord>, StoreError> {
        // Ids start at 1. Read by the (extension, id) index from the cursor on.
        let rows = sqlx::query(hot::PUBLICATIONS_PAGE)
            .bind(extension)
            .bind(page.after.unwrap_or(0))
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await?;
        let publications = rows
            .iter()
            .map(|row| {
                Ok(PublicationRecord {
                    id: row.try_get("id")?,
                    publication: Publication {
                        extension: row.try_get("name")?,
                        from: row.try_get("from_number")?,
                        to: row.try_get("to_number")?,
                        by: row.try_get("published_by")?,
                        at: row.try_get("published_at")?,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(publications)
    }
}

/// Inserts `calls` as segments, served by `node`.
async fn insert_segments(
    transaction: &mut Transaction<'_, Sqlite>,
    calls: &[crate::calllog::CallEntry],
    node: Option<&str>,
) -> Result<(), StoreError> {
    for segment in crate::callsegments::segments(calls)? {
        sqlx::query(
            "INSERT INTO call_segments (extension, first_at, last_at, count, failed, node, entries) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(segment.extension)
        .bind(segment.first_at)
        .bind(segment.last_at)
        .bind(segment.count)
        .bind(segment.failed)
        .bind(node)
        .bind(&segment.entries)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// Moves the integration log of earlier versions (a row per entry, table `calls`) to segments,
/// [`OLD_ROWS_AT_ONCE`](crate::callsegments::OLD_ROWS_AT_ONCE) rows a transaction (a start
/// stopped half-way goes on where it was at the next), then drops its table: once, when the
/// store first opens after migration 10.
async fn rewrite_old_log(pool: &SqlitePool) -> Result<(), StoreError> {
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'")
        .fetch_one(pool)
        .await?;
    if tables == 0 {
        return Ok(());
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(pool).await?;
    let mut progress = crate::callsegments::OldLogMove::start(total);
    loop {
        let mut transaction = pool.begin_with(WRITE).await?;
        let rows = sqlx::query(
            "SELECT id, at, extension, module, user_name, token_id, kind, operation, duration_us, error, node \
             FROM calls ORDER BY id LIMIT ?",
        )
        .bind(crate::callsegments::OLD_ROWS_AT_ONCE)
        .fetch_all(&mut *transaction)
        .await?;
        let Some(last) = rows.last() else { break };
        let last: i64 = last.try_get("id")?;
        let (runs, unreadable) = crate::callsegments::old_runs(&rows);
        for (node, entries) in runs {
            insert_segments(&mut transaction, &entries, node.as_deref()).await?;
        }
        // What was read, the first rows by id: nothing else writes meanwhile (the write lock).
        sqlx::query("DELETE FROM calls WHERE id <= ?").bind(last).execute(&mut *transaction).await?;
        transaction.commit().await?;
        progress.moved(rows.len(), unreadable);
    }
    sqlx::query("DROP TABLE calls").execute(pool).await?;
    progress.end();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MIGRATIONS, SqliteStore, hot};
    use crate::store::{MetadataStore as _, Page};

    /// Every extension is read in pages, however many pages (here one full and one of one).
    #[tokio::test]
    async fn every_extension_is_read_across_pages() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&directory.path().join("metadata.sqlite")).await.expect("opens");
        let count = xif_api::PAGE_LIMIT_MAX as usize + 1;
        for index in 0..count {
            store
                .insert_version(crate::store::NewVersion {
                    extension: format!("E{index:04}"),
                    declared_version: "1".into(),
                    sha256: "a".into(),
                    size: 1,
                    uploaded_by: "x".into(),
                    uploaded_at: "now".into(),
                    signed_by: None,
                })
                .await
                .expect("inserted");
        }
        let names: Vec<String> = crate::store::every_extension(&store)
            .await
            .expect("listed")
            .into_iter()
            .map(|extension| extension.name)
            .collect();
        assert_eq!(names, (0..count).map(|index| format!("E{index:04}")).collect::<Vec<_>>());
    }

    /// A connection to a new database at `path` with the migrations before `version` applied,
    /// as an earlier version of the server left it.
    async fn migrated_before(path: &std::path::Path, version: i64) -> sqlx::SqliteConnection {
        use sqlx::Connection as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await.expect("a connection");
        sqlx::raw_sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            .execute(&mut connection)
            .await
            .expect("made");
        for (applied, sql) in MIGRATIONS.iter().take_while(|(applied, _)| *applied < version) {
            sqlx::raw_sql(sql).execute(&mut connection).await.expect("migrated");
            sqlx::query("INSERT INTO schema_migrations VALUES (?, 'then')")
                .bind(applied)
                .execute(&mut connection)
                .await
                .expect("recorded");
        }
        connection
    }

    /// A database made before the growth migration (6) has its extensions' numbers of versions
    /// counted by it, and kept from then on.
    #[tokio::test]
    async fn the_growth_migration_counts_the_versions_already_there() {
        use sqlx::Connection as _;
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("metadata.sqlite");
        let mut connection = migrated_before(&path, 6).await;
        sqlx::raw_sql(
            "INSERT INTO extensions (id, name) VALUES (1, 'Old'), (2, 'Empty'); \
             INSERT INTO versions (extension_id, number, declared_version, sha256, size, uploaded_by, uploaded_at) \
             VALUES (1, 1, '1', 'a', 1, 'x', 'then'), (1, 2, '2', 'b', 1, 'x', 'then'), (1, 3, '3', 'c', 1, 'x', 'then');",
        )
        .execute(&mut connection)
        .await
        .expect("inserted");
        connection.close().await.expect("closed");

        let store = SqliteStore::open(&path).await.expect("opens and migrates");
        let counts = |extensions: Vec<xif_api::Extension>| {
            extensions.into_iter().map(|extension| (extension.name, extension.versions)).collect::<Vec<_>>()
        };
        let listed = store.extensions(&Page::first(10)).await.expect("listed");
        assert_eq!(counts(listed), [("Empty".to_owned(), 0), ("Old".to_owned(), 3)]);
        store
            .insert_version(crate::store::NewVersion {
                extension: "old".into(),
                declared_version: "4".into(),
                sha256: "d".into(),
                size: 1,
                uploaded_by: "x".into(),
                uploaded_at: "now".into(),
                signed_by: None,
            })
            .await
            .expect("inserted");
        let old = store.extension("OLD").await.expect("read").expect("there");
        assert_eq!((old.name.as_str(), old.versions), ("Old", 4));
    }

    /// A database of a version that kept the integration log a row per entry has its entries
    /// moved to segments when the store opens (across several reads of the old table,
    /// two extensions and two nodes), read back as they were, newest first, and the old table
    /// dropped.
    #[tokio::test]
    async fn the_old_integration_log_is_kept_as_segments() {
        use sqlx::Connection as _;
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("metadata.sqlite");
        let mut connection = migrated_before(&path, 10).await;
        let now = crate::store::micros(std::time::SystemTime::now());
        let rows = crate::callsegments::OLD_LOG.replace("{now}", &now.to_string()).replace("{n}", "n");
        sqlx::raw_sql(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) {rows}"
        ))
        .execute(&mut connection)
        .await
        .expect("inserted");
        connection.close().await.expect("closed");

        let store = SqliteStore::open(&path).await.expect("opens and migrates");
        let echo = crate::callsegments::check_old_log(&store, now).await;
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'calls'")
            .fetch_one(&store.pool)
            .await
            .expect("read");
        assert_eq!(tables, 0, "the old table is gone");
        drop(store);
        let again = SqliteStore::open(&path).await.expect("opens again");
        assert_eq!(crate::callsegments::check_old_log(&again, now).await, echo, "opened again, the same entries");
    }

    /// A query whose entries are few among many (a module's) decodes a bounded number of entries
    /// a page: it answers a short page with where to go on from, and following those finds the
    /// entry, in a few pages rather than one unbounded request.
    #[tokio::test]
    async fn a_query_reads_a_bounded_number_of_entries_a_page() {
        use crate::calllog::{CallEntry, CallKind};
        let directory = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&directory.path().join("metadata.sqlite")).await.expect("opens");
        let entry = |module: &str| CallEntry {
            at: std::time::SystemTime::now(),
            extension: "Echo".into(),
            module: Some(module.into()),
            user: "ada".into(),
            token_id: Some(1),
            kind: CallKind::Action,
            operation: "Say".into(),
            duration: std::time::Duration::from_micros(5),
            error: None,
        };
        store.insert_calls(&[entry("Shop")], "n").await.expect("written");
        let others: Vec<CallEntry> = (0..crate::callsegments::MAX_ENTRIES).map(|_| entry("Other")).collect();
        let batches = usize::try_from(crate::callsegments::SCAN_MOST).expect("small") / others.len() * 3 / 2;
        for _ in 0..batches {
            store.insert_calls(&others, "n").await.expect("written");
        }
        let mut query = crate::store::CallQuery {
            module: Some("Shop"),
            owner: Some("ada"),
            ..crate::store::CallQuery::every("Echo", 10)
        };
        let first = store.calls(&query).await.expect("read");
        assert!(first.entries.is_empty() && first.resume_before.is_some(), "a short page that goes on: {first:?}");
        let mut pages = 1;
        let found = loop {
            let page = store.calls(&query).await.expect("read");
            if !page.entries.is_empty() || page.resume_before.is_none() {
                break page;
            }
            assert!(page.resume_before < query.before_id.or(Some(i64::MAX)), "each page goes on further");
            query.before_id = page.resume_before;
            pages += 1;
        };
        assert_eq!(found.entries.len(), 1, "the module's one entry: {found:?}");
        assert_eq!(found.resume_before, None, "then the end of the log");
        assert!((2..=3).contains(&pages), "{pages} pages");

        // A log of small segments (a quiet server's): the rows are counted too.
        let small = SqliteStore::open(&directory.path().join("small.sqlite")).await.expect("opens");
        small.insert_calls(&[entry("Shop")], "n").await.expect("written");
        for _ in 0..=crate::callsegments::SEGMENTS_MOST {
            small.insert_calls(&[entry("Other")], "n").await.expect("written");
        }
        query.before_id = None;
        let first = small.calls(&query).await.expect("read");
        assert!(first.entries.is_empty() && first.resume_before.is_some(), "a short page that goes on: {first:?}");
        query.before_id = first.resume_before;
        let next = small.calls(&query).await.expect("read");
        assert_eq!((next.entries.len(), next.resume_before), (1, None), "the module's entry on the next page");
    }

    /// Each query on the paths of listing and publishing is answered through an index: its
    /// plan scans no table and sorts nothing (`SCAN` without an index, `USE TEMP B-TREE`).
    #[tokio::test]
    async fn the_hot_queries_are_answered_through_indexes() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&directory.path().join("metadata.sqlite")).await.expect("opens");
        // Statistics as in a grown database, so that the planner chooses as it would there.
        sqlx::query("ANALYZE").execute(&store.pool).await.expect("analysed");
        for query in hot::ALL {
            let parameters = query.matches('?').count();
            let explain = format!("EXPLAIN QUERY PLAN {query}");
            let mut plan = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
            for _ in 0..parameters {
                plan = plan.bind(1_i64);
            }
            let steps: Vec<String> =
                plan.fetch_all(&store.pool).await.expect("a plan").into_iter().map(|step| step.3).collect();
            for step in &steps {
                let scan = step.starts_with("SCAN") && !step.contains("USING");
                assert!(!scan && !step.contains("TEMP B-TREE"), "{query}\n{steps:#?}");
            }
        }
    }
}
