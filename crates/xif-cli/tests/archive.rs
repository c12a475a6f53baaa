//! Save, inspect, unpack and keygen through the real `xif`, checked with the standard tools
//! `unzip` and `minisign` (installed by `scripts/install-test-tools`, which `.ci/run` runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn xif(arguments: &[&str], directory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xif"))
        .arg("--quiet")
        .args(arguments)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", workspace().join("target/extensions"))
        .output()
        .expect("xif runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a standard tool; a test never skips because it is missing.
fn tool(program: &str, arguments: &[&str], directory: &Path) -> Output {
    Command::new(program).args(arguments).current_dir(directory).output().unwrap_or_else(|error| {
        panic!("`{program}` cannot run ({error}); install the test tools with `scripts/install-test-tools`")
    })
}

fn new_project(directory: &Path, name: &str) -> PathBuf {
    let output = xif(&["new", name], directory);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    directory.join(name)
}

fn save(project: &Path, output_file: &Path, extra: &[&str]) -> Output {
    let mut arguments = vec!["save", "-o", output_file.to_str().expect("UTF-8 path")];
    arguments.extend_from_slice(extra);
    xif(&arguments, project)
}

#[test]
fn saving_is_deterministic_and_unzip_accepts_the_archive() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let first = new_project(temporary.path(), "SavedTwice");
    let first_xif = temporary.path().join("first.xif");
    let output = save(&first, &first_xif, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), first_xif.display().to_string());

    // The same project at another path, with other file times, saves to the same bytes.
    let elsewhere = temporary.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("created");
    let copy = tool("cp", &["-r", first.to_str().expect("path"), elsewhere.to_str().expect("path")], temporary.path());
    assert!(copy.status.success());
    let second = elsewhere.join("SavedTwice");
    for file in ["extension.toml", "src/main.rs", "resources/greetings.txt", "Cargo.toml"] {
        assert!(tool("touch", &["-d", "2001-02-03 04:05:06", file], &second).status.success());
    }
    let second_xif = temporary.path().join("second.xif");
    let output = save(&second, &second_xif, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        std::fs::read(&first_xif).expect("first") == std::fs::read(&second_xif).expect("second"),
        "two saves of one project give identical bytes"
    );

    let test = tool("unzip", &["-t", first_xif.to_str().expect("path")], temporary.path());
    assert!(test.status.success(), "{}", text(&test.stdout));
    assert!(text(&test.stdout).contains("No errors detected"), "{}", text(&test.stdout));
    let listing = text(&tool("unzip", &["-Z1", first_xif.to_str().expect("path")], temporary.path()).stdout);
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(
        entries,
        [
            "binary/saved_twice",
            "extension.toml",
            "resources/resources/greetings.txt",
            "source/Cargo.lock",
            "source/Cargo.toml",
            "source/src/bindings.rs",
            "source/src/main.rs",
            "manifest.json"
        ],
        "no build output, no hidden or ignored files"
    );
}

