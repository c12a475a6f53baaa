//! Bounded abuse: authenticated calls per second through the API (wrk, `GET /api/v1/me`) while
//! 24 clients, each from an address of its own on loopback, flood the login endpoint with
//! guesses, against the same without the flood, in the same run; and the server's peak memory
//! under the flood. Each round's flood comes from new addresses, so that every round pays for
//! the password checks the address limit lets through, as 24 new clients would.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SECONDS: &str = "4";
const ROUNDS: u8 = 3;
const CONNECTIONS: &str = "8";
const FLOODERS: u8 = 24;

/// Runs wrk against `url` with the bearer `token`; returns requests per second.
fn wrk(url: &str, token: &str, script_directory: &Path) -> f64 {
    let script = script_directory.join("me.lua");
    std::fs::write(&script, format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n")).expect("written");
    let output = Command::new("wrk")
        .args(["-t", "1", "-c", CONNECTIONS, "-d", SECONDS, "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!text.contains("Non-2xx"), "every authenticated request succeeds:\n{text}");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:").map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no rate in:\n{text}"))
        .parse()
        .expect("a rate")
}

/// 24 clients guessing passwords from 127.3.`round`.1–24 until `stop`; counts answers by kind.
fn flood(url: String, round: u8, stop: Arc<AtomicBool>, refused: Arc<AtomicUsize>, checked: Arc<AtomicUsize>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let mut clients = tokio::task::JoinSet::new();
        for client in 1..=FLOODERS {
            let (url, stop, refused, checked) = (url.clone(), stop.clone(), refused.clone(), checked.clone());
            clients.spawn(async move {
                let address = IpAddr::V4(Ipv4Addr::new(127, 3, round, client));
                let http = reqwest::Client::builder().local_address(address).build().expect("client");
                let mut attempt = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let guess = serde_json::json!({ "user": format!("guess-{client}-{attempt}"), "password": "wrong" });
                    match http
                        .post(format!("{url}/api/v1/login"))
                        .json(&guess)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                    {
                        Ok(429 | 503) => refused.fetch_add(1, Ordering::Relaxed),
                        Ok(401) => checked.fetch_add(1, Ordering::Relaxed),
                        other => panic!("a guess was answered {other:?}"),
                    };
                    attempt += 1;
                }
            });
        }
        clients.join_all().await;
    });
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        let installed =
            Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]).status().is_ok_and(|status| status.success());
        assert!(installed, "wrk is needed: apt-get install wrk");
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let server = xif_testkit::Server::for_benchmark(env!("CARGO_BIN_EXE_xif"), &temporary.path().join("data"));
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
    let me = format!("{}/api/v1/me", server.url);

    let (mut quiet_rates, mut flood_rates, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let quiet = wrk(&me, &token, temporary.path());
        let stop = Arc::new(AtomicBool::new(false));
        let (refused, checked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let flooding = {
            let (url, stop, refused, checked) = (server.url.clone(), stop.clone(), refused.clone(), checked.clone());
            std::thread::spawn(move || flood(url, round, stop, refused, checked))
        };
        let flooded = wrk(&me, &token, temporary.path());
        stop.store(true, Ordering::Relaxed);
        flooding.join().expect("the flood ends");
        let peak = xif_testkit::peak_memory_mib(server.id());
        println!(
            "round {round}: {quiet:.0} authenticated requests/s quiet, {flooded:.0} during the flood \
             ({} guesses checked, {} refused); the server's peak memory so far {peak:.0} MiB",
            checked.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed)
        );
        quiet_rates.push(quiet);
        flood_rates.push(flooded);
        peaks.push(peak);
    }
    drop(server);
    let (baseline, _, _) = xif_testkit::spread(&quiet_rates);
    let (flooded, _, _) = xif_testkit::spread(&flood_rates);
    let ratio = flooded / baseline;
    println!(
        "wrk, 1 thread, {CONNECTIONS} connections, {SECONDS} s, GET /api/v1/me; {FLOODERS} login flooders; {ROUNDS} rounds (medians)"
    );
    println!(
        "authenticated calls: {baseline:.0} requests/s quiet, {flooded:.0} during the flood: {:.0}% (bar: at least 70%) -> {}",
        ratio * 100.0,
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    xif_testkit::Figure::new(
        "authenticated calls during a login flood of 24 clients (baseline: the same without the flood)",
        "requests/s",
        &flood_rates,
        "at least 70% of the baseline",
        |median| median >= baseline * 0.7,
    )
    .against(baseline)
    .report();
    let (peak, _, _) = xif_testkit::spread(&peaks);
    println!("the server's peak memory under the flood: {peak:.0} MiB (bar: under 300 MiB)");
    xif_testkit::Figure::new(
        "the server's peak memory under a login flood (VmHWM)",
        "MiB",
        &peaks,
        "under 300 MiB",
        |median| median < 300.0,
    )
    .report();
}
