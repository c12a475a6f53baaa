//! The runtime's bars: the sample extension's new version is callable within 150 ms of
//! publishing it, and no call fails while versions are replaced under load. Runs the real
//! `xif server` with the sample made by `xif new`, published alternately in two versions while
//! callers keep calling.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const ROUNDS: usize = 12;
const CALLERS: usize = 4;

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let archives = xif_testkit::sample_archives(
        env!("CARGO_BIN_EXE_xif"),
        "DeployBench",
        &["0.1.0", "0.2.0"],
        temporary.path(),
        &target,
    );

    let server = xif_testkit::Server::for_benchmark(env!("CARGO_BIN_EXE_xif"), &temporary.path().join("data"));
    let url = server.url.clone();
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        use sha2::Digest as _;
        for archive in &archives {
            let digest: String = hex::encode(sha2::Sha256::digest(archive));
            let response = client
                .post(format!("{url}/api/v1/extensions/DeployBench/versions"))
                .bearer_auth(&token)
                .header("x-xif-sha256", digest)
                .body(archive.clone())
                .send()
                .await
                .expect("upload");
            assert_eq!(response.status(), 201);
        }
        let publish = |version: i64, expected: Option<i64>| {
            let client = client.clone();
            let token = token.clone();
            let url = url.clone();
            async move {
                let response = client
                    .post(format!("{url}/api/v1/extensions/DeployBench/publications"))
                    .bearer_auth(&token)
                    .json(&json!({ "version": version, "expected": expected }))
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
            }
        };
        let call = |client: reqwest::Client, token: String, url: String| async move {
            client
                .post(format!("{url}/api/v1/extensions/DeployBench/actions/Greet"))
                .bearer_auth(&token)
                .json(&json!({ "Person": { "Name": "Ada" } }))
                .send()
                .await
                .map(|response| response.status().is_success())
                .unwrap_or(false)
        };
        publish(1, None).await;

        let stop = Arc::new(AtomicBool::new(false));
        let (succeeded, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (client, token, url) = (client.clone(), token.clone(), url.clone());
                let (stop, succeeded, failed) = (Arc::clone(&stop), Arc::clone(&succeeded), Arc::clone(&failed));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let counter =
                            if call(client.clone(), token.clone(), url.clone()).await { &succeeded } else { &failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();

        let mut publishes = Vec::new();
        let mut callable = Vec::new();
        let mut current = 1;
        let mut failed_per_round = Vec::new();
        for _ in 0..ROUNDS {
            let failed_before = failed.load(Ordering::Relaxed);
            let next = 3 - current;
            let started = Instant::now();
            publish(next, Some(current)).await;
            let published = started.elapsed();
            while !call(client.clone(), token.clone(), url.clone()).await {}
            callable.push(started.elapsed());
            publishes.push(published);
            current = next;
            tokio::time::sleep(Duration::from_millis(100)).await;
            failed_per_round.push((failed.load(Ordering::Relaxed) - failed_before) as f64);
        }
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.await.ok();
        }
        let milliseconds: Vec<f64> = callable.iter().map(|time| time.as_secs_f64() * 1000.0).collect();
        xif_testkit::Figure::new(
            "publish of the sample to the new version's first answer, real server",
            "ms",
            &milliseconds,
            "under 150 ms",
            |median| median < 150.0,
        )
        .report();
        let worst = failed_per_round.iter().copied().fold(0.0, f64::max);
        xif_testkit::Figure::new(
            &format!("calls failed per replacement, {CALLERS} callers calling throughout"),
            "calls",
            &failed_per_round,
            "zero",
            |_| worst == 0.0,
        )
        .report();
        callable.sort_unstable();
        publishes.sort_unstable();
        let median = |values: &[Duration]| values[values.len() / 2];
        println!(
            "sample extension, {ROUNDS} publications alternating two versions, {CALLERS} callers calling throughout"
        );
        println!(
            "publication (deploy included): median {:.1?}, min {:.1?}, max {:.1?}",
            median(&publishes),
            publishes[0],
            publishes[ROUNDS - 1]
        );
        println!(
            "publish to the new version's first answer: median {:.1?}, min {:.1?}, max {:.1?}; bar 150 ms -> {}",
            median(&callable),
            callable[0],
            callable[ROUNDS - 1],
            if median(&callable) < Duration::from_millis(150) { "met" } else { "NOT met" }
        );
        let failed = failed.load(Ordering::Relaxed);
        println!(
            "calls during the replacements: {} succeeded, {failed} failed; bar 0 -> {}",
            succeeded.load(Ordering::Relaxed),
            if failed == 0 { "met" } else { "NOT met" }
        );
    });
    drop(server);
}
