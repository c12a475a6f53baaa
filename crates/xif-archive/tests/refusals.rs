//! Every refusal of the reader, each on an archive the test builds itself, and the public Zip
//! Slip samples: each is refused with its own error, and nothing is written outside the
//! destination.

#[path = "support/crafted.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use xif_archive::{
    ArchiveError, Entry, EntryKind, ExtensionId, FORMAT_VERSION, Limits, Manifest, StreamCheck, StreamChecked,
    XifReader,
};
use zip::write::SimpleFileOptions;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn kind(path: &str) -> EntryKind {
    match path {
        "extension.toml" => EntryKind::Definition,
        _ if path.starts_with("binary/") => EntryKind::Binary,
        _ if path.starts_with("resources/") => EntryKind::Resource,
        _ => EntryKind::Source,
    }
}

/// A manifest that lists `files` truthfully.
fn manifest_of(files: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        format: FORMAT_VERSION,
        extension: ExtensionId { name: "Crafted".into(), version: "1.0.0".into() },
        target: "x86_64-unknown-linux-gnu".into(),
        toolchain: "rustc 1.95.0".into(),
        protocol: 1,
        binary: "binary/crafted".into(),
        entries: files
            .iter()
            .map(|(path, bytes)| Entry {
                path: (*path).into(),
                kind: kind(path),
                size: bytes.len() as u64,
                sha256: sha256(bytes),
            })
            .collect(),
    }
}

const GOOD: &[(&str, &[u8])] = &[
    ("binary/crafted", b"\x7fELF not really"),
    ("extension.toml", b"[extension]\nname = \"Crafted\"\nversion = \"1.0.0\"\n"),
    ("source/src/main.rs", b"fn main() {}\n"),
];

/// Writes a zip of `files` (with `options` for each) and `manifest` to `path`.
fn craft(path: &Path, files: &[(&str, &[u8])], manifest: Option<&Manifest>, options: SimpleFileOptions) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("created"));
    for (name, bytes) in files {
        zip.start_file(*name, options).expect("entry");
        zip.write_all(bytes).expect("written");
    }
    if let Some(manifest) = manifest {
        zip.start_file("manifest.json", options).expect("entry");
        zip.write_all(&serde_json::to_vec(manifest).expect("JSON")).expect("written");
    }
    zip.finish().expect("finished");
}

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
}

/// Opens and checks the archive at `path`, then, apart, opens and unpacks it (without checking
/// first) into a fresh destination; asserts that both refuse it with the same error, and that
/// nothing was left anywhere in `sandbox` (the destination included).
fn refuse(sandbox: &Path, path: &Path, limits: Limits) -> ArchiveError {
    let before = listing(sandbox);
    let destination = sandbox.join("destination");
    let checked = XifReader::open(path, limits).and_then(|mut reader| reader.check());
    let checked = checked.expect_err("checking refuses the archive");
    let unpacked = XifReader::open(path, limits).and_then(|mut reader| reader.unpack(&destination));
    let error = unpacked.expect_err("unpacking refuses the archive");
    assert_eq!(error.to_string(), checked.to_string(), "unpacking refuses exactly what checking refuses");
    assert_eq!(listing(sandbox), before, "a refused archive leaves nothing: {error}");
    // The server's check of an upload, as its bytes arrive, refuses it with the same error
    // (a damaged zip is told in the words of each reader, but as damaged by both).
    for streamed in streamed(path, limits) {
        let streamed = streamed.expect_err("checking the stream refuses the archive");
        match (&streamed, &checked) {
            (ArchiveError::Corrupt { .. }, ArchiveError::Corrupt { .. }) => {}
            _ => assert_eq!(streamed.to_string(), checked.to_string(), "the stream is refused as the file is"),
        }
    }
    error
}

/// The archive at `path` checked as a stream, fed in pieces of several sizes (headers split
/// anywhere, and whole).
fn streamed(path: &Path, limits: Limits) -> Vec<Result<StreamChecked, ArchiveError>> {
    let bytes = std::fs::read(path).expect("read");
    [3, 4093, usize::MAX]
        .into_iter()
        .map(|piece| {
            let mut check = StreamCheck::new(path, limits, &[("extension.toml", 1 << 20)]);
            for chunk in bytes.chunks(piece.min(bytes.len()).max(1)) {
                check.update(chunk);
            }
            check.finish()
        })
        .collect()
}

