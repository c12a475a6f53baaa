//! The typed API of an extension: a real `xif server` serves, for the published version of an
//! extension with an action and an entity, an OpenAPI document that `openapi-spec-validator`
//! finds valid, from which `openapi-python-client` generates a client (warnings failing it),
//! and that client, run by Python, calls the action and uses the entity's records (on a SQLite
//! file mapped as its logical database) for real.
//! The document of the fixture with every data type passes both tools too. Both tools come
//! from PyPI, at the versions `scripts/install-test-tools` pins.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "administrator-password";

/// The entity added to the project of `xif new Shop`: an auto-numbered identifier and an
/// attribute of each kind a filter treats apart.
const ENTITY: &str = r#"
[[entities]]
name = "Customer"
description = "Someone who buys."
table = "CUSTOMER"

[[entities.attributes]]
name = "Id"
type = "Long Integer"
identifier = true
auto_number = true

[[entities.attributes]]
name = "Name"
type = "Text"
length = 200
mandatory = true

[[entities.attributes]]
name = "Since"
type = "Date Time"

[[entities.attributes]]
name = "Balance"
type = "Currency"
length = 18
decimals = 2

[[entities.attributes]]
name = "Active"
type = "Boolean"
"#;

/// Sends `request` and answers its status and JSON body (`null` when there is none).
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Runs `command`; panics with what it wrote when it fails. Answers its stdout.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?} does not run: {error}"));
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed:\n{said}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The project of `xif new Shop` with [`ENTITY`] added, saved by `xif save`.
fn shop_archive(directory: &Path) -> Vec<u8> {
    let binary = env!("CARGO_BIN_EXE_xif");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    xif_testkit::xif(binary, &["new", "Shop"], directory, &target);
    let project = directory.join("Shop");
    let definition = std::fs::read_to_string(project.join("extension.toml")).expect("the definition");
    std::fs::write(project.join("extension.toml"), format!("{definition}{ENTITY}")).expect("written");
    let archive = directory.join("Shop.xif");
    xif_testkit::xif(binary, &["save", "-o", archive.to_str().expect("a UTF-8 path")], &project, &target);
    std::fs::read(archive).expect("the archive")
}

