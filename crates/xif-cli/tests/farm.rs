//! The farm end to end, with real processes only: three `xif server` nodes on one PostgreSQL
//! cluster (Debian's, a throwaway one) and one moto bucket, behind haproxy checking `/readyz`.
//! Publications reach every node, calls through the balancer never fail while versions are
//! replaced, a node killed during a deploy catches up before it says it is ready, a killed lock
//! holder's lock is taken over when its lease ends, PostgreSQL restarts under the farm, the
//! object store stops, a revoked token is refused by every node within a second, and `xif
//! nodes` lists the nodes.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest as _;
use xif_testkit::farm::Node;

const PASSWORD: &str = "administrator-password";
const EXTENSION: &str = "Farmed";
/// Short, so that the lock test waits little.
const LOCK_LEASE_SECS: f64 = 2.0;

/// A farm of three nodes behind haproxy, on a PostgreSQL cluster and a moto bucket of its own.
struct Farm {
    nodes: Vec<Node>,
    setup: xif_testkit::farm::Setup,
    balancer: xif_testkit::haproxy::Haproxy,
    postgres: xif_testkit::postgres::Cluster,
    moto: xif_testkit::s3::Moto,
    directory: tempfile::TempDir,
    http: reqwest::Client,
}

impl Farm {
    fn new() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        // Extensions confined under users of their own (one node, once) reach their working
        // directories through it.
        std::fs::set_permissions(directory.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711))
            .expect("permissions");
        let postgres = xif_testkit::postgres::Cluster::new();
        let mut moto = xif_testkit::s3::Moto::start();
        let setup = xif_testkit::farm::Setup {
            binary: env!("CARGO_BIN_EXE_xif").to_owned(),
            database: postgres.database(),
            blobs: moto.bucket("farm"),
            password: PASSWORD.to_owned(),
            extra: ["--extension-isolation", "off", "--lock-lease", &LOCK_LEASE_SECS.to_string()]
                .map(str::to_owned)
                .to_vec(),
            env: xif_testkit::s3::ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
        };
        let nodes = setup.nodes(directory.path(), 3);
        let backends: Vec<String> = nodes.iter().map(Node::url).collect();
        let balancer = xif_testkit::haproxy::Haproxy::start(&backends.iter().map(String::as_str).collect::<Vec<_>>());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("a client");
        Self { nodes, setup, balancer, postgres, moto, directory, http }
    }

    fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    fn restart(&mut self, index: usize) {
        self.setup.restart(&mut self.nodes[index]);
    }

    async fn token(&self, url: &str) -> (String, i64) {
        let answer: Value = self
            .http
            .post(format!("{url}/api/v1/login"))
            .json(&json!({ "user": "admin", "password": PASSWORD }))
            .send()
            .await
            .expect("the login is answered")
            .json()
            .await
            .expect("JSON");
        (answer["token"].as_str().expect("a token").to_owned(), answer["token_id"].as_i64().expect("an id"))
    }

    async fn upload(&self, url: &str, token: &str, archive: &[u8]) -> reqwest::Response {
        self.http
            .post(format!("{url}/api/v1/extensions/{EXTENSION}/versions"))
            .bearer_auth(token)
            .header("x-xif-sha256", hex::encode(sha2::Sha256::digest(archive)))
            .body(archive.to_vec())
            .send()
            .await
            .expect("the upload is answered")
    }

    async fn publish(&self, url: &str, token: &str, version: i64, expected: Option<i64>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{url}/api/v1/extensions/{EXTENSION}/publications"))
            .bearer_auth(token)
            .json(&json!({ "version": version, "expected": expected }))
            .send()
            .await
            .expect("the publication is answered");
        (response.status().as_u16(), response.json().await.expect("JSON"))
    }

    /// The greeting of `url`'s running version, or the failure.
    async fn greet(&self, url: &str, token: &str) -> Result<String, String> {
        let response = self
            .http
            .post(format!("{url}/api/v1/extensions/{EXTENSION}/actions/Greet"))
            .bearer_auth(token)
            .json(&json!({ "Person": { "Name": "Ada" } }))
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|error| error.to_string())?;
        if status.is_success() {
            Ok(body["Greeting"].as_str().unwrap_or_default().to_owned())
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    async fn ready(&self, url: &str) -> bool {
        self.http.get(format!("{url}/readyz")).send().await.is_ok_and(|response| response.status().is_success())
    }
}

