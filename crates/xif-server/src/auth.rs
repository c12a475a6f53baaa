//! Passwords (argon2, checked on a few threads of their own), API tokens (random, stored as
//! their SHA-256, expiring), and the extractor that turns a bearer token into the calling user.

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::{TokenScope, UserRecord};
use xif_api::ErrorCode;

thread_local! {
    /// Argon2's working memory (19 MiB with the default parameters), kept by each password
    /// thread and reused by every check it runs. Allocated afresh for each check, it was not
    /// given back: malloc kept the freed blocks, split them for small allocations, and took new
    /// ones, and the server grew by 19 MiB every few checks.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs argon2 with `params` into `output`, in this thread's working memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    BLOCKS.with_borrow_mut(|blocks| {
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize(needed, argon2::Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, output, &mut blocks[..needed])
    })
}

/// The argon2id hash of `password` with the default parameters and a random salt, in PHC
/// string form. Only through [`Passwords`].
fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| ApiError::internal(format!("no randomness: {error}")))?;
    let salt_string = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_into(&argon2, &params, password.as_bytes(), &salt, out).map_err(|_| password_hash::Error::Crypto)
    })
    .map_err(ApiError::internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(ApiError::internal)?,
        salt: Some(salt_string.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches `hash` (a PHC string of argon2), compared in constant time. Only
/// through [`Passwords`].
fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else { return false };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else { return false };
    let Ok(version) = hash.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let actual = Output::init_with(expected.len(), |out| {
        argon2_into(&argon2, &params, password.as_bytes(), salt, out).map_err(|_| password_hash::Error::Crypto)
    });
    // `Output`'s equality is constant-time.
    actual.is_ok_and(|actual| actual == expected)
}

/// Where passwords are hashed and checked: a fixed set of threads, entered through a semaphore
/// that a caller waits on for a short time at most.
///
/// Argon2 takes 19 MiB per check with its default parameters. On tokio's blocking pool, which
/// grows to hundreds of threads, a flood of logins ran as many checks at once, and each thread's
/// malloc arena kept its 19 MiB afterwards (3.6 GiB were seen). Here at most `threads` checks
/// run at once, always on the same threads, so the memory they take is bounded and reused.
pub struct Passwords {
    jobs: std::sync::mpsc::Sender<Job>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

type Job = Box<dyn FnOnce() + Send>;

impl Passwords {
    /// `threads` threads (at least one), and callers waiting at most `wait` for one of them.
    pub fn new(threads: usize, wait: std::time::Duration) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new().name(format!("xif-passwords-{index}")).spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while taking a job, never while running it.
                    let job = receiver.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    // Ends when the server (every sender) is gone.
                    let Ok(job) = job else { break };
                    // A panicking job drops its answer's sender, which its caller sees as an
                    // internal error; the thread goes on.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a password check panicked");
                    }
                }
            })?;
        }
        Ok(Self { jobs, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(threads)), wait })
    }

    /// Runs `work` on one of the threads once one is free, or refuses as busy after the wait.
    /// The work finishes even when the caller goes away, and only then frees its thread.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(closed)) => return Err(ApiError::internal(closed)),
            Err(_) => {
                metrics::counter!("xif_password_checks_refused_total").increment(1);
                return Err(ApiError::retry_after(
                    ErrorCode::ServerBusy,
                    "the server is checking as many passwords as it can at once",
                    std::time::Duration::from_secs(1),
                ));
            }
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            drop(permit);
            // The caller may have gone away; the work is done regardless.
            answer.send(result).ok();
        });
        self.jobs.send(job).map_err(|_| ApiError::internal("the password threads are gone"))?;
        answered.await.map_err(|_| ApiError::internal("a password check failed"))
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        self.run(move || verify_password(&password, &hash)).await
    }

    /// The argon2 hash of `password`, with a random salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_password(&password)).await?
    }
}

/// Niceness of the password threads, the lowest: when the cores are busy, serving requests goes
/// first, and a flood of password checks slows logins (which then wait, or are refused as busy)
/// rather than everyone else's requests (at niceness 10, authenticated calls kept 60% of their
/// rate under the login-flood benchmark; at 19, 71–76%).
const PASSWORD_NICENESS: i32 = 19;

/// Lowers the calling thread's scheduling priority to [`PASSWORD_NICENESS`] (on Linux a thread
/// has a priority of its own).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), PASSWORD_NICENESS) {
        tracing::warn!(%error, "cannot lower the priority of a password thread");
    }
}

