//! Service Center in a real browser: an extension's other tabs (consumers, entities and their
//! mapping, the log followed live, the integration log with its filters, the API description),
//! against a real `xif server` running the `behaviours` fixture, whose `Panic` action writes to
//! its log and whose `Fail` action fails (`tests/console/activity.mjs`).

#[path = "support/browser.rs"]
mod browser;
#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

/// The fixture's own definition, with an entity in a logical database no connection is mapped
/// to (so that its configuration is missing).
fn definition(description: &str) -> String {
    let fixture = include_str!("../../../fixtures/behaviours/extension.toml");
    let fixture = fixture.replace(
        "description = \"Actions that echo, fail, panic, crash, hang and flood their log.\"",
        &format!("description = \"{description}\""),
    );
    format!(
        "{fixture}\n[[entities]]\nname = \"Order\"\ndescription = \"An order of the shop.\"\ntable = \"orders\"\ndatabase = \"sales\"\nattributes = [\n  {{ name = \"Id\", type = \"Long Integer\", identifier = true, auto_number = true, column = \"id\" }},\n  {{ name = \"Customer\", type = \"Text\", length = 80, mandatory = true, column = \"customer\" }},\n  {{ name = \"Total\", type = \"Currency\", column = \"total\" }},\n]\n"
    )
}

#[test]
fn an_extensions_consumers_entities_log_calls_and_api() {
    let console = browser::Console::start(&[]);
    let archives = tempfile::tempdir().expect("temporary directory");
    let binary = fixtures::binary("behaviours");
    let mut paths = Vec::new();
    for (number, description) in [(1, "Actions that misbehave on purpose."), (2, "The same, uploaded again.")] {
        let bytes = xif_testkit::pack("Behaviours", "1.0.0", &definition(description), &binary);
        let path = archives.path().join(format!("behaviours-{number}.xif"));
        std::fs::write(&path, bytes).expect("archive written");
        paths.push(path.to_string_lossy().into_owned());
    }
    console.run("activity.mjs", &[("XIF_ARCHIVE_1", &paths[0]), ("XIF_ARCHIVE_2", &paths[1])]);
}
