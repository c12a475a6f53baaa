//! Isolation's cost: the sample extension on a real `xif server` with isolation on (the
//! launcher, Landlock, limits, a user id of its own as root) against one with
//! `--extension-isolation off`, in the same run and alternating, so that the machine's drift
//! touches both alike. Publish to the new version's first answer at most 1.1× isolation off;
//! calls per second at least 0.9×.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest as _;

const PUBLISH_ROUNDS: usize = 12;
const CALL_ROUNDS: usize = 3;
const CALL_SECONDS: u64 = 3;
const CALLERS: usize = 8;

/// One server and what the benchmark needs of it.
struct Side {
    name: &'static str,
    server: xif_testkit::Server,
    token: String,
    current: i64,
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let archives = xif_testkit::sample_archives(
        env!("CARGO_BIN_EXE_xif"),
        "IsolationBench",
        &["0.1.0", "0.2.0"],
        temporary.path(),
        &target,
    );

    let start = |name: &'static str, extra: &[&str]| {
        let server = xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &temporary.path().join(name),
            xif_testkit::BENCHMARK_PASSWORD,
            "warn",
            extra,
            drop,
        );
        let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
        Side { name, server, token, current: 0 }
    };
    let mut sides = [start("isolated", &[]), start("unisolated", &["--extension-isolation", "off"])];

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let client = reqwest::Client::new();
    let call = |side: &Side| {
        let request = client
            .post(format!("{}/api/v1/extensions/IsolationBench/actions/Greet", side.server.url))
            .bearer_auth(&side.token)
            .json(&json!({ "Person": { "Name": "Ada" } }));
        async move { request.send().await.is_ok_and(|response| response.status().is_success()) }
    };
    let publish = |side: &Side, version: i64, expected: Option<i64>| {
        let request = client
            .post(format!("{}/api/v1/extensions/IsolationBench/publications", side.server.url))
            .bearer_auth(&side.token)
            .json(&json!({ "version": version, "expected": expected }));
        async move {
            let response = request.send().await.expect("publish");
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
        }
    };

    runtime.block_on(async {
        for side in &mut sides {
            for archive in &archives {
                let digest: String = hex::encode(sha2::Sha256::digest(archive));
                let response = client
                    .post(format!("{}/api/v1/extensions/IsolationBench/versions", side.server.url))
                    .bearer_auth(&side.token)
                    .header("x-xif-sha256", digest)
                    .body(archive.clone())
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(response.status(), 201);
            }
            publish(side, 1, None).await;
            side.current = 1;
        }
    });

    // Publish to first answer, the two servers taking turns.
    let mut first_answers: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    runtime.block_on(async {
        for _ in 0..PUBLISH_ROUNDS {
            for (index, side) in sides.iter_mut().enumerate() {
                let next = 3 - side.current;
                let started = Instant::now();
                publish(side, next, Some(side.current)).await;
                while !call(side).await {}
                first_answers[index].push(started.elapsed().as_secs_f64() * 1000.0);
                side.current = next;
                // Let the replaced version drain and stop before the next measurement.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Calls per second with callers calling for a while, the two servers taking turns.
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    runtime.block_on(async {
        for _ in 0..CALL_ROUNDS {
            for (index, side) in sides.iter().enumerate() {
                let stop = Arc::new(AtomicBool::new(false));
                let succeeded = Arc::new(AtomicU64::new(0));
                let url = format!("{}/api/v1/extensions/IsolationBench/actions/Greet", side.server.url);
                let callers: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        let (client, token, url) = (client.clone(), side.token.clone(), url.clone());
                        let (stop, succeeded) = (Arc::clone(&stop), Arc::clone(&succeeded));
                        tokio::spawn(async move {
                            while !stop.load(Ordering::Relaxed) {
                                let answered = client
                                    .post(&url)
                                    .bearer_auth(&token)
                                    .json(&json!({ "Person": { "Name": "Ada" } }))
                                    .send()
                                    .await
                                    .is_ok_and(|response| response.status().is_success());
                                assert!(answered, "every call succeeds");
                                succeeded.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                let started = Instant::now();
                tokio::time::sleep(Duration::from_secs(CALL_SECONDS)).await;
                stop.store(true, Ordering::Relaxed);
                for caller in callers {
                    caller.await.expect("a caller");
                }
                rates[index].push(succeeded.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64());
            }
        }
    });

    let median = |values: &[f64]| xif_testkit::spread(values).0;
    let (publish_on, publish_off) = (median(&first_answers[0]), median(&first_answers[1]));
    let (calls_on, calls_off) = (median(&rates[0]), median(&rates[1]));
    xif_testkit::Figure::new(
        "isolation's cost: publish to first answer, isolated (baseline: isolation off)",
        "ms",
        &first_answers[0],
        "at most 1.1× the baseline",
        |median| median <= 1.1 * publish_off,
    )
    .against(publish_off)
    .report();
    xif_testkit::Figure::new(
        "isolation's cost: calls per second through the API, isolated (baseline: isolation off)",
        "calls/s",
        &rates[0],
        "at least 0.9× the baseline",
        |median| median >= 0.9 * calls_off,
    )
    .against(calls_off)
    .report();
    for (index, side) in sides.iter().enumerate() {
        println!(
            "{}: publish to first answer median {:.1} ms over {PUBLISH_ROUNDS}; calls {:.0}/s median over {CALL_ROUNDS} rounds of {CALL_SECONDS} s, {CALLERS} callers",
            side.name,
            median(&first_answers[index]),
            median(&rates[index])
        );
    }
    println!(
        "publish to first answer: {:.2}× isolation off (bar: at most 1.1×) -> {}",
        publish_on / publish_off,
        if publish_on <= 1.1 * publish_off { "met" } else { "NOT met" }
    );
    println!(
        "calls per second: {:.2}× isolation off (bar: at least 0.9×) -> {}",
        calls_on / calls_off,
        if calls_on >= 0.9 * calls_off { "met" } else { "NOT met" }
    );
}
