//! The metadata stores themselves, both back ends through one body of tests: what several
//! servers sharing a database do at the same moment (numbering uploads, taking the publication
//! lock, publishing, making the first administrator) comes out right. Each "server" is a store
//! opened on its own (its own connections), as another process would.

use std::sync::Arc;

use xif_api::Permission;
use xif_server::{
    AppState, Limits, LockRequest, MetadataStore, NewVersion, Page, PgStore, PublishRefusal, SqliteStore, Storage,
};

/// How many servers share the database in these tests.
const SERVERS: usize = 4;

/// A database shared by [`SERVERS`] stores, opened separately.
struct Shared {
    back_end: &'static str,
    stores: Vec<Arc<dyn MetadataStore>>,
    _directory: tempfile::TempDir,
}

impl Shared {
    fn store(&self, index: usize) -> &Arc<dyn MetadataStore> {
        &self.stores[index % self.stores.len()]
    }
}

/// The same database opened by several stores, on each back end: SQLite (a file in a
/// temporary directory) and PostgreSQL (a new database of the test process's cluster).
async fn back_ends() -> Vec<Shared> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("metadata.sqlite");
    let mut sqlite: Vec<Arc<dyn MetadataStore>> = Vec::new();
    for _ in 0..SERVERS {
        sqlite.push(Arc::new(SqliteStore::open(&file).await.expect("SQLite opens")));
    }
    let url = tokio::task::spawn_blocking(|| xif_testkit::postgres::shared().database()).await.expect("a database");
    let mut postgres: Vec<Arc<dyn MetadataStore>> = Vec::new();
    for _ in 0..SERVERS {
        postgres.push(Arc::new(PgStore::open(&url).await.expect("PostgreSQL opens")));
    }
    vec![
        Shared { back_end: "sqlite", stores: sqlite, _directory: directory },
        Shared {
            back_end: "postgres",
            stores: postgres,
            _directory: tempfile::tempdir().expect("a temporary directory"),
        },
    ]
}

