//! Storage behind interfaces: metadata ([`MetadataStore`]) and blobs ([`BlobStore`]). The
//! handlers know only these traits, so that PostgreSQL and an S3-compatible object store can be
//! added beside the embedded SQLite and directory implementations.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use xif_api::{Permission, Publication, Version};

/// A storage failure. Its text is logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// What the text of a failure says when a disk or a database is full: `ENOSPC` and `EDQUOT`
/// from the OS, `SQLITE_FULL` from SQLite. A `StoreError` carries text only (it is logged, never
/// sent), so this is how fullness is recognised once the error has crossed a store's boundary.
const FULL: [&str; 3] = ["No space left on device", "Disk quota exceeded", "database or disk is full"];

/// How an unavailable store's failures begin: see [`StoreError::unavailable`].
const UNAVAILABLE: &str = "unavailable: ";

impl StoreError {
    /// A store that cannot be reached now (a database or object store down or unreachable), as
    /// opposed to one that failed: the user is told to retry.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        StoreError(format!("{UNAVAILABLE}{detail}"))
    }

    /// Whether the store could not be reached (see [`StoreError::unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        self.0.starts_with(UNAVAILABLE)
    }

    /// Whether storage failed because it is full, which the user is told (nothing else is).
    pub fn is_storage_full(&self) -> bool {
        FULL.iter().any(|text| self.0.contains(text))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The database is down or unreachable, not wrong: a retry may succeed.
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::unavailable(format!("database: {error}")),
            // PostgreSQL going down or starting up: the connection exceptions (class 08), the
            // server shutting down (57P01 to 57P03), or its connection lost mid-protocol.
            sqlx::Error::Database(ref database)
                if database.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")) =>
            {
                StoreError::unavailable(format!("database: {error}"))
            }
            sqlx::Error::Protocol(_) => StoreError::unavailable(format!("database: {error}")),
            error => StoreError(format!("database: {error}")),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError(format!("storage: {error}"))
    }
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The argon2 hash of its password.
    pub password_hash: String,
    /// Whether it manages users.
    pub administrator: bool,
    /// Its permissions.
    pub permissions: Vec<Permission>,
    /// When it was made.
    pub created_at: String,
}

impl UserRecord {
    /// Whether it holds `permission`.
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// The API's view of it.
    pub fn api(&self) -> xif_api::User {
        xif_api::User {
            name: self.name.clone(),
            administrator: self.administrator,
            permissions: self.permissions.clone(),
            created_at: self.created_at.clone(),
        }
    }
}

/// A token to record.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    /// Whose it is.
    pub user_id: i64,
    /// Its SHA-256: the token itself is never stored.
    pub hash: &'a str,
    /// What it is for.
    pub label: Option<&'a str>,
    /// When it was made, RFC 3339.
    pub created_at: &'a str,
    /// When it expires, RFC 3339; `None` for never.
    pub expires_at: Option<&'a str>,
    /// For a module token, what it acts as and may use; `None` for a user's own token.
    pub scope: Option<&'a TokenScope>,
}

/// What a module token acts as and may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    /// The module the token acts as.
    pub module: String,
    /// The extensions it may call and use the records of, as stored (their own spelling).
    pub extensions: Vec<String>,
}

impl TokenScope {
    /// The scope as stored in a token's two columns: the module, and the extensions as a JSON
    /// array of names.
    pub fn columns(&self) -> Result<(String, String), StoreError> {
        let extensions = serde_json::to_string(&self.extensions).map_err(|error| StoreError(error.to_string()))?;
        Ok((self.module.clone(), extensions))
    }

    /// The scope read back from a token's two columns; `None` for a user's own token.
    pub fn from_columns(module: Option<String>, extensions: Option<String>) -> Result<Option<Self>, StoreError> {
        let Some(module) = module else { return Ok(None) };
        let extensions = match extensions {
            Some(text) => serde_json::from_str(&text)
                .map_err(|error| StoreError(format!("the scope of a token is unreadable: {error}")))?,
            None => Vec::new(),
        };
        Ok(Some(Self { module, extensions }))
    }
}

