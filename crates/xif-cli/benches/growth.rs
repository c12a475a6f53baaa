//! The bar of growth (issue 14): with 1,000 extensions and 10,000 versions, listing and
//! publishing take at most 1.5× what they take with 10 versions, on each back end (SQLite, and
//! PostgreSQL in a throwaway cluster of `xif_testkit::postgres`), in the same run.
//!
//! Two real `xif server`s run side by side: the small one holds extension `Bench` with 10
//! versions and 9 other extensions with one each; the large one `Bench` with 9,001 versions and
//! 999 other extensions with one each (1,000 extensions, 10,000 versions). Their metadata is
//! recorded through the store's own API before they start (`tests/support/seed.rs`: uploading
//! 10,000 versions would take the whole run); the seeded versions' archives do not exist and are
//! never read. Then `xif publish` builds, uploads and publishes the sample of `xif new Bench` on
//! each, and, alternating between the two so that the machine's drift hits both alike:
//! - listing: the first page of `/extensions`, and the first and the last page of `Bench`'s
//!   versions, 10 items each on both servers (the same answer size, so that only the store's
//!   work differs);
//! - publishing: `xif publish` of the unchanged project (the 1-Click Publish's lookups on the
//!   server, nothing uploaded), then the upload of a new version of `Bench` and its publication
//!   (its deploy included) through the client library.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;
#[path = "../tests/support/seed.rs"]
#[expect(dead_code, reason = "the benchmark seeds no users")]
mod seed;

use std::path::{Path, PathBuf};
use std::time::Instant;

use xif_server::MetadataStore;

const LISTING_RUNS: usize = 301;
const PUBLISHING_RUNS: usize = 11;
const ONE_CLICK_RUNS: usize = 11;
/// Items per page when listing, on both servers.
const PAGE: usize = 10;
const BAR: f64 = 1.5;

/// What a server holds before the benchmark's own uploads.
struct Size {
    label: &'static str,
    /// Versions of `Bench`.
    bench_versions: usize,
    /// Other extensions, with one version each.
    others: usize,
}

const SMALL: Size = Size { label: "10 versions", bench_versions: 10, others: 9 };
const LARGE: Size = Size { label: "1,000 extensions, 10,000 versions", bench_versions: 9_001, others: 999 };

/// Where the metadata is kept.
enum Backend {
    /// In the data directory.
    Sqlite,
    /// In a database of its own of this cluster (`xif_testkit::postgres`), for each server.
    Postgres(xif_testkit::postgres::Cluster),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// The URL of a new database for a server, on PostgreSQL.
    fn database(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(cluster) => Some(cluster.database()),
        }
    }
}

/// The store of a server on `data` and `database` (see [`Backend::database`]).
async fn open(data: &Path, database: Option<&str>) -> Box<dyn MetadataStore> {
    match database {
        Some(url) => Box::new(xif_server::PgStore::open(url).await.expect("the database opens")),
        None => Box::new(xif_server::SqliteStore::open(&data.join("metadata.sqlite")).await.expect("the store opens")),
    }
}

/// A XIF of `Bench` `version`, deployable: the generic fixture extension.
fn archive(directory: &Path, version: &str) -> PathBuf {
    let definition = format!(
        "[extension]\nname = \"Bench\"\nversion = \"{version}\"\ndescription = \"Growth.\"\n\n\
         [[actions]]\nname = \"Run\"\ndescription = \"Runs.\"\n"
    );
    let path = directory.join(format!("Bench-{version}.xif"));
    std::fs::write(&path, xif_testkit::pack("Bench", version, &definition, &fixtures::binary("generic")))
        .expect("written");
    path
}

/// A server of `size` on `backend`, with its client, `Bench`'s published version and its
/// number of versions.
struct Seeded {
    _server: xif_testkit::Server,
    url: String,
    token: String,
    client: xif_client::Client,
    published: i64,
    versions: i64,
}

async fn seeded(backend: &Backend, size: &Size, data: &Path, project: &Project) -> Seeded {
    let binary = env!("CARGO_BIN_EXE_xif");
    let database = backend.database();
    let arguments: Vec<&str> = database.iter().flat_map(|url| ["--database", url.as_str()]).collect();
    let start = || xif_testkit::Server::start(binary, data, xif_testkit::BENCHMARK_PASSWORD, "warn", &arguments, drop);
    // Started once to make its administrator, which it does only while it has no users; stopped
    // as an operator would, so that on PostgreSQL it leaves the farm's nodes (a killed node
    // would be seen alive for seconds more, and reported as gone by the first publication).
    start().stop();
    let started = Instant::now();
    let store = open(data, database.as_deref()).await;
    seed::versions(&*store, "Bench", size.bench_versions).await;
    for other in 0..size.others {
        seed::versions(&*store, &format!("Other{other:04}"), 1).await;
    }
    store.close().await;
    println!("{} ({}): seeded in {:.1?}", backend.name(), size.label, started.elapsed());
    let server = start();
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
    let client = xif_client::Client::new(&server.url, Some(token.clone()), None).expect("a client");
    let mut seeded = Seeded { url: server.url.clone(), _server: server, token, client, published: 0, versions: 0 };
    // The first real version: the sample, built, uploaded and published by `xif publish`.
    project.publish(&seeded);
    let bench = seeded.client.extension("Bench").await.expect("read").expect("there");
    (seeded.published, seeded.versions) = (bench.published.expect("published"), bench.versions);
    seeded
}

/// The sample project of `xif new Bench`, and where its builds go.
struct Project {
    path: PathBuf,
    target: PathBuf,
}

