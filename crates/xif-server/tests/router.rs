//! The server in-process, through its router: accounts, permissions, uploads, versions and
//! publishing, each refusal with its status and code.

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;
use xif_server::{AppState, Limits, LockRequest, LoginLimits, Storage};

const PASSWORD: &str = "administrator-password";

struct Server {
    state: AppState,
    data: tempfile::TempDir,
    /// The administrator's token, logged in for once: logins are throttled.
    admin: tokio::sync::OnceCell<String>,
}

/// The storage of a server on `data`: embedded; with `XIF_TEST_DATABASE=postgres` a PostgreSQL
/// database of its own (the same one each time for the same data directory); with the archives
/// in S3 when the suite runs so (`XIF_TEST_BLOBS=s3`, with moto's dummy keys in the environment,
/// which a test cannot set).
fn storage(data: &std::path::Path) -> Storage {
    let mut storage = Storage { database: xif_testkit::postgres::test_database(data), ..Storage::embedded(data) };
    if xif_testkit::s3::enabled() {
        for (name, value) in xif_testkit::s3::ENV {
            assert!(
                std::env::var(name).is_ok_and(|set| set == value),
                "XIF_TEST_BLOBS=s3 needs moto's dummy keys in the environment: {}",
                xif_testkit::s3::ENV.map(|(name, value)| format!("{name}={value}")).join(" ")
            );
        }
        storage.blobs = Some(xif_testkit::s3::blobs_for(data));
    }
    storage
}

/// The client address of requests, as `ConnectInfo` gives it when the server serves a socket.
const PEER: ([u8; 4], u16) = ([192, 0, 2, 1], 40_000);

async fn server(limits: Limits) -> Server {
    let data = tempfile::tempdir().expect("data directory");
    let (state, bootstrap) =
        AppState::open(&storage(data.path()), limits, Some(PASSWORD)).await.expect("the server opens");
    assert!(
        bootstrap.as_ref().is_some_and(|made| made.user == "admin" && made.generated_password.is_none()),
        "{bootstrap:?}"
    );
    Server { state, data, admin: tokio::sync::OnceCell::new() }
}