/// Archives of one extension, version `N` greeting `HellovN, Ada!`, built by `xif new` and
/// `xif save`. Version `slow` starts only after sleeping `slow_start` (to hold a publication).
fn archives(directory: &Path, versions: usize, slow: Option<(usize, Duration)>) -> Vec<Vec<u8>> {
    let binary = env!("CARGO_BIN_EXE_xif");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    xif_testkit::xif(binary, &["new", EXTENSION], directory, &target);
    let project = directory.join(EXTENSION);
    let definition = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    let main_rs = project.join("src/main.rs");
    let original_main = std::fs::read_to_string(&main_rs).expect("main.rs");
    (1..=versions)
        .map(|version| {
            std::fs::write(
                project.join("extension.toml"),
                definition.replace("version = \"0.1.0\"", &format!("version = \"0.{version}.0\"")),
            )
            .expect("written");
            std::fs::write(&main_rs, &original_main).expect("written");
            xif_testkit::one_line_change(&main_rs, version, "v");
            if let Some((slow_version, pause)) = slow
                && slow_version == version
            {
                let text = std::fs::read_to_string(&main_rs).expect("main.rs");
                let text = text.replace(
                    "fn main() -> std::process::ExitCode {",
                    &format!(
                        "fn main() -> std::process::ExitCode {{\n    std::thread::sleep(std::time::Duration::from_millis({}));",
                        pause.as_millis()
                    ),
                );
                std::fs::write(&main_rs, text).expect("written");
            }
            let archive = directory.join(format!("{version}.xif"));
            xif_testkit::xif(binary, &["save", "-o", archive.to_str().expect("path")], &project, &target);
            std::fs::read(archive).expect("archive")
        })
        .collect()
}

