//! Service Center's bars: the extensions page with 1,000 extensions, signed in, renders in
//! under 50 ms on the embedded default (SQLite), against the API's list of the same 1,000 in
//! the same run; and the console's scripts and styles together weigh at most 100 KiB
//! compressed (each asset the page references, fetched with `Accept-Encoding: gzip`).
//!
//! The 1,000 extensions (one version each) are recorded through the store's own API before the
//! server starts (`tests/support/seed.rs`); their archives do not exist and are never read.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

#[path = "../tests/support/seed.rs"]
#[expect(dead_code, reason = "the benchmark seeds no users")]
mod seed;

use std::time::Instant;

const EXTENSIONS: usize = 1_000;
const WARM_UP: usize = 5;
const RUNS: usize = 30;
/// The bar of the page, in milliseconds.
const PAGE_BAR_MS: f64 = 50.0;
/// The bar of the assets, in bytes.
const ASSETS_BAR: f64 = 100.0 * 1024.0;

/// How long each of `RUNS` GETs of `url` takes, in milliseconds, after `WARM_UP` untimed; each
/// answer must be a 200 that contains `expected`.
async fn timed(client: &reqwest::Client, url: &str, headers: &[(&str, &str)], expected: &str) -> Vec<f64> {
    let mut runs = Vec::new();
    for run in 0..WARM_UP + RUNS {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let started = Instant::now();
        let answer = request.send().await.expect("the server answers");
        let status = answer.status();
        let body = answer.text().await.expect("a body");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(status, 200, "GET {url}: {body}");
        assert!(body.contains(expected), "GET {url} holds `{expected}`");
        if run >= WARM_UP {
            runs.push(elapsed);
        }
    }
    runs
}

/// The URLs of the scripts and styles `html` references (`src=` and `href=` under the console's assets).
fn assets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (index, _) in html.match_indices(attribute) {
            let rest = &html[index + attribute.len()..];
            let Some(end) = rest.find('"') else { continue };
            let target = &rest[..end];
            if (target.ends_with(".js")
                || target.ends_with(".css")
                || target.contains(".js?")
                || target.contains(".css?"))
                && !found.iter().any(|seen| seen == target)
            {
                found.push(target.to_owned());
            }
        }
    }
    found
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let temporary = tempfile::tempdir().expect("temporary directory");
        let data = temporary.path().join("data");
        let binary = env!("CARGO_BIN_EXE_xif");
        // Started once to make its administrator, stopped while the extensions are recorded.
        xif_testkit::Server::for_benchmark(binary, &data).stop();
        let started = Instant::now();
        let store = seed::open(&data).await;
        for index in 0..EXTENSIONS {
            seed::versions(&*store, &format!("Bench{index:04}"), 1).await;
        }
        store.close().await;
        println!("seeded {EXTENSIONS} extensions in {:.1?}", started.elapsed());
        let server = xif_testkit::Server::for_benchmark(binary, &data);
        let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
        let client = reqwest::Client::new();
        // A console session is a login token in its cookie.
        let cookie = format!("xif_session={token}");
        let bearer = format!("Bearer {token}");

        let page_url = format!("{}/console/extensions", server.url);
        let api_url = format!("{}/api/v1/extensions?limit={EXTENSIONS}", server.url);
        let pages = timed(&client, &page_url, &[("cookie", &cookie)], "Bench0999").await;
        let listed = timed(&client, &api_url, &[("authorization", &bearer)], "Bench0999").await;
        let (page, page_min, page_max) = xif_testkit::spread(&pages);
        let (baseline, _, _) = xif_testkit::spread(&listed);
        println!(
            "GET /console/extensions with {EXTENSIONS} extensions, signed in: median {page:.1} ms (min {page_min:.1}, max {page_max:.1}); \
             GET /api/v1/extensions of the same: {baseline:.1} ms; {RUNS} runs (bar: under {PAGE_BAR_MS} ms) -> {}",
            if page < PAGE_BAR_MS { "met" } else { "NOT met" }
        );
        xif_testkit::Figure::new(
            "Service Center's extensions page with 1,000 extensions, signed in, SQLite (baseline: the API's list of the same)",
            "ms",
            &pages,
            "under 50 ms",
            |median| median < PAGE_BAR_MS,
        )
        .against(baseline)
        .report();

        let html = client
            .get(&page_url)
            .header("cookie", &cookie)
            .send()
            .await
            .expect("the page")
            .text()
            .await
            .expect("its HTML");
        let urls = assets(&html);
        assert!(urls.len() >= 3, "the page references its scripts and styles: {urls:?}");
        let mut total = 0usize;
        for target in &urls {
            let url = if target.starts_with('/') { format!("{}{target}", server.url) } else { target.clone() };
            let answer = client.get(&url).header("accept-encoding", "gzip").send().await.expect("the asset");
            assert_eq!(answer.status(), 200, "GET {url}");
            let encoding = answer.headers().get("content-encoding").and_then(|value| value.to_str().ok()).map(str::to_owned);
            let bytes = answer.bytes().await.expect("its bytes").len();
            println!("{target}: {bytes} bytes ({})", encoding.as_deref().unwrap_or("not compressed"));
            total += bytes;
        }
        let total = total as f64;
        println!(
            "the console's scripts and styles: {:.1} KiB compressed in all (bar: at most 100 KiB) -> {}",
            total / 1024.0,
            if total <= ASSETS_BAR { "met" } else { "NOT met" }
        );
        xif_testkit::Figure::new(
            "Service Center's scripts and styles together, gzip-compressed",
            "KiB",
            &[total / 1024.0],
            "at most 100 KiB",
            |median| median <= 100.0,
        )
        .report();
        drop(server);
    });
}
