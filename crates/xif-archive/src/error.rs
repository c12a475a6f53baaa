//! Every reason a XIF is refused, each its own variant so that callers (and the server's error
//! codes) can tell them apart.

use std::path::PathBuf;

/// Why an archive could not be written, read, checked or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a zip archive, or a damaged or truncated one.
    #[error("`{path}` is not a readable XIF: {detail}")]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// What the zip reader said.
        detail: String,
    },
    /// An entry name that would land outside the destination.
    #[error("entry `{name}` has an unsafe path: {reason}")]
    UnsafePath {
        /// The entry.
        name: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// A symbolic link entry.
    #[error("entry `{name}` is a symbolic link; XIF archives hold files only")]
    Link {
        /// The entry.
        name: String,
    },
    /// Two entries with one name.
    #[error("entry `{name}` appears more than once")]
    Duplicate {
        /// The entry.
        name: String,
    },
    /// No `manifest.json`.
    #[error("the archive has no `manifest.json`")]
    MissingManifest,
    /// A manifest that is not valid.
    #[error("`manifest.json` is not valid: {0}")]
    InvalidManifest(String),
    /// A format version this reader does not know.
    #[error("the archive is in XIF format version {found}; this xif reads version {supported}")]
    UnknownFormat {
        /// The archive's version.
        found: u32,
        /// The version read here.
        supported: u32,
    },
    /// An entry the manifest does not list.
    #[error("entry `{name}` is not listed in the manifest")]
    NotInManifest {
        /// The entry.
        name: String,
    },
    /// A listed entry that is not in the archive.
    #[error("the manifest lists `{name}`, which is not in the archive")]
    MissingEntry {
        /// The entry.
        name: String,
    },
    /// An entry whose size is not the manifest's.
    #[error("entry `{name}` is {found} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// The entry.
        name: String,
        /// The manifest's size.
        expected: u64,
        /// The entry's.
        found: u64,
    },
    /// An entry whose content is not the manifest's.
    #[error("entry `{name}` does not match its SHA-256 in the manifest")]
    DigestMismatch {
        /// The entry.
        name: String,
    },
    /// An entry over the size limit.
    #[error("entry `{name}` is {size} bytes, over the limit of {limit}")]
    EntryTooLarge {
        /// The entry.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// All entries together over the limit.
    #[error("the entries add up to {size} bytes, over the limit of {limit}")]
    TotalTooLarge {
        /// The total.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("the archive has {count} entries, over the limit of {limit}")]
    TooManyEntries {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An entry compressed suspiciously well: a decompression bomb.
    #[error("entry `{name}` expands {ratio} times, over the limit of {limit}: refused as a decompression bomb")]
    CompressionRatio {
        /// The entry.
        name: String,
        /// Its ratio.
        ratio: u64,
        /// The limit.
        limit: u64,
    },
    /// Unpacking into a directory that already has files.
    #[error("`{path}` already exists and is not empty")]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// A key that could not be read or used.
    #[error("{0}")]
    Signature(String),
    /// A signature file that is not a minisign signature xif accepts.
    #[error("the signature is not valid: {0}")]
    InvalidSignature(String),
    /// A signature made with another key than the one it is checked with.
    #[error("the signature was made with the key `{signature}`, not with this public key `{public_key}`")]
    OtherKey {
        /// The id of the key that made the signature.
        signature: String,
        /// The id of the public key it was checked with.
        public_key: String,
    },
    /// A signature by the right key over other bytes: the archive changed after it was signed.
    #[error("the signature does not match the archive: it was signed by `{key_id}` but its bytes changed since")]
    SignatureMismatch {
        /// The id of the key.
        key_id: String,
    },
}

impl ArchiveError {
    /// The error in words that name no path of this machine: for messages that leave it, such
    /// as the server's answers about an uploaded archive, whose staging path is its own business
    /// (and goes to its log). Entry names stay: they are the archive's, not the machine's.
    pub fn without_paths(&self) -> String {
        match self {
            ArchiveError::Io { source, .. } => format!("cannot access the archive: {}", source.kind()),
            ArchiveError::Corrupt { detail, .. } => format!("the archive is not a readable XIF: {detail}"),
            ArchiveError::DestinationNotEmpty { .. } => "the destination already exists and is not empty".into(),
            other => other.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let path = path.into();
        move |source| ArchiveError::Io { path, source }
    }
}