/// Which entries of the integration log to read: an extension's, newest first.
#[derive(Debug, Clone)]
pub struct CallQuery<'a> {
    /// The extension.
    pub extension: &'a str,
    /// Only the calls made with this module's tokens: those of `owner`'s tokens acting as this
    /// module, and those of token `token_id`. Module names are free text, so two users' modules
    /// may share a name; each sees only its own owner's entries.
    pub module: Option<&'a str>,
    /// The user whose module tokens' entries are shown (with `module`).
    pub owner: Option<&'a str>,
    /// A token whose entries are shown too (with `module`): the asking token's own.
    pub token_id: Option<i64>,
    /// Only the calls made at or after this time, in microseconds since the epoch.
    pub since_micros: Option<i64>,
    /// Only the calls that failed.
    pub failed: bool,
    /// Only the entries older than this id (the last of the previous page).
    pub before_id: Option<i64>,
    /// The most entries to return.
    pub limit: u32,
}

impl<'a> CallQuery<'a> {
    /// Every entry of `extension`'s log, newest first, at most `limit` a page: no filter.
    pub fn every(extension: &'a str, limit: u32) -> Self {
        CallQuery {
            extension,
            module: None,
            owner: None,
            token_id: None,
            since_micros: None,
            failed: false,
            before_id: None,
            limit,
        }
    }
}

/// What a query of the integration log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsFound {
    /// The entries, newest first.
    pub entries: Vec<xif_api::CallRecord>,
    /// When the store stopped reading before the page was full (a query decodes a bounded number
    /// of entries): the `before_id` of the next page, which goes on from there.
    pub resume_before: Option<i64>,
}

/// The user of a token, and when the token expires.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The user.
    pub user: UserRecord,
    /// When the token expires, RFC 3339; `None` for never.
    pub expires_at: Option<String>,
    /// The token's id.
    pub token_id: i64,
    /// For a module token, what it acts as and may use.
    pub scope: Option<TokenScope>,
}

/// A version to record.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The extension.
    pub extension: String,
    /// The version its definition declares.
    pub declared_version: String,
    /// The XIF's digest.
    pub sha256: String,
    /// Its size.
    pub size: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: String,
    /// The id of the trusted key whose signature was checked, when the server requires them.
    pub signed_by: Option<String>,
}

/// A request for an extension's publication lock.
#[derive(Debug, Clone)]
pub struct LockRequest<'a> {
    /// The extension.
    pub extension: &'a str,
    /// Who publishes, as shown to others.
    pub holder: &'a str,
    /// This publication's own id, so that only it releases or renews the lock.
    pub owner: &'a str,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Now, in milliseconds since the epoch.
    pub now_millis: i64,
    /// Until when the lock holds unless renewed, in milliseconds since the epoch.
    pub lease_until: i64,
}

/// `millis` since the epoch as RFC 3339.
pub fn rfc3339_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Why a publication was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishRefusal {
    /// Another version is published than the one expected.
    Stale {
        /// The version published now.
        actual: Option<i64>,
    },
}

/// One page of a list, in the list's order (names, numbers): at most `limit` items, those after
/// `after` (the last of the previous page; `None` for the first page). Each list is read by an
/// index from `after` on, so that a page costs the same however long the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K> {
    /// The last item of the previous page: a name, or a number.
    pub after: Option<K>,
    /// The most items to return.
    pub limit: u32,
}

impl<K> Page<K> {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }
}

/// Every extension, read a page of the largest size at a time: for what needs them all (a
/// server starting deploys every published version), never for a request.
pub async fn every_extension(metadata: &dyn MetadataStore) -> Result<Vec<xif_api::Extension>, StoreError> {
    let mut extensions = Vec::new();
    let mut page = Page::first(xif_api::PAGE_LIMIT_MAX);
    loop {
        let found = metadata.extensions(&page).await?;
        let last_page = found.len() < usize::try_from(page.limit).unwrap_or(usize::MAX);
        page.after = found.last().map(|last| last.name.clone());
        extensions.extend(found);
        if last_page {
            return Ok(extensions);
        }
    }
}

/// A publication as stored, with its id, which orders an extension's publications and is the
/// cursor of their pages.
#[derive(Debug, Clone)]
pub struct PublicationRecord {
    /// Its id: later publications have greater ids.
    pub id: i64,
    /// The publication.
    pub publication: Publication,
}

/// A database connection as stored: its URL only sealed (see `entities::secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// Its name, as given.
    pub name: String,
    /// `postgres`, `mysql` or `sqlite`.
    pub kind: String,
    /// The URL, encrypted under the server's secrets key (base64).
    pub sealed: String,
    /// The URL with its secret replaced, to show.
    pub redacted: String,
    /// Who added it.
    pub added_by: String,
    /// When, RFC 3339.
    pub added_at: String,
}

/// The mapping of an extension's logical database onto a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRecord {
    /// The extension, as named when mapped.
    pub extension: String,
    /// The logical database, as the definition names it.
    pub logical: String,
    /// The connection's name.
    pub connection: String,
    /// Who mapped it.
    pub mapped_by: String,
    /// When, RFC 3339.
    pub mapped_at: String,
}

