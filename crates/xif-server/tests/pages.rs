//! The lists, a page at a time, through the router: `limit` and `after`, the `Link` header to
//! the next page, the last page without one, and bad parameters refused with the range taken.
//! Extensions, versions, publications and users are recorded through the store, as many as the
//! pages need, without uploading archives.

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use xif_server::{AppState, Limits, NewVersion, Storage};

const PASSWORD: &str = "administrator-password";

struct Server {
    state: AppState,
    _data: tempfile::TempDir,
    token: String,
}

/// A server with extensions `Alpha`, `beta`, `Big`, `delta`, `Epsilon` and `Gamma` (one version
/// each, `Big` seven, published three times) and users `admin`, `carol`, `Dave`, `erin`.
async fn server() -> Server {
    let data = tempfile::tempdir().expect("data directory");
    // SQLite, or with `XIF_TEST_DATABASE=postgres` a PostgreSQL database of its own.
    let storage =
        Storage { database: xif_testkit::postgres::test_database(data.path()), ..Storage::embedded(data.path()) };
    let (state, _) = AppState::open(&storage, Limits::default(), Some(PASSWORD)).await.expect("opens");
    let metadata = &state.metadata;
    let now = "2026-11-30T12:00:00Z";
    for (extension, versions) in [("Gamma", 1), ("beta", 1), ("Big", 7), ("Alpha", 1), ("Epsilon", 1), ("delta", 1)] {
        for number in 1..=versions {
            metadata
                .insert_version(NewVersion {
                    extension: extension.into(),
                    declared_version: format!("1.0.{number}"),
                    sha256: format!("{number:064x}"),
                    size: 1,
                    uploaded_by: "admin".into(),
                    uploaded_at: now.into(),
                    signed_by: None,
                })
                .await
                .expect("recorded");
        }
    }
    for (expected, to) in [(None, 1), (Some(1), 2), (Some(2), 5)] {
        metadata.publish("Big", expected, to, "admin", now).await.expect("store").expect("published");
    }
    for name in ["erin", "Dave", "carol"] {
        metadata.create_user(name, "not a hash", false, &[], now).await.expect("store").expect("made");
    }
    let mut server = Server { state, _data: data, token: String::new() };
    let (status, _, body) =
        server.send("POST", "/api/v1/login", Some(json!({ "user": "admin", "password": PASSWORD }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.token = body["token"].as_str().expect("a token").to_owned();
    server
}

impl Server {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Option<String>, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if !self.token.is_empty() {
            request = request.header("authorization", format!("Bearer {}", self.token));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let router = xif_server::router(self.state.clone())
            .layer(MockConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 40_000))));
        let response = router.oneshot(request.body(body).expect("a request")).await.expect("a response");
        let status = response.status();
        let links: Vec<String> = response
            .headers()
            .get_all(header::LINK)
            .iter()
            .map(|value| value.to_str().expect("a text header").to_owned())
            .collect();
        assert!(links.len() <= 1, "one Link header at most: {links:?}");
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        (status, links.into_iter().next(), serde_json::from_slice(&bytes).expect("JSON"))
    }

    async fn get(&self, path: &str) -> (StatusCode, Option<String>, Value) {
        self.send("GET", path, None).await
    }

    /// The pages of the list at `path`, following the links: each page's `key`s, and the link
    /// that led to each page after the first.
    async fn pages(&self, path: &str, key: &str) -> (Vec<Vec<Value>>, Vec<String>) {
        let (mut pages, mut links) = (Vec::new(), Vec::new());
        let mut next = Some(path.to_owned());
        while let Some(path) = next {
            let (status, link, body) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let items = body.as_array().unwrap_or_else(|| panic!("{path}: an array, not {body}"));
            pages.push(items.iter().map(|item| item[key].clone()).collect());
            assert!(pages.len() < 20, "{path}: the links do not end");
            next = link.map(|link| {
                let target = link
                    .strip_prefix('<')
                    .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
                    .unwrap_or_else(|| panic!("a link to the next page: {link}"));
                links.push(target.to_owned());
                target.to_owned()
            });
        }
        (pages, links)
    }
}

