//! Service Center in a real browser: an extension's overview (`tests/console/extension.mjs`):
//! its facts, validate-only, publishing with the impact on consumers shown before confirming,
//! rolling back, downloading a version's `.xif` (the bytes whose SHA-256 the page shows), the
//! publication history, a publication lock held and broken by an administrator, and a user
//! without `allow-extensions` who sees no Publish button and is refused (403) the form.

#[path = "support/browser.rs"]
mod browser;
#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;
#[path = "support/seed.rs"]
#[expect(dead_code, reason = "only the store is opened here, nothing is seeded")]
mod seed;

use sha2::{Digest, Sha256};

/// The echo fixture's definition, `NAME` and `VERSION` replaced; version 2 renames its action,
/// which a module built against version 1 uses.
const ECHO: &str = "[extension]\nname = \"NAME\"\nversion = \"VERSION\"\ndescription = \"Echoes.\"\n\n[[actions]]\nname = \"ACTION\"\ndescription = \"Says it back.\"\ninputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]\noutputs = [ { name = \"Said\", type = \"Text\" } ]\n";

/// A XIF of the echo fixture as extension `name` `version` whose action is `action`.
fn echo(name: &str, version: &str, action: &str) -> Vec<u8> {
    let definition = ECHO.replace("NAME", name).replace("VERSION", version).replace("ACTION", action);
    xif_testkit::pack(name, version, &definition, &fixtures::binary("generic"))
}

/// Uploads `bytes` as a version of `name` with `token`, through the API.
async fn upload(url: &str, token: &str, name: &str, bytes: Vec<u8>) {
    let digest = hex::encode(Sha256::digest(&bytes));
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/extensions/{name}/versions"))
        .bearer_auth(token)
        .header("x-xif-sha256", digest)
        .body(bytes)
        .send()
        .await
        .expect("the upload is sent");
    let status = response.status().as_u16();
    assert_eq!(status, 201, "the upload of {name}: {}", response.text().await.unwrap_or_default());
}

/// `seconds` since the epoch as RFC 3339 in UTC (the civil calendar from days, as Howard
/// Hinnant's `civil_from_days`).
fn rfc3339(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[test]
fn rfc3339_dates_are_civil() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_796_083_200), "2026-12-01T00:00:00Z");
}

#[test]
fn an_extensions_overview_publishes_rolls_back_downloads_and_shows_its_lock() {
    let console = browser::Console::start(&[]);
    let url = console.server.url.clone();
    let admin = console.server.token("admin", browser::PASSWORD);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        upload(&url, &admin, "Echo", echo("Echo", "1.0.0", "Say")).await;
        upload(&url, &admin, "Echo", echo("Echo", "2.0.0", "Tell")).await;
        upload(&url, &admin, "Locked", echo("Locked", "1.0.0", "Say")).await;
        // A publication of `Locked` that holds its lock, as a stuck one would (an hour's lease).
        let store = seed::open(&console.directory.path().join("data")).await;
        let now_millis = i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis(),
        )
        .expect("a time in range");
        let since = rfc3339(now_millis / 1000);
        let taken = store
            .lock(&xif_server::LockRequest {
                extension: "Locked",
                holder: "carol",
                owner: "a stuck publication",
                now: &since,
                now_millis,
                lease_until: now_millis + 3_600_000,
            })
            .await
            .expect("the lock is taken");
        assert!(taken.is_ok(), "the lock of `Locked` was free");
        store.close().await;
    });
    console.run("extension.mjs", &[("XIF_EXTENSION", "Echo"), ("XIF_LOCKED", "Locked")]);
}