/// Users, tokens, versions and publications.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// How many users there are.
    async fn user_count(&self) -> Result<i64, StoreError>;
    /// Closes the store; nothing is asked of it after.
    async fn close(&self) {}
    /// Makes a user; `None` when the name is taken.
    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        administrator: bool,
        permissions: &[Permission],
        now: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// The user called `name`.
    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// A page of the users, by name.
    async fn users(&self, page: &Page<String>) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces a user's permissions; false when there is no such user.
    async fn set_permissions(&self, name: &str, permissions: &[Permission]) -> Result<bool, StoreError>;
    /// Removes a user and their tokens; false when there is no such user.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;
    /// Records a token by its hash; returns its id.
    async fn create_token(&self, token: NewToken<'_>) -> Result<i64, StoreError>;
    /// The user of the unrevoked token with this hash, and when the token expires (expired
    /// tokens are found too, so that they can be refused as such).
    async fn token_user(&self, hash: &str) -> Result<Option<TokenOwner>, StoreError>;
    /// A user's tokens.
    async fn tokens(&self, user_id: i64) -> Result<Vec<xif_api::Token>, StoreError>;
    /// Revokes one of a user's tokens; false when they have no such token.
    async fn revoke_token(&self, user_id: i64, token_id: i64, now: &str) -> Result<bool, StoreError>;
    /// The version of `extension` whose XIF has this digest.
    async fn version_by_digest(&self, extension: &str, sha256: &str) -> Result<Option<Version>, StoreError>;
    /// Records a new version, numbered after the extension's last.
    async fn insert_version(&self, version: NewVersion) -> Result<Version, StoreError>;
    /// A page of an extension's versions, oldest first (by number).
    async fn versions(&self, extension: &str, page: &Page<i64>) -> Result<Vec<Version>, StoreError>;
    /// One version.
    async fn version(&self, extension: &str, number: i64) -> Result<Option<Version>, StoreError>;
    /// A page of the extensions, by name.
    async fn extensions(&self, page: &Page<String>) -> Result<Vec<xif_api::Extension>, StoreError>;
    /// One extension: its number of versions and its published version; `None` when no version
    /// of it was uploaded. As cheap with 10,000 versions as with one.
    async fn extension(&self, name: &str) -> Result<Option<xif_api::Extension>, StoreError>;
    /// Takes the extension's publication lock, when it is free or its holder's lease ran out;
    /// otherwise says who holds it since when.
    async fn lock(&self, request: &LockRequest<'_>) -> Result<Result<(), xif_api::Lock>, StoreError>;
    /// Extends the lease of the lock `owner` holds; false when it no longer holds it (broken by
    /// an administrator, or taken over after its lease ran out).
    async fn renew_lock(&self, extension: &str, owner: &str, lease_until: i64) -> Result<bool, StoreError>;
    /// Releases the extension's publication lock if `owner` holds it.
    async fn unlock(&self, extension: &str, owner: &str) -> Result<(), StoreError>;
    /// Releases the extension's publication lock whoever holds it, and says who did.
    async fn break_lock(&self, extension: &str) -> Result<Option<xif_api::Lock>, StoreError>;
    /// Every publication lock held.
    async fn locks(&self) -> Result<Vec<xif_api::Lock>, StoreError>;
    /// Releases every lock: a single server starting has none in progress.
    async fn clear_locks(&self) -> Result<(), StoreError>;
    /// Makes `to` the published version, in one transaction, if `expected` is the one published
    /// now.
    async fn publish(
        &self,
        extension: &str,
        expected: Option<i64>,
        to: i64,
        by: &str,
        now: &str,
    ) -> Result<Result<Publication, PublishRefusal>, StoreError>;
    /// A page of an extension's publications, oldest first (by id).
    async fn publications(&self, extension: &str, page: &Page<i64>) -> Result<Vec<PublicationRecord>, StoreError>;
    /// Replaces what `module` declares it uses.
    async fn set_dependencies(&self, module: &str, dependencies: &[xif_api::Dependency]) -> Result<(), StoreError>;
    /// The modules that use `extension`, with what they use of it.
    async fn consumers(&self, extension: &str) -> Result<Vec<(String, xif_api::Dependency)>, StoreError>;
    /// For every module's use of an extension, the extension (as the module names it) and the
    /// version the module was built against: one query for the console's list of extensions.
    async fn every_consumer_version(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Records a database connection; false when one of that name (regardless of case) exists.
    async fn add_connection(&self, connection: &ConnectionRecord) -> Result<bool, StoreError>;
    /// Every database connection, by name. Few: read whole.
    async fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError>;
    /// Removes a connection and the mappings to it, in one transaction; false when there is none.
    async fn remove_connection(&self, name: &str) -> Result<bool, StoreError>;
    /// Maps a logical database of an extension to a connection (replacing its mapping); false
    /// when there is no such connection.
    async fn map_database(&self, mapping: &MappingRecord) -> Result<bool, StoreError>;
    /// Every mapping, by extension and logical database, with its connection's name as given.
    async fn mappings(&self) -> Result<Vec<MappingRecord>, StoreError>;
    /// Appends entries to the integration log, in one transaction, as served by `node`.
    async fn insert_calls(&self, calls: &[crate::calllog::CallEntry], node: &str) -> Result<(), StoreError>;
    /// Entries of the integration log, newest first; fewer than the limit, with where to go on
    /// from, when reading them took too long.
    async fn calls(&self, query: &CallQuery<'_>) -> Result<CallsFound, StoreError>;
    /// Removes the entries of the integration log made before `before_micros` (microseconds
    /// since the epoch); returns how many.
    async fn sweep_calls(&self, before_micros: i64) -> Result<u64, StoreError>;
}

/// A time as microseconds since the epoch, as the integration log stores it.
pub fn micros(at: std::time::SystemTime) -> i64 {
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// Microseconds since the epoch as RFC 3339, with microseconds.
pub fn rfc3339_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An entry of the integration log as read back from a row's columns.
#[expect(clippy::too_many_arguments, reason = "one argument per column of the table")]
pub(crate) fn call_record(
    id: i64,
    at: i64,
    extension: String,
    module: Option<String>,
    user: String,
    token_id: Option<i64>,
    kind: String,
    operation: String,
    duration_us: i64,
    error: Option<String>,
    node: Option<String>,
) -> xif_api::CallRecord {
    xif_api::CallRecord {
        id,
        at: rfc3339_micros(at),
        extension,
        module,
        user,
        token_id,
        kind,
        operation,
        duration_us,
        outcome: if error.is_none() { "ok" } else { "failed" }.to_owned(),
        error,
        node,
    }
}

/// XIF files by their SHA-256, written and read as streams: no store hands out a local path,
/// so that the archives may live in an object store shared by several servers.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts an upload. Nothing of it is visible until [`BlobUpload::commit`]; an upload
    /// dropped uncommitted (or whose writing failed) leaves nothing behind.
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, StoreError>;
    /// The blob with this digest, as a stream; `None` when there is none.
    async fn open(&self, sha256: &str) -> Result<Option<BlobRead>, StoreError>;
    /// Whether a blob with this digest is stored.
    async fn exists(&self, sha256: &str) -> Result<bool, StoreError>;
}

/// An upload in progress: bytes written in order, then committed under their digest.
#[async_trait]
pub trait BlobUpload: Send {
    /// Appends `bytes`.
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError>;
    /// Stores what was written under `sha256`, which the caller computed over exactly those
    /// bytes. Storing the same digest twice keeps one copy.
    async fn commit(self: Box<Self>, sha256: &str) -> Result<(), StoreError>;
}

/// A stored blob being read.
pub struct BlobRead {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, in order.
    pub stream: BoxStream<'static, Result<Bytes, StoreError>>,
}

/// Whether `text` is a SHA-256 in hexadecimal, as blobs are named: anything else is refused
/// before it becomes part of a path or a key.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Copies the blob `sha256` into a new temporary file in `directory` (removed when the returned
/// path is dropped), for what needs a local file: reading an archive's entries, unpacking it
/// to deploy. `None` when there is no such blob. The one way callers turn a blob into a file.
pub async fn fetch_to_temp(
    blobs: &dyn BlobStore,
    sha256: &str,
    directory: &Path,
) -> Result<Option<tempfile::TempPath>, StoreError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let Some(mut read) = blobs.open(sha256).await? else { return Ok(None) };
    let directory = directory.to_owned();
    let (file, path) =
        tokio::task::spawn_blocking(move || tempfile::Builder::new().prefix("blob-").tempfile_in(directory))
            .await
            .map_err(|error| StoreError(error.to_string()))??
            .into_parts();
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let mut written = 0u64;
    while let Some(chunk) = read.stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    if written != read.size {
        return Err(StoreError(format!("the blob {sha256} gave {written} bytes, not the {} it holds", read.size)));
    }
    Ok(Some(path))
}