impl Server {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = self.send_from(PEER.into(), request).await;
        (status, body)
    }

    /// Sends `request` as if from `peer`; answers the status, the headers and the body.
    async fn send_from(
        &self,
        peer: std::net::SocketAddr,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let router = xif_server::router(self.state.clone()).layer(MockConnectInfo(peer));
        let response = router.oneshot(request).await.expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        // The server never tells where it keeps things: every error body is checked for it.
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let data = self.data.path().to_string_lossy();
            assert!(!text.contains(&*data), "an error body names the data directory: {text}");
        }
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, value)
    }

    async fn login(&self, user: &str, password: &str) -> String {
        let (status, body) =
            self.call("POST", "/api/v1/login", None, Some(json!({ "user": user, "password": password }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    async fn admin(&self) -> String {
        self.admin.get_or_init(|| self.login("admin", PASSWORD)).await.clone()
    }

    async fn user(&self, name: &str, grant: &[&str]) -> String {
        let admin = self.admin().await;
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/users",
                Some(&admin),
                Some(json!({ "name": name, "password": "a-long-password", "grant": grant })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(name, "a-long-password").await
    }

    async fn upload(&self, token: &str, name: &str, bytes: &[u8], digest: Option<&str>) -> (StatusCode, Value) {
        self.upload_signed(token, name, bytes, digest, None).await
    }

    /// An upload with `signature` as the `x-xif-signature` header's value, when given.
    async fn upload_signed(
        &self,
        token: &str,
        name: &str,
        bytes: &[u8],
        digest: Option<&str>,
        signature: Option<&str>,
    ) -> (StatusCode, Value) {
        let digest = digest.map_or_else(|| hex(&Sha256::digest(bytes)), str::to_owned);
        let mut request = Request::builder()
            .method("POST")
            .uri(format!("/api/v1/extensions/{name}/versions"))
            .header("authorization", format!("Bearer {token}"))
            .header("x-xif-sha256", digest);
        if let Some(signature) = signature {
            request = request.header("x-xif-signature", signature);
        }
        self.send(request.body(Body::from(bytes.to_vec())).expect("request")).await
    }

    async fn publish(&self, token: &str, name: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", &format!("/api/v1/extensions/{name}/publications"), Some(token), Some(body)).await
    }

    fn blob_count(&self) -> usize {
        if xif_testkit::s3::enabled() {
            return xif_testkit::s3::objects_for(self.data.path(), "sha256/").0;
        }
        std::fs::read_dir(self.data.path().join("blobs/sha256")).expect("blobs").count()
    }

    /// Whether nothing is staged: no staged file, or no staged object or multipart upload in
    /// progress (aborted in the background when an upload is dropped, so waited for).
    async fn nothing_staged(&self) -> bool {
        if !xif_testkit::s3::enabled() {
            return std::fs::read_dir(self.data.path().join("blobs/staging")).expect("staging").count() == 0;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if xif_testkit::s3::objects_for(self.data.path(), "staging/") == (0, 0) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A real XIF of a small extension, written by xif-archive; `entities` adds an entity.
fn xif(name: &str, version: &str, entities: bool) -> Vec<u8> {
    let mut definition = format!(
        "[extension]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"Test.\"\n\n[[actions]]\nname = \"Run\"\ndescription = \"Runs.\"\n"
    );
    if entities {
        definition.push_str("\n[[entities]]\nname = \"Customer\"\ndescription = \"A customer.\"\ntable = \"CUSTOMER\"\nattributes = [ { name = \"Id\", type = \"Long Integer\", identifier = true }, { name = \"Name\", type = \"Text\" } ]\n");
    }
    xif_testkit::pack(name, version, &definition, &fixtures::binary("generic"))
}

#[tokio::test]
async fn logins_tokens_and_their_failures() {
    let server = server(Limits::default()).await;
    // Names no user can have (not ASCII, a NUL, empty) are refused alike, never matched to
    // `admin` by a store that folds more than ASCII, never an internal error.
    for (user, password) in [
        ("admin", "wrong password"),
        ("nobody", PASSWORD),
        ("admİn", PASSWORD),
        ("admin\u{0}", PASSWORD),
        ("", PASSWORD),
    ] {
        let (status, body) =
            server.call("POST", "/api/v1/login", None, Some(json!({ "user": user, "password": password }))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({ "error": { "code": "invalid_credentials", "message": "wrong user name or password" } })
        );
    }
    let (status, body) = server.call("GET", "/api/v1/me", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));

    let token = server.admin().await;
    let (status, me) = server.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], "admin");
    let (_, tokens) = server.call("GET", "/api/v1/tokens", Some(&token), None).await;
    let id = tokens[0]["id"].as_i64().expect("id");
    assert!(tokens[0]["revoked_at"].is_null());
    assert!(!tokens.to_string().contains(&token), "listing tokens never shows them");

    let (status, _) = server.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_token");
}

#[tokio::test]
async fn users_are_managed_by_administrators_only() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let bob = server.user("bob", &[]).await;
    let (status, body) = server.call("GET", "/api/v1/users", Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "administrator_only");

    let (status, body) =
        server.call("POST", "/api/v1/users", Some(&admin), Some(json!({ "name": "carol", "password": "short" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("weak_password")));
    let (status, body) = server
        .call("POST", "/api/v1/users", Some(&admin), Some(json!({ "name": "bob", "password": "a-long-password" })))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("user_exists")));
    let (status, body) =
        server.call("POST", "/api/v1/users/bob/grants", Some(&admin), Some(json!({ "permission": "fly" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_permission")));

    let (status, body) = server
        .call("POST", "/api/v1/users/bob/grants", Some(&admin), Some(json!({ "permission": "change-and-deploy" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["permissions"], json!(["allow-extensions", "allow-foreign-entities"]), "the role grants both");
    let (_, body) = server.call("DELETE", "/api/v1/users/bob/grants/allow-foreign-entities", Some(&admin), None).await;
    assert_eq!(body["permissions"], json!(["allow-extensions"]));
    let (status, _) = server.call("DELETE", "/api/v1/users/bob", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call("GET", "/api/v1/me", Some(&bob), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a removed user's tokens die with them");
    let (status, body) = server.call("DELETE", "/api/v1/users/admin", Some(&admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("cannot_remove_self")));
}

#[tokio::test]
async fn uploads_are_checked_deduplicated_and_listed() {
    let server = server(Limits::default()).await;
    let bob = server.user("bob", &["allow-extensions"]).await;
    let bytes = xif("Greeter", "1.0.0", false);

    let (status, body) = server.upload(&bob, "Greeter", &bytes, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["version"]["number"], 1);
    assert_eq!(body["version"]["uploaded_by"], "bob");
    assert_eq!(body["version"]["published"], false);
    assert_eq!(body["version"]["signed_by"], Value::Null, "an unsigned upload to a server that trusts no key");
    let (status, body) = server.upload(&bob, "Greeter", &bytes, None).await;
    assert_eq!((status, &body["created"]), (StatusCode::OK, &json!(false)), "the same bytes are not stored twice");
    assert_eq!(server.blob_count(), 1);
    let (status, body) = server.upload(&bob, "Greeter", &xif("Greeter", "1.1.0", false), None).await;
    assert_eq!((status, &body["version"]["number"]), (StatusCode::CREATED, &json!(2)));

    let (_, versions) = server.call("GET", "/api/v1/extensions/Greeter/versions", Some(&bob), None).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(versions[1]["declared_version"], "1.1.0");
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&bob), None).await;
    assert_eq!(
        extensions,
        json!([{ "name": "Greeter", "published": null, "versions": 2, "running": null, "missing_configuration": [] }])
    );

    let request = Request::builder()
        .uri("/api/v1/extensions/Greeter/versions/1/xif")
        .header("authorization", format!("Bearer {bob}"))
        .body(Body::empty())
        .expect("request");
    let response = xif_server::router(server.state.clone()).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let downloaded = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(downloaded.as_ref(), bytes.as_slice(), "the download is the uploaded archive");
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_stored() {
    let server = server(Limits { max_upload: 16 << 20, ..Limits::default() }).await;
    let admin = server.admin().await;
    let bob = server.user("bob", &[]).await;
    let bytes = xif("Greeter", "1.0.0", false);

    let (status, body) = server.upload(&bob, "Greeter", &bytes, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "uploading an extension needs the `allow-extensions` permission, which user `bob` does not have; \
         an administrator can grant it with `xif admin user grant bob allow-extensions`"
    );
    let (status, body) = server.upload(&admin, "Greeter", &bytes, Some(&"0".repeat(64))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("digest_mismatch")));
    let (status, body) = server.upload(&admin, "Greeter", &bytes[..bytes.len() / 2], None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_archive")),
        "{body}"
    );
    let zip_slip =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/zip-slip/zip-slip.zip"))
            .expect("the Zip Slip sample");
    let (status, body) = server.upload(&admin, "Greeter", &zip_slip, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_archive")));
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("unsafe path")), "{body}");
    let (status, body) = server.upload(&admin, "Other", &bytes, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_mismatch")));
    let (status, body) = server.upload(&admin, "Greeter", &vec![7u8; (16 << 20) + 1], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("upload_too_large")));
    let invalid = xif("Bad Name", "1.0.0", false);
    let (status, body) = server.upload(&admin, "Bad%20Name", &invalid, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_path")), "{body}");
    // The archive is checked before its name is compared with the path's.
    let (status, body) = server.upload(&admin, "BadName", &invalid, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_extension")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("XE0101")), "{body}");

    assert_eq!(server.blob_count(), 0, "nothing refused is stored");
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&admin), None).await;
    assert_eq!(extensions, json!([]));
}

#[tokio::test]
async fn refused_uploads_never_name_a_server_path() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let bytes = xif("Greeter", "1.0.0", false);
    let data = server.data.path().to_str().expect("UTF-8 path").to_owned();
    // Cut short, not a zip, a damaged entry (its CRC fails while it is read), a zip without a
    // manifest: each is a refusal whose detail the reader would tell with the staged file's path.
    let mut damaged = bytes.clone();
    let name = b"binary/run";
    let at = damaged.windows(name.len()).position(|window| window == name).expect("a local header") + 100;
    damaged[at] ^= 0x01;
    let mut no_manifest = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    no_manifest.start_file("extension.toml", zip::write::SimpleFileOptions::default()).expect("entry");
    let no_manifest = no_manifest.finish().expect("finished").into_inner();
    for (what, upload) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("not a zip", b"PK\x03\x04 not really a zip".to_vec()),
        ("damaged", damaged),
        ("no manifest", no_manifest),
    ] {
        let (status, body) = server.upload(&admin, "Greeter", &upload, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_archive", "{what}: {body}");
        let text = body.to_string();
        assert!(!text.contains(&data) && !text.contains("staging") && !text.contains("upload-"), "{what}: {body}");
    }
    assert_eq!(server.blob_count(), 0);
}

#[tokio::test]
async fn a_server_with_trusted_keys_takes_only_uploads_they_signed() {
    use base64::Engine as _;
    let keys = tempfile::tempdir().expect("keys");
    let path = |name: &str| keys.path().join(name);
    xif_archive::generate_keys(&path("trusted.key"), &path("trusted.pub")).expect("trusted key");
    xif_archive::generate_keys(&path("other.key"), &path("other.pub")).expect("other key");
    let trusted = xif_archive::PublicKey::from_file(&path("trusted.pub")).expect("public key");
    let other_id = xif_archive::PublicKey::from_file(&path("other.pub")).expect("public key").key_id();
    let server = server(Limits { trusted_keys: vec![trusted.clone()], ..Limits::default() }).await;
    let admin = server.admin().await;

    let bytes = xif("Greeter", "1.0.0", false);
    std::fs::write(path("Greeter.xif"), &bytes).expect("written");
    std::fs::write(path("Later.xif"), xif("Greeter", "1.1.0", false)).expect("written");
    let header = |key: &str, file: &str| {
        let text = xif_archive::sign_file(&path(key), &path(file), "Greeter").expect("signed");
        base64::engine::general_purpose::STANDARD.encode(text)
    };

    let (status, body) = server.upload(&admin, "Greeter", &bytes, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("signature_required")));
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("x-xif-signature")), "{body}");
    let (status, body) = server.upload_signed(&admin, "Greeter", &bytes, None, Some("not base64!")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_signature")),
        "{body}"
    );
    let (status, body) =
        server.upload_signed(&admin, "Greeter", &bytes, None, Some(&header("other.key", "Greeter.xif"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("untrusted_signature")));
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains(&other_id)), "{body}");
    // The trusted key's signature of other bytes.
    let (status, body) =
        server.upload_signed(&admin, "Greeter", &bytes, None, Some(&header("trusted.key", "Later.xif"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_signature")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains(&trusted.key_id())), "{body}");
    assert_eq!(server.blob_count(), 0, "nothing refused is stored");

    let (status, body) =
        server.upload_signed(&admin, "Greeter", &bytes, None, Some(&header("trusted.key", "Greeter.xif"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"]["signed_by"], json!(trusted.key_id()), "the version records its signer");
    assert_eq!(server.blob_count(), 1);
    let (_, versions) = server.call("GET", "/api/v1/extensions/Greeter/versions", Some(&admin), None).await;
    assert_eq!(versions[0]["signed_by"], json!(trusted.key_id()));
    assert!(server.nothing_staged().await, "nothing is left staged");
}

#[tokio::test]
async fn publishing_validate_only_stale_versions_rollback_and_locks() {
    let server = server(Limits::default()).await;
    let alice = server.user("alice", &["allow-extensions"]).await;
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        assert_eq!(
            server.upload(&alice, "Greeter", &xif("Greeter", version, false), None).await.0,
            StatusCode::CREATED
        );
    }

    let (status, body) =
        server.publish(&alice, "Greeter", json!({ "version": 1, "expected": null, "validate_only": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["published"], false);
    assert_eq!(body["messages"][0], "version 1 of `Greeter` can be published; it would replace no published version");
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&alice), None).await;
    assert_eq!(extensions[0]["published"], Value::Null, "validate-only publishes nothing");

    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 1, "expected": null })).await;
    assert_eq!((status, &body["published"]), (StatusCode::OK, &json!(true)), "{body}");
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 2, "expected": null })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "stale_version");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("is version 1, not the expected none")),
        "{body}"
    );
    assert_eq!(server.publish(&alice, "Greeter", json!({ "version": 3, "expected": 1 })).await.0, StatusCode::OK);
    // Rollback is publishing an older version.
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 1, "expected": 3 })).await;
    assert_eq!(
        (status, &body["publication"]["from"], &body["publication"]["to"]),
        (StatusCode::OK, &json!(3), &json!(1))
    );
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 1, "expected": 1 })).await;
    assert_eq!(
        (status, &body["published"]),
        (StatusCode::OK, &json!(false)),
        "publishing the published version is a no-op"
    );
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 9, "expected": 1 })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_version")));

    let (_, history) = server.call("GET", "/api/v1/extensions/Greeter/publications", Some(&alice), None).await;
    let moves: Vec<(Value, Value)> =
        history.as_array().expect("list").iter().map(|p| (p["from"].clone(), p["to"].clone())).collect();
    assert_eq!(moves, [(Value::Null, json!(1)), (json!(1), json!(3)), (json!(3), json!(1))]);
    assert!(
        history
            .as_array()
            .expect("list")
            .iter()
            .all(|publication| publication["by"] == "alice" && publication["at"].is_string())
    );

    // While someone holds the publication of an extension, another is refused with their name.
    let forever = i64::MAX / 2;
    let lock = LockRequest {
        extension: "Greeter",
        holder: "carol",
        owner: "carol's publication",
        now: "2026-01-01T00:00:00Z",
        now_millis: 0,
        lease_until: forever,
    };
    server.state.metadata.lock(&lock).await.expect("locked").expect("free");
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 2, "expected": 1 })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]["message"].as_str().is_some_and(|message| message.starts_with(
            "extension `Greeter` is being published by `carol` since 2026-01-01T00:00:00Z; try again when that publication ends"
        )),
        "{body}"
    );

    // An administrator sees who holds it and since when, and breaks it; others may not.
    let admin = server.admin().await;
    assert_eq!(server.call("GET", "/api/v1/locks", Some(&alice), None).await.0, StatusCode::FORBIDDEN);
    let (status, locks) = server.call("GET", "/api/v1/locks", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&locks[0]["extension"], &locks[0]["holder"], &locks[0]["since"]),
        (&json!("Greeter"), &json!("carol"), &json!("2026-01-01T00:00:00Z"))
    );
    let (status, _) = server.call("DELETE", "/api/v1/extensions/Greeter/lock", Some(&alice), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, broken) = server.call("DELETE", "/api/v1/extensions/Greeter/lock", Some(&admin), None).await;
    assert_eq!((status, &broken["holder"]), (StatusCode::OK, &json!("carol")));
    let (status, body) = server.call("DELETE", "/api/v1/extensions/Greeter/lock", Some(&admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_lock")));
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 2, "expected": 1 })).await;
    assert_eq!((status, &body["published"]), (StatusCode::OK, &json!(true)), "{body}");
    // Every publication released its lock.
    assert_eq!(server.call("GET", "/api/v1/locks", Some(&admin), None).await.1, json!([]));

    // A lock whose holder died frees itself when its lease ends.
    let expired = LockRequest { lease_until: 1, owner: "a dead node", ..lock };
    server.state.metadata.lock(&expired).await.expect("locked").expect("free");
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 3, "expected": 2 })).await;
    assert_eq!((status, &body["published"]), (StatusCode::OK, &json!(true)), "{body}");
}