/// Polls `check` every 20 ms until it holds or `within` passed; says how long it took.
async fn eventually<F: Future<Output = bool>>(within: Duration, mut check: impl FnMut() -> F) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_of_three_nodes_behind_haproxy() {
    let farm = Farm::new();
    // Versions 1 to 4 uploaded now, 5 by `xif publish` of the project as it is left, 6 when the
    // object store is down.
    let archives = archives(farm.directory.path(), 6, Some((4, Duration::from_secs(4))));
    let urls: Vec<String> = farm.nodes.iter().map(Node::url).collect();
    let (a, b, c) = (urls[0].clone(), urls[1].clone(), urls[2].clone());
    let (token, _) = farm.token(&a).await;
    for archive in &archives[..4] {
        let response = farm.upload(&a, &token, archive).await;
        assert_eq!(response.status().as_u16(), 201, "{:?}", response.text().await);
    }

    // Published through node A: the answer comes once all three run it, and all three do.
    let (status, answer) = farm.publish(&a, &token, 1, None).await;
    assert_eq!(status, 200, "{answer}");
    let nodes = answer["nodes"].as_array().expect("per-node results");
    assert_eq!(nodes.len(), 3, "{answer}");
    assert!(nodes.iter().all(|node| node["ok"] == true && node["running"] == 1), "{answer}");
    for url in &urls {
        assert_eq!(farm.greet(url, &token).await.as_deref(), Ok("Hellov1, Ada!"), "node {url}");
    }
    for _ in 0..6 {
        assert_eq!(farm.greet(&farm.balancer.url, &token).await.as_deref(), Ok("Hellov1, Ada!"));
    }

    // Versions replaced under load through the balancer, each publication through another
    // node: not one call fails.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let farm = Arc::new(farm);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (farm, token, stop, calls, failures) =
            (Arc::clone(&farm), token.clone(), Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failures));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match farm.greet(&farm.balancer.url, &token).await {
                    Ok(greeting) if greeting.starts_with("Hellov") => {}
                    other => failures.lock().expect("lock").push(format!("{other:?}")),
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for (round, (url, version)) in [(&b, 2), (&c, 3), (&a, 2), (&b, 3)].into_iter().enumerate() {
        let expected = if round == 0 { 1 } else { [2, 3, 2][round - 1] };
        let (status, answer) = farm.publish(url, &token, version, Some(expected)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["nodes"].as_array().expect("nodes").iter().all(|node| node["ok"] == true), "{answer}");
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("the load ran");
    }
    let failures = failures.lock().expect("lock").clone();
    assert!(calls.load(Ordering::Relaxed) > 20, "too few calls to mean anything");
    assert!(
        failures.is_empty(),
        "{} of {} calls failed: {:?}",
        failures.len(),
        calls.load(Ordering::Relaxed),
        failures
    );
    let mut farm = Arc::into_inner(farm).expect("the load is over");

    // A token revoked on node A is refused by node B within a second (B had it cached).
    let (other, other_id) = farm.token(&a).await;
    let me = |url: &str| farm.http.get(format!("{url}/api/v1/me")).bearer_auth(&other).send();
    assert_eq!(me(&b).await.expect("answered").status().as_u16(), 200);
    let revoked =
        farm.http.delete(format!("{a}/api/v1/tokens/{other_id}")).bearer_auth(&other).send().await.expect("answered");
    assert_eq!(revoked.status().as_u16(), 204);
    let refused = eventually(Duration::from_secs(1), || async {
        me(&b).await.is_ok_and(|response| response.status().as_u16() == 401)
    })
    .await;
    assert!(refused.is_some(), "node B still took the token revoked on node A a second later");

    // `xif nodes` lists three live nodes with the version each runs.
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["nodes", "--json"])
        .env("XIF_SERVER", &farm.balancer.url)
        .env("XIF_TOKEN", &token)
        .env("XIF_CONFIG_DIR", farm.directory.path().join("config"))
        .output()
        .expect("xif nodes runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.iter().filter(|node| node["live"] == true).count(), 3, "{listed:?}");
    assert!(
        listed.iter().all(|node| node["extensions"][0]["name"] == EXTENSION && node["extensions"][0]["running"] == 3),
        "{listed:?}"
    );
    let table = Command::new(env!("CARGO_BIN_EXE_xif"))
        .arg("nodes")
        .env("XIF_SERVER", &farm.balancer.url)
        .env("XIF_TOKEN", &token)
        .env("XIF_CONFIG_DIR", farm.directory.path().join("config"))
        .output()
        .expect("xif nodes runs");
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert_eq!(table.lines().filter(|line| line.contains(" live ")).count(), 3, "{table}");

    // The logs of the extension through any node name every node's part.
    let logs = farm
        .http
        .get(format!("{b}/api/v1/extensions/{EXTENSION}/logs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    for port in farm.nodes.iter().map(|node| node.port) {
        assert!(logs.contains(&format!("== node node-{port} (")), "{logs}");
    }
    // `xif logs --node NAME`: only that node's part.
    let (only, others) = (farm.nodes[2].name(), farm.nodes[0].name());
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["logs", EXTENSION, "--node", &only])
        .env("XIF_SERVER", &b)
        .env("XIF_TOKEN", &token)
        .env("XIF_CONFIG_DIR", farm.directory.path().join("config"))
        .output()
        .expect("xif logs runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains(&format!("== node {only} (")) && !stdout.contains(&format!("== node {others} (")),
        "{stdout}"
    );

    // Node C killed in the middle of a deploy (the slow version 4 takes 4 s to start): the
    // publication completes for the others or says which node did not, the others serve, and C
    // restarted runs version 4 before `/readyz` says ready.
    let publishing = {
        let (http, a, token) = (farm.http.clone(), a.clone(), token.clone());
        tokio::spawn(async move {
            let response = http
                .post(format!("{a}/api/v1/extensions/{EXTENSION}/publications"))
                .bearer_auth(&token)
                .json(&json!({ "version": 4, "expected": 3 }))
                .send()
                .await
                .expect("answered");
            (response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
        })
    };
    // C is deploying once its runtime has a working directory for version 4.
    let deploying = eventually(Duration::from_secs(10), || {
        let runtime = farm.nodes[2].data.join("runtime").join(EXTENSION.to_ascii_lowercase());
        async move {
            std::fs::read_dir(runtime).is_ok_and(|mut entries| {
                entries.any(|entry| entry.is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("4-")))
            })
        }
    })
    .await;
    assert!(deploying.is_some(), "node C never started deploying version 4");
    farm.kill(2);
    let (status, answer) = publishing.await.expect("the publication ran");
    assert_eq!(status, 200, "{answer}");
    for node in answer["nodes"].as_array().expect("nodes") {
        let port = farm.nodes[2].port;
        if node["node"] == format!("node-{port}") {
            assert!(node["ok"] == false && node["error"].is_string(), "{answer}");
        } else {
            assert!(node["ok"] == true, "{answer}");
        }
    }
    for url in [&a, &b] {
        assert_eq!(farm.greet(url, &token).await.as_deref(), Ok("Hellov4, Ada!"));
    }
    for _ in 0..6 {
        assert_eq!(farm.greet(&farm.balancer.url, &token).await.as_deref(), Ok("Hellov4, Ada!"));
    }
    farm.restart(2);
    let ready = eventually(Duration::from_secs(30), || farm.ready(&c)).await;
    assert!(ready.is_some(), "node C restarted is not ready within 30 s");
    assert_eq!(farm.greet(&c, &token).await.as_deref(), Ok("Hellov4, Ada!"), "ready, and behind");

    // Node A killed while it holds the publication lock (deploying the slow version 4 again
    // after version 1): node B can publish once the lease ends.
    let (status, answer) = farm.publish(&b, &token, 1, Some(4)).await;
    assert_eq!(status, 200, "{answer}");
    let holding = {
        let (http, a, token) = (farm.http.clone(), a.clone(), token.clone());
        tokio::spawn(async move {
            http.post(format!("{a}/api/v1/extensions/{EXTENSION}/publications"))
                .bearer_auth(&token)
                .json(&json!({ "version": 4, "expected": 1 }))
                .send()
                .await
                .ok();
        })
    };
    let locked = eventually(Duration::from_secs(10), || async {
        let locks: Value = match farm.http.get(format!("{b}/api/v1/locks")).bearer_auth(&token).send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        locks.as_array().is_some_and(|locks| !locks.is_empty())
    })
    .await;
    assert!(locked.is_some(), "node A never took the lock");
    farm.kill(0);
    holding.await.ok();
    let (status, answer) = farm.publish(&b, &token, 2, Some(1)).await;
    assert_eq!(status, 409, "the lock of the killed node still holds: {answer}");
    let published =
        eventually(Duration::from_secs(15), || async { farm.publish(&b, &token, 2, Some(1)).await.0 == 200 }).await;
    let taken_over = published.expect("node B could not publish after the killed holder's lease");
    assert!(taken_over < Duration::from_secs_f64(LOCK_LEASE_SECS + 5.0), "{taken_over:?}");
    farm.restart(0);
    assert!(eventually(Duration::from_secs(30), || farm.ready(&a)).await.is_some(), "node A is not ready again");
    assert_eq!(farm.greet(&a, &token).await.as_deref(), Ok("Hellov2, Ada!"));

    // PostgreSQL stopped under the farm: every node says it is not ready; started again, every
    // node reconnects and is ready again, nothing is lost, and a publication reaches all three.
    farm.postgres.stop();
    for url in &urls {
        let down = eventually(Duration::from_secs(15), || async { !farm.ready(url).await }).await;
        assert!(down.is_some(), "node {url} still says it is ready without its database");
    }
    farm.postgres.start();
    for url in &urls {
        let back = eventually(Duration::from_secs(30), || farm.ready(url)).await;
        assert!(back.is_some(), "node {url} is not ready after PostgreSQL restarted");
    }
    // The balancer sees a node ready again at its next check.
    let through = eventually(Duration::from_secs(5), || farm.ready(&farm.balancer.url)).await;
    assert!(through.is_some(), "the balancer sees no ready node");
    let (token, _) = farm.token(&farm.balancer.url).await;
    let versions: Value = farm
        .http
        .get(format!("{c}/api/v1/extensions/{EXTENSION}/versions"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(versions.as_array().map(Vec::len), Some(4), "{versions}");
    let (status, answer) = farm.publish(&c, &token, 3, Some(2)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["nodes"].as_array().expect("nodes").iter().all(|node| node["ok"] == true), "{answer}");
    assert_eq!(answer["nodes"].as_array().map(Vec::len), Some(3), "{answer}");

    // Login attempts count across the nodes: five wrong passwords for one name spread over the
    // three nodes (each node's own limiter sees two at most) use up the name's five a minute,
    // and the sixth is refused on whichever node it reaches. The shared count is per minute of
    // the clock: the attempts are made early in one.
    let into_minute = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() % 60;
    if into_minute > 45 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let mut statuses = Vec::new();
    for url in urls.iter().cycle().take(6) {
        let response = farm
            .http
            .post(format!("{url}/api/v1/login"))
            .json(&json!({ "user": "intruder", "password": "not-the-password" }))
            .send()
            .await
            .expect("answered");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "the sixth attempt for one name, on its second node");

    // `xif publish` through node A while node C cannot start any version (restarted with 1 MiB
    // of address space for its extensions): the publication is made, and the command names
    // node C and why, and fails; C restarted as it was catches up.
    farm.kill(2);
    let restricted = xif_testkit::farm::Setup {
        extra: ["--extension-isolation", "on", "--allow-unisolated-extensions", "--extension-memory-mib", "1"]
            .map(str::to_owned)
            .to_vec(),
        ..farm.setup.clone()
    };
    farm.nodes[2] = restricted.start(&farm.nodes[2].data.clone(), farm.nodes[2].port);
    let project = farm.directory.path().join(EXTENSION);
    std::fs::write(project.join("extension.toml"), {
        let text = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
        text.replace("version = \"0.6.0\"", "version = \"0.5.0\"")
    })
    .expect("written");
    xif_testkit::one_line_change(&project.join("src/main.rs"), 5, "v");
    let published = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["publish", "--plain", "--path"])
        .arg(&project)
        .env("XIF_SERVER", &a)
        .env("XIF_TOKEN", &token)
        .env("XIF_CONFIG_DIR", farm.directory.path().join("config"))
        .env("CARGO_TARGET_DIR", xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR")))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("xif publish runs");
    let stderr = String::from_utf8_lossy(&published.stderr).into_owned();
    assert_eq!(published.status.code(), Some(4), "{stderr}");
    let restricted_name = farm.nodes[2].name();
    assert!(
        stderr.contains(&format!("node `{restricted_name}`")) && stderr.contains("not every node runs it"),
        "{stderr}"
    );
    for url in [&a, &b] {
        assert_eq!(farm.greet(url, &token).await.as_deref(), Ok("Hellov5, Ada!"));
    }
    farm.kill(2);
    farm.restart(2);
    assert!(eventually(Duration::from_secs(30), || farm.ready(&c)).await.is_some(), "node C is not ready again");
    assert_eq!(farm.greet(&c, &token).await.as_deref(), Ok("Hellov5, Ada!"));

    // The object store stopped: an upload fails saying the store is unavailable; calls go on.
    farm.moto.stop();
    let response = farm.upload(&b, &token, &archives[5]).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status == 503 && body["error"]["code"] == "storage_unavailable", "{status} {body}");
    for url in &urls {
        assert_eq!(farm.greet(url, &token).await.as_deref(), Ok("Hellov5, Ada!"));
    }
}

/// Runs `command`, which must stop by itself within 30 s (a node refused at start); returns its
/// exit code and its stderr. A node that starts instead is killed and fails the test.
fn refused_start(mut command: Command) -> (Option<i32>, String) {
    let log = tempfile::NamedTempFile::new().expect("a log file");
    command.stdout(std::process::Stdio::null()).stderr(log.reopen().expect("the log file"));
    let mut child = xif_testkit::KillOnDrop(command.spawn().expect("xif server runs"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("waited") {
            break status;
        }
        let said = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(Instant::now() < deadline, "the node started instead of being refused:\n{said}");
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(log.path()).expect("the log"))
}

/// A node whose log (at the default level) goes to a file, started and listening.
fn start_logged(setup: &xif_testkit::farm::Setup, data: &Path, port: u16, log: &Path) -> xif_testkit::KillOnDrop {
    let mut command = setup.command(data, port);
    command
        .env_remove("XIF_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("the log file"));
    let mut child = xif_testkit::KillOnDrop(command.spawn().expect("the server starts"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let said = std::fs::read_to_string(log).unwrap_or_default();
        if said.lines().any(|line| line.starts_with("listening on ")) {
            return child;
        }
        assert!(child.0.try_wait().expect("waited").is_none(), "the node on port {port} stopped:\n{said}");
        assert!(Instant::now() < deadline, "the node on port {port} did not listen within 60 s:\n{said}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a newcomer's trial of the farm ran into: a node is refused at start when its
/// `--advertise` is not a URL the others can use, when its data directory holds a single
/// server's data, and when its archive store is not the farm's; `/readyz` comes back after the
/// listener alone lost PostgreSQL; readiness is logged when it changes, not at each pass, and
/// sqlx's notices are not; only administrators list the nodes; the log of an extension no node
/// runs is a 404; and a node stopped with SIGTERM first answers 503 on `/readyz` while serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_checks_its_setup_recovers_its_listener_and_drains_when_stopped() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let postgres = xif_testkit::postgres::Cluster::new();
    let mut moto = xif_testkit::s3::Moto::start();
    let database = postgres.database();
    let database_name = database.rsplit('/').next().expect("a database name").to_owned();
    let setup = xif_testkit::farm::Setup {
        binary: env!("CARGO_BIN_EXE_xif").to_owned(),
        database,
        blobs: moto.bucket("farm"),
        password: PASSWORD.to_owned(),
        extra: ["--extension-isolation", "off"].map(str::to_owned).to_vec(),
        env: xif_testkit::s3::ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
    };
    let port = xif_testkit::haproxy::free_port;

    // `--advertise` must be an http(s) URL with a host and a port.
    for (advertise, why) in [("node1:8180", "is not an http:// or https:// URL"), ("http://node1", "names no port")] {
        let mut command = setup.command(&directory.path().join("advertise"), port());
        command.args(["--advertise", advertise]);
        let (code, stderr) = refused_start(command);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(why) && stderr.contains("http://HOST:PORT"), "{stderr}");
    }

    // A data directory with a single server's database, or its archives: refused, naming them.
    let single = directory.path().join("single");
    std::fs::create_dir_all(single.join("blobs/sha256/ab")).expect("made");
    std::fs::write(single.join("blobs/sha256/ab/abcdef"), b"an archive").expect("written");
    let (code, stderr) = refused_start(setup.command(&single, port()));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("blobs/sha256") && stderr.contains("another data directory"), "{stderr}");
    std::fs::write(single.join("metadata.sqlite"), b"SQLite format 3\0").expect("written");
    let (code, stderr) = refused_start(setup.command(&single, port()));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("metadata.sqlite") && stderr.contains("no tool yet"), "{stderr}");

    // The first node records the farm's bucket; a node with another bucket, or with its data
    // directory for a store, is refused, told which store the farm uses.
    let first_log = directory.path().join("first.log");
    let first_port = port();
    let _first = start_logged(&setup, &directory.path().join("first"), first_port, &first_log);
    let other_bucket = xif_testkit::farm::Setup { blobs: moto.bucket("other"), ..setup.clone() };
    let (code, stderr) = refused_start(other_bucket.command(&directory.path().join("other"), port()));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("`s3://farm@") && stderr.contains("--blobs s3://farm?endpoint="), "{stderr}");
    let directory_store = xif_testkit::farm::Setup { blobs: String::new(), ..setup.clone() };
    let (code, stderr) = refused_start(directory_store.command(&directory.path().join("directory"), port()));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("`s3://farm@") && stderr.contains("the directory `"), "{stderr}");
    assert!(!stderr.contains(xif_testkit::s3::ENV[1].1), "a credential in: {stderr}");

    let second_log = directory.path().join("second.log");
    let second_port = port();
    let mut second = start_logged(&setup, &directory.path().join("second"), second_port, &second_log);
    let (a, b) = (format!("http://127.0.0.1:{first_port}"), format!("http://127.0.0.1:{second_port}"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.map(|response| response.status().as_u16()).ok() }
    };
    for url in [&a, &b] {
        let ready =
            eventually(Duration::from_secs(30), || async { status(format!("{url}/readyz")).await == Some(200) });
        assert!(ready.await.is_some(), "node {url} is not ready");
    }

    // Only administrators list the nodes (their internal addresses).
    let login = |user: &'static str, password: &'static str| {
        let (http, a) = (http.clone(), a.clone());
        async move {
            let answer: Value = http
                .post(format!("{a}/api/v1/login"))
                .json(&json!({ "user": user, "password": password }))
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("JSON");
            answer["token"].as_str().expect("a token").to_owned()
        }
    };
    let admin = login("admin", PASSWORD).await;
    let made = http
        .post(format!("{a}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "someone", "password": "someone's-password" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(made.status().as_u16(), 201, "{:?}", made.text().await);
    let someone = login("someone", "someone's-password").await;
    let nodes = http.get(format!("{b}/api/v1/nodes")).bearer_auth(&someone).send().await.expect("answered");
    assert_eq!(nodes.status().as_u16(), 403);
    let body: Value = nodes.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "administrator_only", "{body}");
    let nodes = http.get(format!("{b}/api/v1/nodes")).bearer_auth(&admin).send().await.expect("answered");
    assert_eq!(nodes.status().as_u16(), 200);

    // The log of an extension that no node runs: 404, as on a single server, and `xif logs`
    // fails saying so.
    let logs = http.get(format!("{b}/api/v1/extensions/Nowhere/logs")).bearer_auth(&admin).send().await.expect("ok");
    assert_eq!(logs.status().as_u16(), 404);
    let body: Value = logs.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "extension_not_running", "{body}");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["logs", "Nowhere"])
        .env("XIF_SERVER", &a)
        .env("XIF_TOKEN", &admin)
        .env("XIF_CONFIG_DIR", directory.path().join("config"))
        .output()
        .expect("xif logs runs");
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stderr).contains("running"), "{output:?}");

    // The nodes lose PostgreSQL (every connection ended, the listeners' and the heartbeats'
    // among them, and new connections refused; a listener that finds a pooled connection still
    // alive listens again at once, which is right, so all are ended): not ready; once
    // connections are accepted again each listens and beats again and is ready again, whichever
    // part came back first (the order that left the node unready for good is tested in
    // `cluster.rs`).
    postgres.sql(&format!("ALTER DATABASE {database_name} ALLOW_CONNECTIONS false"));
    let listeners = postgres.sql(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database_name}' AND query ILIKE 'listen%'"
    ));
    assert_eq!(listeners.trim(), "2", "the two listeners: {listeners}");
    let ended = postgres.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database_name}' \
         AND pid <> pg_backend_pid()"
    ));
    assert!(ended.lines().filter(|line| line.trim() == "t").count() >= 4, "the nodes' connections: {ended}");
    for url in [&a, &b] {
        let down = eventually(Duration::from_secs(10), || async { status(format!("{url}/readyz")).await == Some(503) });
        assert!(down.await.is_some(), "node {url} still says it is ready without its listener");
    }
    postgres.sql(&format!("ALTER DATABASE {database_name} ALLOW_CONNECTIONS true"));
    for url in [&a, &b] {
        let back = eventually(Duration::from_secs(15), || async { status(format!("{url}/readyz")).await == Some(200) });
        assert!(back.await.is_some(), "node {url} is not ready again once its listener listens");
    }

    // Readiness logged when it changed, not at each pass: ready and not ready alternate,
    // starting and ending with ready; no notice of sqlx's about its table existing already (the
    // second node found it made).
    let said = std::fs::read_to_string(&second_log).expect("the log");
    let changes: Vec<bool> = said
        .lines()
        .filter_map(|line| {
            if line.contains("\"converged to the published state: ready\"") {
                Some(true)
            } else if line.contains("\"message\":\"not ready\"") {
                Some(false)
            } else {
                None
            }
        })
        .collect();
    assert!(changes.len() >= 3 && changes.first() == Some(&true) && changes.last() == Some(&true), "{said}");
    assert!(changes.windows(2).all(|pair| pair[0] != pair[1]), "readiness logged without a change:\n{said}");
    assert!(!said.contains("_sqlx_migrations"), "{said}");

    // SIGTERM: `/readyz` answers 503 while the node still serves, then it stops.
    let stopped = Command::new("kill").args(["-TERM", &second.0.id().to_string()]).status().expect("kill runs");
    assert!(stopped.success());
    let draining = eventually(Duration::from_secs(2), || async {
        status(format!("{b}/readyz")).await == Some(503) && status(format!("{b}/healthz")).await == Some(200)
    });
    assert!(draining.await.is_some(), "the stopping node did not answer 503 on /readyz while serving");
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.0.try_wait().expect("waited").is_none() {
        assert!(Instant::now() < deadline, "the node did not stop within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(std::fs::read_to_string(&second_log).expect("the log").contains("stopping in 2 s: /readyz answers 503"));
}

/// Nodes starting at once on an empty database: every one starts, and one administrator is made,
/// its generated password shown once, by one node (the others find it made).
#[test]
fn nodes_starting_at_once_make_one_administrator() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let postgres = xif_testkit::postgres::Cluster::new();
    let mut moto = xif_testkit::s3::Moto::start();
    let setup = xif_testkit::farm::Setup {
        binary: env!("CARGO_BIN_EXE_xif").to_owned(),
        database: postgres.database(),
        blobs: moto.bucket("farm"),
        password: PASSWORD.to_owned(),
        extra: ["--extension-isolation", "off"].map(str::to_owned).to_vec(),
        env: xif_testkit::s3::ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
    };
    // All three spawned before any is waited for.
    let nodes: Vec<_> = (0..3)
        .map(|index| {
            let log = directory.path().join(format!("node{index}.log"));
            let mut command =
                setup.command(&directory.path().join(format!("node{index}")), xif_testkit::haproxy::free_port());
            command
                .env_remove("XIF_ADMIN_PASSWORD")
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).expect("the log file"));
            (xif_testkit::KillOnDrop(command.spawn().expect("the server starts")), log)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut logs = Vec::new();
    for (mut node, log) in nodes {
        let said = loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.lines().any(|line| line.starts_with("listening on ")) {
                break said;
            }
            assert!(node.0.try_wait().expect("waited").is_none(), "a node stopped:\n{said}");
            assert!(Instant::now() < deadline, "a node did not listen within 60 s:\n{said}");
            std::thread::sleep(Duration::from_millis(20));
        };
        logs.push(said);
        drop(node);
    }
    let shown: Vec<&String> =
        logs.iter().filter(|said| said.contains("created the administrator `admin` with the password `")).collect();
    assert_eq!(shown.len(), 1, "one administrator made, its password shown once: {logs:#?}");
    let users = postgres.sql_in(&setup.database, "SELECT count(*) FROM users");
    assert_eq!(users.trim(), "1", "{users}");
}
