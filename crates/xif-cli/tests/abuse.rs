//! The real `xif server` under abuse, on loopback only, each flood bounded in count and time: a
//! login flood from many clients is throttled while a logged-in user keeps being served and the
//! server's memory stays bounded; idle and trickling connections on a server with few file
//! descriptors are closed in time while new requests keep being answered.
#![expect(clippy::print_stderr, reason = "the tests report what they measured")]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PASSWORD: &str = "administrator-password";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// 24 clients guess passwords for 4 seconds: half from one address (throttled at once), half
/// from 32 addresses each (127.1.x.y), which get past the address limit and keep the password
/// checks busy. Meanwhile `bob`, logged in before, calls the API.
#[test]
fn a_login_flood_is_throttled_while_a_logged_in_user_is_served_in_bounded_memory() {
    let data = tempfile::tempdir().expect("data directory");
    let (lines, said) = std::sync::mpsc::channel();
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        data.path(),
        PASSWORD,
        "warn",
        &["--metrics-listen", "127.0.0.1:0"],
        move |line| {
            lines.send(line).ok();
        },
    );
    let metrics_url = loop {
        let line = said.recv_timeout(Duration::from_secs(20)).expect("the server says where its metrics are");
        if let Some(url) = line.strip_prefix("metrics on ") {
            break url.to_owned();
        }
    };
    let url = server.url.clone();
    let server_id = server.id();
    let admin = server.token("admin", PASSWORD);
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{url}/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "bob", "password": "bobs-long-password" }))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status(), 201);
        let bob = server.token("bob", "bobs-long-password");

        eprintln!("the server's peak memory before the flood: {:.0} MiB", xif_testkit::peak_memory_mib(server_id));
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut flood = tokio::task::JoinSet::new();
        for task in 0..24u8 {
            let url = url.clone();
            flood.spawn(async move {
                let clients: Vec<reqwest::Client> = if task < 12 {
                    vec![reqwest::Client::new()]
                } else {
                    (1..=32)
                        .map(|host| {
                            let address = IpAddr::V4(Ipv4Addr::new(127, 1, task, host));
                            reqwest::Client::builder().local_address(address).build().expect("client")
                        })
                        .collect()
                };
                let mut statuses = BTreeMap::<u16, usize>::new();
                let mut attempt = 0;
                while Instant::now() < deadline {
                    let client = &clients[attempt % clients.len()];
                    let guess = json!({ "user": format!("guess-{task}-{attempt}"), "password": "not the password" });
                    let response = client.post(format!("{url}/api/v1/login")).json(&guess).send().await;
                    let response = response.expect("the server answers every login");
                    let status = response.status().as_u16();
                    if matches!(status, 429 | 503) {
                        let retry_after = response.headers().get("retry-after").and_then(|value| value.to_str().ok());
                        assert!(retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s >= 1)));
                    }
                    *statuses.entry(status).or_default() += 1;
                    attempt += 1;
                }
                statuses
            });
        }

        let mut served = 0;
        let mut slowest = Duration::ZERO;
        while Instant::now() < deadline {
            let started = Instant::now();
            let response =
                client.get(format!("{url}/api/v1/me")).bearer_auth(&bob).send().await.expect("bob is answered");
            assert_eq!(response.status(), 200, "bob's requests are served during the flood");
            slowest = slowest.max(started.elapsed());
            served += 1;
        }

        let mut statuses = BTreeMap::<u16, usize>::new();
        for finished in flood.join_all().await {
            for (status, count) in finished {
                *statuses.entry(status).or_default() += count;
            }
        }
        eprintln!("flood answers by status: {statuses:?}; bob served {served} times, the slowest in {slowest:?}");
        assert!(statuses.keys().all(|status| matches!(status, 401 | 429 | 503)), "{statuses:?}");
        assert!(statuses.get(&429).is_some_and(|count| *count > 0), "the flood is throttled: {statuses:?}");
        assert!(served >= 20, "bob was served {served} times in 4 seconds");
        assert!(slowest < Duration::from_secs(2), "bob waited {slowest:?}");

        // The metrics: on the API's address for administrators only, on their own without a token.
        let response = client.get(format!("{url}/metrics")).send().await.expect("answered");
        assert_eq!(response.status(), 401);
        let response = client.get(format!("{url}/metrics")).bearer_auth(&bob).send().await.expect("answered");
        assert_eq!(response.status(), 403);
        let response = client.get(&metrics_url).send().await.expect("answered");
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("text");
        assert!(text.contains("xif_login_throttled_total"), "{text}");
    });
    let peak = server.peak_memory_mib();
    eprintln!("the server's peak memory: {peak:.0} MiB");
    assert!(peak < 300.0, "the server's peak memory under the flood was {peak:.0} MiB");
}