#[tokio::test]
async fn a_publication_that_cannot_be_recorded_switches_back() {
    let server = server(Limits::default()).await;
    let alice = server.user("alice", &["allow-extensions"]).await;
    for version in ["1.0.0", "2.0.0"] {
        assert_eq!(
            server.upload(&alice, "Greeter", &xif("Greeter", version, false), None).await.0,
            StatusCode::CREATED
        );
    }
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Recording fails after the switch: the table it records in is gone.
    match xif_testkit::postgres::test_database(server.data.path()) {
        Some(url) => {
            let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("a second connection");
            sqlx::query("DROP TABLE publications").execute(&mut other).await.expect("dropped");
        }
        None => {
            let database = server.data.path().join("metadata.sqlite");
            let mut other =
                <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", database.display()))
                    .await
                    .expect("a second connection");
            sqlx::query("DROP TABLE publications").execute(&mut other).await.expect("dropped");
        }
    }

    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 2, "expected": 1 })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("internal")));
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(
        !message.contains(&server.data.path().display().to_string()) && !message.contains("publications"),
        "{message}"
    );
    // Running equals recorded: version 1, which still answers.
    assert_eq!(server.state.runtime.running_version("Greeter").await, Some(1));
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&alice), None).await;
    assert_eq!((&extensions[0]["published"], &extensions[0]["running"]), (&json!(1), &json!(1)));
    let (status, _) =
        server.call("POST", "/api/v1/extensions/Greeter/actions/Run", Some(&alice), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    // The lock was released on the way out.
    let admin = server.admin().await;
    assert_eq!(server.call("GET", "/api/v1/locks", Some(&admin), None).await.1, json!([]));
    // The version switched away from was stopped, and its working directory removed, before the
    // answer.
    let left = std::fs::read_dir(server.data.path().join("runtime/greeter")).expect("listed").count();
    assert_eq!(left, 1, "only the running version's working directory is left");
}

