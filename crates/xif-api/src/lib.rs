//! The request and response types of the Platform Server's HTTP API, version 1, shared by the
//! server and its clients. Every path is under [`PREFIX`]; every error is an [`ErrorBody`].
//!
//! This crate knows the shapes of the API only: no HTTP framework, no storage.

use serde::{Deserialize, Serialize};

mod error;

pub use error::{ErrorClass, ErrorCode};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

/// The header carrying the SHA-256 of an uploaded XIF, in lower-case hex.
pub const DIGEST_HEADER: &str = "x-xif-sha256";

/// The header carrying the detached minisign signature of an uploaded XIF: the standard base64
/// of its whole `.minisig` file. A server started with trusted keys requires it.
pub const SIGNATURE_HEADER: &str = "x-xif-signature";

/// How many items a page of a list holds when the request does not say (`limit`). The lists
/// (extensions, an extension's versions and publications, users) answer a page at a time: a JSON
/// array, and a `Link: <URL>; rel="next"` header with the URL of the next page when there is one.
pub const PAGE_LIMIT_DEFAULT: u32 = 100;

/// The most items a page can hold (`limit`).
pub const PAGE_LIMIT_MAX: u32 = 1000;

/// A permission a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Upload and publish extensions.
    AllowExtensions,
    /// Publish extensions that export entities.
    AllowForeignEntities,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 2] = [Permission::AllowExtensions, Permission::AllowForeignEntities];

    /// The name as written in the API and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Permission::AllowExtensions => "allow-extensions",
            Permission::AllowForeignEntities => "allow-foreign-entities",
        }
    }

    /// The permission or role called `name`: a role stands for the permissions it grants.
    pub fn parse(name: &str) -> Option<Vec<Permission>> {
        match name {
            "allow-extensions" => Some(vec![Permission::AllowExtensions]),
            "allow-foreign-entities" => Some(vec![Permission::AllowForeignEntities]),
            ROLE_CHANGE_AND_DEPLOY => Some(Permission::ALL.to_vec()),
            _ => None,
        }
    }
}

/// The role that grants every permission.
pub const ROLE_CHANGE_AND_DEPLOY: &str = "change-and-deploy";

/// Every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, for programs: `missing_permission`, `stale_version`, …
    pub code: ErrorCode,
    /// For people: what was wrong and how to fix it.
    pub message: String,
    /// Each problem found, for errors that find several (`mapping_mismatch`: one per column),
    /// each located in the definition; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// `POST /login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// What the token is for, shown when tokens are listed.
    #[serde(default)]
    pub label: Option<String>,
    /// How long the token lasts, in seconds [default: the server's, 30 days unless configured;
    /// at most the server's maximum, 365 days unless configured].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// The answer to a login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The API token, shown this once: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// The token's id, to revoke it.
    pub token_id: i64,
    /// When the token expires, RFC 3339; `None` for a token that does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Who logged in.
    pub user: User,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name.
    pub name: String,
    /// Whether they manage users.
    pub administrator: bool,
    /// Their permissions.
    pub permissions: Vec<Permission>,
    /// When the account was made, RFC 3339.
    pub created_at: String,
}

/// `POST /users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUser {
    /// The name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// The password, 12 characters or more.
    pub password: String,
    /// Whether they manage users.
    #[serde(default)]
    pub administrator: bool,
    /// Permissions or roles to grant at once.
    #[serde(default)]
    pub grant: Vec<String>,
}

/// `POST /users/{name}/grants` and `DELETE` of the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// A permission or a role.
    pub permission: String,
}

/// A token, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// Its id.
    pub id: i64,
    /// What it is for.
    pub label: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// When it expires, RFC 3339; `None` for a token that does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// For a module token, the module it acts as; `None` for a user's own token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// For a module token, the extensions it may call and use the records of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
}

/// `POST /tokens`: a module token, which acts as `module` and may call the actions of, and use
/// the records of, `extensions` only (and declare the module's dependencies).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewModuleToken {
    /// The module the token acts as.
    pub module: String,
    /// The extensions it may use, at least one.
    pub extensions: Vec<String>,
    /// What it is for, shown when tokens are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How long the token lasts, in seconds [default: the server's default lifetime of tokens].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// The answer to `POST /tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleTokenResponse {
    /// The API token, shown this once: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// The token's id, to revoke it.
    pub token_id: i64,
    /// When the token expires, RFC 3339; `None` for a token that does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The module it acts as.
    pub module: String,
    /// The extensions it may use, as the server spells them.
    pub extensions: Vec<String>,
}

