//! A real `xif server` with its archives in an S3-compatible store (moto, started here):
//! uploads, publications, calls and downloads go through it; a store that goes away fails
//! uploads with a clear error and leaves calls to running extensions alone; when it is back,
//! uploads work again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xif_testkit::s3::{ENV, Moto};

const PASSWORD: &str = "administrator-password";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn upload(&self, bytes: Vec<u8>, digest: Option<String>) -> (u16, Value) {
        let digest = digest.unwrap_or_else(|| hex::encode(Sha256::digest(&bytes)));
        let response = self
            .http
            .post(format!("{}/api/v1/extensions/Stored/versions", self.url))
            .bearer_auth(&self.token)
            .header("x-xif-sha256", digest)
            .body(bytes)
            .send()
            .await
            .expect("sent");
        answer(response).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("sent");
        answer(response).await
    }

    async fn greet(&self) -> (u16, Value) {
        self.post("/extensions/Stored/actions/Greet", json!({ "Person": { "Name": "Ada Lovelace" } })).await
    }

    async fn download(&self, number: i64) -> Vec<u8> {
        let response = self
            .http
            .get(format!("{}/api/v1/extensions/Stored/versions/{number}/xif", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body").to_vec()
    }
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Files the server left in its local data directory whose names say they are uploads or
/// fetched blobs.
fn local_leftovers(data: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![data.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                pending.push(path);
            } else if name.starts_with("upload-") || name.starts_with("blob-") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_server_on_s3_uploads_publishes_downloads_and_survives_the_store_going_away() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let archives = xif_testkit::sample_archives(
        env!("CARGO_BIN_EXE_xif"),
        "Stored",
        &["0.1.0", "0.2.0"],
        temporary.path(),
        &workspace().join("target/extensions"),
    );
    let mut moto = Moto::start();
    let blobs = moto.bucket("xif-end-to-end");
    let data = temporary.path().join("data");
    let log = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&log);
    let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
    command.envs(ENV);
    let server = xif_testkit::Server::start_with(command, &data, PASSWORD, "info", &["--blobs", &blobs], move |line| {
        kept.lock().expect("log").push_str(&format!("{line}\n"));
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client =
        Client { http: reqwest::Client::new(), url: server.url.clone(), token: server.token("admin", PASSWORD) };
    runtime.block_on(async {
        // Upload, publish, call, download: the archive comes back byte for byte.
        let (status, body) = client.upload(archives[0].clone(), None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(moto.objects("xif-end-to-end", "sha256/"), 1, "the archive is in the bucket");
        let (status, body) =
            client.post("/extensions/Stored/publications", json!({ "version": 1, "expected": null })).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = client.greet().await;
        assert_eq!((status, body), (200, json!({ "Greeting": "Hello, Ada!" })));
        assert_eq!(client.download(1).await, archives[0], "the download is the upload");

        // An upload refused after its bytes streamed (its digest is wrong) leaves nothing in the
        // bucket: no staged object, no multipart upload in progress.
        let (status, body) = client.upload(archives[1].clone(), Some("0".repeat(64))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("digest_mismatch")), "{body}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while moto.multipart_uploads("xif-end-to-end") + moto.objects("xif-end-to-end", "staging/") > 0 {
            assert!(Instant::now() < deadline, "a refused upload left parts in the bucket");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(moto.objects("xif-end-to-end", "sha256/"), 1);

        // The store goes away: an upload is refused as unavailable, saying to retry, and the
        // server's log names the store (never its keys); the running extension keeps serving.
        moto.stop();
        let started = Instant::now();
        let (status, body) = client.upload(archives[1].clone(), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
        assert!(started.elapsed() < Duration::from_secs(30), "refused after {:?}", started.elapsed());
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("cannot reach its storage"), "{message}");
        assert!(!message.contains("127.0.0.1") && !message.contains("testing"), "{message}");
        // The server's stderr is read by another thread: the line may come just after the answer.
        let named = format!("s3://xif-end-to-end at {}", moto.endpoint());
        let deadline = Instant::now() + Duration::from_secs(10);
        let logged = loop {
            let logged = log.lock().expect("log").clone();
            if logged.contains(&named) || Instant::now() > deadline {
                break logged;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(logged.contains(&named), "{logged}");
        assert!(!logged.contains("testing"), "the log shows no credential: {logged}");
        for _ in 0..5 {
            let (status, body) = client.greet().await;
            assert_eq!((status, body), (200, json!({ "Greeting": "Hello, Ada!" })));
        }
        assert_eq!(local_leftovers(&data), Vec::<PathBuf>::new(), "nothing left in the data directory");

        // The store is back (empty, as moto forgets): uploads work again, and the new version
        // is published from it.
        moto.resume();
        let (status, body) = client.upload(archives[1].clone(), None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["version"]["number"], 2);
        let (status, body) =
            client.post("/extensions/Stored/publications", json!({ "version": 2, "expected": 1 })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(client.download(2).await, archives[1]);
        let (status, _) = client.greet().await;
        assert_eq!(status, 200);
        assert_eq!(local_leftovers(&data), Vec::<PathBuf>::new(), "nothing left in the data directory");
    });
}

#[test]
fn a_server_whose_store_cannot_be_reached_does_not_start() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let mut moto = Moto::start();
    let blobs = moto.bucket("xif-gone");
    moto.stop();
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temporary.path().join("data"))
        .args(["--blobs", &blobs])
        .envs(ENV)
        .env("XIF_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("xif runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot use the blob store: unavailable: s3://xif-gone at {}", moto.endpoint())),
        "{stderr}"
    );
    assert!(!stderr.contains("testing"), "{stderr}");

    // A bucket that does not exist is refused too, saying which.
    moto.resume();
    let missing = blobs.replace("xif-gone", "xif-missing");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temporary.path().join("data"))
        .args(["--blobs", &missing])
        .envs(ENV)
        .env("XIF_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("xif runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("s3://xif-missing at"), "{stderr}");
}

/// A TCP relay to `target` that can be frozen: from then on it forwards nothing, on the
/// connections it has and on new ones, as a store whose process is stopped (SIGSTOP) behaves:
/// connections are accepted, nothing is answered.
struct Relay {
    port: u16,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(store) = tokio::net::TcpStream::connect(&target).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (store_read, store_write) = store.into_split();
                tokio::spawn(Self::pump(client_read, store_write, Arc::clone(&flag)));
                tokio::spawn(Self::pump(store_read, client_write, Arc::clone(&flag)));
            }
        });
        Self { port, frozen }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: Arc<std::sync::atomic::AtomicBool>,
    ) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut buffer = vec![0; 1 << 16];
        loop {
            let Ok(read) = from.read(&mut buffer).await else { return };
            if frozen.load(std::sync::atomic::Ordering::SeqCst) {
                // Held for ever, the connection open: what a stopped process does.
                std::future::pending::<()>().await;
            }
            if read == 0 || to.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A store that hangs (accepts connections, answers nothing) makes uploads and downloads
/// answer `503 storage_unavailable` within about 30 seconds (each request to the store has a
/// time limit; a download, for its answer and each next piece), not after two minutes.
#[test]
fn a_store_that_hangs_is_told_as_unavailable_within_about_thirty_seconds() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let archives = xif_testkit::sample_archives(
        env!("CARGO_BIN_EXE_xif"),
        "Stored",
        &["0.1.0", "0.2.0"],
        temporary.path(),
        &workspace().join("target/extensions"),
    );
    let mut moto = Moto::start();
    let bucket = moto.bucket("xif-hung");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let target = moto.endpoint().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let relay = runtime.block_on(Relay::start(target));
    let blobs = bucket.replace(&moto.endpoint(), &format!("http://127.0.0.1:{}", relay.port));
    assert_ne!(blobs, bucket, "the store is reached through the relay");
    let data = temporary.path().join("data");
    let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
    command.envs(ENV);
    let server = xif_testkit::Server::start_with(command, &data, PASSWORD, "warn", &["--blobs", &blobs], drop);
    let client =
        Client { http: reqwest::Client::new(), url: server.url.clone(), token: server.token("admin", PASSWORD) };
    runtime.block_on(async {
        let (status, body) = client.upload(archives[0].clone(), None).await;
        assert_eq!(status, 201, "{body}");
        relay.freeze();
        let started = Instant::now();
        let (status, body) = client.upload(archives[1].clone(), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
        assert!(started.elapsed() < Duration::from_secs(50), "refused after {:?}", started.elapsed());
        let started = Instant::now();
        let response = client
            .http
            .get(format!("{}/api/v1/extensions/Stored/versions/1/xif", client.url))
            .bearer_auth(&client.token)
            .send()
            .await
            .expect("sent");
        let (status, body) = answer(response).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
        assert!(started.elapsed() < Duration::from_secs(50), "refused after {:?}", started.elapsed());
    });
}