/// The reconciler lists the published versions, then converges each: a rollback that finishes
/// between the two must not be switched back to the version it replaced (which CI once saw as
/// a call answered by version 2 just after `xif publish --version 1` said it was published).
#[tokio::test]
async fn a_reconciler_pass_listed_before_a_rollback_keeps_the_rolled_back_version() {
    let server = server(Limits::default()).await;
    let alice = server.user("alice", &["allow-extensions"]).await;
    for version in ["1.0.0", "2.0.0"] {
        assert_eq!(
            server.upload(&alice, "Greeter", &xif("Greeter", version, false), None).await.0,
            StatusCode::CREATED
        );
    }
    assert_eq!(server.publish(&alice, "Greeter", json!({ "version": 2, "expected": null })).await.0, StatusCode::OK);
    // A pass lists version 2 as published; the rollback finishes; then the pass converges.
    let listed = 2;
    let (status, body) = server.publish(&alice, "Greeter", json!({ "version": 1, "expected": 2 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.state.publishing.converge("Greeter", listed).await;
    assert_eq!(server.state.runtime.running_version("Greeter").await, Some(1));
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&alice), None).await;
    assert_eq!((&extensions[0]["published"], &extensions[0]["running"]), (&json!(1), &json!(1)));
}

#[tokio::test]
async fn publishing_needs_its_permissions() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    assert_eq!(server.upload(&admin, "Shop", &xif("Shop", "1.0.0", true), None).await.0, StatusCode::CREATED);
    let nobody = server.user("nobody", &[]).await;
    let (status, body) = server.publish(&nobody, "Shop", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"].as_str().is_some_and(
            |message| message.starts_with("publishing an extension needs the `allow-extensions` permission")
        )
    );
    let extensions_only = server.user("dana", &["allow-extensions"]).await;
    let (status, body) = server.publish(&extensions_only, "Shop", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "publishing an extension that exports entities needs the `allow-foreign-entities` permission, which user `dana` does not have; \
         an administrator can grant it with `xif admin user grant dana allow-foreign-entities`"
    );
    let both = server.user("erin", &["change-and-deploy"]).await;
    assert_eq!(server.publish(&both, "Shop", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_api_describes_itself_and_answers_in_one_envelope() {
    let server = server(Limits::default()).await;
    let (status, health) = server.call("GET", "/healthz", None, None).await;
    assert_eq!((status, &health["status"]), (StatusCode::OK, &json!("ok")));
    let (status, document) = server.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // Every route of the router is in the document.
    let source = include_str!("../src/lib.rs");
    for route in source.split(".route(\"").skip(1).filter_map(|rest| rest.split('"').next()) {
        // The server's root leads to Service Center, which is HTML, not the API.
        if route == "/"
            || route.starts_with("/console")
            || route.starts_with("/healthz")
            || route.starts_with("/metrics")
        {
            continue;
        }
        assert!(document["paths"].get(route).is_some(), "{route} is missing from openapi.json");
    }
    let (status, body) = server.call("GET", "/api/v1/nothing", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_such_endpoint")));
    for path in ["/api/v1/extensions", "/healthz"] {
        let request = Request::builder().method("DELETE").uri(path).body(Body::empty()).expect("request");
        let (status, headers, body) = server.send_from(PEER.into(), request).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
            "{path}"
        );
        assert_eq!(headers.get("allow").and_then(|allow| allow.to_str().ok()), Some("GET,HEAD"), "{path}");
    }
    let (status, body) = server.call("POST", "/api/v1/login", None, Some(json!({ "name": 3 }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let request = Request::builder().method("POST").uri("/api/v1/login").body(Body::from("{}")).expect("request");
    let (status, body) = server.send(request).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; 3 << 20]))
        .expect("request");
    let (status, body) = server.send(request).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
}

/// Each response of an operation in `document`, by status, with `$ref`s followed.
fn responses_of(document: &Value) -> Vec<(String, String, String, Value)> {
    let resolve = |value: &Value| match value["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} points nowhere"))
            .clone(),
        None => value.clone(),
    };
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Some(responses) = operation["responses"].as_object() else { continue };
            for (status, response) in responses {
                found.push((
                    format!("{} {path}", method.to_uppercase()),
                    method.clone(),
                    status.clone(),
                    resolve(response),
                ));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_lists_every_status_and_code_the_server_answers() {
    let document: Value = serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON");
    let names: Vec<&str> = xif_api::ErrorCode::ALL.iter().map(|code| code.name()).collect();
    assert_eq!(
        document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"],
        json!(names),
        "the Error schema's codes are xif_api::ErrorCode::ALL, in its order"
    );
    let responses = responses_of(&document);
    // Every code is described under its own status, by some operation, and nowhere under another.
    for code in xif_api::ErrorCode::ALL {
        let mention = format!("`{}`", code.name());
        let under: Vec<&String> = responses
            .iter()
            .filter(|(_, _, _, response)| response["description"].as_str().is_some_and(|text| text.contains(&mention)))
            .map(|(_, _, status, _)| status)
            .collect();
        // Answered where the document has no operation: said once, for every path.
        if matches!(
            code,
            xif_api::ErrorCode::NoSuchEndpoint
                | xif_api::ErrorCode::MethodNotAllowed
                | xif_api::ErrorCode::ForgedRequest
        ) {
            let info = document["info"]["description"].as_str().expect("a description");
            assert!(info.contains(&mention), "the document's description says when {mention} is answered");
            continue;
        }
        assert!(!under.is_empty(), "no operation answers {mention}");
        for status in under {
            assert_eq!(status, &code.status().to_string(), "{mention} is described under {status}");
        }
    }
    // Errors are described by the Error schema.
    for (operation, _, status, response) in &responses {
        if status.starts_with('4') || status.starts_with('5') {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                "{operation} {status}"
            );
        }
    }
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Some(statuses) = operation["responses"].as_object() else { continue };
            let name = format!("{} {path}", method.to_uppercase());
            if operation["security"] != json!([]) {
                assert!(statuses.contains_key("401"), "{name}: 401 on every operation that takes a token");
            }
            if operation["requestBody"]["content"].get("application/json").is_some() {
                assert_eq!(operation["requestBody"]["required"], true, "{name}");
                for status in ["400", "413", "415"] {
                    assert!(statuses.contains_key(status), "{name}: a JSON body may answer {status}");
                }
            }
            let takes_path = operation["parameters"].as_array().is_some_and(|parameters| {
                parameters.iter().any(|parameter| parameter.get("$ref").is_some() || parameter["in"] == "path")
            });
            if takes_path && path.contains('{') {
                assert!(statuses.contains_key("400"), "{name}: a name or number in the path may answer 400");
            }
        }
    }
    // The names' constraints are the server's.
    let schemas = &document["components"]["schemas"];
    for name in ["ExtensionName", "ActionName", "ModuleName"] {
        assert_eq!(schemas[name]["maxLength"], xif_verify::MAX_NAME, "{name}");
    }
    assert_eq!(schemas["UserName"]["maxLength"], xif_server::names::MAX_USER_NAME);
    let permissions: Vec<&str> = xif_api::Permission::ALL.iter().map(|permission| permission.name()).collect();
    assert_eq!(schemas["Permission"]["enum"], json!(permissions));
}