/// 300 connections to a server that may open 256 files and gives 2 seconds for headers: half
/// send nothing, half send one header byte a second. The server closes each of them, answering
/// new requests meanwhile.
#[test]
fn idle_and_trickling_connections_are_closed_while_new_requests_are_answered() {
    let data = tempfile::tempdir().expect("data directory");
    let mut command = Command::new("prlimit");
    command.args(["--nofile=256:256", "--", env!("CARGO_BIN_EXE_xif")]);
    let server = xif_testkit::Server::start_with(
        command,
        data.path(),
        PASSWORD,
        "warn",
        &["--header-timeout", "2", "--body-timeout", "2"],
        drop,
    );
    let address: SocketAddr = server.url.strip_prefix("http://").expect("http").parse().expect("an address");
    let url = server.url.clone();
    let token = server.token("admin", PASSWORD);
    let upload = format!(
        "POST /api/v1/extensions/Trickle/versions HTTP/1.1\r\nHost: xif\r\nAuthorization: Bearer {token}\r\n\
         x-xif-sha256: {}\r\nContent-Length: 10000000\r\n\r\nPK",
        "0".repeat(64)
    );
    let upload: &'static [u8] = upload.into_bytes().leak();
    runtime().block_on(async move {
        let started = Instant::now();
        let mut attackers = tokio::task::JoinSet::new();
        for index in 0..300 {
            attackers.spawn(async move {
                // Beyond the kernel's queue a connection does not even open: not counted.
                let Ok(Ok(mut stream)) =
                    tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(address)).await
                else {
                    return None;
                };
                // A quarter send nothing, a quarter trickle their headers, a quarter send whole
                // headers and then trickle a JSON body, a quarter trickle an upload.
                let trickle = index % 4 != 0;
                let start: &[u8] = match index % 4 {
                    1 => b"GET /healthz HTTP/1.1\r\nHost: xif\r\nX-Slow: ",
                    2 => b"POST /api/v1/login HTTP/1.1\r\nHost: xif\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
                    _ => upload,
                };
                if trickle && stream.write_all(start).await.is_err() {
                    return Some(started.elapsed());
                }
                let mut buffer = [0u8; 1024];
                // Each connection waits for the server to close it, for a minute at most.
                let closed = tokio::time::timeout(Duration::from_secs(60), async {
                    loop {
                        tokio::select! {
                            read = stream.read(&mut buffer) => match read {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            },
                            () = tokio::time::sleep(Duration::from_secs(1)), if trickle => {
                                if stream.write_all(b"a").await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                })
                .await;
                Some(closed.map_or(Duration::MAX, |()| started.elapsed()))
            });
        }

        // New requests, each on a new connection, while the attackers hold theirs.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
        let mut answered = Vec::new();
        while answered.len() < 3 {
            let response = tokio::time::timeout(Duration::from_secs(30), client.get(format!("{url}/healthz")).send())
                .await
                .expect("a new request is answered within 30 seconds")
                .expect("answered");
            assert_eq!(response.status(), 200);
            answered.push(started.elapsed());
        }

        let closed: Vec<Duration> = attackers.join_all().await.into_iter().flatten().collect();
        assert!(closed.len() >= 200, "only {} of 300 connections opened", closed.len());
        assert!(closed.iter().all(|at| *at != Duration::MAX), "a connection was left open for a minute");
        let last = closed.iter().max().copied().unwrap_or_default();
        eprintln!(
            "{} connections opened, all closed by the server within {last:?}; new requests answered at {answered:?}",
            closed.len()
        );
        assert!(answered[0] < last, "a new request was answered while attackers' connections were open");
        let response = client.get(format!("{url}/healthz")).send().await.expect("answered");
        assert_eq!(response.status(), 200, "the server answers after the attack");
    });
}

/// Behind a balancer every login comes from its address. With `--trusted-proxy`, a request
/// from the balancer is counted against the client it forwards for (the last address of
/// X-Forwarded-For that is not the balancer's), so that ten bad logins from one client do not
/// lock everyone out; a request from any other peer is counted against its own address,
/// whatever X-Forwarded-For it sends.
#[test]
fn logins_through_a_trusted_proxy_are_counted_per_forwarded_client() {
    let data = tempfile::tempdir().expect("data directory");
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        data.path(),
        PASSWORD,
        "warn",
        &["--trusted-proxy", "127.0.0.1/32", "--login-attempts-per-address", "2", "--login-attempts-per-user", "0"],
        drop,
    );
    let url = server.url.clone();
    runtime().block_on(async {
        let from = |address: [u8; 4]| {
            reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::from(address))).build().expect("a client")
        };
        let (proxy, other) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
        let login = |client: &reqwest::Client, forwarded: &str| {
            client
                .post(format!("{url}/api/v1/login"))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "user": "nobody", "password": "a guess" }))
                .send()
        };
        let status = |response: reqwest::Result<reqwest::Response>| response.expect("answered").status().as_u16();
        // Through the trusted proxy: each forwarded client has its own 2 attempts.
        assert_eq!(status(login(&proxy, "203.0.113.1").await), 401);
        assert_eq!(status(login(&proxy, "203.0.113.1").await), 401);
        assert_eq!(status(login(&proxy, "203.0.113.1").await), 429, "the forwarded client is throttled");
        assert_eq!(status(login(&proxy, "203.0.113.2").await), 401, "another forwarded client is not");
        // What the client wrote itself (left of what the proxy appended) is not believed.
        assert_eq!(status(login(&proxy, "198.51.100.9, 203.0.113.1").await), 429);
        assert_eq!(status(login(&proxy, "203.0.113.2, 127.0.0.1").await), 401, "the proxy's own address is skipped");
        assert_eq!(status(login(&proxy, "203.0.113.2").await), 429);
        // From a peer that is not trusted, its own address counts, whatever it forwards.
        assert_eq!(status(login(&other, "203.0.113.3").await), 401);
        assert_eq!(status(login(&other, "203.0.113.4").await), 401);
        assert_eq!(
            status(login(&other, "203.0.113.5").await),
            429,
            "X-Forwarded-For from an untrusted peer is ignored"
        );
    });
}
