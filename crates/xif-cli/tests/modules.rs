//! Modules that use published extensions, end to end with the real `xif` binary against a real
//! `xif server` process: module tokens and their scope (`xif token create|list|revoke`), the
//! consumers of an extension and their states (`xif consumers`), and the integration log
//! (`xif calls`), on SQLite (and on PostgreSQL in the second pass of `scripts/test`).

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "administrator-password";

const ECHO: &str = "[extension]\nname = \"NAME\"\nversion = \"VERSION\"\ndescription = \"Echoes.\"\n\n[[actions]]\nname = \"Say\"\ndescription = \"Says it back.\"\ninputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]\noutputs = [ { name = \"Said\", type = \"Text\" } ]\n";

/// A XIF of the echo fixture as extension `name` `version`, with `definition` (`ECHO` unless
/// given).
fn echo(name: &str, version: &str, definition: Option<&str>) -> Vec<u8> {
    let definition = definition.map_or_else(|| ECHO.to_owned(), str::to_owned);
    let definition = definition.replace("NAME", name).replace("VERSION", version);
    xif_testkit::pack(name, version, &definition, &fixtures::binary("generic"))
}

/// A server, its administrator's token, and a config directory for the CLI.
struct World {
    server: xif_testkit::Server,
    admin: String,
    directory: tempfile::TempDir,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl World {
    fn new(arguments: &[&str]) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let server = xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &directory.path().join("data"),
            PASSWORD,
            "warn",
            arguments,
            drop,
        );
        std::fs::create_dir(directory.path().join("config")).expect("config directory");
        let admin = server.token("admin", PASSWORD);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        World { server, admin, directory, http: reqwest::Client::new(), runtime }
    }

    /// `xif ARGUMENTS` against the server with `token`: exit code, stdout, stderr.
    fn xif(&self, token: &str, arguments: &[&str]) -> (Option<i32>, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(arguments)
            .current_dir(self.directory.path())
            .env("XIF_CONFIG_DIR", self.directory.path().join("config"))
            .env("XIF_SERVER", &self.server.url)
            .env("XIF_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("xif runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `METHOD /api/v1PATH` with `token` and a JSON `body`: the status and the JSON answer.
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.runtime.block_on(async {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let mut request = self.http.request(method, format!("{}/api/v1{path}", self.server.url)).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }

    /// Uploads `bytes` as a version of `name`; answers the status.
    fn upload(&self, token: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        self.runtime.block_on(async {
            let digest = hex::encode(Sha256::digest(&bytes));
            let response = self
                .http
                .post(format!("{}/api/v1/extensions/{name}/versions", self.server.url))
                .bearer_auth(token)
                .header("x-xif-sha256", digest)
                .body(bytes)
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }

    fn publish(&self, name: &str, version: i64, expected: Option<i64>) {
        let (status, body) = self.call(
            "POST",
            &format!("/extensions/{name}/publications"),
            &self.admin.clone(),
            Some(json!({ "version": version, "expected": expected })),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Uploads and publishes the echo fixture as `name` 1.0.0.
    fn published(&self, name: &str) {
        assert_eq!(self.upload(&self.admin.clone(), name, echo(name, "1.0.0", None)).0, 201);
        self.publish(name, 1, None);
    }

    /// A module token for `module` scoped to `extensions`, made with `xif token create`, and its id.
    fn module_token(&self, module: &str, extensions: &[&str]) -> (String, i64) {
        let mut arguments = vec!["token", "create", module, "--json"];
        for extension in extensions {
            arguments.extend(["--extension", extension]);
        }
        let (code, stdout, stderr) = self.xif(&self.admin.clone(), &arguments);
        assert_eq!(code, Some(0), "{stderr}");
        let made: Value = serde_json::from_str(&stdout).expect("JSON");
        (made["token"].as_str().expect("a token").to_owned(), made["token_id"].as_i64().expect("an id"))
    }
}

/// Asserts a 403 `out_of_scope` whose message names the module and its scope.
#[track_caller]
fn out_of_scope((status, body): (u16, Value), scope: &str) {
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("out_of_scope")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(scope), "the message names the scope `{scope}`: {message}");
}

#[test]
fn a_module_token_is_refused_outside_its_scope_and_allowed_within_until_revoked() {
    let world = World::new(&[]);
    world.published("Echo");
    world.published("Other");
    let (token, token_id) = world.module_token("Shop", &["echo"]);
    let scope = "this token is module `Shop`'s, scoped to extensions Echo";

    // Within its scope: calling, reading the extension, declaring its own module's dependencies.
    let (status, body) = world.call("POST", "/extensions/Echo/actions/Say", &token, Some(json!({ "Text": "hi" })));
    assert_eq!((status, body), (200, json!({ "Said": "hi" })));
    let (status, body) = world.call("GET", "/extensions/ECHO", &token, None);
    assert_eq!((status, body["name"].as_str()), (200, Some("Echo")), "{body}");
    let declared = json!({ "dependencies": [{ "extension": "Echo", "version": 1, "actions": ["Say"] }] });
    assert_eq!(world.call("PUT", "/modules/Shop/dependencies", &token, Some(declared.clone())).0, 200);
    let (code, stdout, stderr) = world.xif(&token, &["invoke", "Echo", "Say", "--input", r#"{"Text": "cli"}"#]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"Said\": \"cli\""), "{stdout}");

    // Outside it: another extension, uploading, publishing, users, tokens, other modules.
    out_of_scope(world.call("POST", "/extensions/Other/actions/Say", &token, Some(json!({ "Text": "hi" }))), scope);
    out_of_scope(world.call("GET", "/extensions/Other", &token, None), scope);
    out_of_scope(world.upload(&token, "Echo", echo("Echo", "1.0.1", None)), scope);
    out_of_scope(
        world.call("POST", "/extensions/Echo/publications", &token, Some(json!({ "version": 1, "expected": 1 }))),
        scope,
    );
    out_of_scope(world.call("GET", "/users", &token, None), scope);
    out_of_scope(world.call("GET", "/tokens", &token, None), scope);
    out_of_scope(
        world.call("POST", "/tokens", &token, Some(json!({ "module": "Shop", "extensions": ["Other"] }))),
        scope,
    );
    out_of_scope(world.call("PUT", "/modules/Audit/dependencies", &token, Some(declared)), scope);
    let other = json!({ "dependencies": [{ "extension": "Other", "version": 1 }] });
    out_of_scope(world.call("PUT", "/modules/Shop/dependencies", &token, Some(other)), scope);
    out_of_scope(world.call("GET", "/extensions", &token, None), scope);
    out_of_scope(world.call("GET", "/extensions/Echo/versions", &token, None), scope);
    out_of_scope(world.call("GET", "/extensions/Echo/logs", &token, None), scope);
    out_of_scope(world.call("GET", "/nodes", &token, None), scope);
    let (code, _, stderr) = world.xif(&token, &["invoke", "Other", "Say", "--input", r#"{"Text": "cli"}"#]);
    assert_eq!(code, Some(4), "refused: {stderr}");
    assert!(stderr.contains(scope), "{stderr}");
    let (code, _, stderr) = world.xif(&token, &["token", "create", "Shop", "--extension", "Other"]);
    assert_eq!(code, Some(4), "a module token cannot make tokens: {stderr}");

    // Who may make one: users with allow-extensions and administrators; a plain user may not.
    let (status, body) =
        world.call("POST", "/users", &world.admin, Some(json!({ "name": "reader", "password": "reader-password-1" })));
    assert_eq!(status, 201, "{body}");
    let reader = world.server.token("reader", "reader-password-1");
    let (status, body) =
        world.call("POST", "/tokens", &reader, Some(json!({ "module": "Shop", "extensions": ["Echo"] })));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("missing_permission")), "{body}");
    let (status, body) =
        world.call("POST", "/tokens", &world.admin, Some(json!({ "module": "Shop", "extensions": ["Nowhere"] })));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_extension")), "{body}");
    let (status, body) =
        world.call("POST", "/tokens", &world.admin, Some(json!({ "module": "Shop", "extensions": [] })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");

    // Listed with its scope, then revoked: refused from then on.
    let (code, stdout, stderr) = world.xif(&world.admin, &["token", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout.lines().find(|line| line.starts_with(&format!("{token_id} "))).unwrap_or_default();
    assert!(line.contains("active") && line.ends_with("module Shop: Echo"), "{stdout}");
    let (code, _, stderr) = world.xif(&world.admin, &["token", "revoke", &token_id.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    let (status, body) = world.call("POST", "/extensions/Echo/actions/Say", &token, Some(json!({ "Text": "hi" })));
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_token")), "{body}");
    let (_, stdout, _) = world.xif(&world.admin, &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_str(&stdout).expect("JSON");
    let listed = tokens.as_array().expect("tokens").iter().find(|token| token["id"] == token_id).cloned();
    let listed = listed.expect("the module token is listed");
    assert_eq!((listed["module"].as_str(), &listed["extensions"]), (Some("Shop"), &json!(["Echo"])));
    assert!(listed["revoked_at"].is_string(), "{listed}");
}

#[test]
fn consumers_show_each_modules_state_against_the_published_version() {
    let world = World::new(&[]);
    let optional = ECHO.replace(
        "inputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]",
        "inputs = [ { name = \"Text\", type = \"Text\", length = 10 }, { name = \"Loud\", type = \"Boolean\", mandatory = false } ]",
    );
    let renamed = ECHO.replace("name = \"Say\"", "name = \"Tell\"");
    let admin = world.admin.clone();
    assert_eq!(world.upload(&admin, "Echo", echo("Echo", "1.0.0", None)).0, 201);
    assert_eq!(world.upload(&admin, "Echo", echo("Echo", "1.1.0", Some(&optional))).0, 201);
    assert_eq!(world.upload(&admin, "Echo", echo("Echo", "2.0.0", Some(&renamed))).0, 201);
    let (code, _, stderr) = world.xif(&admin, &["consumers", "Echo"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no module declared that it uses `Echo`"), "{stderr}");

    world.publish("Echo", 1, None);
    // Each module declares with a module token of its own.
    for (module, actions) in [("Shop", json!(["Say"])), ("Audit", json!([]))] {
        let (token, _) = world.module_token(module, &["Echo"]);
        let body = json!({ "dependencies": [{ "extension": "Echo", "version": 1, "actions": actions }] });
        assert_eq!(world.call("PUT", &format!("/modules/{module}/dependencies"), &token, Some(body)).0, 200);
    }
    let consumers = |world: &World| {
        let (code, stdout, stderr) = world.xif(&world.admin, &["consumers", "Echo", "--json"]);
        assert_eq!(code, Some(0), "{stderr}");
        serde_json::from_str::<Value>(&stdout).expect("JSON")
    };
    assert_eq!(
        consumers(&world),
        json!([
            { "module": "Audit", "impact": "up to date", "built_against": 1, "changes": [] },
            { "module": "Shop", "impact": "up to date", "built_against": 1, "changes": [] },
        ])
    );
    world.publish("Echo", 2, Some(1));
    assert_eq!(
        consumers(&world),
        json!([
            { "module": "Audit", "impact": "outdated", "built_against": 1, "changes": [] },
            { "module": "Shop", "impact": "possibly incompatible", "built_against": 1, "changes": ["action `Say` has a new optional input `Loud`"] },
        ])
    );
    world.publish("Echo", 3, Some(2));
    assert_eq!(
        consumers(&world)[1],
        json!({ "module": "Shop", "impact": "incompatible", "built_against": 1, "changes": ["action `Say` was removed"] })
    );
    let (code, stdout, stderr) = world.xif(&admin, &["consumers", "Echo"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("MODULE") && lines[0].contains("STATE"), "{stdout}");
    assert!(
        lines[2].starts_with("Shop")
            && lines[2].contains("incompatible")
            && lines[2].ends_with("action `Say` was removed"),
        "{stdout}"
    );
    let (code, _, stderr) = world.xif(&admin, &["consumers", "Nowhere"]);
    assert_eq!(code, Some(4), "{stderr}");
}

#[test]
fn declaring_elements_the_version_does_not_define_is_refused() {
    let world = World::new(&[]);
    world.published("Echo");
    let (token, _) = world.module_token("Shop", &["Echo"]);
    let declared = json!({ "dependencies": [{
        "extension": "Echo", "version": 1, "actions": ["Say", "Nope"], "structures": ["Card"], "entities": ["Say"]
    }] });
    let (status, body) = world.call("PUT", "/modules/Shop/dependencies", &token, Some(declared));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "version 1 (1.0.0) of extension `Echo` has no action `Nope`, no structure `Card`, no entity `Say`;"
        ),
        "{message}"
    );
    let (code, stdout, stderr) = world.xif(&world.admin, &["consumers", "Echo", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!([]), "nothing was declared");

    let declared = json!({ "dependencies": [{ "extension": "Echo", "version": 1, "actions": ["say"] }] });
    let (status, body) = world.call("PUT", "/modules/Shop/dependencies", &token, Some(declared));
    assert_eq!(status, 200, "names match as elsewhere, whatever their case: {body}");
}

#[test]
fn server_options_follow_any_subcommand_and_messages_show_what_was_given() {
    let world = World::new(&[]);
    world.published("Echo");
    let url = world.server.url.clone();
    let admin = world.admin.clone();
    // `xif ARGUMENTS` with neither XIF_SERVER nor XIF_TOKEN nor a login: only the options tell.
    let bare = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(arguments)
            .current_dir(world.directory.path())
            .env("XIF_CONFIG_DIR", world.directory.path().join("config"))
            .env_remove("XIF_SERVER")
            .env_remove("XIF_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("xif runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for arguments in [
        vec!["admin", "connection", "mappings", "Echo", "--server", &url, "--token", &admin],
        vec!["admin", "--server", &url, "connection", "--token", &admin, "list"],
        vec!["admin", "user", "list", "--token", &admin, "--server", &url],
        vec!["token", "list", "--server", &url, "--token", &admin],
        vec!["token", "--server", &url, "--token", &admin, "list"],
    ] {
        let (code, _, stderr) = bare(&arguments);
        assert_eq!(code, Some(0), "{arguments:?}: {stderr}");
    }
    let (code, _, stderr) = bare(&["admin", "lock", "list"]);
    assert_eq!(code, Some(2), "without a server: {stderr}");
    for arguments in [&["admin", "connection", "mappings", "--help"][..], &["token", "create", "--help"]] {
        let (code, stdout, _) = bare(arguments);
        assert_eq!(code, Some(0));
        assert!(stdout.contains("--server <URL>") && stdout.contains("--token <TOKEN>"), "{arguments:?}: {stdout}");
    }

    // A refused module name is named as given.
    let (code, _, stderr) = world.xif(&admin, &["token", "create", "bad name!", "--extension", "Echo"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("`bad name!` is not a valid module name"), "{stderr}");

    // `--quiet` silences what follows an added connection, as it does other commands' hints.
    let secret = "postgres://shop:hunter2@127.0.0.1:1/shop";
    let (code, stdout, stderr) = world.xif(&admin, &["-q", "admin", "connection", "add", "quiet", "--url", secret]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "", "quiet");
    assert!(stdout.starts_with("quiet (") && !stdout.contains("hunter2"), "{stdout}");
    let (code, _, stderr) = world.xif(&admin, &["admin", "connection", "add", "loud", "--url", secret]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("check it with `xif admin connection test loud`"), "{stderr}");
    let (code, _, stderr) = world.xif(&admin, &["admin", "connection", "add", "path", "--url", "/tmp/x.db"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("`/tmp/x.db` is not a database URL xif can use (for that SQLite file: `sqlite:///tmp/x.db`)"),
        "{stderr}"
    );
    let (code, _, stderr) =
        world.xif(&admin, &["admin", "connection", "add", "path", "--url", "shop:hunter2@db.example/shop"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("is not a database URL xif can use") && !stderr.contains("hunter2"), "{stderr}");
}

/// Polls `GET /extensions/{extension}/calls` until it holds `count` entries (the log is
/// written behind the calls, in batches), for at most 10 seconds; answers them.
fn logged(world: &World, extension: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = world.call("GET", &format!("/extensions/{extension}/calls"), &world.admin, None);
        assert_eq!(status, 200, "{body}");
        let entries = body.as_array().cloned().unwrap_or_default();
        if entries.len() >= count || Instant::now() > deadline {
            assert_eq!(entries.len(), count, "{body}");
            return entries;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_integration_log_records_a_mix_of_successful_and_failed_calls() {
    let world = World::new(&[]);
    world.published("Echo");
    world.published("Other");
    let (token, token_id) = world.module_token("Shop", &["Echo"]);
    let admin = world.admin.clone();
    let say = |token: &str, extension: &str, action: &str, inputs: Value| {
        world.call("POST", &format!("/extensions/{extension}/actions/{action}"), token, Some(inputs)).0
    };
    for _ in 0..3 {
        assert_eq!(say(&admin, "Echo", "Say", json!({ "Text": "hi" })), 200);
    }
    assert_eq!(say(&admin, "Echo", "Say", json!({ "Text": "far too long text" })), 400);
    assert_eq!(say(&admin, "Echo", "Say", json!({})), 400);
    assert_eq!(say(&admin, "Echo", "Shout", json!({})), 404);
    assert_eq!(say(&token, "Echo", "Say", json!({ "Text": "shop" })), 200);
    // Refused by its scope: in the log of the extension it asked for.
    assert_eq!(say(&token, "Other", "Say", json!({ "Text": "hi" })), 403);

    let entries = logged(&world, "Echo", 7);
    assert_eq!(entries[0]["module"], "Shop", "newest first: {entries:?}");
    assert_eq!(entries[0]["token_id"], token_id);
    assert_eq!((entries[0]["kind"].as_str(), entries[0]["operation"].as_str()), (Some("action"), Some("Say")));
    assert_eq!(entries[0]["outcome"], "ok");
    assert!(entries.iter().all(|entry| entry["duration_us"].as_i64().is_some_and(|us| us > 0)), "{entries:?}");
    let other = logged(&world, "Other", 1);
    assert_eq!((other[0]["error"].as_str(), other[0]["module"].as_str()), (Some("out_of_scope"), Some("Shop")));

    // The CLI: failed ones, since an hour, since a time to come.
    let (code, stdout, stderr) = world.xif(&admin, &["calls", "Echo", "--failed", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let failed: Vec<Value> = serde_json::from_str(&stdout).expect("JSON");
    let mut codes: Vec<&str> = failed.iter().filter_map(|entry| entry["error"].as_str()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["invalid_input", "invalid_input", "unknown_action"]);
    let (_, stdout, _) = world.xif(&admin, &["calls", "Echo", "--since", "1h", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&stdout).expect("JSON").len(), 7);
    let (_, stdout, _) = world.xif(&admin, &["calls", "Echo", "--since", "2099-01-01T00:00:00Z", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&stdout).expect("JSON").len(), 0);
    let (code, _, stderr) = world.xif(&admin, &["calls", "Echo", "--since", "yesterday"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("`since` is an RFC 3339 time"), "{stderr}");
    let (code, stdout, stderr) = world.xif(&admin, &["calls", "Echo"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 8, "a header and 7 entries: {stdout}");
    assert!(stdout.lines().nth(1).is_some_and(|line| line.contains("module Shop") && line.ends_with("ok")), "{stdout}");
    assert!(stdout.contains("unknown_action"), "{stdout}");

    // A module token sees its own module's entries only.
    let (status, body) = world.call("GET", "/extensions/Echo/calls", &token, None);
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(1)), "{body}");
    out_of_scope(world.call("GET", "/extensions/Other/calls", &token, None), "module `Shop`'s");
    // Pages of 2 follow the Link header and keep the filter.
    let (status, body) = world.call("GET", "/extensions/Echo/calls?limit=2&failed=true", &admin, None);
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)), "{body}");
    let last = body[1]["id"].as_i64().expect("an id");
    let (_, rest) =
        world.call("GET", &format!("/extensions/Echo/calls?limit=2&failed=true&after={last}"), &admin, None);
    assert_eq!(rest.as_array().map(Vec::len), Some(1), "{rest}");
}

/// `xif calls` reads as many pages as `--limit` asks for, past the server's 1,000 a page, and
/// says on standard error when older entries were left out; an empty log and a misspelt name are
/// told apart.
#[test]
fn xif_calls_follows_the_pages_and_says_when_older_entries_are_left_out() {
    let world = World::new(&[]);
    world.published("Echo");
    let admin = world.admin.clone();
    let (code, stdout, stderr) = world.xif(&admin, &["calls", "Echo"]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    assert!(stderr.contains("no calls of `Echo` recorded"), "{stderr}");
    let (code, _, stderr) = world.xif(&admin, &["calls", "Ecoh"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("no version of extension `Ecoh` was uploaded"), "{stderr}");
    let (code, _, stderr) = world.xif(&admin, &["calls", "Echo", "--limit", "0"]);
    assert_eq!(code, Some(2), "{stderr}");

    for _ in 0..1_005 {
        let (status, body) = world.call("POST", "/extensions/Echo/actions/Say", &admin, Some(json!({ "Text": "hi" })));
        assert_eq!(status, 200, "{body}");
    }
    let every = |limit: &str| {
        let (code, stdout, stderr) = world.xif(&admin, &["calls", "Echo", "--limit", limit, "--json"]);
        assert_eq!(code, Some(0), "{stderr}");
        (serde_json::from_str::<Vec<Value>>(&stdout).expect("JSON"), stderr)
    };
    // The log is written within its gathering time (200 ms): wait for the last entry.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (entries, stderr) = loop {
        let (entries, stderr) = every("2000");
        if entries.len() >= 1_005 || Instant::now() > deadline {
            break (entries, stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(entries.len(), 1_005, "every entry, over two pages");
    assert!(entries.windows(2).all(|pair| pair[0]["id"].as_i64() > pair[1]["id"].as_i64()), "newest first, once each");
    assert!(!stderr.contains("newest"), "nothing left out: {stderr}");
    let (code, stdout, stderr) = world.xif(&admin, &["calls", "Echo", "--limit", "1001"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1 + 1_001, "a header and 1,001 entries");
    assert!(stderr.contains("the newest 1001 entries"), "{stderr}");
    let shown = stdout.lines().nth(1).expect("an entry");
    assert!(shown.contains(" µs ") || shown.contains(" ms "), "{shown}");
}

/// Module names are free text: two users may each have a module `Shop`. A module token sees the
/// entries of its own owner's module (and its own), never the other user's.
#[test]
fn a_module_token_sees_only_its_owners_entries_when_module_names_collide() {
    let world = World::new(&[]);
    world.published("Echo");
    let (ours, _) = world.module_token("Shop", &["Echo"]);
    let (status, body) = world.call(
        "POST",
        "/users",
        &world.admin,
        Some(json!({ "name": "rival", "password": "rival-password-1", "grant": ["allow-extensions"] })),
    );
    assert_eq!(status, 201, "{body}");
    let rival = world.server.token("rival", "rival-password-1");
    let (status, body) =
        world.call("POST", "/tokens", &rival, Some(json!({ "module": "shop", "extensions": ["Echo"] })));
    assert_eq!(status, 201, "{body}");
    let theirs = body["token"].as_str().expect("a token").to_owned();
    let say = |token: &str, text: &str| {
        world.call("POST", "/extensions/Echo/actions/Say", token, Some(json!({ "Text": text }))).0
    };
    assert_eq!(say(&ours, "ours"), 200);
    assert_eq!(say(&theirs, "theirs"), 200);
    assert_eq!(say(&theirs, "theirs"), 200);
    let all = logged(&world, "Echo", 3);
    assert_eq!(all.iter().filter(|entry| entry["user"] == "rival").count(), 2, "{all:?}");

    let (status, body) = world.call("GET", "/extensions/Echo/calls", &ours, None);
    let seen = body.as_array().cloned().unwrap_or_default();
    assert_eq!((status, seen.len()), (200, 1), "ours sees its one entry only: {body}");
    assert_eq!(seen[0]["user"], "admin", "{body}");
    let (status, body) = world.call("GET", "/extensions/Echo/calls", &theirs, None);
    let seen = body.as_array().cloned().unwrap_or_default();
    assert_eq!((status, seen.len()), (200, 2), "theirs sees its two entries only: {body}");
    assert!(seen.iter().all(|entry| entry["user"] == "rival"), "{body}");
}

/// Calls to extensions that do not exist are answered but not recorded, whoever makes them, so
/// made-up names cannot fill the log; calls to real ones, failed or not, still are.
#[test]
fn calls_to_extensions_that_do_not_exist_are_not_logged() {
    let world = World::new(&[]);
    world.published("Echo");
    let (token, _) = world.module_token("Shop", &["Echo"]);
    let admin = world.admin.clone();
    for index in 0..20 {
        let name = format!("Made{index}");
        let (status, _) =
            world.call("POST", &format!("/extensions/{name}/actions/Say"), &admin, Some(json!({ "Text": "hi" })));
        assert!((400..500).contains(&status), "{name}: {status}");
        let (status, _) = world.call("GET", &format!("/extensions/{name}/entities/Customer/records"), &admin, None);
        assert!((400..500).contains(&status), "{name}: {status}");
        let (status, _) =
            world.call("POST", &format!("/extensions/{name}/actions/Say"), &token, Some(json!({ "Text": "hi" })));
        assert_eq!(status, 403, "{name}: out of scope");
    }
    // A real extension's failed call is still recorded; the log is written in order, so once it
    // is there, the calls before it would be too.
    let (status, _) = world.call("POST", "/extensions/Echo/actions/Shout", &admin, Some(json!({})));
    assert_eq!(status, 404);
    let entries = logged(&world, "Echo", 1);
    assert_eq!(entries[0]["error"], "unknown_action", "{entries:?}");
    for index in 0..20 {
        // Nothing logged: the log of a name no extension has is not an empty page but a 404.
        let (status, body) = world.call("GET", &format!("/extensions/Made{index}/calls"), &admin, None);
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_extension")), "Made{index}: {body}");
    }
}

#[test]
fn the_integration_log_keeps_a_failed_actions_own_code() {
    let world = World::new(&[]);
    let definition = std::fs::read_to_string(fixtures::workspace().join("fixtures/behaviours/extension.toml"))
        .expect("the behaviours fixture's definition");
    let archive = xif_testkit::pack("Behaviours", "1.0.0", &definition, &fixtures::binary("behaviours"));
    let admin = world.admin.clone();
    let (status, body) = world.upload(&admin, "Behaviours", archive);
    assert_eq!(status, 201, "{body}");
    world.publish("Behaviours", 1, None);
    let (status, body) = world.call("POST", "/extensions/Behaviours/actions/Fail", &admin, Some(json!({})));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("action_failed")), "{body}");

    let entries = logged(&world, "Behaviours", 1);
    assert_eq!(entries[0]["error"], "action_failed:card_declined", "{entries:?}");
    let (code, stdout, stderr) = world.xif(&admin, &["calls", "Behaviours", "--failed"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.lines().nth(1).is_some_and(|line| line.ends_with("action_failed:card_declined")), "{stdout}");
}

#[test]
fn with_the_log_off_nothing_is_recorded_and_old_entries_are_swept_at_start() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let data = directory.path().join("data");
    // Off: calls succeed and leave no entry (nothing is queued: no writer runs).
    let world = World::new(&["--call-log-days", "0"]);
    world.published("Echo");
    let admin = world.admin.clone();
    let (status, _) = world.call("POST", "/extensions/Echo/actions/Say", &admin, Some(json!({ "Text": "hi" })));
    assert_eq!(status, 200);
    let (status, body) = world.call("GET", "/extensions/Echo/calls", &admin, None);
    assert_eq!((status, body), (200, json!([])));
    drop(world);

    // On, with a week's retention: an entry of 8 days ago, written through the store while the
    // server is stopped, is gone once the server has started; one of a day ago is kept.
    let start = || {
        xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &data, PASSWORD, "warn", &["--call-log-days", "7"], drop)
    };
    // Off, the server says so when it starts (and that what was recorded is kept).
    let (said, lines) = std::sync::mpsc::channel();
    let off = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &data,
        PASSWORD,
        "warn",
        &["--call-log-days", "0"],
        move |line: String| drop(said.send(line)),
    );
    loop {
        let line = lines.recv_timeout(Duration::from_secs(10)).expect("the server says the log is off");
        if line.contains("the integration log is off (--call-log-days 0): calls are not recorded") {
            break;
        }
    }
    off.stop();
    write_old_entries(&data);
    let server = start();
    let token = server.token("admin", PASSWORD);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = runtime.block_on(async {
            reqwest::Client::new()
                .get(format!("{}/api/v1/extensions/Echo/calls", server.url))
                .bearer_auth(&token)
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("JSON")
        });
        let operations: Vec<&str> =
            body.as_array().expect("entries").iter().filter_map(|entry| entry["operation"].as_str()).collect();
        if operations == ["Recent"] {
            break;
        }
        assert!(Instant::now() < deadline, "the old entry is still there: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes two entries of Echo's log through the server's own store on `data` (SQLite, or the
/// test's PostgreSQL database): `Old`, 8 days ago, and `Recent`, a day ago.
fn write_old_entries(data: &Path) {
    use xif_server::calllog::{CallEntry, CallKind};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store: Box<dyn xif_server::MetadataStore> = match xif_testkit::postgres::test_database(data) {
            Some(url) => Box::new(xif_server::PgStore::open(&url).await.expect("PostgreSQL opens")),
            None => Box::new(xif_server::SqliteStore::open(&data.join("metadata.sqlite")).await.expect("SQLite opens")),
        };
        let entry = |operation: &str, days: u64| CallEntry {
            at: std::time::SystemTime::now() - Duration::from_secs(days * 86_400),
            extension: "Echo".into(),
            module: None,
            user: "admin".into(),
            token_id: None,
            kind: CallKind::Action,
            operation: operation.into(),
            duration: Duration::from_millis(1),
            error: None,
        };
        store.insert_calls(&[entry("Old", 8), entry("Recent", 1)], "elsewhere").await.expect("written");
        store.close().await;
    });
}

/// An extension with an entity on a table of an SQLite file.
const SHOP: &str = r#"[extension]
name = "Shop"
version = "1.0.0"
description = "Items."

[[actions]]
name = "Echo"
description = "Returns its input."
inputs = [ { name = "Text", type = "Text" } ]
outputs = [ { name = "Same", type = "Text" } ]

[[entities]]
name = "Item"
description = "An item."
table = "item"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true, auto_number = true, column = "id" },
  { name = "Name", type = "Text", length = 50, mandatory = true, column = "name" },
]
"#;

#[test]
fn a_module_token_uses_the_records_of_its_extensions_only_and_each_operation_is_logged() {
    let world = World::new(&[]);
    let file = world.directory.path().join("shop.sqlite");
    let output = Command::new("sqlite3")
        .arg(&file)
        .arg("CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE)")
        .output()
        .expect("sqlite3 runs (scripts/install-test-tools installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let admin = world.admin.clone();
    let shop = xif_testkit::pack("Shop", "1.0.0", SHOP, &fixtures::binary("generic"));
    assert_eq!(world.upload(&admin, "Shop", shop).0, 201);
    world.publish("Shop", 1, None);
    world.published("Echo");
    let mut add = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["admin", "--server", &world.server.url, "connection", "add", "shopdb", "--url-stdin"])
        .env("XIF_TOKEN", &admin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif admin runs");
    std::io::Write::write_all(
        &mut add.stdin.take().expect("stdin"),
        format!("sqlite://{}\n", file.display()).as_bytes(),
    )
    .expect("written");
    let added = add.wait_with_output().expect("finished");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let (code, _, stderr) = world.xif(&admin, &["admin", "connection", "map", "Shop", "main", "shopdb"]);
    assert_eq!(code, Some(0), "{stderr}");

    let (token, _) = world.module_token("Store", &["Shop"]);
    let records = "/extensions/Shop/entities/Item/records";
    let (status, created) = world.call("POST", records, &token, Some(json!({ "Name": "Ann" })));
    assert_eq!(status, 201, "{created}");
    let id = created["Id"].as_i64().expect("an identifier");
    let (status, read) = world.call("GET", &format!("{records}/{id}"), &token, None);
    assert_eq!((status, read["Name"].as_str()), (200, Some("Ann")), "{read}");
    let (status, listed) = world.call("GET", &format!("{records}?Name=Ann"), &token, None);
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)), "{listed}");
    let (status, body) = world.call("GET", &format!("{records}/{}", id + 100), &token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("record_not_found")), "{body}");
    let (status, document) = world.call("GET", "/extensions/Shop/openapi.json", &token, None);
    assert_eq!((status, document["openapi"].is_string()), (200, true), "its extension's typed API: {document}");

    // Another extension's records, and its typed API: out of scope.
    let scope = "this token is module `Store`'s, scoped to extensions Shop";
    out_of_scope(world.call("GET", "/extensions/Echo/entities/Item/records", &token, None), scope);
    out_of_scope(world.call("GET", "/extensions/Echo/openapi.json", &token, None), scope);
    out_of_scope(world.call("GET", "/connections", &token, None), scope);
    out_of_scope(world.call("GET", "/extensions/Shop/databases", &token, None), scope);
    let (status, _) = world.call("DELETE", &format!("{records}/{id}"), &token, None);
    assert_eq!(status, 204);

    // Each record operation is in the log, with the module and the entity's operation.
    let entries = logged(&world, "Shop", 5);
    let operations: Vec<(&str, &str, Option<&str>)> = entries
        .iter()
        .map(|entry| {
            assert_eq!((entry["kind"].as_str(), entry["module"].as_str()), (Some("record"), Some("Store")), "{entry}");
            (
                entry["operation"].as_str().unwrap_or_default(),
                entry["outcome"].as_str().unwrap_or_default(),
                entry["error"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        operations,
        [
            ("Item.delete", "ok", None),
            ("Item.read", "failed", Some("record_not_found")),
            ("Item.list", "ok", None),
            ("Item.read", "ok", None),
            ("Item.create", "ok", None),
        ]
    );
    let echo = logged(&world, "Echo", 1);
    assert_eq!((echo[0]["operation"].as_str(), echo[0]["error"].as_str()), (Some("Item.list"), Some("out_of_scope")));
}

/// Calls answered just before a stop are in the log after it: the server writes what waits for
/// the writer (which gathers entries for up to 200 ms) before it closes its database.
#[test]
fn calls_answered_just_before_a_stop_are_in_the_log() {
    let world = World::new(&[]);
    world.published("Echo");
    let admin = world.admin.clone();
    for text in ["one", "two", "three"] {
        let (status, _) = world.call("POST", "/extensions/Echo/actions/Say", &admin, Some(json!({ "Text": text })));
        assert_eq!(status, 200);
    }
    let World { server, directory, .. } = world;
    server.stop();
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &directory.path().join("data"),
        PASSWORD,
        "warn",
        &[],
        drop,
    );
    let token = server.token("admin", PASSWORD);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let body: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/v1/extensions/Echo/calls", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON")
    });
    let says = body.as_array().expect("entries").iter().filter(|entry| entry["operation"] == "Say").count();
    assert_eq!(says, 3, "the three calls made before the stop: {body}");
}
