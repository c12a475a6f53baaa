//! Zips written byte by byte, for the archives no zip writer makes: a second archive hidden in
//! a stored entry, and end records that point at it.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use xif_archive::{Entry, EntryKind, ExtensionId, FORMAT_VERSION, Manifest};

/// A XIF's files and its manifest (listing them truthfully, last), as (name, bytes).
pub fn with_manifest(files: &[(&str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let manifest = Manifest {
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
                kind: match *path {
                    "extension.toml" => EntryKind::Definition,
                    _ if path.starts_with("binary/") => EntryKind::Binary,
                    _ if path.starts_with("resources/") => EntryKind::Resource,
                    _ => EntryKind::Source,
                },
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    let mut all: Vec<(String, Vec<u8>)> =
        files.iter().map(|(name, bytes)| ((*name).to_owned(), bytes.clone())).collect();
    all.push(("manifest.json".into(), serde_json::to_vec(&manifest).expect("JSON")));
    all
}

/// The local headers with their (stored) data, and the central directory, of `files` whose
/// first local header is at archive offset `base`.
pub fn stored_entries(files: &[(String, Vec<u8>)], base: u64) -> (Vec<u8>, Vec<u8>) {
    stored_entries_with_extra(files, base, &[])
}

/// As [`stored_entries`], with `extra` as every central header's extra field.
pub fn stored_entries_with_extra(files: &[(String, Vec<u8>)], base: u64, extra: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut body = Vec::new();
    let mut directory = Vec::new();
    for (name, data) in files {
        let crc = crc32fast::hash(data);
        let offset = base + body.len() as u64;
        let name_length = u16::try_from(name.len()).expect("a short name");
        let length = u32::try_from(data.len()).expect("a small entry");
        body.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for field in [20u16, 0, 0, 0, 0x21] {
            body.extend_from_slice(&field.to_le_bytes());
        }
        for field in [crc, length, length] {
            body.extend_from_slice(&field.to_le_bytes());
        }
        body.extend_from_slice(&name_length.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        directory.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for field in [0x031eu16, 20, 0, 0, 0, 0x21] {
            directory.extend_from_slice(&field.to_le_bytes());
        }
        for field in [crc, length, length] {
            directory.extend_from_slice(&field.to_le_bytes());
        }
        let extra_length = u16::try_from(extra.len()).expect("a short extra field");
        for field in [name_length, extra_length, 0, 0, 0] {
            directory.extend_from_slice(&field.to_le_bytes());
        }
        directory.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
        directory.extend_from_slice(&u32::try_from(offset).expect("a small archive").to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
        directory.extend_from_slice(extra);
    }
    (body, directory)
}

/// What the end records say.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    /// The zip64 end record's count, size and offset, when there is one (with its locator).
    pub zip64: Option<(u64, u64, u64)>,
    /// The 32-bit end record's count, size and offset.
    pub count: u16,
    pub size: u32,
    pub offset: u32,
}

/// The end records `ends`, for an archive whose zip64 end record (if any) is at `at`.
pub fn end_records(ends: Ends, at: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some((count, size, offset)) = ends.zip64 {
        bytes.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        bytes.extend_from_slice(&44u64.to_le_bytes());
        bytes.extend_from_slice(&0x031eu16.to_le_bytes());
        bytes.extend_from_slice(&45u16.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        for field in [count, count, size, offset] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&at.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
    }
    bytes.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for field in [0u16, 0, ends.count, ends.count] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    bytes.extend_from_slice(&ends.size.to_le_bytes());
    bytes.extend_from_slice(&ends.offset.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes
}

/// A XIF whose stored entry `resources/pad.bin` holds a second, different XIF's entries and
/// central directory: the outer archive's entries and directory, and where the hidden
/// directory is, its length, and how many entries both have.
pub struct Smuggler {
    pub body: Vec<u8>,
    pub directory: Vec<u8>,
    pub hidden_offset: u64,
    pub hidden_size: u64,
    pub count: u64,
}

/// The two archives: the outer one with `GOOD`-like files, the hidden one with another
/// definition and a file of its own.
pub fn smuggler() -> Smuggler {
    let binary = b"\x7fELF not really".to_vec();
    let shown = [
        ("binary/crafted", binary.clone()),
        ("extension.toml", b"[extension]\nname = \"Crafted\"\nversion = \"1.0.0\"\n".to_vec()),
        ("source/src/main.rs", b"fn main() {}\n".to_vec()),
    ];
    let hidden = with_manifest(&[
        ("binary/crafted", binary),
        ("extension.toml", b"[extension]\nname = \"Crafted\"\nversion = \"1.0.0\"\n# SMUGGLED\n".to_vec()),
        ("source/src/main.rs", b"fn main() { /* smuggled */ }\n".to_vec()),
        ("resources/inner.txt", b"not what the server checked\n".to_vec()),
    ]);
    let before_pad = stored_entries(&with_manifest(&shown)[..shown.len()], 0).0;
    let pad_data_at = before_pad.len() as u64 + 30 + "resources/pad.bin".len() as u64;
    let (hidden_body, hidden_directory) = stored_entries(&hidden, pad_data_at);
    let hidden_offset = pad_data_at + hidden_body.len() as u64;
    let hidden_size = hidden_directory.len() as u64;
    let pad = [hidden_body, hidden_directory].concat();
    let mut files: Vec<(&str, Vec<u8>)> = shown.to_vec();
    files.push(("resources/pad.bin", pad));
    let outer = with_manifest(&files);
    assert_eq!(outer.len(), hidden.len(), "both archives have as many entries");
    let (body, directory) = stored_entries(&outer, 0);
    Smuggler { body, directory, hidden_offset, hidden_size, count: outer.len() as u64 }
}

impl Smuggler {
    /// The outer archive's true end values: count, size, offset.
    pub fn outer(&self) -> (u64, u64, u64) {
        (self.count, self.directory.len() as u64, self.body.len() as u64)
    }

    /// The whole archive with end records `ends`.
    pub fn with_ends(&self, ends: Ends) -> Vec<u8> {
        let at = (self.body.len() + self.directory.len()) as u64;
        [self.body.clone(), self.directory.clone(), end_records(ends, at)].concat()
    }
}
