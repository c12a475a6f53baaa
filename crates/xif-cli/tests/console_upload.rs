//! Service Center in a real browser: Upload & Publish an Extension (the progress bar, the
//! publish page it goes on to, refusals next to the file input in the API's words, an archive
//! uploaded twice, the 403 of a user without allow-extensions) and the list of extensions with
//! its columns and search (`tests/console/upload.mjs`).

#[path = "support/browser.rs"]
mod browser;
#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

/// A definition whose action takes a type that does not exist: the verifier's problem.
const BROKEN: &str = "[extension]\nname = \"Broken\"\nversion = \"1.0.0\"\ndescription = \"Cannot be.\"\n\n[[actions]]\nname = \"Say\"\ndescription = \"Says.\"\ninputs = [ { name = \"Text\", type = \"Nonsense\" } ]\n";

/// The echo fixture's definition.
const ECHO: &str = "[extension]\nname = \"Parcels\"\nversion = \"1.0.0\"\ndescription = \"Echoes.\"\n\n[[actions]]\nname = \"Say\"\ndescription = \"Says it back.\"\ninputs = [ { name = \"Text\", type = \"Text\", length = 10 } ]\noutputs = [ { name = \"Said\", type = \"Text\" } ]\n";

#[test]
fn uploading_from_the_browser_with_progress_refusals_and_the_list() {
    let files = tempfile::tempdir().expect("temporary directory");
    let good = files.path().join("parcels.xif");
    std::fs::write(&good, xif_testkit::pack("Parcels", "1.0.0", ECHO, &fixtures::binary("generic"))).expect("written");
    let second = files.path().join("parcels-2.xif");
    let echo2 = ECHO.replace("1.0.0", "1.0.1");
    std::fs::write(&second, xif_testkit::pack("Parcels", "1.0.1", &echo2, &fixtures::binary("generic")))
        .expect("written");
    let broken = files.path().join("broken.xif");
    std::fs::write(&broken, xif_testkit::pack("Broken", "1.0.0", BROKEN, &fixtures::binary("generic")))
        .expect("written");
    let junk = files.path().join("junk.xif");
    std::fs::write(&junk, b"this is not a zip archive at all").expect("written");
    let console = browser::Console::start(&[]);
    console.run(
        "upload.mjs",
        &[
            ("XIF_GOOD_XIF", good.to_str().expect("UTF-8 path")),
            ("XIF_SECOND_XIF", second.to_str().expect("UTF-8 path")),
            ("XIF_BROKEN_XIF", broken.to_str().expect("UTF-8 path")),
            ("XIF_JUNK_XIF", junk.to_str().expect("UTF-8 path")),
        ],
    );
}

/// How large the large upload is: incompressible bytes in the archive's binary.
const LARGE_MIB: u64 = 48;

#[test]
fn a_large_upload_from_the_browser_is_streamed_not_held_in_memory() {
    use std::io::Read as _;
    let files = tempfile::tempdir().expect("temporary directory");
    // The fixture's binary with incompressible padding after it: still the same program.
    let binary = files.path().join("padded");
    let mut padded = std::fs::read(fixtures::binary("generic")).expect("the fixture's binary");
    std::fs::File::open("/dev/urandom")
        .expect("/dev/urandom")
        .take(LARGE_MIB * 1024 * 1024)
        .read_to_end(&mut padded)
        .expect("random bytes");
    std::fs::write(&binary, padded).expect("written");
    let large = files.path().join("large.xif");
    std::fs::write(&large, xif_testkit::pack("Parcels", "1.0.0", ECHO, &binary)).expect("written");
    let console = browser::Console::start(&[]);
    console.run(
        "upload-large.mjs",
        &[
            ("XIF_LARGE_XIF", large.to_str().expect("UTF-8 path")),
            ("XIF_LARGE_MIB", &LARGE_MIB.to_string()),
            ("XIF_SERVER_PID", &console.server.id().to_string()),
        ],
    );
}