/// One entry of an extension's integration log (`GET /extensions/{name}/calls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Its id: later entries have greater ids; the cursor of the pages.
    pub id: i64,
    /// When the call arrived, RFC 3339 with microseconds.
    pub at: String,
    /// The extension.
    pub extension: String,
    /// The module whose token made the call; `None` for a user's own token.
    #[serde(default)]
    pub module: Option<String>,
    /// The user who owns the token.
    pub user: String,
    /// The token's id.
    #[serde(default)]
    pub token_id: Option<i64>,
    /// `action` or `record`.
    pub kind: String,
    /// The action's name, or `Entity.operation` (`Customer.read`).
    pub operation: String,
    /// How long it took, in microseconds.
    pub duration_us: i64,
    /// `ok` or `failed`.
    pub outcome: String,
    /// The error code of a failed call.
    #[serde(default)]
    pub error: Option<String>,
    /// The node of the farm that served it.
    #[serde(default)]
    pub node: Option<String>,
}

/// An extension, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Its name.
    pub name: String,
    /// The published version's number, if one is.
    pub published: Option<i64>,
    /// How many versions were uploaded.
    pub versions: i64,
    /// The version whose process runs and answers calls, if one does (the published one, unless
    /// it failed).
    #[serde(default)]
    pub running: Option<i64>,
    /// The logical databases of the published version that are mapped to no database
    /// connection ("missing configuration"): its entities cannot be used until an administrator
    /// maps them (`xif admin connection map`).
    #[serde(default)]
    pub missing_configuration: Vec<String>,
}

/// A version of an extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The extension.
    pub extension: String,
    /// Its number among the extension's versions, from 1.
    pub number: i64,
    /// The version its definition declares.
    pub declared_version: String,
    /// The XIF's SHA-256.
    pub sha256: String,
    /// The XIF's size in bytes.
    pub size: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When, RFC 3339.
    pub uploaded_at: String,
    /// Whether it is the published one.
    pub published: bool,
    /// The id of the trusted key (minisign's 16 hexadecimal digits) whose signature of the
    /// archive the server checked at upload; none when it was uploaded unsigned.
    #[serde(default)]
    pub signed_by: Option<String>,
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The version, new or the one with the same bytes.
    pub version: Version,
    /// False when the same bytes were uploaded before and that version is returned.
    pub created: bool,
    /// The verifier's warnings.
    pub warnings: Vec<String>,
}

/// `POST /extensions/{name}/publications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishRequest {
    /// The version to publish.
    pub version: i64,
    /// The version the client believes is published now (`null`: none). If another is, the
    /// request is refused.
    pub expected: Option<i64>,
    /// Run every check and publish nothing.
    #[serde(default)]
    pub validate_only: bool,
}

/// The answer to a publication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishResponse {
    /// Whether it was published (false for validate-only, and for a version already published).
    pub published: bool,
    /// The publication, when one was recorded.
    pub publication: Option<Publication>,
    /// What the checks found, for people.
    pub messages: Vec<String>,
    /// How the publication affects each module that uses the extension.
    #[serde(default)]
    pub consumers: Vec<ConsumerImpact>,
    /// Whether each live node of the farm runs the published version (one entry, the server
    /// itself, when it runs alone); empty for a validate-only request.
    #[serde(default)]
    pub nodes: Vec<NodeDeploy>,
}

/// How a publication went on one node of the farm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDeploy {
    /// The node's name.
    pub node: String,
    /// The address other nodes reach it at.
    pub address: String,
    /// The version of the extension it runs now, if any.
    pub running: Option<i64>,
    /// Whether it runs the published version.
    pub ok: bool,
    /// Why it does not, for people: its deploy failed (the failure's public message), or it did
    /// not report in time.
    pub error: Option<String>,
}