fn listing(directory: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = walk(directory);
    paths.sort();
    paths
}

fn walk(directory: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(directory).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            paths.extend(walk(&path));
        }
        paths.push(path);
    }
    paths
}

#[test]
fn a_well_formed_archive_is_accepted_and_unpacked() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("good.xif");
    craft(&path, GOOD, Some(&manifest_of(GOOD)), stored());
    let mut reader = XifReader::open(&path, Limits::default()).expect("opens");
    reader.check().expect("checks");
    reader.unpack(&sandbox.path().join("project")).expect("unpacks");
    assert_eq!(std::fs::read(sandbox.path().join("project/src/main.rs")).expect("unpacked"), b"fn main() {}\n");
    for options in [stored(), SimpleFileOptions::default()] {
        craft(&path, GOOD, Some(&manifest_of(GOOD)), options);
        for streamed in streamed(&path, Limits::default()) {
            let checked = streamed.expect("the stream is accepted");
            assert_eq!(checked.manifest(), XifReader::open(&path, Limits::default()).expect("opens").manifest());
            let definition = GOOD.iter().find(|(name, _)| *name == "extension.toml").expect("a definition").1;
            assert_eq!(checked.entry("extension.toml", 1 << 20).expect("kept"), definition);
        }
    }
    assert!(!sandbox.path().join("project/binary").exists(), "the binary is not part of the project");
}

#[test]
fn a_tampered_binary_is_refused_by_unpacking_too() {
    // The binary is not unpacked into the project, but it is what the server runs: a reader
    // that skipped it would hand on an archive whose manifest lies about it.
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    let mut files = GOOD.to_vec();
    files[0].1 = &b"\x7fELF not really, and changed"[..];
    // The manifest keeps the binary's old digest; only its size follows the new content.
    let mut manifest = manifest_of(GOOD);
    manifest.entries[0].size = files[0].1.len() as u64;
    craft(&path, &files, Some(&manifest), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::DigestMismatch { name } if name == "binary/crafted"), "{error}");
    assert!(!sandbox.path().join("destination").exists(), "nothing is left in the destination");

    // Into an existing empty destination, which stays (empty).
    let destination = sandbox.path().join("empty");
    std::fs::create_dir(&destination).expect("created");
    let error = XifReader::open(&path, Limits::default())
        .and_then(|mut reader| reader.unpack(&destination))
        .expect_err("refused");
    assert!(matches!(&error, ArchiveError::DigestMismatch { name } if name == "binary/crafted"), "{error}");
    assert_eq!(std::fs::read_dir(&destination).expect("listed").count(), 0);
}

#[test]
fn refusals_can_be_told_without_the_archive_s_path() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    std::fs::write(&path, b"PK\x03\x04 this is not really a zip file at all").expect("written");
    let error = XifReader::open(&path, Limits::default()).err().expect("refused");
    let shown = sandbox.path().display().to_string();
    assert!(error.to_string().contains(&shown), "locally, the path is named: {error}");
    let told = error.without_paths();
    assert!(!told.contains(&shown) && told.starts_with("the archive is not a readable XIF: "), "{told}");
}

#[test]
fn unsafe_names_are_refused() {
    for (name, reason) in [
        ("../evil.txt", "it climbs out of the destination with `..`"),
        ("source/../../evil.txt", "it climbs out of the destination with `..`"),
        ("/tmp/evil.txt", "it is absolute"),
        ("C:/evil.txt", "it is absolute"),
        ("source\\..\\evil.txt", "it contains a backslash"),
        ("source//evil.txt", "it has an empty or `.` component"),
    ] {
        let sandbox = tempfile::tempdir().expect("sandbox");
        let path = sandbox.path().join("crafted.xif");
        let mut files = GOOD.to_vec();
        files.push((name, b"evil"));
        craft(&path, &files, Some(&manifest_of(&files)), stored());
        match refuse(sandbox.path(), &path, Limits::default()) {
            ArchiveError::UnsafePath { name: refused, reason: why } => {
                assert_eq!((refused.as_str(), why), (name, reason));
            }
            other => panic!("{name}: expected an unsafe path, got {other}"),
        }
    }
}

