//! Corrupted archives: random damage to a real XIF never panics the reader, never writes
//! outside the destination, and never makes it allocate beyond its limits; the check of a
//! stream (the server's) never panics either, and accepts nothing the file reader refuses.

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

fn read_everything(bytes: &[u8]) {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let path = sandbox.path().join("damaged.xif");
    std::fs::write(&path, bytes).expect("written");
    let destination = sandbox.path().join("destination");
    let outcome = XifReader::open(&path, limits()).and_then(|mut reader| {
        reader.check()?;
        reader.unpack(&destination)
    });
    let mut stream = xif_archive::StreamCheck::new(&path, limits(), &[("extension.toml", 1 << 20)]);
    for chunk in bytes.chunks(977) {
        stream.update(chunk);
    }
    let streamed = stream.finish();
    assert!(
        streamed.is_err() || outcome.is_ok(),
        "the stream was accepted, the file refused: {:?}",
        outcome.as_ref().err()
    );
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
