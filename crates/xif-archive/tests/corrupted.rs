//! Corrupted archives: random damage to a real XIF never panics the reader, never writes
//! outside the destination, and never makes it allocate beyond its limits; the check of a
//! stream (the server's) never panics either, and accepts nothing the file reader refuses; and
//! whenever both accept, they see the same entries with the same content (what the server
//! checked is what it deploys).

#[path = "support/crafted.rs"]
mod common;

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use xif_archive::{EntryKind, ExtensionId, Input, Limits, ManifestHeader, XifReader};

/// A real archive with stored and deflated entries, written once.
fn archive() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let directory = tempfile::tempdir().expect("temporary directory");
        let files: [(&str, Vec<u8>, EntryKind); 4] = [
            ("extension.toml", b"[extension]\nname = \"Fuzz\"\nversion = \"1.0.0\"\n".to_vec(), EntryKind::Definition),
            ("source/src/main.rs", "fn main() { println!(\"hello\"); }\n".repeat(200).into_bytes(), EntryKind::Source),
            (
                "resources/data.bin",
                (0..70_000u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
                EntryKind::Resource,
            ),
            ("binary/fuzz", vec![0x7f; 3000], EntryKind::Binary),
        ];
        let inputs = files
            .iter()
            .enumerate()
            .map(|(index, (path, bytes, kind))| {
                let file = directory.path().join(index.to_string());
                std::fs::write(&file, bytes).expect("written");
                Input { path: (*path).into(), file, kind: *kind }
            })
            .collect();
        let header = ManifestHeader {
            extension: ExtensionId { name: "Fuzz".into(), version: "1.0.0".into() },
            target: "x86_64-unknown-linux-gnu".into(),
            toolchain: "rustc".into(),
            protocol: 1,
        };
        let output = directory.path().join("fuzz.xif");
        xif_archive::write(&output, inputs, header).expect("the archive is written");
        std::fs::read(output).expect("read back")
    })
}

/// Tight limits, so that damage to a size field cannot make the reader allocate much.
fn limits() -> Limits {
    Limits { max_entry_size: 1 << 20, max_total_size: 4 << 20, max_entries: 100, max_ratio: 100 }
}

/// Every name either archive of these tests has, kept by the stream check for comparison.
const KEEP: &[(&str, u64)] = &[
    ("extension.toml", 1 << 20),
    ("source/src/main.rs", 1 << 20),
    ("resources/data.bin", 1 << 20),
    ("resources/pad.bin", 1 << 20),
    ("resources/inner.txt", 1 << 20),
    ("binary/fuzz", 1 << 20),
    ("binary/crafted", 1 << 20),
];

/// When both the stream check (`streamed`) and the file reader accept the archive at `path`,
/// they see the same entries: names, kinds, sizes and digests (the manifest each checked every
/// entry against), and the same bytes for each.
fn same_entries(path: &Path, streamed: &Result<xif_archive::StreamChecked, xif_archive::ArchiveError>) {
    let Ok(streamed) = streamed else { return };
    let Ok(mut reader) = XifReader::open(path, limits()) else { return };
    if reader.check().is_err() {
        return;
    }
    assert_eq!(streamed.manifest(), reader.manifest(), "both accepted, with different entries");
    for entry in &reader.manifest().entries.clone() {
        let read = reader.read_entry(&entry.path, 1 << 20).expect("an accepted entry reads");
        if KEEP.iter().any(|(name, _)| *name == entry.path) {
            let kept = streamed.entry(&entry.path, 1 << 20).expect("kept");
            assert_eq!(kept, read, "both accepted, with different bytes in `{}`", entry.path);
        }
    }
}

/// A 32-bit end-record field: the true value, the hidden archive's, or saturated.
fn field32(choice: u8, true_value: u64, hidden: u64, saturated: u64) -> u64 {
    match choice % 3 {
        0 => true_value,
        1 => hidden,
        _ => saturated,
    }
}