impl Project {
    fn new(directory: &Path) -> Self {
        let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
        xif_testkit::xif(env!("CARGO_BIN_EXE_xif"), &["new", "Bench"], directory, &target);
        Self { path: directory.join("Bench"), target }
    }

    /// `xif publish` of the project to `server`; how long it took, in milliseconds.
    fn publish(&self, server: &Seeded) -> f64 {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(["--quiet", "publish", "--path"])
            .arg(&self.path)
            .env("XIF_SERVER", &server.url)
            .env("XIF_TOKEN", &server.token)
            .env("XIF_CONFIG_DIR", self.path.join("no-config"))
            .env("CARGO_TARGET_DIR", &self.target)
            .output()
            .expect("xif publish runs");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert!(output.status.success(), "xif publish: {}", String::from_utf8_lossy(&output.stderr));
        elapsed
    }
}

/// Uploads `archive` as a new version of `Bench` and publishes it in place of `expected`;
/// returns its number, which is also how many versions `Bench` has.
async fn upload_and_publish(client: &xif_client::Client, archive: &Path, expected: Option<i64>) -> (i64, i64) {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(archive).expect("the archive")));
    let uploaded = client.upload("Bench", archive, &digest, None, |_| true).await.expect("uploaded");
    assert!(uploaded.created, "a new version");
    let number = uploaded.version.number;
    let request = xif_api::PublishRequest { version: number, expected, validate_only: false };
    let answer = client.publish("Bench", &request).await.expect("published");
    assert!(answer.published, "{:?}", answer.messages);
    (number, number)
}

/// How long a GET of `path` takes, its answer read whole; checks that it holds `PAGE` items.
async fn timed_get(http: &reqwest::Client, server: &Seeded, path: &str) -> f64 {
    let started = Instant::now();
    let response = http.get(format!("{}{path}", server.url)).bearer_auth(&server.token).send().await.expect("sent");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    let body = response.bytes().await.expect("the body");
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let items: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("a JSON array");
    assert_eq!(items.len(), PAGE, "{path}");
    elapsed
}

fn report(what: &str, backend: &Backend, small: &[f64], large: &[f64]) {
    let (baseline, _, _) = xif_testkit::spread(small);
    let figure = xif_testkit::Figure::new(
        &format!("{what}, 1,000 extensions and 10,000 versions, {} (baseline: 10 versions)", backend.name()),
        "ms",
        large,
        "at most 1.5× the baseline",
        |median| median <= BAR * baseline,
    )
    .against(baseline);
    figure.report();
    println!(
        "{what} ({}): median {:.2} ms with 10,000 versions, {baseline:.2} ms with 10: {:.2}× (bar {BAR}×) -> {}",
        backend.name(),
        figure.median,
        figure.median / baseline,
        if figure.met { "met" } else { "NOT met" }
    );
}

async fn bench(backend: Backend, directory: &Path, project: &Project) {
    let small = seeded(&backend, &SMALL, &directory.join(format!("{}-small", backend.name())), project).await;
    let mut large = seeded(&backend, &LARGE, &directory.join(format!("{}-large", backend.name())), project).await;
    let mut small = small;
    let http = reqwest::Client::new();

    let [mut extensions, mut first, mut last] = [0; 3].map(|_| [Vec::new(), Vec::new()]);
    for _ in 0..LISTING_RUNS {
        for (side, server) in [&small, &large].into_iter().enumerate() {
            extensions[side].push(timed_get(&http, server, &format!("/api/v1/extensions?limit={PAGE}")).await);
            let path = format!("/api/v1/extensions/Bench/versions?limit={PAGE}");
            first[side].push(timed_get(&http, server, &path).await);
            let after = server.versions - PAGE as i64;
            let path = format!("/api/v1/extensions/Bench/versions?after={after}&limit={PAGE}");
            last[side].push(timed_get(&http, server, &path).await);
        }
    }
    report("listing: the first page of extensions", &backend, &extensions[0], &extensions[1]);
    report("listing: the first page of an extension's versions", &backend, &first[0], &first[1]);
    report("listing: the last page of an extension's versions", &backend, &last[0], &last[1]);

    // The 1-Click Publish of an unchanged project: it looks the extension and the archive's
    // digest up on the server, uploads nothing, and finds the version published and running.
    let mut one_click = [Vec::new(), Vec::new()];
    for _ in 0..ONE_CLICK_RUNS {
        for (side, server) in [&small, &large].into_iter().enumerate() {
            one_click[side].push(project.publish(server));
        }
    }
    report("publishing: `xif publish` of an unchanged extension", &backend, &one_click[0], &one_click[1]);

    let archives: Vec<PathBuf> = (1..=PUBLISHING_RUNS).map(|run| archive(directory, &format!("1.0.{run}"))).collect();
    let mut publishing = [Vec::new(), Vec::new()];
    for archive in &archives {
        for (side, server) in [&mut small, &mut large].into_iter().enumerate() {
            let started = Instant::now();
            let (published, versions) = upload_and_publish(&server.client, archive, Some(server.published)).await;
            publishing[side].push(started.elapsed().as_secs_f64() * 1000.0);
            (server.published, server.versions) = (published, versions);
        }
    }
    report("publishing: upload + publish of a new version", &backend, &publishing[0], &publishing[1]);
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = Project::new(temporary.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(bench(Backend::Sqlite, temporary.path(), &project));
    runtime.block_on(bench(Backend::Postgres(xif_testkit::postgres::Cluster::new()), temporary.path(), &project));
}
