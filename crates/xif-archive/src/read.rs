//! Reading a XIF without trusting it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::ZipArchive;

use crate::listing::Listing;
use crate::write::hex;
use crate::{ArchiveError, Entry, EntryKind, FORMAT_VERSION, MANIFEST, Manifest};

/// How much a reader accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest entry, uncompressed.
    pub max_entry_size: u64,
    /// Largest total of all entries, uncompressed.
    pub max_total_size: u64,
    /// Most entries.
    pub max_entries: usize,
    /// Largest ratio of an entry's size to its compressed size, for entries over 1 MiB.
    pub max_ratio: u64,
}

impl Default for Limits {
    /// 2 GiB an entry, 4 GiB in all, 50,000 entries, a ratio of 100.
    fn default() -> Self {
        Self { max_entry_size: 2 << 30, max_total_size: 4 << 30, max_entries: 50_000, max_ratio: 100 }
    }
}

/// Entries under this size are not checked for their compression ratio: a small file of zeros
/// compresses a thousand times and harms no one.
pub(crate) const RATIO_FLOOR: u64 = 1 << 20;
/// The longest entry name, in bytes: four times Linux's longest file name, and what bounds
/// the memory each entry's name takes in an upload's check.
pub(crate) const MAX_NAME: usize = 1024;
/// Why a name over [`MAX_NAME`] is refused.
pub(crate) const NAME_TOO_LONG: &str = "it is longer than 1,024 bytes";
/// The manifest is read into memory; it is never this large.
pub(crate) const MAX_MANIFEST: u64 = 16 << 20;

/// An opened XIF whose structure and manifest have been checked. Contents are checked as they
/// are read, by [`XifReader::check`] and [`XifReader::unpack`].
pub struct XifReader {
    archive: ZipArchive<BufReader<File>>,
    path: PathBuf,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    limits: Limits,
}

