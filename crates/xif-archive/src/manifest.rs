//! `manifest.json`: what the archive holds and how to check it.

use serde::{Deserialize, Serialize};

/// The version of the format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The manifest's entry name.
pub const MANIFEST: &str = "manifest.json";

/// The manifest of a XIF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format version, [`FORMAT_VERSION`].
    pub format: u32,
    /// The extension's name and version.
    pub extension: ExtensionId,
    /// The target triple the binary was built for.
    pub target: String,
    /// The compiler that built it (`rustc --version`).
    pub toolchain: String,
    /// The protocol version the binary speaks.
    pub protocol: u32,
    /// The entry of the compiled binary.
    pub binary: String,
    /// Every other entry, sorted by path.
    pub entries: Vec<Entry>,
}

/// An extension's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionId {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its path in the archive.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, in lower-case hex.
    pub sha256: String,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// `extension.toml`.
    Definition,
    /// A source file of the project.
    Source,
    /// A declared resource or the icon.
    Resource,
    /// The compiled extension.
    Binary,
}