/// Names and numbers in paths: each refused with `invalid_path` and the rule, and a valid name
/// that names nothing is simply not found.
#[tokio::test]
async fn names_in_paths_follow_their_rules() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let long = "x".repeat(51);
    let rule = "names have letters, digits and `_` only, start with a letter, and have at most 50 characters";
    let users = "user names have 1 to 64 letters, digits, `.`, `_` or `-`";
    let inputs = Some(json!({}));
    let dependencies = Some(json!({ "dependencies": [] }));
    let grant = Some(json!({ "permission": "allow-extensions" }));
    // (request, body, expected status and code, part of the message)
    let cases = [
        (
            "GET /extensions/1abc/versions",
            None,
            "400 invalid_path",
            format!("`1abc` is not a valid extension name: extension {rule}"),
        ),
        (&format!("GET /extensions/{long}/publications"), None, "400 invalid_path", format!("extension {rule}")),
        ("GET /extensions/a-b/logs", None, "400 invalid_path", format!("extension {rule}")),
        ("DELETE /extensions/%C3%A9/lock", None, "400 invalid_path", "`é` is not a valid extension name".into()),
        ("POST /extensions/Echo/actions/say-it", inputs.clone(), "400 invalid_path", format!("action {rule}")),
        (
            "PUT /modules/my%20module/dependencies",
            dependencies,
            "400 invalid_path",
            format!("`my module` is not a valid module name: module {rule}"),
        ),
        ("DELETE /users/bad%2Fname", None, "400 invalid_path", format!("`bad/name` is not a valid user name: {users}")),
        ("POST /users/bad%20name/grants", grant, "400 invalid_path", users.into()),
        (
            "GET /extensions/Echo/versions/one/xif",
            None,
            "400 invalid_path",
            "`one` in the path is not a whole number".into(),
        ),
        ("DELETE /tokens/99999999999999999999", None, "400 invalid_path", "is not a whole number".into()),
        // Valid names, reserved words too, that name nothing.
        ("GET /extensions/Ghost/versions", None, "404 unknown_extension", "`Ghost`".into()),
        ("GET /extensions/Text/versions", None, "404 unknown_extension", "`Text`".into()),
        ("POST /extensions/Ghost/actions/Say", inputs, "404 extension_not_running", "`Ghost`".into()),
        ("DELETE /users/ghost.user-1", None, "404 unknown_user", "`ghost.user-1`".into()),
    ];
    for (request, body, expected, message) in cases {
        let (method, path) = request.split_once(' ').expect("METHOD PATH");
        let (status, answer) = server.call(method, &format!("/api/v1{path}"), Some(&admin), body).await;
        let answered = format!("{} {}", status.as_u16(), answer["error"]["code"].as_str().unwrap_or("-"));
        assert_eq!(answered, expected, "{request}: {answer}");
        let said = answer["error"]["message"].as_str().expect("a message");
        assert!(said.contains(&message), "{request}: {said}");
    }
}

#[tokio::test]
async fn metrics_need_an_administrators_token_except_on_their_own_address() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let bob = server.user("bob", &[]).await;
    let (status, body) = server.call("GET", "/metrics", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    let (status, body) = server.call("GET", "/metrics", Some(&bob), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("administrator_only")));
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("metrics")), "{body}");
    let (status, metrics) = server.call("GET", "/metrics", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.as_str().is_some_and(|text| text.contains("xif_http_requests_total")), "{metrics}");

    let request = Request::builder().uri("/metrics").body(Body::empty()).expect("request");
    let response = xif_server::metrics_router(server.state.clone()).oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::OK, "the metrics address needs no token");
    let request = Request::builder().uri("/api/v1/users").body(Body::empty()).expect("request");
    let response = xif_server::metrics_router(server.state.clone()).oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "the metrics address serves nothing else");
}

async fn login_from(server: &Server, peer: [u8; 4], user: &str, password: &str) -> (StatusCode, Option<u64>, Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "user": user, "password": password }).to_string()))
        .expect("request");
    let (status, headers, body) = server.send_from((peer, 50_000).into(), request).await;
    let retry_after = headers.get("retry-after").map(|value| {
        value.to_str().ok().and_then(|text| text.parse().ok()).expect("Retry-After is a number of seconds")
    });
    (status, retry_after, body)
}

#[tokio::test]
async fn logins_are_throttled_per_address_and_per_user_with_a_time_to_retry() {
    let limits = LoginLimits { per_address: 3, per_user: 2, ..LoginLimits::default() };
    let server = server(Limits { login: limits, ..Limits::default() }).await;
    let admin = server.admin().await;

    // The user name `admin` has 2 attempts a minute, wherever they come from; the right password
    // does not get past the limit either.
    let (status, retry_after, _) = login_from(&server, [198, 51, 100, 1], "admin", "a wrong password").await;
    assert_eq!((status, retry_after), (StatusCode::UNAUTHORIZED, None));
    let (status, retry_after, body) = login_from(&server, [198, 51, 100, 2], "Admin", PASSWORD).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("user `Admin`") && message.contains(&format!("try again in {retry_after} seconds")),
        "{message}"
    );

    // One address has 3 attempts a minute, whichever names it tries.
    for name in ["nobody", "somebody", "anybody"] {
        let (status, _, _) = login_from(&server, [203, 0, 113, 7], name, "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after, body) = login_from(&server, [203, 0, 113, 7], "everybody", "guess").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(retry_after.is_some_and(|seconds| (1..=20).contains(&seconds)), "{retry_after:?}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("your address")), "{body}");
    let (status, _, _) = login_from(&server, [203, 0, 113, 8], "everybody", "guess").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another address is counted apart");

    // Those who are logged in already are not affected.
    let (status, me) = server.call("GET", "/api/v1/me", Some(&admin), None).await;
    assert_eq!((status, me["name"].as_str()), (StatusCode::OK, Some("admin")));
}