/// Checks `document` with `openapi-spec-validator`, and generates a Python client from it with
/// `openapi-python-client` into `directory/PACKAGE`, any warning failing the generation.
fn validate_and_generate(document: &Value, directory: &Path, package: &str) {
    let saved = directory.join(format!("{package}.json"));
    std::fs::write(&saved, serde_json::to_vec_pretty(document).expect("JSON")).expect("written");
    run(Command::new(xif_testkit::python_tool("openapi-spec-validator")).args(["--schema", "3.0"]).arg(&saved));
    let generator = xif_testkit::python_tool("openapi-python-client");
    // It formats what it writes with `ruff`, from the same environment.
    let tools = generator.parent().expect("the environment's bin").to_owned();
    let path = std::env::join_paths(
        std::iter::once(tools).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");
    run(Command::new(&generator)
        .env("PATH", path)
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(&saved)
        .arg("--output-path")
        .arg(directory.join(package))
        .current_dir(directory));
}

/// Runs `script` with the environment's Python, the generated packages of `directory`
/// importable, and `arguments`; answers the JSON it printed.
fn python(script: &str, directory: &Path, arguments: &[&str]) -> Value {
    let said = run(Command::new(xif_testkit::python_tool("python"))
        .arg("-c")
        .arg(script)
        .args(arguments)
        .env("PYTHONPATH", directory));
    serde_json::from_str(said.trim()).unwrap_or_else(|_| panic!("the client printed: {said}"))
}

/// A server with `Shop` ([`shop_archive`]) published, and an administrator's token; checks on
/// the way that the document is refused before the extension is uploaded and before it is
/// published, and without a token. Answers the served document.
struct Published {
    server: xif_testkit::Server,
    token: String,
    work: tempfile::TempDir,
    _data: tempfile::TempDir,
    document: Value,
}

fn published_shop() -> Published {
    let data = tempfile::tempdir().expect("data directory");
    let work = tempfile::tempdir().expect("work directory");
    let server = xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), data.path(), PASSWORD, "warn", &[], drop);
    let url = server.url.clone();
    let token = server.token("admin", PASSWORD);
    let archive = shop_archive(work.path());
    let document_url = format!("{url}/api/v1/extensions/Shop/openapi.json");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let document = runtime.block_on(async {
        let client = reqwest::Client::new();
        // Nothing uploaded: no such extension.
        let (status, body) = send(client.get(&document_url).bearer_auth(&token)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_extension")), "{body}");
        let digest = hex::encode(Sha256::digest(&archive));
        let (status, body) = send(
            client
                .post(format!("{url}/api/v1/extensions/Shop/versions"))
                .bearer_auth(&token)
                .header("x-xif-sha256", digest)
                .body(archive.clone()),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        // Uploaded, not published: no API yet.
        let (status, body) = send(client.get(&document_url).bearer_auth(&token)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_extension")), "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("no published version")));
        let (status, body) = send(
            client
                .post(format!("{url}/api/v1/extensions/Shop/publications"))
                .bearer_auth(&token)
                .json(&json!({ "version": 1, "expected": null })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // A token is needed, as everywhere.
        let (status, body) = send(client.get(&document_url)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
        let (status, document) = send(client.get(&document_url).bearer_auth(&token)).await;
        assert_eq!(status, 200, "{document}");
        document
    });
    Published { server, token, work, _data: data, document }
}

/// The generated client calls `Greet` with its typed models and prints the greeting.
const CALL_SCRIPT: &str = r#"
import json, sys
from shop_client import AuthenticatedClient
from shop_client.api.actions import call_greet
from shop_client.models import GreetInputs, Person

client = AuthenticatedClient(base_url=sys.argv[1] + "/api/v1", token=sys.argv[2], raise_on_unexpected_status=True)
greeted = call_greet.sync(client=client, body=GreetInputs(person=Person(name="Ada Lovelace"), formal=True))
informal = call_greet.sync(client=client, body=GreetInputs(person=Person(name="Ada Lovelace")))
refused = call_greet.sync_detailed(client=client, body=GreetInputs(person=Person(name=" ")))
print(json.dumps({
    "formal": greeted.greeting,
    "informal": informal.greeting,
    "refused_status": int(refused.status_code),
    "refused": json.loads(refused.content),
}))
"#;

#[test]
fn a_published_extension_has_a_valid_typed_api_whose_generated_client_calls_its_actions() {
    let published = published_shop();
    let document = &published.document;
    // What a generator reads: the schemas and operations the definition says.
    assert_eq!(document["openapi"], "3.0.3");
    assert_eq!(document["servers"], json!([{ "url": "/api/v1" }]));
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["GreetInputs"]["required"], json!(["Person"]), "Formal has a default: not required");
    assert_eq!(schemas["GreetInputs"]["properties"]["Person"]["allOf"][0]["$ref"], "#/components/schemas/Person");
    assert_eq!(schemas["GreetOutputs"]["required"], json!(["Greeting"]));
    assert_eq!(schemas["Person"]["properties"]["Name"]["maxLength"], 100);
    assert_eq!(schemas["Customer"]["required"], json!(["Name"]), "the auto-number identifier may be left out");
    assert_eq!(schemas["Customer"]["properties"]["Id"]["format"], "int64");
    assert!(schemas["Customer"]["properties"]["Since"].get("format").is_none(), "no time zone, so no date-time");
    let list = &document["paths"]["/extensions/Shop/entities/Customer/records"]["get"];
    let parameters: Vec<&str> =
        list["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    for expected in ["Name", "Name.like", "Balance.ge", "Since.lt", "Active", "Active.ne", "sort", "limit", "offset"] {
        assert!(parameters.contains(&expected), "{expected} in {parameters:?}");
    }
    assert!(!parameters.contains(&"Active.gt"), "a Boolean has no order: {parameters:?}");
    assert!(!parameters.contains(&"Balance.like"), "only text is matched by LIKE: {parameters:?}");
    let record = &document["paths"]["/extensions/Shop/entities/Customer/records/{id}"];
    for (method, operation) in
        [("get", "getCustomerRecord"), ("put", "putCustomerRecord"), ("delete", "deleteCustomerRecord")]
    {
        assert_eq!(record[method]["operationId"], operation);
    }
    insta::assert_snapshot!("shop_openapi", serde_json::to_string_pretty(document).expect("JSON"));

    let work = published.work.path();
    validate_and_generate(document, work, "shop_client");
    let answered = python(CALL_SCRIPT, work, &[&published.server.url, &published.token]);
    assert_eq!(answered["formal"], "Hello, Ada Lovelace!", "{answered}");
    assert_eq!(answered["informal"], "Hello, Ada!", "{answered}");
    // The action's own error, in the envelope the document describes.
    assert_eq!(answered["refused_status"], 422, "{answered}");
    assert_eq!(answered["refused"]["error"]["code"], "action_failed", "{answered}");
}

/// The generated client uses the entity's records: refused while the logical database is
/// mapped to no connection (in the envelope the document describes), then, mapped to a SQLite
/// file, creates a record (its identifier numbered by the database), lists it with a filter,
/// reads it by its identifier, and deletes it.
const RECORDS_SCRIPT: &str = r#"
import json, sys
from shop_client import AuthenticatedClient
from shop_client.api.records import (
    create_customer_record, delete_customer_record, get_customer_record, list_customer_records,
)
from shop_client.models import Customer

client = AuthenticatedClient(base_url=sys.argv[1] + "/api/v1", token=sys.argv[2], raise_on_unexpected_status=True)
if sys.argv[3] == "unmapped":
    listed = list_customer_records.sync_detailed(client=client, name_like="A%")
    print(json.dumps({"status": int(listed.status_code), "body": json.loads(listed.content)}))
    sys.exit(0)
created = create_customer_record.sync_detailed(
    client=client,
    body=Customer(name="Ann", since="2024-01-31T09:30:00", balance="12.50", active=True),
)
customer = created.parsed
listed = list_customer_records.sync(client=client, name_like="A%", sort="-Id", limit=10)
missed = list_customer_records.sync(client=client, name="Bob")
read = get_customer_record.sync(client=client, id=customer.id)
deleted = delete_customer_record.sync_detailed(client=client, id=customer.id)
gone = get_customer_record.sync_detailed(client=client, id=customer.id)
print(json.dumps({
    "created_status": int(created.status_code),
    "location": created.headers.get("location"),
    "created": customer.to_dict(),
    "listed": [item.to_dict() for item in listed],
    "missed": len(missed),
    "read": read.to_dict(),
    "deleted_status": int(deleted.status_code),
    "gone_status": int(gone.status_code),
    "gone": json.loads(gone.content),
}))
"#;

#[test]
fn the_generated_client_uses_the_records_of_an_entity() {
    let published = published_shop();
    let work = published.work.path();
    validate_and_generate(&published.document, work, "shop_client");
    let (url, token) = (published.server.url.as_str(), published.token.as_str());
    let answered = python(RECORDS_SCRIPT, work, &[url, token, "unmapped"]);
    assert_eq!(answered["status"], 409, "{answered}");
    assert_eq!(answered["body"]["error"]["code"], "missing_configuration", "{answered}");

    let file = work.join("shop.sqlite");
    let sqlite3 = |statement: &str| run(Command::new("sqlite3").arg(&file).arg(statement)).trim().to_owned();
    sqlite3(
        r#"CREATE TABLE "CUSTOMER" ("Id" INTEGER PRIMARY KEY AUTOINCREMENT, "Name" TEXT NOT NULL, "Since" DATETIME, "Balance" TEXT, "Active" BOOLEAN)"#,
    );
    let admin = |arguments: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(["admin", "--server", url])
            .args(arguments)
            .env("XIF_TOKEN", token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("xif admin runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
        let output = child.wait_with_output().expect("finished");
        assert!(output.status.success(), "xif admin {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    admin(&["connection", "add", "shopdb", "--url-stdin"], &format!("sqlite://{}\n", file.display()));
    admin(&["connection", "map", "Shop", "main", "shopdb"], "");

    let answered = python(RECORDS_SCRIPT, work, &[url, token, "mapped"]);
    assert_eq!(answered["created_status"], 201, "{answered}");
    let id = answered["created"]["Id"].as_i64().unwrap_or_else(|| panic!("the database numbered it: {answered}"));
    assert!(
        answered["location"].as_str().is_some_and(|location| location.ends_with(&format!("/records/{id}"))),
        "{answered}"
    );
    assert_eq!(answered["created"]["Name"], "Ann", "{answered}");
    assert_eq!(answered["listed"], json!([answered["created"]]), "{answered}");
    assert_eq!(answered["missed"], 0, "{answered}");
    assert_eq!(answered["read"], answered["created"], "{answered}");
    assert_eq!(answered["read"]["Balance"], "12.50", "{answered}");
    assert_eq!(answered["read"]["Since"], "2024-01-31T09:30:00", "{answered}");
    assert_eq!(answered["deleted_status"], 204, "{answered}");
    assert_eq!(answered["gone_status"], 404, "{answered}");
    assert_eq!(answered["gone"]["error"]["code"], "record_not_found", "{answered}");
    assert_eq!(sqlite3(r#"SELECT count(*) FROM "CUSTOMER""#), "0", "the row was deleted in the database");
}

/// The document of the fixture that has every data type (Entity Identifier, Record List,
/// Decimal with digits, Binary Data, …), made by the server's generator from its definition:
/// valid, and a client is generated from it without a warning.
#[test]
fn every_data_type_makes_a_valid_document_a_generator_takes() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/every-type/extension.toml"))
            .expect("the fixture's definition");
    let definition = xif_definition::parse(&text).expect("the fixture parses");
    let document = xif_server::extension_openapi::document(&definition, 3);
    let schemas = &document["components"]["schemas"];
    let scalars = &schemas["Scalars"]["properties"];
    assert_eq!(scalars["Integer"]["format"], "int32");
    assert_eq!(scalars["LongInteger"]["format"], "int64");
    assert_eq!(scalars["Decimal"]["type"], "string");
    assert!(scalars["Decimal"]["pattern"].is_string());
    assert_eq!(scalars["Date"]["format"], "date");
    assert_eq!(scalars["BinaryData"]["format"], "byte");
    assert_eq!(scalars["Text"]["maxLength"], 100);
    let inputs = &schemas["EchoRecordsInputs"]["properties"];
    assert_eq!(inputs["Customer"]["format"], "int64", "an Entity Identifier is its identifier's type");
    assert_eq!(schemas["Order"]["properties"]["Lines"]["items"]["$ref"], "#/components/schemas/OrderLine");
    assert_eq!(schemas["PingInputs"]["properties"], json!({}));
    assert_eq!(document["info"]["version"], "1.0.0+3");
    let work = tempfile::tempdir().expect("work directory");
    validate_and_generate(&document, work.path(), "every_type_client");
}

/// Summaries say "an" before a vowel sound: "Creates an `Entry` record", "Reads a `User` record".
#[test]
fn record_summaries_take_the_article_of_the_entity_name() {
    let text = r#"[extension]
name = "Books"
version = "1.0.0"
description = "Entries and users."

[[entities]]
name = "Entry"
description = "An entry."
attributes = [ { name = "Id", type = "Long Integer", identifier = true, auto_number = true } ]

[[entities]]
name = "User"
description = "A user."
attributes = [
  { name = "Id", type = "Long Integer", identifier = true },
  { name = "Last", type = "Entity Identifier", record = "Entry" },
]
"#;
    let definition = xif_definition::parse(text).expect("the definition parses");
    let document = xif_server::extension_openapi::document(&definition, 1);
    let entry = &document["paths"]["/extensions/Books/entities/Entry/records"];
    let summary = entry["post"]["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("Creates an `Entry` record"), "{summary}");
    let entry = &document["paths"]["/extensions/Books/entities/Entry/records/{id}"];
    assert_eq!(entry["get"]["summary"], "Reads an `Entry` record");
    assert_eq!(entry["delete"]["summary"], "Deletes an `Entry` record");
    let user = &document["paths"]["/extensions/Books/entities/User/records/{id}"];
    assert_eq!(user["get"]["summary"], "Reads a `User` record");
    let last = &document["components"]["schemas"]["User"]["properties"]["Last"]["description"];
    assert_eq!(last, "the identifier of an `Entry` record");
}