impl XifReader {
    /// Opens the XIF at `path` and checks every name, type, size and compression ratio in its
    /// central directory, and its manifest against its entries, before reading any content.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, ArchiveError> {
        let mut file = File::open(path).map_err(ArchiveError::io(path))?;
        let (declared, raw_names, directory_offset) = crate::central::names(&mut file, limits.max_entries)
            .map_err(|detail| ArchiveError::Corrupt { path: path.to_owned(), detail })?;
        if declared > limits.max_entries as u64 {
            return Err(ArchiveError::TooManyEntries {
                count: usize::try_from(declared).unwrap_or(usize::MAX),
                limit: limits.max_entries,
            });
        }
        let mut distinct = HashSet::with_capacity(raw_names.len());
        for name in &raw_names {
            if !distinct.insert(name.as_slice()) {
                return Err(ArchiveError::Duplicate { name: String::from_utf8_lossy(name).into_owned() });
            }
        }
        let mut archive = ZipArchive::new(BufReader::with_capacity(1 << 16, file))
            .map_err(|error| ArchiveError::Corrupt { path: path.to_owned(), detail: error.to_string() })?;
        // The zip crate falls back to an earlier end record when it dislikes the last one: it
        // must read the very directory the names above (and the upload check) come from.
        if archive.offset() != 0 || archive.central_directory_start() != directory_offset {
            return Err(ArchiveError::Corrupt {
                path: path.to_owned(),
                detail: "its end records point at two different central directories".into(),
            });
        }
        if archive.len() != raw_names.len() {
            return Err(ArchiveError::Corrupt {
                path: path.to_owned(),
                detail: format!(
                    "the central directory lists {} entries, the zip reader sees {}",
                    raw_names.len(),
                    archive.len()
                ),
            });
        }
        let corrupt =
            |error: zip::result::ZipError| ArchiveError::Corrupt { path: path.to_owned(), detail: error.to_string() };
        let mut listing = Listing::new(limits, archive.len());
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index).map_err(corrupt)?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            let link = entry.unix_mode().is_some_and(|mode| mode & 0o170_000 == 0o120_000);
            listing.admit(name, link, entry.size(), entry.compressed_size())?;
        }
        listing.has_manifest()?;
        let manifest_bytes = {
            let entry = archive.by_name(MANIFEST).map_err(corrupt)?;
            let mut bytes = Vec::new();
            entry.take(MAX_MANIFEST).read_to_end(&mut bytes).map_err(|error| ArchiveError::Corrupt {
                path: path.to_owned(),
                detail: format!("cannot read `{MANIFEST}`: {error}"),
            })?;
            bytes
        };
        let manifest = parse_manifest(&manifest_bytes)?;
        listing.check_manifest(&manifest)?;
        Ok(Self { archive, path: path.to_owned(), manifest, manifest_bytes, limits })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest exactly as stored.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// Reads every entry and checks its size and digest against the manifest.
    pub fn check(&mut self) -> Result<(), ArchiveError> {
        self.check_each(|_| Ok(None))
    }

    /// Streams every entry the manifest lists, in its order, into the file `sink` opens for it
    /// (or nowhere, when it opens none), checking each entry's size and digest. This is the one
    /// path by which [`XifReader::check`] and [`XifReader::unpack`] read content, so that what
    /// one refuses the other refuses too, the binary included.
    fn check_each(
        &mut self,
        mut sink: impl FnMut(&Entry) -> Result<Option<File>, ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let entries = self.manifest.entries.clone();
        for entry in &entries {
            match sink(entry)? {
                Some(mut file) => self.stream(&entry.path, entry.size, &entry.sha256, &mut file)?,
                None => self.stream(&entry.path, entry.size, &entry.sha256, &mut std::io::sink())?,
            }
        }
        Ok(())
    }

    /// Reads entry `name` whole, checked against the manifest; refused when over `max` bytes.
    pub fn read_entry(&mut self, name: &str, max: u64) -> Result<Vec<u8>, ArchiveError> {
        let Some(entry) = self.manifest.entries.iter().find(|entry| entry.path == name).cloned() else {
            return Err(ArchiveError::MissingEntry { name: name.to_owned() });
        };
        if entry.size > max {
            return Err(ArchiveError::EntryTooLarge { name: entry.path, size: entry.size, limit: max });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        self.stream(&entry.path, entry.size, &entry.sha256, &mut bytes)?;
        Ok(bytes)
    }

    /// Writes entry `name` to the new file `target` with permissions `mode`, checked against the
    /// manifest; a partial file is removed on failure.
    pub fn extract_entry(&mut self, name: &str, target: &Path, mode: u32) -> Result<(), ArchiveError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let Some(entry) = self.manifest.entries.iter().find(|entry| entry.path == name).cloned() else {
            return Err(ArchiveError::MissingEntry { name: name.to_owned() });
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(target)
            .map_err(ArchiveError::io(target))?;
        let outcome = self
            .stream(&entry.path, entry.size, &entry.sha256, &mut file)
            .and_then(|()| file.sync_all().map_err(ArchiveError::io(target)));
        if outcome.is_err() {
            std::fs::remove_file(target).ok();
        }
        outcome
    }

    /// Writes the project the archive holds (definition, source, resources; not the binary) into
    /// `destination`, which must not exist or be empty. Every entry is checked as it is read,
    /// the binary too, exactly as [`XifReader::check`] checks it; on any failure, what was
    /// written is removed.
    pub fn unpack(&mut self, destination: &Path) -> Result<(), ArchiveError> {
        let existed = destination.exists();
        if existed && std::fs::read_dir(destination).map_err(ArchiveError::io(destination))?.next().is_some() {
            return Err(ArchiveError::DestinationNotEmpty { path: destination.to_owned() });
        }
        // Every target is known before anything is written.
        let mut targets: HashMap<String, PathBuf> = HashMap::new();
        let mut seen = HashSet::new();
        for entry in &self.manifest.entries {
            let Some(relative) = project_path(&entry.path, entry.kind) else { continue };
            if !seen.insert(relative.to_ascii_lowercase()) {
                return Err(ArchiveError::Duplicate { name: relative.to_owned() });
            }
            targets.insert(entry.path.clone(), destination.join(relative));
        }
        std::fs::create_dir_all(destination).map_err(ArchiveError::io(destination))?;
        let outcome = self.check_each(|entry| {
            let Some(target) = targets.get(&entry.path) else { return Ok(None) };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(ArchiveError::io(parent))?;
            }
            File::create(target).map(Some).map_err(ArchiveError::io(target))
        });
        if outcome.is_err() {
            clean(destination, existed);
        }
        outcome
    }

    /// Streams entry `name` into `sink`, reading at most its size plus one byte, and checks its
    /// size and digest.
    fn stream(&mut self, name: &str, size: u64, sha256: &str, sink: &mut dyn Write) -> Result<(), ArchiveError> {
        let path = self.path.clone();
        let entry = self
            .archive
            .by_name(name)
            .map_err(|error| ArchiveError::Corrupt { path: path.clone(), detail: error.to_string() })?;
        let mut limited = entry.take(size.min(self.limits.max_entry_size) + 1);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 1 << 16];
        let mut read_total = 0u64;
        loop {
            let read = match limited.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(ArchiveError::Corrupt { path, detail: format!("cannot read `{name}`: {error}") });
                }
            };
            read_total += read as u64;
            if read_total > size {
                return Err(ArchiveError::SizeMismatch { name: name.to_owned(), expected: size, found: read_total });
            }
            hasher.update(&buffer[..read]);
            sink.write_all(&buffer[..read]).map_err(ArchiveError::io(&path))?;
        }
        if read_total != size {
            return Err(ArchiveError::SizeMismatch { name: name.to_owned(), expected: size, found: read_total });
        }
        if hex(&hasher.finalize()) != sha256 {
            return Err(ArchiveError::DigestMismatch { name: name.to_owned() });
        }
        Ok(())
    }
}

pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ArchiveError> {
    // The format version is read first, so that a future format is reported as such even when
    // the rest of its manifest would not parse.
    #[derive(serde::Deserialize)]
    struct Version {
        format: u32,
    }
    let version: Version =
        serde_json::from_slice(bytes).map_err(|error| ArchiveError::InvalidManifest(error.to_string()))?;
    if version.format != FORMAT_VERSION {
        return Err(ArchiveError::UnknownFormat { found: version.format, supported: FORMAT_VERSION });
    }
    serde_json::from_slice(bytes).map_err(|error| ArchiveError::InvalidManifest(error.to_string()))
}

/// Why an entry name is not a safe relative path, if it is not.
pub(crate) fn unsafe_path(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_NAME {
        return Some(NAME_TOO_LONG);
    }
    if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') {
        return Some("it is absolute");
    }
    if name.contains('\\') {
        return Some("it contains a backslash");
    }
    if name.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if name.split('/').any(|component| component == "..") {
        return Some("it climbs out of the destination with `..`");
    }
    if name.split('/').any(|component| component.is_empty() || component == ".") {
        return Some("it has an empty or `.` component");
    }
    None
}

/// Where an entry goes in an unpacked project: `source/` and `resources/` are dropped, the
/// definition stays at the root, the binary is not unpacked.
fn project_path(path: &str, kind: EntryKind) -> Option<&str> {
    match kind {
        EntryKind::Definition => Some(path),
        EntryKind::Source => path.strip_prefix("source/"),
        EntryKind::Resource => path.strip_prefix("resources/"),
        EntryKind::Binary => None,
    }
}

/// Removes what a failed unpack wrote: the destination if it was created, else its content.
fn clean(destination: &Path, existed: bool) {
    // Best effort: the unpack's own error is the one to report.
    if !existed {
        std::fs::remove_dir_all(destination).ok();
        return;
    }
    if let Ok(entries) = std::fs::read_dir(destination) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).ok()
            } else {
                std::fs::remove_file(&path).ok()
            };
        }
    }
}