#[tokio::test]
async fn password_checks_beyond_the_threads_and_the_wait_are_refused_as_busy() {
    let limits = LoginLimits {
        per_address: 0,
        per_user: 0,
        password_checks: 1,
        password_wait: std::time::Duration::ZERO,
        ..LoginLimits::default()
    };
    let server = server(Limits { login: limits, ..Limits::default() }).await;
    let answers = futures_util::future::join_all(
        (0..8u8).map(|index| login_from(&server, [198, 51, 100, index], "admin", "a wrong password")),
    )
    .await;
    let mut busy = 0;
    for (status, retry_after, body) in answers {
        match status {
            StatusCode::UNAUTHORIZED => assert_eq!(body["error"]["code"], "invalid_credentials"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!((body["error"]["code"].as_str(), retry_after), (Some("server_busy"), Some(1)));
                busy += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(busy > 0, "eight checks at once on one thread that is never waited for");
}

#[tokio::test]
async fn tokens_expire_and_expired_ones_are_refused_even_when_cached() {
    let server = server(Limits::default()).await;
    let (status, body) =
        server.call("POST", "/api/v1/login", None, Some(json!({ "user": "admin", "password": PASSWORD }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("an expiry")).expect("RFC 3339");
    let lifetime = expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!((29..=30).contains(&lifetime.num_days()), "a login's token lasts 30 days by default: {lifetime}");
    let (_, tokens) = server.call("GET", "/api/v1/tokens", Some(&token), None).await;
    assert_eq!(tokens[0]["expires_at"], body["expires_at"], "{tokens}");

    for expires_in in [json!(0), json!(366 * 86_400)] {
        let request = json!({ "user": "admin", "password": PASSWORD, "expires_in": expires_in });
        let (status, body) = server.call("POST", "/api/v1/login", None, Some(request)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_token_lifetime")));
    }

    // A token whose expiry has passed.
    let admin = server.state.metadata.user("admin").await.expect("store").expect("admin");
    let expired = "xif_expired-token-of-the-test";
    let hash = hex(&Sha256::digest(expired.as_bytes()));
    server
        .state
        .metadata
        .create_token(xif_server::NewToken {
            user_id: admin.id,
            hash: &hash,
            label: None,
            created_at: "2020-01-01T00:00:00Z",
            expires_at: Some("2020-01-31T00:00:00Z"),
            scope: None,
        })
        .await
        .expect("stored");
    let (status, body) = server.call("GET", "/api/v1/me", Some(expired), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_expired")));
    assert!(
        body["error"]["message"].as_str().is_some_and(|message| message.contains("2020-01-31T00:00:00Z")),
        "{body}"
    );

    // A token of one second, seen (and cached) while valid, is refused once its second is over,
    // although the cache keeps entries longer.
    let request = json!({ "user": "admin", "password": PASSWORD, "expires_in": 1 });
    let (status, body) = server.call("POST", "/api/v1/login", None, Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let short = body["token"].as_str().expect("token").to_owned();
    let (status, _) = server.call("GET", "/api/v1/me", Some(&short), None).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let (status, body) = server.call("GET", "/api/v1/me", Some(&short), None).await;
        if status != StatusCode::OK {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "a one-second token still works after 10 seconds");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(body["error"]["code"], "token_expired");
}

/// A XIF whose binary is fixture `binary`, with `definition` as its definition.
fn xif_with(binary: &str, definition: &str, name: &str, version: &str) -> Vec<u8> {
    xif_testkit::pack(name, version, definition, &fixtures::binary(binary))
}

const ECHO: &str = "[extension]\nname = \"Echo\"\nversion = \"VERSION\"\ndescription = \"Echoes.\"\n\n[[actions]]\nname = \"Say\"\ndescription = \"Says it back.\"\ninputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]\noutputs = [ { name = \"Said\", type = \"Text\" } ]\n";

fn echo(version: &str) -> Vec<u8> {
    xif_with("generic", &ECHO.replace("VERSION", version), "Echo", version)
}

/// Uploads and publishes the `behaviours` fixture (crash, hang, flood, ...) as version 1.
async fn publish_behaviours(server: &Server, admin: &str) {
    let definition =
        std::fs::read_to_string(fixtures::workspace().join("fixtures/behaviours/extension.toml")).expect("definition");
    assert_eq!(
        server.upload(admin, "Behaviours", &xif_with("behaviours", &definition, "Behaviours", "1.0.0"), None).await.0,
        StatusCode::CREATED
    );
    assert_eq!(server.publish(admin, "Behaviours", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_published_extension_answers_calls_checked_against_its_definition() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "hi" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("extension_not_running")));

    let (status, body) = server.upload(&admin, "Echo", &echo("1.0.0"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "hi" }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Said": "hi" })));

    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Shout", Some(&admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "extension `Echo` has no action `Shout`");
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")));
    assert_eq!(body["error"]["message"], "action `Say` needs input `Text` (Text), which was not given");
    let (status, body) = server
        .call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "far too long text" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "input `Text` of action `Say` is 17 characters long, over its length of 10");
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": 3 }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")));

    // After a restart on the same data, the published version runs again. (The first server
    // stops first: a data directory serves one server at a time.)
    let Server { state, data, .. } = server;
    state.shutdown().await;
    drop(state);
    let (restarted, bootstrap) =
        AppState::open(&storage(data.path()), Limits::default(), Some(PASSWORD)).await.expect("reopened");
    assert!(bootstrap.is_none());
    assert_eq!(restarted.runtime.running_version("Echo").await, Some(1));
    restarted.shutdown().await;
}

#[tokio::test]
async fn a_server_alone_is_a_farm_of_one_node() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    assert_eq!(server.upload(&admin, "Echo", &echo("1.0.0"), None).await.0, StatusCode::CREATED);
    let (status, body) = server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().expect("the nodes' results");
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!((&nodes[0]["ok"], &nodes[0]["running"], &nodes[0]["error"]), (&json!(true), &json!(1), &Value::Null));
    let (status, body) =
        server.publish(&admin, "Echo", json!({ "version": 1, "expected": 1, "validate_only": true })).await;
    assert_eq!((status, &body["nodes"]), (StatusCode::OK, &json!([])), "validate-only deploys nowhere: {body}");

    let (status, nodes) = server.call("GET", "/api/v1/nodes", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let nodes = nodes.as_array().expect("an array");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["live"], true);
    assert_eq!(nodes[0]["extensions"], json!([{ "name": "Echo", "running": 1, "failure": null }]));
    assert_eq!(server.call("GET", "/api/v1/nodes", None, None).await.0, StatusCode::UNAUTHORIZED);
    // The nodes' internal addresses are for administrators.
    let user = server.user("nosy", &[]).await;
    let (status, body) = server.call("GET", "/api/v1/nodes", Some(&user), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("administrator_only")), "{body}");

    // Alone, a node's log is the extension's log as it is; asked of a node that is not there,
    // it says so.
    let (status, _) = server.call("GET", "/api/v1/extensions/Echo/logs", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call("GET", "/api/v1/extensions/Echo/logs?node=elsewhere", Some(&admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_node")), "{body}");

    // Not ready until it has joined the farm (which serving does) and converged.
    let (status, body) = server.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable"))
    );
    server.state.join("http://127.0.0.1:1".into(), None).await.expect("joined");
    let mut ready = false;
    for _ in 0..500 {
        if server.call("GET", "/readyz", None, None).await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ready, "the node never said it was ready");
}

#[tokio::test]
async fn an_actions_error_and_a_crash_have_their_own_status() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    publish_behaviours(&server, &admin).await;
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Fail", Some(&admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"],
        json!({ "code": "action_failed", "message": "action `Fail` failed: the card was declined (card_declined)" })
    );
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Crash", Some(&admin), Some(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("extension_crashed")),
        "{body}"
    );
    let (status, log) = server.call("GET", "/api/v1/extensions/Behaviours/logs", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(log.as_str().is_some_and(|log| log.contains("about to crash on purpose")), "{log}");
    server.state.shutdown().await;
}

#[tokio::test]
async fn a_version_that_fails_to_start_is_not_published_and_the_old_one_keeps_serving() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    assert_eq!(server.upload(&admin, "Echo", &echo("1.0.0"), None).await.0, StatusCode::CREATED);
    assert_eq!(server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);
    let broken = xif_with("exits-early", &ECHO.replace("VERSION", "2.0.0"), "Echo", "2.0.0");
    assert_eq!(server.upload(&admin, "Echo", &broken, None).await.0, StatusCode::CREATED);
    let (status, body) = server.publish(&admin, "Echo", json!({ "version": 2, "expected": 1 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "deploy_failed");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("version 2 of `Echo` was not published, and version 1 keeps serving: it did not start: the extension exited before its handshake"), "{message}");
    assert!(message.contains("payments.conf"), "the reason from the extension's log: {message}");
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&admin), None).await;
    assert_eq!(extensions[0]["published"], 1);
    let (status, body) = server
        .call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "still" })))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Said": "still" })));
    server.state.shutdown().await;
}