#[test]
fn a_signed_archive_is_verified_by_minisign_and_by_inspect() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = new_project(temporary.path(), "Signed");
    let output = xif(&["keygen"], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(project.join("xif.key")).expect("secret key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the secret key is readable by its owner only");
    // A secret key under any name stays out of the archive.
    std::fs::rename(project.join("xif.key"), project.join("signing-material")).expect("renamed");

    let archive = project.join("Signed.xif");
    let output = save(&project, &archive, &["--sign", "signing-material"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("signed: `"), "{}", text(&output.stderr));
    let listing = text(&tool("unzip", &["-Z1", "Signed.xif"], &project).stdout);
    assert!(!listing.contains("signing-material"), "{listing}");

    // The signature covers the file as it is downloaded: the standard tool checks it as is.
    let verified = tool("minisign", &["-Vm", "Signed.xif", "-p", "xif.pub"], &project);
    assert!(verified.status.success(), "minisign: {}{}", text(&verified.stdout), text(&verified.stderr));
    assert!(text(&verified.stdout).contains("Signature and comment signature verified"), "{}", text(&verified.stdout));
    assert!(text(&verified.stdout).contains("Trusted comment: Signed 0.1.0 Signed.xif"), "{}", text(&verified.stdout));

    let output = xif(&["inspect", "Signed.xif", "--public-key", "xif.pub"], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with("Signed 0.1.0\nformat 1, protocol 1, built for "),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        text(&output.stderr),
        "checked: 8 entries match their digests\nsignature `Signed.xif.minisig` is valid for this public key\n"
    );

    // Another key does not vouch for it, for inspect as for unpack.
    xif(&["keygen", "--secret", "other.key", "--public", "other.pub"], &project);
    let output = xif(&["inspect", "Signed.xif", "--public-key", "other.pub"], &project);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: the signature was made with the key `")
            && stderr.contains("not with this public key"),
        "{stderr}"
    );
    let output = xif(&["unpack", "Signed.xif", "unpacked", "--public-key", "other.pub"], &project);
    assert_eq!((output.status.code(), text(&output.stderr)), (Some(1), stderr));
    assert!(!project.join("unpacked").exists());

    // Bytes added after signing (the archive still reads as a zip): the signature no longer
    // matches, and minisign agrees.
    let mut bytes = std::fs::read(&archive).expect("read");
    let end = bytes.len();
    bytes.truncate(end - 2);
    bytes.extend_from_slice(&[1, 0]);
    bytes.push(b'!');
    std::fs::write(&archive, &bytes).expect("written");
    let output = xif(&["inspect", "Signed.xif", "--public-key", "xif.pub"], &project);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("the signature does not match the archive"), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("hint: "), "{}", text(&output.stderr));
    let verified = tool("minisign", &["-Vm", "Signed.xif", "-p", "xif.pub"], &project);
    assert!(!verified.status.success());
}

#[test]
fn an_unpacked_archive_verifies_and_compiles() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = new_project(temporary.path(), "RoundTrip");
    // With an icon, which travels like a resource.
    std::fs::write(project.join("icon.png"), b"\x89PNG\r\n\x1a\n an icon").expect("written");
    let definition = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    std::fs::write(
        project.join("extension.toml"),
        definition.replacen("version = \"0.1.0\"\n", "version = \"0.1.0\"\nicon = \"icon.png\"\n", 1),
    )
    .expect("written");
    let archive = temporary.path().join("RoundTrip.xif");
    let output = save(&project, &archive, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let listing = text(&tool("unzip", &["-Z1", "RoundTrip.xif"], temporary.path()).stdout);
    assert!(listing.lines().any(|line| line == "resources/icon.png"), "{listing}");

    let output = xif(&["unpack", "RoundTrip.xif", "reopened"], temporary.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let reopened = temporary.path().join("reopened");
    for file in
        ["extension.toml", "Cargo.toml", "src/main.rs", "src/bindings.rs", "resources/greetings.txt", "icon.png"]
    {
        assert_eq!(
            std::fs::read(reopened.join(file)).expect("unpacked"),
            std::fs::read(project.join(file)).expect("original"),
            "{file}"
        );
    }
    let output = xif(&["verify", "--format", "json"], &reopened);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert!(report["binary"].is_string(), "the reopened project compiles: {report:#}");

    // Unpacking again into the same, now non-empty, directory is refused.
    let output = xif(&["unpack", "RoundTrip.xif", "reopened"], temporary.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "error: `reopened` already exists and is not empty\n");
}

#[test]
fn inspect_prints_the_manifest_and_refuses_a_tampered_archive() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = new_project(temporary.path(), "Inspected");
    let archive = temporary.path().join("Inspected.xif");
    assert_eq!(save(&project, &archive, &[]).status.code(), Some(0));

    let output = xif(&["inspect", "Inspected.xif", "--json"], temporary.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON manifest");
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["extension"], serde_json::json!({ "name": "Inspected", "version": "0.1.0" }));
    assert_eq!(manifest["protocol"], 1);
    assert_eq!(manifest["binary"], "binary/inspected");
    assert!(manifest["toolchain"].as_str().is_some_and(|toolchain| toolchain.starts_with("rustc ")));
    let entry = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|entry| entry["path"] == "extension.toml")
        .expect("definition");
    let definition = std::fs::read(project.join("extension.toml")).expect("definition");
    assert_eq!(entry["size"], definition.len());

    // Change one byte inside the data of `source/src/main.rs`, just past its local header.
    let mut bytes = std::fs::read(&archive).expect("read");
    let name = b"source/src/main.rs";
    let at = bytes.windows(name.len()).position(|window| window == name).expect("a local header") + name.len() + 40;
    bytes[at] ^= 0x01;
    std::fs::write(&archive, bytes).expect("written");
    let output = xif(&["inspect", "Inspected.xif"], temporary.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("`source/src/main.rs`"),
        "the damaged entry is named: {stderr}"
    );

    let output = xif(&["inspect", "missing.xif"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).starts_with("error: cannot access `missing.xif`: "), "{}", text(&output.stderr));
}

#[test]
fn a_project_with_errors_is_not_saved() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = new_project(temporary.path(), "Broken");
    let definition = project.join("extension.toml");
    let original = std::fs::read_to_string(&definition).expect("definition");
    std::fs::write(&definition, original.replace("name = \"Greet\"", "name = \"Greet Me\"")).expect("written");
    let archive = temporary.path().join("Broken.xif");
    let output = save(&project, &archive, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).starts_with("error[XE0101]"), "{}", text(&output.stderr));
    assert!(!archive.exists(), "nothing is saved when Verify has errors");
}

/// Rewrites the zip at `archive` entry for entry, with `change` applied to the data of the
/// entries it names, keeping everything else (the manifest too) byte for byte.
fn rewrite(archive: &Path, change: impl Fn(&str, &mut Vec<u8>)) {
    use std::io::{Read as _, Write as _};
    let mut reader = zip::ZipArchive::new(std::fs::File::open(archive).expect("opened")).expect("a zip");
    let rewritten = archive.with_extension("rewritten");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&rewritten).expect("created"));
    for index in 0..reader.len() {
        let name = reader.by_index_raw(index).expect("entry").name().to_owned();
        let mut data = Vec::new();
        reader.by_index(index).expect("entry").read_to_end(&mut data).expect("read");
        let before = data.clone();
        change(&name, &mut data);
        if data == before {
            writer.raw_copy_file(reader.by_index_raw(index).expect("entry")).expect("copied");
        } else {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            writer.start_file(name.as_str(), options).expect("entry");
            writer.write_all(&data).expect("written");
        }
    }
    writer.finish().expect("finished");
    std::fs::rename(rewritten, archive).expect("renamed");
}

#[test]
fn unpack_refuses_a_tampered_binary_as_inspect_does() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = new_project(temporary.path(), "Tampered");
    let archive = temporary.path().join("Tampered.xif");
    assert_eq!(save(&project, &archive, &[]).status.code(), Some(0));
    // Another binary of the same size: the manifest, kept as it was, no longer matches it.
    rewrite(&archive, |name, data| {
        if name.starts_with("binary/") {
            let middle = data.len() / 2;
            data[middle] ^= 0xff;
        }
    });
    let listing = text(&tool("unzip", &["-Z1", "Tampered.xif"], temporary.path()).stdout);
    assert!(listing.contains("binary/tampered") && listing.contains("manifest.json"), "{listing}");

    let expected = "error: entry `binary/tampered` does not match its SHA-256 in the manifest\n";
    let output = xif(&["inspect", "Tampered.xif"], temporary.path());
    assert_eq!((output.status.code(), text(&output.stderr).as_str()), (Some(1), expected));
    let output = xif(&["unpack", "Tampered.xif", "unpacked"], temporary.path());
    assert_eq!((output.status.code(), text(&output.stderr).as_str()), (Some(1), expected));
    assert!(!temporary.path().join("unpacked").exists(), "nothing is left of a refused unpack");

    // Into an empty directory that exists: it stays, empty.
    std::fs::create_dir(temporary.path().join("empty")).expect("created");
    let output = xif(&["unpack", "Tampered.xif", "empty"], temporary.path());
    assert_eq!((output.status.code(), text(&output.stderr).as_str()), (Some(1), expected));
    assert_eq!(std::fs::read_dir(temporary.path().join("empty")).expect("listed").count(), 0);
}
