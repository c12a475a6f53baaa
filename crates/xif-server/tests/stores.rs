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