#[tokio::test]
async fn republishing_while_a_client_keeps_calling_fails_no_call() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        assert_eq!(server.upload(&admin, "Echo", &echo(version), None).await.0, StatusCode::CREATED);
    }
    assert_eq!(server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);
    let runtime = std::sync::Arc::clone(&server.state.runtime);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let runtime = std::sync::Arc::clone(&runtime);
            let stop = std::sync::Arc::clone(&stop);
            tokio::spawn(async move {
                let (mut succeeded, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match runtime.call("Echo", "Say", json!({ "Text": "load" })).await {
                        Ok(outputs) if outputs.values().get("Said") == Some(&json!("load")) => succeeded += 1,
                        Ok(other) => failed.push(format!("{other:?}")),
                        Err(error) => failed.push(format!("{error:?}")),
                    }
                }
                (succeeded, failed)
            })
        })
        .collect();
    let mut current = 1;
    for next in [2, 3, 1, 2, 3, 1] {
        let (status, body) = server.publish(&admin, "Echo", json!({ "version": next, "expected": current })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            runtime.running_version("Echo").await,
            Some(next),
            "the new version is callable when the publication returns"
        );
        current = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for caller in callers {
        let (succeeded, failed) = caller.await.expect("joined");
        assert!(failed.is_empty(), "calls failed while versions were replaced: {failed:?}");
        total += succeeded;
    }
    assert!(total > 100, "the callers kept calling: {total}");
    server.state.shutdown().await;
}

#[tokio::test]
async fn a_crashed_extension_is_restarted_and_given_up_on_after_repeated_crashes() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    publish_behaviours(&server, &admin).await;
    let echo = json!({ "Message": "back" });

    for crash in 1..=5 {
        let (status, _) =
            server.call("POST", "/api/v1/extensions/Behaviours/actions/Crash", Some(&admin), Some(json!({}))).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "crash {crash}");
        if crash == 5 {
            break;
        }
        // Restarted after a pause that grows with each crash; a call made meanwhile waits for the
        // restarted process instead of failing.
        let (status, body) =
            server.call("POST", "/api/v1/extensions/Behaviours/actions/Echo", Some(&admin), Some(echo.clone())).await;
        assert_eq!((status, body), (StatusCode::OK, json!({ "Echoed": "back" })), "the call right after crash {crash}");
    }
    // After the fifth crash within a minute it is given up on, with the reason.
    let (status, failed) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Echo", Some(&admin), Some(echo.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed["error"]["code"], "extension_failed", "{failed}");
    assert!(failed["error"]["message"].as_str().is_some_and(|message| message.contains("ended 5 times")), "{failed}");
    // Publishing it again starts it again.
    let (status, body) = server.publish(&admin, "Behaviours", json!({ "version": 1, "expected": 1 })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["messages"][0],
        "version 1 of `Behaviours` is published already; it was not running and was started again"
    );
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Echo", Some(&admin), Some(echo)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Echoed": "back" })));
    server.state.shutdown().await;
}

