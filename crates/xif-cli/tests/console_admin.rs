//! Service Center's administration in a real browser (`tests/console/admin.mjs`): users added
//! (a weak password refused next to its field) and granted a permission, which the user then
//! sees; a module token shown once and revoked, and a session's own token revoked, signing
//! out; SQLite connections (files made by `sqlite3`) added, tested and mapped to a published
//! extension's logical database, a mismatch's problems shown; the nodes; publication locks
//! (none, then one held by a slow deploy, broken); and 403 for a non-administrator on every
//! administration URL, GET and POST.

#[path = "support/browser.rs"]
mod browser;
#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::Command;

/// An extension with an entity in its logical database `main`.
const SHOP: &str = r#"[extension]
name = "Shop"
version = "1.0.0"
description = "Notes in a database of the server."

[[actions]]
name = "Echo"
description = "Returns its input."
inputs = [ { name = "Text", type = "Text" } ]
outputs = [ { name = "Same", type = "Text" } ]

[[entities]]
name = "Note"
description = "A note."
table = "notes"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true },
  { name = "Body", type = "Text" },
]
"#;

/// An extension whose process takes 5 s to start: its publication holds its lock meanwhile.
const SLOW: &str = r#"[extension]
name = "Slow"
version = "1.0.0"
description = "Starts after 5000 ms."

[[actions]]
name = "Echo"
description = "Returns its input."
inputs = [ { name = "Text", type = "Text" } ]
outputs = [ { name = "Same", type = "Text" } ]
"#;

/// An SQLite file at `path` holding `sql`, made by `sqlite3`.
fn sqlite_file(path: &Path, sql: &str) {
    let output = Command::new("sqlite3").arg(path).arg(sql).output().expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn users_tokens_connections_nodes_and_locks_are_administered_in_a_browser() {
    let console = browser::Console::start(&[]);
    let files = tempfile::tempdir().expect("a temporary directory");
    let generic = fixtures::binary("generic");
    let shop = files.path().join("shop.xif");
    std::fs::write(&shop, xif_testkit::pack("Shop", "1.0.0", SHOP, &generic)).expect("written");
    let slow = files.path().join("slow.xif");
    std::fs::write(&slow, xif_testkit::pack("Slow", "1.0.0", SLOW, &generic)).expect("written");
    // Outside the server's data directory, as connections' SQLite files must be.
    let good = files.path().join("shop.db");
    sqlite_file(&good, "CREATE TABLE notes (Id INTEGER PRIMARY KEY, Body TEXT);");
    let wrong = files.path().join("wrong.db");
    sqlite_file(&wrong, "CREATE TABLE notes (Id INTEGER, Body BLOB);");
    let path = |path: &Path| path.to_str().expect("a UTF-8 path").to_owned();
    console.run(
        "admin.mjs",
        &[
            ("XIF_SHOP_ARCHIVE", &path(&shop)),
            ("XIF_SLOW_ARCHIVE", &path(&slow)),
            ("XIF_GOOD_DB", &path(&good)),
            ("XIF_WRONG_DB", &path(&wrong)),
        ],
    );
}
