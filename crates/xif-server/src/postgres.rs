//! Metadata in PostgreSQL, for a farm of servers sharing one database: the same behaviour as
//! [`SqliteStore`](crate::SqliteStore), made safe for several processes at once by the database
//! itself (row locks, unique constraints, atomic upserts), with its schema in
//! `migrations/postgres/`.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, Row, Transaction};
use xif_api::{Permission, Publication, Version};

use crate::store::{
    CallQuery, ConnectionRecord, LockRequest, MappingRecord, MetadataStore, NewToken, NewVersion, Page,
    PublicationRecord, PublishRefusal, StoreError, TokenOwner, TokenScope, UserRecord,
};

/// The schema, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "growth", include_str!("../migrations/postgres/0002_growth.sql")),
    // The farm's tables (`cluster/postgres.rs`), numbered from 100 apart from the store's own.
    (100, "nodes", include_str!("../migrations/postgres/0100_nodes.sql")),
    (101, "farm settings", include_str!("../migrations/postgres/0101_farm_settings.sql")),
    (102, "connections", include_str!("../migrations/postgres/0102_connections.sql")),
    (103, "scopes and calls", include_str!("../migrations/postgres/0103_scopes_and_calls.sql")),
    (104, "call segments", include_str!("../migrations/postgres/0104_call_segments.sql")),
];

/// How long a request waits for a connection before the database counts as unavailable (503):
/// short, so that an outage is reported at once rather than hanging every request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections each server keeps at most.
const MAX_CONNECTIONS: u32 = 16;

/// PostgreSQL behind [`MetadataStore`].
pub struct PgStore {
    pool: PgPool,
}