#[tokio::test]
async fn runaway_memory_hangs_and_the_environment_are_contained() {
    let mut limits = Limits::default();
    limits.runtime.call_timeout = std::time::Duration::from_millis(500);
    limits.runtime.limits.memory_bytes = Some(256 << 20);
    let server = server(limits).await;
    let admin = server.admin().await;
    publish_behaviours(&server, &admin).await;

    let (status, body) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Environment", Some(&admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["Names"], "LANG,PATH,TMPDIR,XIF_CHANNEL,XIF_CHANNEL_TOKEN",
        "the extension sees none of the server's environment (TMPDIR is its own)"
    );

    let (status, body) = server
        .call(
            "POST",
            "/api/v1/extensions/Behaviours/actions/Sleep",
            Some(&admin),
            Some(json!({ "Milliseconds": 5000 })),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body["error"],
        json!({ "code": "action_timeout", "message": "action `Sleep` did not finish within 500ms" })
    );

    let (status, body) =
        server.call("POST", "/api/v1/extensions/Behaviours/actions/Allocate", Some(&admin), Some(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("extension_crashed")),
        "{body}"
    );
    let (status, log) = server.call("GET", "/api/v1/extensions/Behaviours/logs", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(log.as_str().is_some_and(|log| log.contains("memory allocation")), "the log says why: {log}");
    // The server is unharmed, and the extension is back after its restart.
    let mut answered = false;
    for _ in 0..200 {
        let (status, _) = server
            .call("POST", "/api/v1/extensions/Behaviours/actions/Echo", Some(&admin), Some(json!({ "Message": "ok" })))
            .await;
        if status == StatusCode::OK {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(answered);
    server.state.shutdown().await;
}

#[tokio::test]
async fn publications_report_their_impact_on_the_modules_that_use_the_extension() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let optional = ECHO.replace("VERSION", "1.1.0").replace(
        "inputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]",
        "inputs = [ { name = \"Text\", type = \"Text\", length = 10 }, { name = \"Loud\", type = \"Boolean\", mandatory = false } ]",
    );
    let renamed = ECHO.replace("VERSION", "2.0.0").replace("name = \"Say\"", "name = \"Tell\"");
    assert_eq!(server.upload(&admin, "Echo", &echo("1.0.0"), None).await.0, StatusCode::CREATED);
    assert_eq!(
        server.upload(&admin, "Echo", &xif_with("generic", &optional, "Echo", "1.1.0"), None).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        server.upload(&admin, "Echo", &xif_with("generic", &renamed, "Echo", "2.0.0"), None).await.0,
        StatusCode::CREATED
    );
    assert_eq!(server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await.0, StatusCode::OK);

    for (module, actions) in [("Shop", json!(["Say"])), ("Audit", json!([]))] {
        let body = json!({ "dependencies": [{ "extension": "Echo", "version": 1, "actions": actions }] });
        let path = format!("/api/v1/modules/{module}/dependencies");
        assert_eq!(server.call("PUT", &path, Some(&admin), Some(body)).await.0, StatusCode::OK);
    }
    let (status, body) = server
        .call(
            "PUT",
            "/api/v1/modules/Ghost/dependencies",
            Some(&admin),
            Some(json!({ "dependencies": [{ "extension": "Echo", "version": 9 }] })),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_version")));

    let (status, body) =
        server.publish(&admin, "Echo", json!({ "version": 2, "expected": 1, "validate_only": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["consumers"],
        json!([
            { "module": "Audit", "impact": "outdated", "built_against": 1, "changes": [] },
            { "module": "Shop", "impact": "possibly incompatible", "built_against": 1, "changes": ["action `Say` has a new optional input `Loud`"] },
        ])
    );
    let (status, body) =
        server.publish(&admin, "Echo", json!({ "version": 3, "expected": 1, "validate_only": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["consumers"][1],
        json!({ "module": "Shop", "impact": "incompatible", "built_against": 1, "changes": ["action `Say` was removed"] })
    );
    assert!(
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|message| message == "module `Shop` is incompatible: action `Say` was removed"),
        "{body}"
    );
    let (status, body) =
        server.publish(&admin, "Echo", json!({ "version": 1, "expected": 1, "validate_only": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["consumers"][1]["impact"], "not affected");
    server.state.shutdown().await;
}

#[tokio::test]
async fn an_extension_speaking_another_protocol_is_refused_at_deploy() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    let definition = "[extension]\nname = \"Behaviours\"\nversion = \"1.0.0\"\ndescription = \"Wrong protocol.\"\n\n[[actions]]\nname = \"Run\"\ndescription = \"Runs.\"\n";
    assert_eq!(
        server
            .upload(&admin, "Behaviours", &xif_with("wrong-protocol", definition, "Behaviours", "1.0.0"), None)
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = server.publish(&admin, "Behaviours", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["message"],
        "version 1 of `Behaviours` was not published, and no published version keeps serving: it did not start: \
         the extension speaks protocol version 99, this host speaks version 1; rebuild it against this version of xif-sdk"
    );
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&admin), None).await;
    assert_eq!(extensions[0]["published"], Value::Null);
}

#[tokio::test]
async fn a_slow_start_is_waited_for_within_the_handshake_limit_and_refused_beyond_it() {
    let mut limits = Limits::default();
    limits.runtime.handshake_timeout = std::time::Duration::from_millis(2500);
    let server = server(limits).await;
    let admin = server.admin().await;
    let slow = |version: &str, milliseconds: u64| {
        let definition = ECHO
            .replace("VERSION", version)
            .replace("description = \"Echoes.\"", &format!("description = \"Starts after {milliseconds} ms.\""));
        xif_with("generic", &definition, "Echo", version)
    };
    assert_eq!(server.upload(&admin, "Echo", &slow("1.0.0", 1200), None).await.0, StatusCode::CREATED);
    let started = std::time::Instant::now();
    let (status, body) = server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1200), "the publication waited for the handshake");
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "late" }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Said": "late" })));

    assert_eq!(server.upload(&admin, "Echo", &slow("2.0.0", 60_000), None).await.0, StatusCode::CREATED);
    let (status, body) = server.publish(&admin, "Echo", json!({ "version": 2, "expected": 1 })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deploy_failed")));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("version 2 of `Echo` was not published, and version 1 keeps serving")
            && message.contains("2.5s"),
        "names the time limit: {message}"
    );
    let (status, body) =
        server.call("POST", "/api/v1/extensions/Echo/actions/Say", Some(&admin), Some(json!({ "Text": "old" }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Said": "old" })));
    server.state.shutdown().await;
}

#[tokio::test]
async fn an_extension_flooding_stdout_keeps_answering_and_its_log_stays_bounded() {
    let server = server(Limits::default()).await;
    let admin = server.admin().await;
    publish_behaviours(&server, &admin).await;
    // 64 MiB on stdout, far more than the log holds and than a pipe buffers.
    let (status, body) = server
        .call("POST", "/api/v1/extensions/Behaviours/actions/Flood", Some(&admin), Some(json!({ "Megabytes": 64 })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call("POST", "/api/v1/extensions/Behaviours/actions/Echo", Some(&admin), Some(json!({ "Message": "after" })))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "Echoed": "after" })));
    let (status, log) = server.call("GET", "/api/v1/extensions/Behaviours/logs", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let log = log.as_str().unwrap_or_default();
    let capacity = xif_server::RuntimeOptions::default().log_capacity;
    assert!(log.contains("xxxxxxxx") && log.len() <= capacity + 1024, "bounded: {} bytes", log.len());
    server.state.shutdown().await;
}

#[tokio::test]
async fn without_landlock_extensions_run_only_when_the_operator_allows_it() {
    let mut limits = Limits::default();
    limits.runtime.isolation = Some(xif_server::IsolationOptions {
        // Never started: the refusal comes first.
        launcher: "/nonexistent/xif".into(),
        users: None,
        network: true,
        landlock: false,
        allow_unisolated: false,
    });
    let server = server(limits).await;
    let admin = server.admin().await;
    assert_eq!(server.upload(&admin, "Echo", &echo("1.0.0"), None).await.0, StatusCode::CREATED);
    let (status, body) = server.publish(&admin, "Echo", json!({ "version": 1, "expected": null })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "isolation_unavailable");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("does not enforce Landlock") && message.contains("--allow-unisolated-extensions"),
        "{message}"
    );
    let (_, extensions) = server.call("GET", "/api/v1/extensions", Some(&admin), None).await;
    assert!(extensions[0]["published"].is_null(), "nothing was published: {extensions}");
}

/// Uploads past `max_concurrent_uploads` are refused at once as busy, with a time to retry;
/// once an upload ends, the next is taken.
#[tokio::test]
async fn uploads_beyond_the_limit_at_once_are_refused_as_busy() {
    let server = server(Limits { max_concurrent_uploads: 1, ..Limits::default() }).await;
    let admin = server.admin().await;
    // An upload whose body never comes, in progress: the one permit is its own.
    let hanging = Request::builder()
        .method("POST")
        .uri("/api/v1/extensions/Hanging/versions")
        .header("authorization", format!("Bearer {admin}"))
        .header("x-xif-sha256", "0".repeat(64))
        .body(Body::from_stream(futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>()))
        .expect("request");
    let router = xif_server::router(server.state.clone()).layer(MockConnectInfo(std::net::SocketAddr::from(PEER)));
    let hanging = tokio::spawn(router.oneshot(hanging));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.state.uploads_in_progress() == 0 {
        assert!(!hanging.is_finished(), "the hanging upload was answered");
        assert!(std::time::Instant::now() < deadline, "the hanging upload never began");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/extensions/Other/versions")
        .header("authorization", format!("Bearer {admin}"))
        .header("x-xif-sha256", "0".repeat(64))
        .body(Body::from("not a xif"))
        .expect("request");
    let (status, headers, body) = server.send_from(PEER.into(), request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a second upload was taken: {body}");
    assert_eq!(body["error"]["code"], "server_busy", "{body}");
    assert_eq!(headers.get("retry-after").and_then(|value| value.to_str().ok()), Some("1"));
    hanging.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = server.upload(&admin, "Other", b"not a xif", None).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            assert_ne!(body["error"]["code"], "server_busy");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the permit was never given back");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