fn read_everything(bytes: &[u8]) {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("damaged.xif");
    std::fs::write(&path, bytes).expect("written");
    let destination = sandbox.path().join("destination");
    let outcome = XifReader::open(&path, limits()).and_then(|mut reader| {
        reader.check()?;
        reader.unpack(&destination)
    });
    let mut stream = xif_archive::StreamCheck::new(&path, limits(), KEEP);
    for chunk in bytes.chunks(977) {
        stream.update(chunk);
    }
    let streamed = stream.finish();
    assert!(
        streamed.is_err() || outcome.is_ok(),
        "the stream was accepted, the file refused: {:?}",
        outcome.as_ref().err()
    );
    same_entries(&path, &streamed);
    let mut written: Vec<_> =
        std::fs::read_dir(sandbox.path()).expect("readable").flatten().map(|entry| entry.file_name()).collect();
    written.sort();
    match outcome {
        Ok(()) => assert!(written.len() <= 2, "only the archive and the destination: {written:?}"),
        Err(_) => assert_eq!(written, ["damaged.xif"], "a refused archive leaves nothing behind"),
    }
    assert!(!Path::new("/tmp/evil.txt").exists());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes(flips in proptest::collection::vec((any::<usize>(), 1..=255u8), 1..12)) {
        let mut bytes = archive().to_vec();
        for (at, mask) in flips {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        read_everything(&bytes);
    }

    #[test]
    fn truncated(keep in any::<usize>()) {
        let bytes = archive();
        read_everything(&bytes[..keep % bytes.len()]);
    }

    #[test]
    fn inserted_bytes(at in any::<usize>(), inserted in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut bytes = archive().to_vec();
        let at = at % bytes.len();
        bytes.splice(at..at, inserted);
        read_everything(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// End records mixing the outer archive's values, the hidden archive's and saturated ones,
    /// with or without a zip64 record, then a few flipped bytes in the end records: whatever
    /// both readers accept, they read alike.
    #[test]
    fn end_records_never_make_the_readers_disagree(
        choices in proptest::collection::vec(any::<u8>(), 7),
        flips in proptest::collection::vec((any::<usize>(), 0..=255u8), 0..4),
    ) {
        let smuggler = common::smuggler();
        let (count, size, offset) = smuggler.outer();
        let (hidden_size, hidden_offset) = (smuggler.hidden_size, smuggler.hidden_offset);
        let zip64 = (choices[6] % 4 != 0).then(|| {
            (
                count,
                if choices[3] % 2 == 0 { size } else { hidden_size },
                if choices[4] % 2 == 0 { offset } else { hidden_offset },
            )
        });
        let ends = common::Ends {
            zip64,
            count: field32(choices[0], count, count, 0xffff) as u16,
            size: field32(choices[1], size, hidden_size, 0xffff_ffff) as u32,
            offset: field32(choices[2], offset, hidden_offset, 0xffff_ffff) as u32,
        };
        let mut bytes = smuggler.with_ends(ends);
        let records = bytes.len() - if zip64.is_some() { 98 } else { 22 };
        for (at, mask) in flips {
            let at = records + at % (bytes.len() - records);
            bytes[at] ^= mask;
        }
        let sandbox = tempfile::tempdir().expect("sandbox");
        let path = sandbox.path().join("ends.xif");
        std::fs::write(&path, &bytes).expect("written");
        let mut stream = xif_archive::StreamCheck::new(&path, limits(), KEEP);
        for chunk in bytes.chunks(1021) {
            stream.update(chunk);
        }
        let streamed = stream.finish();
        same_entries(&path, &streamed);
        // And the hidden archive is never what is accepted.
        if let Ok(streamed) = &streamed {
            prop_assert!(streamed.manifest().entries.iter().all(|entry| entry.path != "resources/inner.txt"));
        }
    }
}

#[test]
fn damage_never_costs_much_memory() {
    // After the cases above and these, the whole test process has stayed small: no damaged
    // size field made the reader allocate what it claimed.
    let bytes = archive();
    for at in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.to_vec();
        damaged[at] = 0xff;
        read_everything(&damaged);
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("usage");
    let peak_kib = usage.max_rss();
    assert!(peak_kib < 256 * 1024, "peak memory {peak_kib} KiB");
}

/// A flip proptest found: the last central directory header's comment length grew from 0 to
/// 23, so that the header ran into the end record. The stream check accepted it; the file
/// reader (the `zip` crate) did not find the end record. Both refuse it now.
#[test]
fn a_central_header_running_into_the_end_record_is_refused_by_both_readers() {
    let mut bytes = archive().to_vec();
    let at = 14_852_267_372_370_364_979_usize % bytes.len();
    bytes[at] ^= 23;
    read_everything(&bytes);
}