#[tokio::test]
async fn lists_are_paged_by_limit_and_cursor_with_a_link_to_the_next_page() {
    let server = server().await;
    // Names in the order of the case-insensitive names, the links after each page's last.
    let (pages, links) = server.pages("/api/v1/extensions?limit=2", "name").await;
    assert_eq!(
        pages,
        [
            vec![json!("Alpha"), json!("beta")],
            vec![json!("Big"), json!("delta")],
            vec![json!("Epsilon"), json!("Gamma")]
        ]
    );
    assert_eq!(links, ["/api/v1/extensions?after=beta&limit=2", "/api/v1/extensions?after=delta&limit=2"]);
    let (_, _, page) = server.get("/api/v1/extensions?after=Alpha&limit=1").await;
    assert_eq!(
        page,
        json!([{ "name": "beta", "published": null, "versions": 1, "running": null, "missing_configuration": [] }])
    );
    let (_, _, page) = server.get("/api/v1/extensions?after=beta&limit=1").await;
    assert_eq!(page[0]["name"], "Big", "the cursor compares as the order does");
    assert_eq!((&page[0]["versions"], &page[0]["published"]), (&json!(7), &json!(5)));
    // Without a limit, 100: all of them on one page, without a link.
    let (pages, links) = server.pages("/api/v1/extensions", "name").await;
    assert_eq!((pages.len(), pages[0].len(), links.len()), (1, 6, 0));

    let (pages, links) = server.pages("/api/v1/extensions/Big/versions?limit=3", "number").await;
    assert_eq!(pages, [vec![json!(1), json!(2), json!(3)], vec![json!(4), json!(5), json!(6)], vec![json!(7)]]);
    assert_eq!(
        links,
        ["/api/v1/extensions/Big/versions?after=3&limit=3", "/api/v1/extensions/Big/versions?after=6&limit=3"]
    );
    // A page that is exactly the rest has no link; a page after the last is empty, not an error.
    let (status, link, page) = server.get("/api/v1/extensions/Big/versions?after=4&limit=3").await;
    assert_eq!((status, link, page.as_array().map(Vec::len)), (StatusCode::OK, None, Some(3)));
    let (status, link, page) = server.get("/api/v1/extensions/Big/versions?after=7").await;
    assert_eq!((status, link, page), (StatusCode::OK, None, json!([])));
    for path in ["/api/v1/extensions/Nothing/versions", "/api/v1/extensions/Nothing/versions?after=3"] {
        let (status, _, body) = server.get(path).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_extension")));
    }

    let (pages, links) = server.pages("/api/v1/extensions/Big/publications?limit=2", "to").await;
    assert_eq!(pages, [vec![json!(1), json!(2)], vec![json!(5)]]);
    assert_eq!(links.len(), 1);
    let (_, _, page) = server.get(&links[0]).await;
    assert_eq!(page[0]["from"], 2);

    let (pages, links) = server.pages("/api/v1/users?limit=3", "name").await;
    assert_eq!(pages, [vec![json!("admin"), json!("carol"), json!("Dave")], vec![json!("erin")]]);
    assert_eq!(links, ["/api/v1/users?after=Dave&limit=3"]);
    let (_, _, page) = server.get("/api/v1/users?limit=1000").await;
    assert_eq!(page.as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn bad_page_parameters_are_refused_saying_what_is_taken() {
    let server = server().await;
    let range = "`limit` is a number from 1 to 1000 (100 when not given)";
    let cases = [
        ("/api/v1/extensions?limit=0", range),
        ("/api/v1/extensions?limit=1001", range),
        ("/api/v1/users?limit=-1", range),
        ("/api/v1/extensions/Big/versions?limit=ten", range),
        ("/api/v1/extensions/Big/publications?limit=", range),
        ("/api/v1/extensions/Big/versions?after=three", "`after` is the last number of the previous page"),
        ("/api/v1/extensions/Big/publications?after=-2", "`after` is the last number of the previous page"),
        ("/api/v1/extensions?after=", "`after` is the last name of the previous page"),
        ("/api/v1/users?after=a%00b", "`after` is the last name of the previous page"),
        ("/api/v1/users?after=%C3%A9", "`after` is the last name of the previous page"),
        ("/api/v1/extensions?limit=2&limit=3", "`limit` is given twice"),
    ];
    for (path, message) in cases {
        let (status, link, body) = server.get(path).await;
        assert_eq!(
            (status, link, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, None, Some("invalid_request")),
            "{path}"
        );
        let text = body["error"]["message"].as_str().expect("a message");
        assert!(text.starts_with(message), "{path}: {text}");
    }
    // Other parameters are not the lists' business.
    let (status, _, _) = server.get("/api/v1/extensions?sort=name").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn one_extension_and_a_version_by_its_digest_are_read_without_a_list() {
    let server = server().await;
    let (status, _, body) = server.get("/api/v1/extensions/big").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "name": "Big", "published": 5, "versions": 7, "running": null, "missing_configuration": [] })
    );
    let (status, _, body) = server.get("/api/v1/extensions/Nothing").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_extension")));

    let (status, link, body) = server.get(&format!("/api/v1/extensions/Big/versions?sha256={:064x}", 4)).await;
    assert_eq!((status, link), (StatusCode::OK, None));
    assert_eq!(
        body.as_array().map(|versions| versions.iter().map(|version| &version["number"]).collect()),
        Some(vec![&json!(4)])
    );
    let (status, _, body) = server.get(&format!("/api/v1/extensions/Big/versions?sha256={:064x}", 99)).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])), "no such version: an empty list");
    let (status, _, body) = server.get(&format!("/api/v1/extensions/Nothing/versions?sha256={:064x}", 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_extension")));
    let (status, _, body) = server.get(&format!("/api/v1/extensions/Big/versions?sha256={:064X}", 0xab)).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])), "upper case is hex too");
    for digest in ["ABC", &"g".repeat(64), &format!("{:065x}", 4)] {
        let (status, _, body) = server.get(&format!("/api/v1/extensions/Big/versions?sha256={digest}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{digest}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|text| text.starts_with("`sha256` is a SHA-256 in 64 hexadecimal digits"))
        );
    }
}
