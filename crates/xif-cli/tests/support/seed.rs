//! Metadata recorded through a store's own Rust API rather than uploaded through the server:
//! thousands of versions in seconds, for the tests and the benchmark of growth. Shared by
//! `tests/pages.rs` and `benches/growth.rs` (each includes it with `#[path]`), which need
//! `xif-server`'s types and so cannot take it from `xif-testkit`.
//!
//! The versions recorded have digests that no upload has (`seed:` and a counter, which is not
//! hex and so cannot be a SHA-256): their archives do not exist and are never read. Only their
//! rows are listed; nothing publishes, deploys or downloads them.

use xif_server::{MetadataStore, NewVersion};

/// The store of the server whose data directory is `data`, as `xif_testkit::Server` starts it:
/// SQLite there, or with `XIF_TEST_DATABASE=postgres` its PostgreSQL database.
pub async fn open(data: &std::path::Path) -> Box<dyn MetadataStore> {
    match xif_testkit::postgres::test_database(data) {
        Some(url) => Box::new(xif_server::PgStore::open(&url).await.expect("the database opens")),
        None => Box::new(xif_server::SqliteStore::open(&data.join("metadata.sqlite")).await.expect("the store opens")),
    }
}

/// When the seeded versions were uploaded.
const SEEDED_AT: &str = "2026-11-30T00:00:00Z";

/// Records `count` versions of `extension`, numbered after its last.
pub async fn versions(metadata: &dyn MetadataStore, extension: &str, count: usize) {
    for index in 0..count {
        metadata
            .insert_version(NewVersion {
                extension: extension.to_owned(),
                declared_version: format!("0.0.{index}"),
                sha256: format!("seed:{index:059}"),
                size: 1,
                uploaded_by: "seed".to_owned(),
                uploaded_at: SEEDED_AT.to_owned(),
                signed_by: None,
            })
            .await
            .unwrap_or_else(|error| panic!("version {index} of `{extension}` is recorded: {error}"));
    }
}

/// Records `count` users, `user0000` and on, without permissions, whose password hash is no
/// hash (they cannot log in).
pub async fn users(metadata: &dyn MetadataStore, count: usize) {
    for index in 0..count {
        let name = format!("user{index:04}");
        metadata
            .create_user(&name, "seeded: no password", false, &[], SEEDED_AT)
            .await
            .unwrap_or_else(|error| panic!("user `{name}` is recorded: {error}"))
            .unwrap_or_else(|| panic!("user `{name}` is new"));
    }
}