/// A new secret: `prefix` and 32 random bytes in hex.
pub fn random_secret(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ApiError::internal(format!("no randomness: {error}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// How a token is stored: its SHA-256, so that the database never holds a usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A trusted proxy as `--trusted-proxy` takes it: a range (`10.0.0.0/8`, `fd00::/8`) or one
/// address (`127.0.0.1`).
pub fn trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an address range (such as 10.0.0.0/8) or an address"))
}

/// The client's address for throttling and logs: `peer` (the socket's) unless it is one of the
/// `trusted` proxies, and then the last address of `X-Forwarded-For` (all its lines, in order)
/// that is not a trusted proxy, read from the right: every address left of that one could have
/// been written by the client itself. Hand-written because it is a few lines on `ipnet`; a
/// value that cannot be read stops the walk at the last address read (a proxy's, at worst).
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    let is_trusted = |address: &std::net::IpAddr| trusted.iter().any(|range| range.contains(address));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else { return Some(client) };
        for hop in value.rsplit(',') {
            let Ok(address) = hop.trim().parse::<std::net::IpAddr>() else { return Some(client) };
            client = address;
            if !is_trusted(&address) {
                return Some(client);
            }
        }
    }
    Some(client)
}

/// The address of the client that sent the request, when it came over a socket (the server
/// serves with `ConnectInfo`); unknown for requests made in-process.
pub struct PeerAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `ConnectInfo`'s own extractor, which also takes the `MockConnectInfo` of tests.
        let peer = axum::extract::ConnectInfo::<std::net::SocketAddr>::from_request_parts(parts, state).await;
        Ok(PeerAddress(peer.ok().map(|info| info.0.ip())))
    }
}

/// Who a request comes from, for the handlers that module tokens may reach: the user who owns
/// the token, the token's id, and, for a module token, its scope. Those handlers opt in by
/// taking a `Caller` and checking [`Caller::allow_extension`]; every other handler takes a
/// [`CurrentUser`], which refuses module tokens: a module token is refused by default.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user who owns the token.
    pub user: UserRecord,
    /// The token's id.
    pub token_id: i64,
    /// For a module token, the module it acts as and the extensions it may use.
    pub scope: Option<TokenScope>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let Some(token) = header.and_then(|value| value.strip_prefix("Bearer ")).map(str::trim) else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "this endpoint needs an API token: log in with `POST /api/v1/login` and send `Authorization: Bearer TOKEN`",
            ));
        };
        caller_for_token(state, token).await
    }
}

/// The caller a token stands for (an API token, or the one a Service Center session holds),
/// through the cache; refused when it is unknown, revoked or expired.
pub(crate) async fn caller_for_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    // Hashed once: the cache is keyed by the digest itself, the store by its hex.
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let cached = match state.tokens.get(&digest) {
        Some(cached) => cached,
        None => {
            let hash = hex::encode(digest);
            let Some(owner) = state.metadata.token_user(&hash).await? else {
                return Err(ApiError::new(
                    ErrorCode::InvalidToken,
                    "the API token is unknown or was revoked; log in again for a new one",
                ));
            };
            let expires_at = match owner.expires_at.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(at)) => Some(at.with_timezone(&chrono::Utc)),
                // Unreadable: refused as expired rather than let through.
                Some(Err(error)) => {
                    tracing::error!(%error, user = %owner.user.name, "a token's expiry is unreadable");
                    Some(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                }
            };
            let cached = Cached {
                caller: Caller { user: owner.user, token_id: owner.token_id, scope: owner.scope },
                expires_at,
            };
            state.tokens.put(digest, cached.clone());
            cached
        }
    };
    if let Some(expires_at) = cached.expires_at
        && expires_at <= chrono::Utc::now()
    {
        return Err(ApiError::new(
            ErrorCode::TokenExpired,
            format!(
                "the API token expired at {}; log in again for a new one",
                expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    Ok(cached.caller)
}

impl Caller {
    /// Refuses a module token not scoped to `extension` (compared without regard to case, as
    /// extension names are), with `out_of_scope` naming the scope; a user's own token may use
    /// every extension (each handler checks its permissions as before).
    pub fn allow_extension(&self, extension: &str) -> Result<(), ApiError> {
        match &self.scope {
            Some(scope) if !scope.extensions.iter().any(|allowed| allowed.eq_ignore_ascii_case(extension)) => {
                Err(out_of_scope(scope, &format!("extension `{extension}` is not among them")))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a module token that acts as another module than `module`.
    pub fn allow_module(&self, module: &str) -> Result<(), ApiError> {
        match &self.scope {
            Some(scope) if !scope.module.eq_ignore_ascii_case(module) => Err(out_of_scope(
                scope,
                &format!("it declares module `{}`'s dependencies only, not module `{module}`'s", scope.module),
            )),
            _ => Ok(()),
        }
    }

    /// The module a module token acts as.
    pub fn module(&self) -> Option<&str> {
        self.scope.as_ref().map(|scope| scope.module.as_str())
    }

    /// The entry of the integration log for a call of this caller to `extension` that arrived
    /// at `at` and began at `started`: `operation` (an action's name, or `Entity.operation`),
    /// and the code of the error it ended with, if it did.
    pub fn call_entry(
        &self,
        extension: &str,
        kind: crate::calllog::CallKind,
        operation: &str,
        at: std::time::SystemTime,
        started: std::time::Instant,
        error: Option<&ApiError>,
    ) -> crate::calllog::CallEntry {
        crate::calllog::CallEntry {
            at,
            extension: extension.into(),
            module: self.module().map(Into::into),
            user: self.user.name.as_str().into(),
            token_id: Some(self.token_id),
            kind,
            operation: operation.into(),
            duration: started.elapsed(),
            error: error.map(|error| error.code().name().into()),
        }
    }
}

/// 403 `out_of_scope` for a module token: what it is scoped to, then `why` this is refused.
pub fn out_of_scope(scope: &TokenScope, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::OutOfScope,
        format!(
            "this token is module `{}`'s, scoped to extensions {}: it may call their actions, use their records, \
             read them and declare module `{}`'s dependencies, and nothing else; {why}",
            scope.module,
            scope.extensions.join(", "),
            scope.module,
        ),
    )
}

/// The user whose token came with the request: a user's own token only. A module token is
/// refused with `out_of_scope`: the handlers a module token may reach take a [`Caller`].
pub struct CurrentUser(pub UserRecord);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.scope {
            None => Ok(CurrentUser(caller.user)),
            Some(scope) => Err(out_of_scope(&scope, "use a user's token (`xif login`) for this")),
        }
    }
}

impl CurrentUser {
    /// Refuses anyone but administrators.
    pub fn administrator(&self) -> Result<&UserRecord, ApiError> {
        self.administrator_for("managing users")
    }

    /// Refuses anyone but administrators, saying that `what` needs one.
    pub fn administrator_for(&self, what: &str) -> Result<&UserRecord, ApiError> {
        if self.0.administrator {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                ErrorCode::AdministratorOnly,
                format!("{what} needs an administrator, and `{}` is not one", self.0.name),
            ))
        }
    }
}

/// Recently seen tokens, their users, scopes and expiries, so that each request does not query
/// the database. Entries live a few seconds; revoking a token, removing a user or changing
/// permissions clears the whole cache, so those take effect at once. The expiry is checked on
/// every use, cached or not.
#[derive(Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedToken, DigestHash>>,
}

