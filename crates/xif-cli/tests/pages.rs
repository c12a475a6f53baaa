//! The CLI shows every item of a list that the server answers in several pages: `xif versions`
//! and `xif admin user list` against a real `xif server` whose database holds more than a page
//! of each (recorded through the store while the server is stopped).

#[path = "support/seed.rs"]
mod seed;

use std::process::Command;

const PASSWORD: &str = "administrator-password";
/// One more than the largest page, which the client asks for.
const MORE_THAN_A_PAGE: usize = xif_api::PAGE_LIMIT_MAX as usize + 1;

#[test]
fn the_cli_lists_every_page() {
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let data = temporary.path().join("data");
    // Started once to make its administrator, which it does only while it has no users.
    drop(xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &data, PASSWORD, "warn", &[], drop));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = seed::open(&data).await;
        seed::versions(&*store, "Big", MORE_THAN_A_PAGE).await;
        seed::users(&*store, MORE_THAN_A_PAGE).await;
        store.close().await;
    });
    let server = xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &data, PASSWORD, "warn", &[], drop);
    let token = server.token("admin", PASSWORD);
    let xif = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(arguments)
            .env("XIF_SERVER", &server.url)
            .env("XIF_TOKEN", &token)
            .env("XIF_CONFIG_DIR", temporary.path().join("config"))
            .output()
            .expect("xif runs");
        assert!(output.status.success(), "xif {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("UTF-8")
    };

    let versions: serde_json::Value = serde_json::from_str(&xif(&["versions", "Big", "--json"])).expect("JSON");
    let numbers: Vec<i64> = versions
        .as_array()
        .expect("an array")
        .iter()
        .map(|version| version["number"].as_i64().expect("a number"))
        .collect();
    assert_eq!(numbers, (1..=MORE_THAN_A_PAGE as i64).collect::<Vec<_>>(), "every version, once, in order");
    let table = xif(&["versions", "Big"]);
    assert_eq!(table.lines().count(), 1 + MORE_THAN_A_PAGE, "a heading and every version");

    let users = xif(&["admin", "user", "list"]);
    let names: Vec<&str> = users.lines().map(|line| line.split([' ', ':']).next().unwrap_or_default()).collect();
    let mut expected = vec!["admin".to_owned()];
    expected.extend((0..MORE_THAN_A_PAGE).map(|index| format!("user{index:04}")));
    assert_eq!(names, expected, "every user, once, in order");
}