#[test]
fn the_public_zip_slip_samples_are_refused() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/zip-slip");
    for sample in ["zip-slip.zip", "zip-slip-win.zip"] {
        let sandbox = tempfile::tempdir().expect("sandbox");
        let path = sandbox.path().join(sample);
        std::fs::copy(samples.join(sample), &path)
            .unwrap_or_else(|error| panic!("{sample} is in shared/testdata: {error}"));
        let error = refuse(sandbox.path(), &path, Limits::default());
        assert!(matches!(error, ArchiveError::UnsafePath { .. }), "{sample}: {error}");
        assert!(!Path::new("/tmp/evil.txt").exists());
    }
}

#[test]
fn links_are_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("created"));
    zip.add_symlink("source/link", "/etc/passwd", SimpleFileOptions::default()).expect("link");
    zip.finish().expect("finished");
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::Link { name } if name == "source/link"), "{error}");
}

#[test]
fn duplicate_names_are_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    let mut files = GOOD.to_vec();
    files.push(("source/dupB.rs", b"two"));
    files.push(("source/dupA.rs", b"one"));
    // The manifest names the entry otherwise, so that renaming below leaves its text intact.
    let mut listed = files.clone();
    listed[3].0 = "source/other.rs";
    craft(&path, &files, Some(&manifest_of(&listed)), stored());
    // The zip writer refuses to write a name twice, so rename the second entry in place.
    let bytes = std::fs::read(&path).expect("read");
    let patched = replace_all(&bytes, b"source/dupB.rs", b"source/dupA.rs");
    std::fs::write(&path, patched).expect("written");
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::Duplicate { name } if name == "source/dupA.rs"), "{error}");
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut index = 0;
    while let Some(found) = out[index..].windows(from.len()).position(|window| window == from) {
        out[index + found..index + found + to.len()].copy_from_slice(to);
        index += found + from.len();
    }
    out
}

#[test]
fn manifest_problems_are_each_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");

    craft(&path, GOOD, None, stored());
    assert!(matches!(refuse(sandbox.path(), &path, Limits::default()), ArchiveError::MissingManifest));

    let mut unknown = manifest_of(GOOD);
    unknown.format = 2;
    craft(&path, GOOD, Some(&unknown), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(error, ArchiveError::UnknownFormat { found: 2, supported: 1 }), "{error}");
    assert_eq!(error.to_string(), "the archive is in XIF format version 2; this xif reads version 1");

    let mut extra = GOOD.to_vec();
    extra.push(("source/unlisted.rs", b"hidden"));
    craft(&path, &extra, Some(&manifest_of(GOOD)), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::NotInManifest { name } if name == "source/unlisted.rs"), "{error}");

    let mut listed = manifest_of(GOOD);
    listed.entries.push(Entry {
        path: "source/absent.rs".into(),
        kind: EntryKind::Source,
        size: 1,
        sha256: sha256(b"x"),
    });
    craft(&path, GOOD, Some(&listed), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::MissingEntry { name } if name == "source/absent.rs"), "{error}");

    let mut digest = manifest_of(GOOD);
    digest.entries[2].sha256 = sha256(b"something else");
    craft(&path, GOOD, Some(&digest), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::DigestMismatch { name } if name == "source/src/main.rs"), "{error}");

    let mut size = manifest_of(GOOD);
    size.entries[2].size += 1;
    craft(&path, GOOD, Some(&size), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::SizeMismatch { name, .. } if name == "source/src/main.rs"), "{error}");

    std::fs::write(sandbox.path().join("garbage.json"), b"{\"format\": 1, \"extension\": 3}").expect("written");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("created"));
    zip.start_file("manifest.json", stored()).expect("entry");
    zip.write_all(b"{\"format\": 1, \"extension\": 3}").expect("written");
    zip.finish().expect("finished");
    std::fs::remove_file(sandbox.path().join("garbage.json")).expect("removed");
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(error, ArchiveError::InvalidManifest(_)), "{error}");
}