/// Hashes a SHA-256 digest by its first eight bytes: a digest is already uniformly spread, so
/// hashing it again (as the default hasher would, on every request) buys nothing. Written here
/// because it is a few lines, and std has no identity hasher.
#[derive(Default, Clone, Copy)]
struct DigestHash;

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

/// See [`DigestHash`].
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // The digest's bytes, in one write: the first eight make the hash.
        for byte in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_usize(&mut self, _length: usize) {
        // The length an array is prefixed with, always 32: nothing to hash.
    }
}

/// What a token stands for, as cached.
#[derive(Clone)]
struct Cached {
    caller: Caller,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

struct CachedToken {
    cached: Cached,
    cached_at: std::time::Instant,
}

const TOKEN_CACHE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5);

impl TokenCache {
    fn get(&self, digest: &[u8; 32]) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|cached| cached.cached_at.elapsed() < TOKEN_CACHE_LIFETIME)
            .map(|cached| cached.cached.clone())
    }

    fn put(&self, digest: [u8; 32], cached: Cached) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(digest, CachedToken { cached, cached_at: std::time::Instant::now() });
    }

    /// Forgets every token: after a revocation or a change to a user.
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher as _;

    use super::*;

    #[test]
    fn hashes_verify_and_so_do_those_of_argon2_itself() {
        let hash = hash_password("correct horse").expect("hashed");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        // Hashes stored before the working memory was reused, by argon2's own hasher.
        let salt = SaltString::encode_b64(b"sixteen byte sal").expect("salt");
        let stored = Argon2::default().hash_password(b"correct horse", &salt).expect("hashed").to_string();
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("wrong horse", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_last_untrusted_forwarded_address() {
        use std::net::IpAddr;
        let trusted = [trusted_proxy("10.0.0.0/8").expect("a range"), trusted_proxy("127.0.0.1").expect("an address")];
        let address = |text: &str| text.parse::<IpAddr>().expect("an address");
        let client = |peer: &str, lines: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for line in lines {
                headers.append("x-forwarded-for", line.parse().expect("a header value"));
            }
            client_address(Some(address(peer)), &headers, &trusted)
        };
        assert_eq!(client("192.0.2.1", &["203.0.113.1"]), Some(address("192.0.2.1")), "an untrusted peer");
        assert_eq!(client("127.0.0.1", &["203.0.113.1"]), Some(address("203.0.113.1")));
        assert_eq!(client("127.0.0.1", &["198.51.100.1, 203.0.113.1"]), Some(address("203.0.113.1")));
        assert_eq!(client("127.0.0.1", &["198.51.100.1", "203.0.113.1, 10.1.2.3"]), Some(address("203.0.113.1")));
        assert_eq!(client("127.0.0.1", &["2001:db8::1"]), Some(address("2001:db8::1")));
        assert_eq!(client("127.0.0.1", &[]), Some(address("127.0.0.1")), "no header: the proxy itself");
        assert_eq!(client("127.0.0.1", &["10.0.0.1"]), Some(address("10.0.0.1")), "only proxies: the first");
        assert_eq!(client("127.0.0.1", &["garbage, 10.0.0.2"]), Some(address("10.0.0.2")), "unreadable: stop");
        assert!(trusted_proxy("not a range").is_err());
    }
}