fn new_version(extension: &str, index: usize) -> NewVersion {
    NewVersion {
        extension: extension.into(),
        declared_version: format!("1.0.{index}"),
        sha256: format!("{index:064x}"),
        size: 100,
        uploaded_by: "admin".into(),
        uploaded_at: "2026-11-30T12:00:00Z".into(),
        signed_by: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_are_numbered_one_after_the_other_without_gaps() {
    const UPLOADS: usize = 40;
    for shared in back_ends().await {
        let uploads: Vec<_> = (0..UPLOADS)
            .map(|index| {
                let store = Arc::clone(shared.store(index));
                // The case of the name differs between servers: it is one extension.
                let name = if index % 2 == 0 { "Echo" } else { "echo" };
                tokio::spawn(async move { store.insert_version(new_version(name, index)).await })
            })
            .collect();
        let mut numbers = Vec::new();
        for upload in uploads {
            let version = upload.await.expect("the task ends").unwrap_or_else(|error| {
                panic!("{}: an upload failed: {error}", shared.back_end);
            });
            numbers.push(version.number);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=UPLOADS as i64).collect::<Vec<_>>(), "{}", shared.back_end);
        let listed = shared.store(1).versions("ECHO", &Page::first(1000)).await.expect("listed");
        assert_eq!(listed.len(), UPLOADS, "{}: no upload is lost", shared.back_end);
        assert_eq!(
            listed.iter().map(|version| version.number).collect::<Vec<_>>(),
            (1..=UPLOADS as i64).collect::<Vec<_>>(),
            "{}",
            shared.back_end
        );
        let extensions = shared.store(2).extensions(&Page::first(1000)).await.expect("listed");
        assert_eq!(extensions.len(), 1, "{}: {extensions:?}", shared.back_end);
        assert_eq!(extensions[0].versions, UPLOADS as i64, "{}", shared.back_end);
        // The same archive again is refused by the store, whichever server tries.
        assert!(shared.store(3).insert_version(new_version("Echo", 0)).await.is_err(), "{}", shared.back_end);
    }
}

fn request<'a>(owner: &'a str, now_millis: i64, lease: i64) -> LockRequest<'a> {
    LockRequest {
        extension: "Echo",
        holder: owner,
        owner,
        now: "2026-11-30T12:00:00Z",
        now_millis,
        lease_until: now_millis + lease,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_server_takes_the_lock_and_another_takes_it_over_when_the_lease_ran_out() {
    const START: i64 = 1_800_000_000_000;
    for shared in back_ends().await {
        let back_end = shared.back_end;
        // Many servers at once on a free lock: exactly one takes it.
        let owners: Vec<String> = (0..12).map(|index| format!("publication-{index}")).collect();
        let attempts: Vec<_> = owners
            .iter()
            .enumerate()
            .map(|(index, owner)| {
                let store = Arc::clone(shared.store(index));
                let owner = owner.clone();
                tokio::spawn(async move { store.lock(&request(&owner, START, 1_000)).await })
            })
            .collect();
        let mut holders = Vec::new();
        for (attempt, owner) in attempts.into_iter().zip(&owners) {
            match attempt.await.expect("the task ends").expect("the store answers") {
                Ok(()) => holders.push(owner.clone()),
                Err(lock) => assert_eq!(lock.extension, "Echo", "{back_end}"),
            }
        }
        assert_eq!(holders.len(), 1, "{back_end}: {holders:?}");
        let holder = &holders[0];
        let other = "publication-other";

        // While the lease holds, another is told who holds it.
        let refused = shared.store(1).lock(&request(other, START + 500, 1_000)).await.expect("answers");
        let lock = refused.expect_err("the lock is held");
        assert_eq!(lock.holder, *holder, "{back_end}");
        assert_eq!(shared.store(2).locks().await.expect("listed").len(), 1, "{back_end}");
        // Renewed, it holds longer.
        assert!(shared.store(0).renew_lock("echo", holder, START + 2_000).await.expect("renewed"), "{back_end}");
        assert!(shared.store(1).lock(&request(other, START + 1_500, 1_000)).await.expect("answers").is_err());

        // Once the lease ran out, another server takes it over; the old holder can neither renew
        // nor release it.
        shared.store(1).lock(&request(other, START + 2_001, 1_000)).await.expect("answers").expect("taken over");
        assert!(!shared.store(0).renew_lock("Echo", holder, START + 5_000).await.expect("answers"), "{back_end}");
        shared.store(0).unlock("Echo", holder).await.expect("answers");
        let locks = shared.store(3).locks().await.expect("listed");
        assert_eq!(locks.iter().map(|lock| lock.holder.as_str()).collect::<Vec<_>>(), [other], "{back_end}");

        // Broken by an administrator, it is free, and the breaker is told who held it.
        let broken = shared.store(2).break_lock("ECHO").await.expect("broken");
        assert_eq!(broken.map(|lock| lock.holder), Some(other.to_owned()), "{back_end}");
        assert!(shared.store(3).locks().await.expect("listed").is_empty(), "{back_end}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_publication_is_refused_and_concurrent_ones_publish_once() {
    for shared in back_ends().await {
        let back_end = shared.back_end;
        for index in 0..3 {
            shared.store(0).insert_version(new_version("Echo", index)).await.expect("uploaded");
        }
        let first = shared.store(0).publish("Echo", None, 1, "admin", "2026-11-30T12:00:00Z").await.expect("answers");
        assert_eq!(first.expect("published").from, None, "{back_end}");
        // Expecting nothing published, when version 1 is: refused, saying what is.
        let stale = shared.store(1).publish("echo", None, 2, "admin", "2026-11-30T12:00:01Z").await.expect("answers");
        assert_eq!(stale.expect_err("stale"), PublishRefusal::Stale { actual: Some(1) }, "{back_end}");

        // Many servers publish over version 1 at once: one succeeds, the others are stale.
        let attempts: Vec<_> = (0..12)
            .map(|index| {
                let store = Arc::clone(shared.store(index));
                let to = 2 + (index as i64 % 2);
                tokio::spawn(async move { store.publish("Echo", Some(1), to, "admin", "2026-11-30T12:00:02Z").await })
            })
            .collect();
        let mut published = Vec::new();
        for attempt in attempts {
            match attempt.await.expect("the task ends").expect("the store answers") {
                Ok(publication) => published.push(publication.to),
                Err(PublishRefusal::Stale { actual }) => {
                    assert!(matches!(actual, Some(2 | 3)), "{back_end}: {actual:?}");
                }
            }
        }
        assert_eq!(published.len(), 1, "{back_end}: {published:?}");
        let history: Vec<_> = shared
            .store(2)
            .publications("Echo", &Page::first(1000))
            .await
            .expect("listed")
            .into_iter()
            .map(|record| record.publication)
            .collect();
        assert_eq!(
            history.iter().map(|publication| (publication.from, publication.to)).collect::<Vec<_>>(),
            [(None, 1), (Some(1), published[0])],
            "{back_end}"
        );
        let versions = shared.store(3).versions("Echo", &Page::first(1000)).await.expect("listed");
        let live: Vec<_> = versions.iter().filter(|version| version.published).map(|version| version.number).collect();
        assert_eq!(live, [published[0]], "{back_end}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_making_the_first_administrator_at_once_make_one() {
    for shared in back_ends().await {
        let back_end = shared.back_end;
        let attempts: Vec<_> = (0..12)
            .map(|index| {
                let store = Arc::clone(shared.store(index));
                tokio::spawn(async move {
                    store
                        .create_user("admin", &format!("hash-{index}"), true, &Permission::ALL, "2026-11-30T12:00:00Z")
                        .await
                })
            })
            .collect();
        let mut made = 0;
        for attempt in attempts {
            if attempt.await.expect("the task ends").expect("no failure").is_some() {
                made += 1;
            }
        }
        assert_eq!(made, 1, "{back_end}");
        assert_eq!(shared.store(1).user_count().await.expect("counted"), 1, "{back_end}");
        // The name is one whatever its case.
        let again = shared.store(2).create_user("ADMIN", "hash", false, &[], "2026-11-30T12:00:00Z").await;
        assert!(again.expect("answers").is_none(), "{back_end}");
        assert!(shared.store(3).user("Admin").await.expect("found").is_some_and(|user| user.administrator));
    }
}

/// A server starting clears the locks left by a killed one on SQLite (it is the only server),
/// and leaves them on PostgreSQL, where another node may be publishing: there the lease frees a
/// dead holder's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_starting_server_clears_locks_on_sqlite_only() {
    const FAR: i64 = 4_000_000_000_000;
    let held = LockRequest {
        extension: "Echo",
        holder: "another node",
        owner: "its publication",
        now: "2026-11-30T12:00:00Z",
        now_millis: 0,
        lease_until: FAR,
    };
    let url = tokio::task::spawn_blocking(|| xif_testkit::postgres::shared().database()).await.expect("a database");
    let postgres = PgStore::open(&url).await.expect("PostgreSQL opens");
    postgres.lock(&held).await.expect("answers").expect("taken");
    let data = tempfile::tempdir().expect("a data directory");
    let storage = Storage { database: Some(url), ..Storage::embedded(data.path()) };
    let (state, _) = AppState::open(&storage, Limits::default(), None).await.expect("the node starts");
    assert_eq!(state.metadata.locks().await.expect("listed").len(), 1, "the other node's lock is kept");
    state.shutdown().await;

    let data = tempfile::tempdir().expect("a data directory");
    let sqlite = SqliteStore::open(&data.path().join("metadata.sqlite")).await.expect("SQLite opens");
    sqlite.lock(&held).await.expect("answers").expect("taken");
    sqlite.close().await;
    let (state, _) =
        AppState::open(&Storage::embedded(data.path()), Limits::default(), None).await.expect("the server starts");
    assert!(state.metadata.locks().await.expect("listed").is_empty(), "a killed server's lock is cleared");
    state.shutdown().await;
}

/// A name that is not ASCII (no user or extension name is) finds nothing, on either back end:
/// PostgreSQL's `lower` folds `İ` (U+0130) to `i` under most collations, so `admİn` used to
/// find `admin` (and log in as them while throttled as another user), and a NUL was an
/// internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_ascii_find_no_one() {
    for shared in back_ends().await {
        let back_end = shared.back_end;
        let store = shared.store(0);
        store
            .create_user("admin", "hash", true, &Permission::ALL, "2026-11-30T12:00:00Z")
            .await
            .expect("answers")
            .expect("made");
        for name in ["admİn", "ADMİN", "admin\0", "\0"] {
            let found = store.user(name).await.unwrap_or_else(|error| panic!("{back_end}: `{name}`: {error}"));
            assert!(found.is_none(), "{back_end}: `{name}` found a user");
            assert!(!store.set_permissions(name, &[]).await.expect("answers"), "{back_end}: `{name}`");
            assert!(!store.remove_user(name).await.expect("answers"), "{back_end}: `{name}`");
            assert!(store.extension(name).await.expect("answers").is_none(), "{back_end}: `{name}`");
        }
        assert!(store.user("ADMIN").await.expect("answers").is_some(), "{back_end}: ASCII case is still folded");
    }
}

/// The integration log on both back ends: batches written from several stores at once, read
/// back newest first with each filter (extension in either case, module, since, failed, pages),
/// and entries older than the retention swept, those within it kept. The old entries are
/// written through the store with their old time: no test waits for days to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_integration_log_is_written_in_batches_filtered_and_swept_after_its_retention() {
    use std::time::{Duration, SystemTime};
    use xif_server::calllog::{CallEntry, CallKind};
    let day = Duration::from_secs(86_400);
    let entry = |age: Duration, module: Option<&str>, operation: &str, error: Option<&str>| CallEntry {
        at: SystemTime::now() - age,
        extension: "Echo".into(),
        module: module.map(Into::into),
        user: "admin".into(),
        token_id: Some(7),
        kind: CallKind::Action,
        operation: operation.into(),
        duration: Duration::from_micros(1_500),
        error: error.map(Into::into),
    };
    for shared in back_ends().await {
        let back_end = shared.back_end;
        // Four servers at once, each a batch of 25: 10 old ones (15 days), 90 recent.
        let writes: Vec<_> = (0..4)
            .map(|server| {
                let store = Arc::clone(shared.store(server));
                let batch: Vec<CallEntry> = (0..25)
                    .map(|index| {
                        let age = if server == 0 && index < 10 { day * 15 } else { Duration::from_secs(60) };
                        let module = (index % 5 == 0).then_some("Shop");
                        let error = (index % 3 == 0).then_some("invalid_input");
                        entry(age, module, "Say", error)
                    })
                    .collect();
                tokio::spawn(async move { store.insert_calls(&batch, &format!("node-{server}")).await })
            })
            .collect();
        for write in writes {
            write.await.expect("joined").expect("written");
        }
        let other = CallEntry { extension: "Other".into(), ..entry(Duration::ZERO, None, "Run", None) };
        shared.store(1).insert_calls(&[other], "node-1").await.expect("written");

        let query = |since: Option<i64>, module: Option<&'static str>, failed: bool, before: Option<i64>, limit| {
            xif_server::CallQuery {
                module,
                owner: module.map(|_| "admin"),
                since_micros: since,
                failed,
                before_id: before,
                ..xif_server::CallQuery::every("echo", limit)
            }
        };
        let all = shared.store(2).calls(&query(None, None, false, None, 1000)).await.expect("read").entries;
        assert_eq!(all.len(), 100, "{back_end}: Echo's entries only, whatever the case of its name");
        assert!(all.windows(2).all(|pair| pair[0].id > pair[1].id), "{back_end}: newest first");
        let first = &all[0];
        assert_eq!(
            (first.kind.as_str(), first.operation.as_str(), first.duration_us, first.token_id, first.user.as_str()),
            ("action", "Say", 1_500, Some(7), "admin"),
            "{back_end}"
        );
        assert!(first.node.as_deref().is_some_and(|node| node.starts_with("node-")), "{back_end}");
        let failed = shared.store(0).calls(&query(None, None, true, None, 1000)).await.expect("read").entries;
        assert_eq!(failed.len(), 4 * 9, "{back_end}: indexes 0, 3, … 24 of each batch failed");
        assert!(failed.iter().all(|call| call.outcome == "failed" && call.error.as_deref() == Some("invalid_input")));
        let shop = shared.store(0).calls(&query(None, Some("shop"), false, None, 1000)).await.expect("read").entries;
        assert_eq!(shop.len(), 4 * 5, "{back_end}: a module's own entries, whatever the case of its name");
        let stranger = xif_server::CallQuery { owner: Some("mallory"), ..query(None, Some("Shop"), false, None, 1000) };
        let stranger = shared.store(0).calls(&stranger).await.expect("read").entries;
        assert!(stranger.is_empty(), "{back_end}: another user's module of the same name sees none of them");
        let recent_since = xif_server_micros(SystemTime::now() - day);
        let recent =
            shared.store(3).calls(&query(Some(recent_since), None, false, None, 1000)).await.expect("read").entries;
        assert_eq!(recent.len(), 90, "{back_end}: since a day ago");
        // Pages: 40, 40, 20, by the id of the last entry of the page before.
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = shared.store(1).calls(&query(None, None, false, before, 40)).await.expect("read").entries;
            before = page.last().map(|last| last.id);
            let done = page.len() < 40;
            paged.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(paged, all, "{back_end}: the pages hold every entry once, in order");

        let removed = xif_server::calllog::sweep(shared.store(0).as_ref(), day * 14).await.expect("swept");
        assert_eq!(removed, 10, "{back_end}: the entries older than 14 days");
        let kept = shared.store(2).calls(&query(None, None, false, None, 1000)).await.expect("read").entries;
        assert_eq!(kept.len(), 90, "{back_end}");
        assert_eq!(xif_server::calllog::sweep(shared.store(1).as_ref(), day * 14).await.expect("swept"), 0);
    }
}

/// Microseconds since the epoch, as the log stores times.
fn xif_server_micros(at: std::time::SystemTime) -> i64 {
    i64::try_from(at.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_micros()).expect("in range")
}