#[test]
fn sizes_counts_and_ratios_over_the_limits_are_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    craft(&path, GOOD, Some(&manifest_of(GOOD)), stored());
    let tight = Limits { max_entry_size: 20, ..Limits::default() };
    let error = refuse(sandbox.path(), &path, tight);
    assert!(matches!(&error, ArchiveError::EntryTooLarge { size, limit: 20, .. } if *size > 20), "{error}");

    let tight = Limits { max_total_size: 60, ..Limits::default() };
    assert!(matches!(refuse(sandbox.path(), &path, tight), ArchiveError::TotalTooLarge { limit: 60, .. }));

    let tight = Limits { max_entries: 2, ..Limits::default() };
    assert!(matches!(refuse(sandbox.path(), &path, tight), ArchiveError::TooManyEntries { count: 4, limit: 2 }));

    // A bomb: 8 MiB of zeros deflate to a few kilobytes.
    let zeros = vec![0u8; 8 << 20];
    let mut files = GOOD.to_vec();
    files.push(("resources/zeros.bin", &zeros));
    craft(&path, &files, Some(&manifest_of(&files)), SimpleFileOptions::default());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(
        matches!(&error, ArchiveError::CompressionRatio { name, limit: 100, .. } if name == "resources/zeros.bin"),
        "{error}"
    );
}

#[test]
fn truncated_and_corrupt_files_are_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("crafted.xif");
    craft(&path, GOOD, Some(&manifest_of(GOOD)), SimpleFileOptions::default());
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncated");
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error}");

    std::fs::write(&path, b"PK\x03\x04 this is not really a zip file at all").expect("written");
    assert!(matches!(refuse(sandbox.path(), &path, Limits::default()), ArchiveError::Corrupt { .. }));

    // A flipped byte inside a stored entry's data: the content no longer matches.
    let offset = bytes.windows(13).position(|window| window == b"fn main() {}\n").map(|found| found + 3);
    let mut flipped = bytes.clone();
    if let Some(offset) = offset {
        flipped[offset] ^= 0x20;
    }
    craft(&path, GOOD, Some(&manifest_of(GOOD)), stored());
    let stored_bytes = std::fs::read(&path).expect("read");
    let offset = stored_bytes.windows(13).position(|window| window == b"fn main() {}\n").expect("stored content") + 3;
    let mut tampered = stored_bytes;
    tampered[offset] ^= 0x20;
    std::fs::write(&path, tampered).expect("written");
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(
        matches!(&error, ArchiveError::Corrupt { .. } | ArchiveError::DigestMismatch { .. }),
        "a tampered entry fails its CRC or its digest: {error}"
    );
}

#[test]
fn unpacking_into_a_non_empty_directory_is_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("good.xif");
    craft(&path, GOOD, Some(&manifest_of(GOOD)), stored());
    let destination = sandbox.path().join("taken");
    std::fs::create_dir_all(&destination).expect("created");
    std::fs::write(destination.join("mine.txt"), b"keep me").expect("written");
    let error = XifReader::open(&path, Limits::default())
        .and_then(|mut reader| reader.unpack(&destination))
        .expect_err("refused");
    assert!(matches!(error, ArchiveError::DestinationNotEmpty { .. }), "{error}");
    assert_eq!(std::fs::read(destination.join("mine.txt")).expect("kept"), b"keep me");
}

