//! The farm's bars, with three real `xif server` nodes on one PostgreSQL cluster and one moto
//! bucket, behind haproxy:
//! - a publication reaches every one of the three nodes (each answers with the new version)
//!   in under 1 s: median and maximum over 10 publications, each through another node;
//! - not one call through the balancer fails while versions are replaced under load.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest as _;

const PUBLICATIONS: usize = 10;
const CALLERS: usize = 4;
const EXTENSION: &str = "FarmBench";

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let archives = xif_testkit::sample_archives(
        env!("CARGO_BIN_EXE_xif"),
        EXTENSION,
        &["0.1.0", "0.2.0"],
        temporary.path(),
        &target,
    );
    let postgres = xif_testkit::postgres::Cluster::new();
    let mut moto = xif_testkit::s3::Moto::start();
    let setup = xif_testkit::farm::Setup {
        binary: env!("CARGO_BIN_EXE_xif").to_owned(),
        database: postgres.database(),
        blobs: moto.bucket("farm-bench"),
        password: xif_testkit::BENCHMARK_PASSWORD.to_owned(),
        extra: ["--extension-isolation", "off"].map(str::to_owned).to_vec(),
        env: xif_testkit::s3::ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
    };
    let nodes = setup.nodes(temporary.path(), 3);
    let urls: Vec<String> = nodes.iter().map(xif_testkit::farm::Node::url).collect();
    let balancer = xif_testkit::haproxy::Haproxy::start(&urls.iter().map(String::as_str).collect::<Vec<_>>());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{}/api/v1/login", urls[0]))
            .json(&json!({ "user": "admin", "password": xif_testkit::BENCHMARK_PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("JSON");
        let token = login["token"].as_str().expect("a token").to_owned();
        for archive in &archives {
            let response = client
                .post(format!("{}/api/v1/extensions/{EXTENSION}/versions", urls[0]))
                .bearer_auth(&token)
                .header("x-xif-sha256", hex::encode(sha2::Sha256::digest(archive)))
                .body(archive.clone())
                .send()
                .await
                .expect("upload");
            assert_eq!(response.status(), 201);
        }
        // Both versions greet alike: each node is asked which version it runs.
        let publish = |url: String, version: i64, expected: Option<i64>| {
            let (client, token) = (client.clone(), token.clone());
            async move {
                let response = client
                    .post(format!("{url}/api/v1/extensions/{EXTENSION}/publications"))
                    .bearer_auth(&token)
                    .json(&json!({ "version": version, "expected": expected }))
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.expect("JSON")
            }
        };
        let running = |url: String| {
            let (client, token) = (client.clone(), token.clone());
            async move {
                let extensions: Value = client
                    .get(format!("{url}/api/v1/extensions"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("extensions")
                    .json()
                    .await
                    .expect("JSON");
                extensions[0]["running"].as_i64()
            }
        };
        publish(urls[0].clone(), 1, None).await;

        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let mut callers = Vec::new();
        for _ in 0..CALLERS {
            let (client, token, url) = (client.clone(), token.clone(), balancer.url.clone());
            let (stop, calls, failures) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failures));
            callers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answered = client
                        .post(format!("{url}/api/v1/extensions/{EXTENSION}/actions/Greet"))
                        .bearer_auth(&token)
                        .json(&json!({ "Person": { "Name": "Ada" } }))
                        .send()
                        .await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    if !answered.is_ok_and(|response| response.status().is_success()) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let mut runs = Vec::new();
        let mut current = 1;
        for round in 0..PUBLICATIONS {
            let next = 3 - current;
            let started = Instant::now();
            let answer = publish(urls[round % 3].clone(), next, Some(current)).await;
            // Every node answers with the new version once the publication answered.
            for url in &urls {
                assert_eq!(running(url.clone()).await, Some(next), "{answer}");
            }
            runs.push(started.elapsed());
            current = next;
            assert!(answer["nodes"].as_array().is_some_and(|nodes| nodes.len() == 3), "{answer}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.await.expect("caller");
        }
        let milliseconds: Vec<f64> = runs.iter().map(|run| run.as_secs_f64() * 1000.0).collect();
        let figure = xif_testkit::Figure::new(
            "A publication reaches all 3 nodes of a farm (each answers with it), PostgreSQL + S3",
            "ms",
            &milliseconds,
            "under 1 s, median and maximum",
            |_| true,
        );
        let figure = xif_testkit::Figure { met: figure.median < 1000.0 && figure.max < 1000.0, ..figure };
        figure.report();
        println!(
            "publication to 3 nodes ({PUBLICATIONS} runs): median {:.0} ms, min {:.0} ms, max {:.0} ms; bar under 1 s -> {}",
            figure.median,
            figure.min,
            figure.max,
            if figure.met { "met" } else { "NOT met" }
        );
        let (calls, failures) = (calls.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
        xif_testkit::Figure {
            what: format!("Failed calls through haproxy while versions were replaced on 3 nodes ({calls} calls)"),
            unit: "calls".into(),
            median: failures as f64,
            min: failures as f64,
            max: failures as f64,
            runs: 1,
            baseline: None,
            bar: "zero".into(),
            met: failures == 0,
        }
        .report();
        println!("calls through the balancer during the publications: {calls}, failed: {failures} (bar: zero)");
    });
    drop(balancer);
    drop(nodes);
    moto.stop();
    drop(postgres);
}