/// `url` with its password (in the user part, or any parameter whose name has `password` in it:
/// `password`, `sslpassword`) replaced by `***`, to be shown in errors and logs.
pub fn redact(url: &str) -> String {
    let scheme_only = || match url.split_once("://") {
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            format!("{scheme}://…")
        }
        _ => "(a database URL)".to_owned(),
    };
    // Not a URL with a host: nothing of it is shown but its scheme, which holds no secret.
    let Some(mut parsed) = url::Url::parse(url).ok().filter(|parsed| parsed.has_host()) else {
        return scheme_only();
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have a password, which this one has.
        parsed.set_password(Some("***")).ok();
    }
    let secret = |key: &str| key.to_ascii_lowercase().contains("password");
    if parsed.query_pairs().any(|(key, _)| secret(&key)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if secret(&key) { "***".to_owned() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`) and
    /// brings its schema up to date. Errors do not repeat the URL (the caller names it, through
    /// [`redact`]). Several servers may do so at once: the migrations run under
    /// an advisory lock of the database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // No SQL text nor bound value (token hashes among them) in the server's log.
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StoreError(format!("the URL is not valid: {error}")))?
            .disable_statement_logging();
        // One connection first, whose failure says why (refused, unknown host, authentication),
        // where the pool's would only say that it timed out.
        let connection = PgConnection::connect_with(&options)
            .await
            .map_err(|error| StoreError(format!("cannot connect: {error}")))?;
        connection.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect::<Vec<_>>();
        // Built by hand rather than by `sqlx::migrate!`, whose macro would bring sqlx's
        // compile-time query machinery into every build; the migrator is sqlx's all the same
        // (its `_sqlx_migrations` table, checksums, and an advisory lock against concurrent
        // starts).
        let migrator =
            Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false };
        migrator
            .run(&pool)
            .await
            .map_err(|error| StoreError(format!("cannot bring its schema up to date: {error}")))?;
        rewrite_old_log(&pool).await?;
        Ok(Self { pool })
    }

    async fn locks_where(&self, extension: Option<&str>) -> Result<Vec<xif_api::Lock>, StoreError> {
        let rows = sqlx::query(
            "SELECT extension, holder, since, lease_until FROM publication_locks \
             WHERE $1::text IS NULL OR lower(extension) = lower($1) ORDER BY lower(extension) COLLATE \"C\"",
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
}

fn user(row: &PgRow) -> Result<UserRecord, sqlx::Error> {
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

fn version(row: &PgRow) -> Result<Version, sqlx::Error> {
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

fn extension(row: &PgRow) -> Result<xif_api::Extension, sqlx::Error> {
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

/// The queries on the paths of listing and publishing, each answered through an index (a test
/// checks their plans), as SQLite's. Names are compared by `lower(name)`, the expression of the
/// unique indexes; pages of names are in its byte order (`COLLATE "C"`), the expression of the
/// order indexes of migration 2. Names are never empty and numbers and ids start at 1, so `''`
/// and 0 are before the first.
mod hot {
    /// The version of an extension with a digest (upload: is it there already?).
    pub const VERSION_BY_DIGEST: &str = versions_where!("WHERE lower(e.name) = lower($1) AND v.sha256 = $2");
    /// The number of an extension's next version: the end of the (extension, number) index.
    pub const NEXT_NUMBER: &str = "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE extension_id = $1";
    /// One version by extension id.
    pub const VERSION_BY_ID: &str = versions_where!("WHERE e.id = $1 AND v.number = $2");
    /// One version by extension name.
    pub const VERSION: &str = versions_where!("WHERE lower(e.name) = lower($1) AND v.number = $2");
    /// A page of an extension's versions. The extension's id is found first (a join on its name
    /// would have the planner sort every version after the cursor, not knowing that one
    /// extension has that name), then the (extension, number) index is read in order.
    pub const VERSIONS_PAGE: &str = versions_where!(
        "WHERE v.extension_id = (SELECT id FROM extensions WHERE lower(name) = lower($1)) AND v.number > $2 \
         ORDER BY v.number LIMIT $3"
    );
    /// A page of the extensions.
    pub const EXTENSIONS_PAGE: &str = "SELECT name, published_number, version_count FROM extensions \
         WHERE lower(name) COLLATE \"C\" > lower($1) COLLATE \"C\" ORDER BY lower(name) COLLATE \"C\" LIMIT $2";
    /// One extension.
    pub const EXTENSION: &str =
        "SELECT name, published_number, version_count FROM extensions WHERE lower(name) = lower($1)";
    /// A page of an extension's publications, as [`VERSIONS_PAGE`].
    pub const PUBLICATIONS_PAGE: &str = "SELECT p.id, e.name, p.from_number, p.to_number, p.published_by, \
         p.published_at FROM publications p JOIN extensions e ON e.id = p.extension_id \
         WHERE p.extension_id = (SELECT id FROM extensions WHERE lower(name) = lower($1)) AND p.id > $2 \
         ORDER BY p.id LIMIT $3";
    /// A page of the users.
    pub const USERS_PAGE: &str = "SELECT * FROM users WHERE lower(name) COLLATE \"C\" > lower($1) COLLATE \"C\" \
         ORDER BY lower(name) COLLATE \"C\" LIMIT $2";
    /// The modules that use an extension.
    pub const CONSUMERS: &str = "SELECT module, uses FROM module_dependencies WHERE lower(extension) = lower($1) \
         ORDER BY lower(module) COLLATE \"C\"";
    /// Every one of them, with the types of their parameters, for the test of their plans.
    #[cfg(test)]
    pub const ALL: [(&str, &[&str]); 10] = [
        (VERSION_BY_DIGEST, &["text", "text"]),
        (NEXT_NUMBER, &["bigint"]),
        (VERSION_BY_ID, &["bigint", "bigint"]),
        (VERSION, &["text", "bigint"]),
        (VERSIONS_PAGE, &["text", "bigint", "bigint"]),
        (EXTENSIONS_PAGE, &["text", "bigint"]),
        (EXTENSION, &["text"]),
        (PUBLICATIONS_PAGE, &["text", "bigint", "bigint"]),
        (USERS_PAGE, &["text", "bigint"]),
        (CONSUMERS, &["text"]),
    ];
}

/// The id of the extension `name`, made if new, with its row locked until `transaction` ends:
/// uploads of one extension are numbered one after the other, whichever server takes them.
/// Whether `name` can be compared with the stored names by `lower(name)`: names are ASCII by
/// rule (user names, and the definition's names of extensions), and PostgreSQL's `lower` folds
/// more than ASCII under most collations (`lower('admİn')` is `admin` under glibc's), so a name
/// that is not ASCII would find another's row; and a NUL is an error in PostgreSQL text.
/// Such a name is found nowhere.
fn comparable(name: &str) -> bool {
    name.is_ascii() && !name.contains('\0')
}

async fn lock_extension(transaction: &mut Transaction<'_, Postgres>, name: &str) -> Result<i64, sqlx::Error> {
    // `DO UPDATE` (to the same value) rather than `DO NOTHING`, because it locks the existing row
    // and returns its id; a concurrent insert of the same name waits for this one, then updates.
    sqlx::query_scalar(
        "INSERT INTO extensions (name) VALUES ($1) ON CONFLICT ((lower(name))) DO UPDATE SET name = extensions.name \
         RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut **transaction)
    .await
}

#[async_trait]
impl MetadataStore for PgStore {
    async fn add_connection(&self, connection: &ConnectionRecord) -> Result<bool, StoreError> {
        let added = sqlx::query(
            "INSERT INTO database_connections (key, name, kind, sealed, redacted, added_by, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
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
        sqlx::query("DELETE FROM database_mappings WHERE connection_key = $1")
            .bind(&key)
            .execute(&mut *transaction)
            .await?;
        let removed = sqlx::query("DELETE FROM database_connections WHERE key = $1")
            .bind(&key)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(removed.rows_affected() == 1)
    }

    async fn map_database(&self, mapping: &MappingRecord) -> Result<bool, StoreError> {
        // Only onto a connection that exists (the SELECT finds none otherwise).
        let mapped = sqlx::query(
            "INSERT INTO database_mappings \
             (extension_key, logical_key, extension, logical, connection_key, mapped_by, mapped_at) \
             SELECT $1, $2, $3, $4, key, $6, $7 FROM database_connections WHERE key = $5 \
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
        // A concurrent insert of the same name waits for this one, then does nothing: exactly one
        // of several servers bootstrapping at once makes the first administrator.
        let row = sqlx::query(
            "INSERT INTO users (name, password_hash, administrator, allow_extensions, allow_foreign_entities, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ((lower(name))) DO NOTHING RETURNING *",
        )
        .bind(name)
        .bind(password_hash)
        .bind(administrator)
        .bind(permissions.contains(&Permission::AllowExtensions))
        .bind(permissions.contains(&Permission::AllowForeignEntities))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        if !comparable(name) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM users WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    async fn users(&self, page: &Page<String>) -> Result<Vec<UserRecord>, StoreError> {
        // Names are never empty: '' is before the first. The range and the order are those of
        // the index `users_name_order` (migration 2).
        let rows = sqlx::query(hot::USERS_PAGE)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
    }

    async fn set_permissions(&self, name: &str, permissions: &[Permission]) -> Result<bool, StoreError> {
        if !comparable(name) {
            return Ok(false);
        }
        let updated = sqlx::query(
            "UPDATE users SET allow_extensions = $1, allow_foreign_entities = $2 WHERE lower(name) = lower($3)",
        )
        .bind(permissions.contains(&Permission::AllowExtensions))
        .bind(permissions.contains(&Permission::AllowForeignEntities))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        if !comparable(name) {
            return Ok(false);
        }
        let removed =
            sqlx::query("DELETE FROM users WHERE lower(name) = lower($1)").bind(name).execute(&self.pool).await?;
        Ok(removed.rows_affected() > 0)
    }

    async fn create_token(&self, token: NewToken<'_>) -> Result<i64, StoreError> {
        let scope = token.scope.map(TokenScope::columns).transpose()?;
        Ok(sqlx::query_scalar(
            "INSERT INTO tokens (user_id, token_hash, label, created_at, expires_at, module, extensions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
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
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
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
            "SELECT id, label, created_at, revoked_at, expires_at, module, extensions FROM tokens WHERE user_id = $1 ORDER BY id",
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
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(token_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(revoked.rows_affected() > 0)
    }

    async fn version_by_digest(&self, extension: &str, sha256: &str) -> Result<Option<Version>, StoreError> {
        if !comparable(extension) {
            return Ok(None);
        }
        let row = sqlx::query(hot::VERSION_BY_DIGEST).bind(extension).bind(sha256).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(version).transpose()?)
    }

    async fn insert_version(&self, new: NewVersion) -> Result<Version, StoreError> {
        let mut transaction = self.pool.begin().await?;
        // The extension's row stays locked until the commit: the next number is read and used
        // by one upload at a time (read committed: each statement sees what committed before it).
        let id = lock_extension(&mut transaction, &new.extension).await?;
        let number: i64 = sqlx::query_scalar(hot::NEXT_NUMBER).bind(id).fetch_one(&mut *transaction).await?;
        sqlx::query("UPDATE extensions SET version_count = version_count + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO versions (extension_id, number, declared_version, sha256, size, uploaded_by, uploaded_at, \
             signed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        if !comparable(extension) {
            return Ok(Vec::new());
        }
        // Numbers start at 1. Read by the (extension, number) index from the cursor on.
        let rows = sqlx::query(hot::VERSIONS_PAGE)
            .bind(extension)
            .bind(page.after.unwrap_or(0))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(version).collect::<Result<_, _>>()?)
    }

    async fn version(&self, extension: &str, number: i64) -> Result<Option<Version>, StoreError> {
        if !comparable(extension) {
            return Ok(None);
        }
        let row = sqlx::query(hot::VERSION).bind(extension).bind(number).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(version).transpose()?)
    }

    async fn extensions(&self, page: &Page<String>) -> Result<Vec<xif_api::Extension>, StoreError> {
        // As `users`: by the index `extensions_name_order` (migration 2).
        let rows = sqlx::query(hot::EXTENSIONS_PAGE)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(extension).collect::<Result<_, _>>()?)
    }

    async fn extension(&self, name: &str) -> Result<Option<xif_api::Extension>, StoreError> {
        if !comparable(name) {
            return Ok(None);
        }
        let row = sqlx::query(hot::EXTENSION).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(extension).transpose()?)
    }

    async fn lock(&self, request: &LockRequest<'_>) -> Result<Result<(), xif_api::Lock>, StoreError> {
        // One statement, atomic: taken when free, or when the lease of its holder ran out (the
        // holder died); a concurrent taker waits for this one and then finds the lease alive.
        let taken = sqlx::query(
            "INSERT INTO publication_locks (extension, holder, since, owner, lease_until) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT ((lower(extension))) DO UPDATE SET extension = excluded.extension, holder = excluded.holder, \
             since = excluded.since, owner = excluded.owner, lease_until = excluded.lease_until \
             WHERE publication_locks.lease_until < $6",
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
        let renewed = sqlx::query(
            "UPDATE publication_locks SET lease_until = $1 WHERE lower(extension) = lower($2) AND owner = $3",
        )
        .bind(lease_until)
        .bind(extension)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn unlock(&self, extension: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publication_locks WHERE lower(extension) = lower($1) AND owner = $2")
            .bind(extension)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn break_lock(&self, extension: &str) -> Result<Option<xif_api::Lock>, StoreError> {
        // What was removed is what is reported, read in the same statement.
        let row = sqlx::query(
            "DELETE FROM publication_locks WHERE lower(extension) = lower($1) \
             RETURNING extension, holder, since, lease_until",
        )
        .bind(extension)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let lease_until: i64 = row.try_get("lease_until")?;
        Ok(Some(xif_api::Lock {
            extension: row.try_get("extension")?,
            holder: row.try_get("holder")?,
            since: row.try_get("since")?,
            lease_until: crate::store::rfc3339_millis(lease_until),
        }))
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
        let mut transaction = self.pool.begin().await?;
        // Locked until the commit: a concurrent publication reads the published number after
        // this one's change, and is refused as stale if it expected the old one.
        let row = sqlx::query("SELECT id, published_number FROM extensions WHERE lower(name) = lower($1) FOR UPDATE")
            .bind(extension)
            .fetch_one(&mut *transaction)
            .await?;
        let id: i64 = row.try_get("id")?;
        let actual: Option<i64> = row.try_get("published_number")?;
        if actual != expected {
            return Ok(Err(PublishRefusal::Stale { actual }));
        }
        sqlx::query("UPDATE extensions SET published_number = $1 WHERE id = $2")
            .bind(to)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO publications (extension_id, from_number, to_number, published_by, published_at) \
             VALUES ($1, $2, $3, $4, $5)",
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
        sqlx::query("DELETE FROM module_dependencies WHERE lower(module) = lower($1)")
            .bind(module)
            .execute(&mut *transaction)
            .await?;
        for dependency in dependencies {
            let uses = serde_json::to_string(dependency).map_err(|error| StoreError(error.to_string()))?;
            sqlx::query("INSERT INTO module_dependencies (module, extension, version, uses) VALUES ($1, $2, $3, $4)")
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
        if !comparable(extension) {
            return Ok(Vec::new());
        }
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
        // A row for each extension's entries (see `callsegments`).
        let mut transaction = self.pool.begin().await?;
        insert_segments(&mut transaction, calls, Some(node)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn calls(&self, query: &CallQuery<'_>) -> Result<crate::store::CallsFound, StoreError> {
        if !comparable(query.extension) || query.limit == 0 {
            return Ok(crate::store::CallsFound { entries: Vec::new(), resume_before: None });
        }
        // Newest first, by the (lower(extension), id) index, skipping the segments that cannot
        // hold a match by their columns; read until the page is full.
        let rows = sqlx::query(
            "SELECT id, extension, node, count, entries FROM call_segments WHERE lower(extension) = lower($1) \
             AND ($2::BIGINT IS NULL OR id <= $2) AND ($3::BIGINT IS NULL OR last_at >= $3) \
             AND (NOT $4 OR failed > 0) ORDER BY id DESC",
        )
        .bind(query.extension)
        .bind(crate::callsegments::segment_of(query.before_id))
        .bind(query.since_micros)
        .bind(query.failed)
        .fetch(&self.pool);
        crate::callsegments::read(rows, query).await
    }

    async fn sweep_calls(&self, before_micros: i64) -> Result<u64, StoreError> {
        // Entries that servers of the version before wrote during a rolling upgrade.
        rewrite_old_log(&self.pool).await?;
        // The segments all older than the retention go whole; those that began before it are
        // written again without their old entries (locked, as other servers of the farm sweep
        // too).
        let mut transaction = self.pool.begin().await?;
        let whole: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM call_segments WHERE first_at < $1 AND last_at < $1 RETURNING count) \
             SELECT coalesce(sum(count), 0)::BIGINT FROM gone",
        )
        .bind(before_micros)
        .fetch_one(&mut *transaction)
        .await?;
        let mut removed = u64::try_from(whole).unwrap_or(0);
        let straddling = sqlx::query("SELECT id, entries FROM call_segments WHERE first_at < $1 FOR UPDATE")
            .bind(before_micros)
            .fetch_all(&mut *transaction)
            .await?;
        for row in straddling {
            let id: i64 = row.try_get("id")?;
            let pruned = crate::callsegments::prune(id, row.try_get("entries")?, before_micros)?;
            removed += pruned.removed;
            if pruned.count == 0 {
                sqlx::query("DELETE FROM call_segments WHERE id = $1").bind(id).execute(&mut *transaction).await?;
            } else {
                sqlx::query(
                    "UPDATE call_segments SET first_at = $1, last_at = $2, count = $3, failed = $4, entries = $5 \
                     WHERE id = $6",
                )
                .bind(pruned.first_at)
                .bind(pruned.last_at)
                .bind(i32::try_from(pruned.count).unwrap_or(i32::MAX))
                .bind(i32::try_from(pruned.failed).unwrap_or(i32::MAX))
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
        if !comparable(extension) {
            return Ok(Vec::new());
        }
        // Ids start at 1. Read by the (extension, id) index from the cursor on.
        let rows = sqlx::query(hot::PUBLICATIONS_PAGE)
            .bind(extension)
            .bind(page.after.unwrap_or(0))
            .bind(i64::from(page.limit))
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
    transaction: &mut Transaction<'_, Postgres>,
    calls: &[crate::calllog::CallEntry],
    node: Option<&str>,
) -> Result<(), StoreError> {
    for segment in crate::callsegments::segments(calls)? {
        sqlx::query(
            "INSERT INTO call_segments (extension, first_at, last_at, count, failed, node, entries) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(segment.extension)
        .bind(segment.first_at)
        .bind(segment.last_at)
        .bind(i32::try_from(segment.count).unwrap_or(i32::MAX))
        .bind(i32::try_from(segment.failed).unwrap_or(i32::MAX))
        .bind(node)
        .bind(&segment.entries)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// Moves the integration log of earlier versions (a row per entry, table `calls`) to segments,
/// [`OLD_ROWS_AT_ONCE`](crate::callsegments::OLD_ROWS_AT_ONCE) rows a transaction, under an
/// advisory lock (several servers may open the store at once). Done when the store opens and at
/// each sweep; the table is kept (empty), as servers of the version before may still write there
/// during a rolling upgrade of the farm: their entries join the log at the next sweep.
async fn rewrite_old_log(pool: &PgPool) -> Result<(), StoreError> {
    /// The advisory lock of the move: "xif-call" in ASCII, apart from sqlx's migrations'.
    const LOCK: i64 = 0x7869_662d_6361_6c6c;
    let old: bool = sqlx::query_scalar("SELECT to_regclass('calls') IS NOT NULL").fetch_one(pool).await?;
    if !old {
        return Ok(());
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(pool).await?;
    if total == 0 {
        return Ok(());
    }
    let mut progress = crate::callsegments::OldLogMove::start(total);
    loop {
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(&mut *transaction).await?;
        let rows = sqlx::query(
            "SELECT id, at, extension, module, user_name, token_id, kind, operation, duration_us, error, node \
             FROM calls ORDER BY id LIMIT $1",
        )
        .bind(crate::callsegments::OLD_ROWS_AT_ONCE)
        .fetch_all(&mut *transaction)
        .await?;
        if rows.is_empty() {
            break;
        }
        let ids = rows.iter().map(|row| row.try_get("id")).collect::<Result<Vec<i64>, _>>()?;
        let (runs, unreadable) = crate::callsegments::old_runs(&rows);
        for (node, entries) in runs {
            insert_segments(&mut transaction, &entries, node.as_deref()).await?;
        }
        // By their ids: a server of the version before may commit a row of a lower id meanwhile.
        sqlx::query("DELETE FROM calls WHERE id = ANY($1)").bind(&ids).execute(&mut *transaction).await?;
        transaction.commit().await?;
        progress.moved(rows.len(), unreadable);
    }
    progress.end();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::{Migration, MigrationType, Migrator};

    use super::{MIGRATIONS, PgStore, hot, redact};
    use crate::store::{MetadataStore as _, Page};

    /// A database made before the growth migration (2) has its extensions' numbers of versions
    /// counted by it, and kept from then on.
    #[tokio::test]
    async fn the_growth_migration_counts_the_versions_already_there() {
        let url = xif_testkit::postgres::shared().database();
        let pool = sqlx::PgPool::connect(&url).await.expect("connects");
        let before: Vec<Migration> = MIGRATIONS
            .iter()
            .filter(|(version, _, _)| *version < 2)
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect();
        let migrator = Migrator { migrations: Cow::Owned(before), ignore_missing: false, locking: true, no_tx: false };
        migrator.run(&pool).await.expect("migrated to 1");
        sqlx::raw_sql(
            "INSERT INTO extensions (name) VALUES ('Old'), ('Empty'); \
             INSERT INTO versions (extension_id, number, declared_version, sha256, size, uploaded_by, uploaded_at) \
             SELECT id, n, n::text, n::text, 1, 'x', 'then' FROM extensions, generate_series(1, 3) AS n \
             WHERE name = 'Old';",
        )
        .execute(&pool)
        .await
        .expect("inserted");
        pool.close().await;

        let store = PgStore::open(&url).await.expect("opens and migrates");
        let listed = store.extensions(&Page::first(10)).await.expect("listed");
        let counts: Vec<(String, i64)> =
            listed.into_iter().map(|extension| (extension.name, extension.versions)).collect();
        assert_eq!(counts, [("Empty".to_owned(), 0), ("Old".to_owned(), 3)]);
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
    /// moved to segments by the first server that opens it (two at once here), read back as they
    /// were, newest first; the old table is kept, empty, and what a server of the version before
    /// writes there joins the log at the next sweep.
    #[tokio::test]
    async fn the_old_integration_log_is_kept_as_segments() {
        let url = xif_testkit::postgres::shared().database();
        let pool = sqlx::PgPool::connect(&url).await.expect("connects");
        let before: Vec<Migration> = MIGRATIONS
            .iter()
            .filter(|(version, _, _)| *version < 104)
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect();
        let migrator = Migrator { migrations: Cow::Owned(before), ignore_missing: false, locking: true, no_tx: false };
        migrator.run(&pool).await.expect("migrated to 103");
        let now = crate::store::micros(std::time::SystemTime::now());
        let rows = crate::callsegments::OLD_LOG
            .replace("{now}", &now.to_string())
            .replace("{n}", "generate_series(1, 2500) AS i");
        sqlx::raw_sql(&rows).execute(&pool).await.expect("inserted");
        pool.close().await;

        let (first, second) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
        let (store, _other) = (first.expect("opens and migrates"), second.expect("opens too"));
        crate::callsegments::check_old_log(&store, now).await;
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(&store.pool).await.expect("read");
        assert_eq!(left, 0, "the old table is emptied");

        // A server of the version before, still running during a rolling upgrade, writes there
        // (and does not fail): its entry joins the log at the next sweep, newest.
        sqlx::query(
            "INSERT INTO calls (at, extension, user_name, kind, operation, duration_us, node) \
             VALUES ($1, 'Echo', 'ada', 'action', 'Late', 7, 'old-node')",
        )
        .bind(now)
        .execute(&store.pool)
        .await
        .expect("written the old way");
        assert_eq!(store.sweep_calls(0).await.expect("swept"), 0, "nothing old enough to remove");
        let newest = store.calls(&crate::store::CallQuery::every("Echo", 1)).await.expect("read").entries;
        assert_eq!(
            newest.iter().map(|call| (call.operation.as_str(), call.node.as_deref())).collect::<Vec<_>>(),
            [("Late", Some("old-node"))]
        );
    }

    /// Each query on the paths of listing and publishing can be answered through an index: with
    /// sequential scans and sorts priced out (`enable_seqscan`, `enable_sort` off), which the
    /// planner still chooses when nothing else answers the query, its plan has neither.
    #[tokio::test]
    async fn the_hot_queries_are_answered_through_indexes() {
        let store = PgStore::open(&xif_testkit::postgres::shared().database()).await.expect("opens");
        let mut connection = store.pool.acquire().await.expect("a connection");
        for setting in ["SET enable_seqscan = off", "SET enable_sort = off"] {
            sqlx::query(setting).execute(&mut *connection).await.expect("set");
        }
        for (index, (query, types)) in hot::ALL.iter().enumerate() {
            let name = format!("hot_{index}");
            let prepare = format!("PREPARE {name} ({}) AS {query}", types.join(", "));
            sqlx::raw_sql(&prepare).execute(&mut *connection).await.expect("prepared");
            // Planned for these parameters' values, not a generic plan: as a request is.
            let values: Vec<&str> = types.iter().map(|kind| if *kind == "text" { "'Bench'" } else { "1" }).collect();
            let explain = format!("EXPLAIN EXECUTE {name} ({})", values.join(", "));
            let steps: Vec<String> = sqlx::query_scalar(&explain).fetch_all(&mut *connection).await.expect("a plan");
            let plan = steps.join("\n");
            assert!(!plan.contains("Seq Scan") && !plan.contains("Sort"), "{query}\n{plan}");
        }
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(redact("postgres://xif:s3cr%40t@db:5432/xif"), "postgres://xif:***@db:5432/xif");
        assert_eq!(redact("postgresql://xif@db/xif?sslmode=require"), "postgresql://xif@db/xif?sslmode=require");
        let shown = redact("postgres://db/xif?user=xif&password=s3cret&sslmode=require");
        assert!(!shown.contains("s3cret") && shown.contains("password=***") && shown.contains("sslmode=require"));
        // Not a URL at all: only its scheme is shown.
        assert_eq!(redact("postgres://xif:s3cret@[db/xif"), "postgres://…");
        assert!(!redact("xif:s3cret").contains("s3cret"));
        let shown = redact("postgres://xif@db/xif?sslmode=verify-full&sslpassword=k3ypass&sslkey=/k.pem");
        assert!(
            !shown.contains("k3ypass") && shown.contains("sslpassword=***") && shown.contains("sslkey="),
            "{shown}"
        );
        assert!(!redact("postgres://db/xif?PassWord=s3cret").contains("s3cret"));
    }
}