/// `GET /nodes`: one node of the farm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its id, new at each start.
    pub id: String,
    /// Its name (the host name and port unless given).
    pub name: String,
    /// The address other nodes reach it at.
    pub address: String,
    /// The xif version it runs.
    pub version: String,
    /// When it started, RFC 3339.
    pub started: String,
    /// Its last heartbeat, RFC 3339.
    pub heartbeat: String,
    /// Whether its heartbeat is recent (it beats every second, and is live for a few).
    pub live: bool,
    /// The extensions it runs, or failed to run.
    pub extensions: Vec<NodeExtension>,
}

/// An extension on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExtension {
    /// The extension.
    pub name: String,
    /// The version that runs there, if one does.
    pub running: Option<i64>,
    /// Why the last deploy there failed, when it did (its public message).
    pub failure: Option<String>,
}

/// `PUT /modules/{module}/dependencies`: every extension a module uses, replacing what it
/// declared before.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dependencies {
    /// One entry per extension.
    pub dependencies: Vec<Dependency>,
}

/// What a module uses of one extension, and the version it was built against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The extension.
    pub extension: String,
    /// The version number the module was built against.
    pub version: i64,
    /// Action names.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Structure names.
    #[serde(default)]
    pub structures: Vec<String>,
    /// Entity names.
    #[serde(default)]
    pub entities: Vec<String>,
}

/// How a publication affects one module that uses the extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerImpact {
    /// The module.
    pub module: String,
    /// `not affected`, `outdated`, `possibly incompatible` or `incompatible`.
    pub impact: String,
    /// The version it was built against.
    pub built_against: i64,
    /// The changes to elements it uses.
    pub changes: Vec<String>,
}

/// A recorded publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The extension.
    pub extension: String,
    /// The version published before, if any.
    pub from: Option<i64>,
    /// The version published.
    pub to: i64,
    /// Who published it.
    pub by: String,
    /// When, RFC 3339.
    pub at: String,
}

/// A publication lock, as `GET /locks` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The extension being published.
    pub extension: String,
    /// Who publishes it.
    pub holder: String,
    /// Since when, RFC 3339.
    pub since: String,
    /// When the lock frees itself unless its holder renews it, RFC 3339: a holder that died
    /// holds it no longer than this.
    pub lease_until: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// The kinds of database a connection can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// PostgreSQL (`postgres://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    Mysql,
    /// An SQLite file on the server (`sqlite://PATH`).
    Sqlite,
}

impl ConnectionKind {
    /// The name shown to people.
    pub const fn label(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "PostgreSQL",
            ConnectionKind::Mysql => "MySQL",
            ConnectionKind::Sqlite => "SQLite",
        }
    }
}

/// `POST /connections`: a database connection to add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewConnection {
    /// Its name, as mappings refer to it.
    pub name: String,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `mysql://…` (or `mariadb://…`), or
    /// `sqlite://PATH` (an existing file outside the server's data directory). Stored encrypted,
    /// never shown back but redacted.
    pub url: String,
}

/// A database connection, as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Its name.
    pub name: String,
    /// What it reaches.
    pub kind: ConnectionKind,
    /// Its URL with the password replaced by `***`.
    pub url: String,
    /// Who added it.
    pub added_by: String,
    /// When, RFC 3339.
    pub added_at: String,
    /// The logical databases mapped to it, as `EXTENSION/LOGICAL`.
    #[serde(default)]
    pub mappings: Vec<String>,
}

/// `POST /connections/{name}/test`: whether the database answered `SELECT 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    /// The connection.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// What happened, in words (never the secret).
    pub message: String,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

/// `PUT /extensions/{ext}/databases/{logical}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapDatabase {
    /// The connection to map the logical database to.
    pub connection: String,
}

/// A logical database of an extension's published version, as `GET /extensions/{ext}/databases`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalDatabase {
    /// The extension.
    pub extension: String,
    /// The logical database, as the definition names it.
    pub logical: String,
    /// The connection it is mapped to; `None` for "missing configuration".
    pub connection: Option<String>,
    /// The entities of the published version in it.
    pub entities: Vec<String>,
    /// Who mapped it, when it is.
    #[serde(default)]
    pub mapped_by: Option<String>,
    /// When, RFC 3339.
    #[serde(default)]
    pub mapped_at: Option<String>,
}