/// The smuggling archive of the review: a zip64 end record that points at the archive's own
/// directory, and a 32-bit end record (its size saturated) that points at a second XIF hidden
/// in a stored entry. The upload check used to follow the zip64 record (any saturated field)
/// and the deploy's `zip` crate the 32-bit one (only count or offset saturated): one checked
/// archive, another deployed. Every end record that could mean two archives is refused.
#[test]
fn end_records_pointing_at_a_hidden_archive_are_refused() {
    use common::{Ends, smuggler};
    let sandbox = tempfile::tempdir().expect("sandbox");
    let smuggler = smuggler();
    let (count, size, offset) = smuggler.outer();
    let small = |value: u64| u32::try_from(value).expect("small");
    let hidden = small(smuggler.hidden_offset);
    let crafted = [
        // The review's: size saturated, the 32-bit offset at the hidden directory.
        Ends { zip64: Some((count, size, offset)), count: count as u16, size: 0xffff_ffff, offset: hidden },
        // Count saturated, so the zip64 record is followed, but the offsets disagree.
        Ends { zip64: Some((count, size, offset)), count: 0xffff, size: small(size), offset: hidden },
        // The zip64 record at the hidden directory, the 32-bit record at the outer one.
        Ends {
            zip64: Some((count, smuggler.hidden_size, smuggler.hidden_offset)),
            count: count as u16,
            size: small(size),
            offset: small(offset),
        },
        // A saturated field and no zip64 record at all.
        Ends { zip64: None, count: count as u16, size: 0xffff_ffff, offset: small(offset) },
        Ends { zip64: None, count: count as u16, size: small(size), offset: 0xffff_ffff },
    ];
    for (index, ends) in crafted.into_iter().enumerate() {
        let path = sandbox.path().join(format!("smuggled-{index}.xif"));
        std::fs::write(&path, smuggler.with_ends(ends)).expect("written");
        let error = refuse(sandbox.path(), &path, Limits::default());
        assert!(matches!(error, ArchiveError::Corrupt { .. }), "{ends:?}: {error}");
        std::fs::remove_file(&path).expect("removed");
    }
    // The same archive with honest end records, zip64 or not, is accepted by both readers,
    // which see the outer archive.
    for ends in [
        Ends { zip64: None, count: count as u16, size: small(size), offset: small(offset) },
        Ends { zip64: Some((count, size, offset)), count: count as u16, size: small(size), offset: small(offset) },
        Ends { zip64: Some((count, size, offset)), count: 0xffff, size: 0xffff_ffff, offset: 0xffff_ffff },
    ] {
        let path = sandbox.path().join("honest.xif");
        std::fs::write(&path, smuggler.with_ends(ends)).expect("written");
        let mut reader = XifReader::open(&path, Limits::default()).expect("opens");
        reader.check().expect("checks");
        assert!(reader.manifest().entries.iter().any(|entry| entry.path == "resources/pad.bin"), "{ends:?}");
        for streamed in streamed(&path, Limits::default()) {
            let streamed = streamed.expect("the stream is accepted");
            assert_eq!(streamed.manifest(), reader.manifest(), "{ends:?}");
        }
    }
}

/// An upload's check keeps the central directory as it arrives; it may be no longer than a
/// header (with its name and some slack) for each entry seen, so that a crafted tail cannot
/// make each upload hold megabytes (it used to allow 64 MiB). Zip readers allow such extra
/// fields; the upload check is stricter, as it is on two other points no XIF writer meets.
#[test]
fn a_central_directory_longer_than_its_entries_need_is_refused_as_it_arrives() {
    let files: Vec<(&str, Vec<u8>)> = GOOD.iter().map(|(name, bytes)| (*name, bytes.to_vec())).collect();
    let files = common::with_manifest(&files);
    let mut extra = vec![0u8; 40_000];
    extra[..4].copy_from_slice(&[0xfe, 0xca, 0x3c, 0x9c]); // id 0xcafe, 39,996 bytes
    let (body, directory) = common::stored_entries_with_extra(&files, 0, &extra);
    let ends = common::Ends {
        zip64: None,
        count: files.len() as u16,
        size: directory.len() as u32,
        offset: body.len() as u32,
    };
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("long-tail.xif");
    std::fs::write(&path, [body, directory, common::end_records(ends, 0)].concat()).expect("written");
    for streamed in streamed(&path, Limits::default()) {
        let error = streamed.expect_err("the stream check refuses it");
        assert!(error.to_string().contains("longer than its 4 entries need"), "{error}");
    }
    // The same archive with short extra fields is accepted.
    let mut short = vec![0u8; 64];
    short[..4].copy_from_slice(&[0xfe, 0xca, 60, 0]);
    let (body, directory) = common::stored_entries_with_extra(&files, 0, &short);
    let ends = common::Ends { size: directory.len() as u32, offset: body.len() as u32, ..ends };
    std::fs::write(&path, [body, directory, common::end_records(ends, 0)].concat()).expect("written");
    for streamed in streamed(&path, Limits::default()) {
        streamed.expect("the stream check accepts it");
    }
}

#[test]
fn names_over_1024_bytes_are_refused() {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let long = format!("source/{}", "a".repeat(1020));
    let mut files = GOOD.to_vec();
    files.push((long.as_str(), b"long\n"));
    let path = sandbox.path().join("long-name.xif");
    craft(&path, &files, Some(&manifest_of(&files)), stored());
    let error = refuse(sandbox.path(), &path, Limits::default());
    assert!(matches!(&error, ArchiveError::UnsafePath { reason, .. } if reason.contains("1,024")), "{error}");
}
