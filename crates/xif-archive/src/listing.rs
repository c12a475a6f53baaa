//! The checks both readers make on a central directory and on the manifest against it: the
//! file-backed [`XifReader`](crate::XifReader) and the upload's one-pass
//! [`StreamCheck`](crate::StreamCheck). One place, so that what one accepts the other accepts.

use std::collections::{HashMap, HashSet};

use crate::read::{Limits, RATIO_FLOOR, unsafe_path};
use crate::{ArchiveError, EntryKind, MANIFEST, Manifest};

/// The entries of a central directory, admitted one by one in its order.
pub(crate) struct Listing {
    limits: Limits,
    /// Names in the directory's order.
    order: Vec<String>,
    sizes: HashMap<String, u64>,
    total: u64,
}

impl Listing {
    /// An empty listing for about `capacity` entries.
    pub(crate) fn new(limits: Limits, capacity: usize) -> Self {
        Self { limits, order: Vec::with_capacity(capacity), sizes: HashMap::with_capacity(capacity), total: 0 }
    }

    /// Admits the next entry: a safe name, not a link, not listed before, within the size,
    /// total and compression-ratio limits.
    pub(crate) fn admit(&mut self, name: String, link: bool, size: u64, compressed: u64) -> Result<(), ArchiveError> {
        let limits = self.limits;
        if let Some(reason) = unsafe_path(&name) {
            return Err(ArchiveError::UnsafePath { name, reason });
        }
        if link {
            return Err(ArchiveError::Link { name });
        }
        if self.sizes.contains_key(&name) {
            return Err(ArchiveError::Duplicate { name });
        }
        if size > limits.max_entry_size {
            return Err(ArchiveError::EntryTooLarge { name, size, limit: limits.max_entry_size });
        }
        self.total = self.total.saturating_add(size);
        if self.total > limits.max_total_size {
            return Err(ArchiveError::TotalTooLarge { size: self.total, limit: limits.max_total_size });
        }
        if size >= RATIO_FLOOR {
            let ratio = size / compressed.max(1);
            if ratio > limits.max_ratio {
                return Err(ArchiveError::CompressionRatio { name, ratio, limit: limits.max_ratio });
            }
        }
        self.order.push(name.clone());
        self.sizes.insert(name, size);
        Ok(())
    }

    /// Whether the manifest is among the entries.
    pub(crate) fn has_manifest(&self) -> Result<(), ArchiveError> {
        if self.sizes.contains_key(MANIFEST) { Ok(()) } else { Err(ArchiveError::MissingManifest) }
    }

    /// The manifest against the entries: each listed once, present, of the size it says; every
    /// entry but the manifest listed; the binary a binary entry.
    pub(crate) fn check_manifest(&self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let mut listed = HashSet::with_capacity(manifest.entries.len());
        for entry in &manifest.entries {
            if !listed.insert(entry.path.as_str()) {
                return Err(ArchiveError::InvalidManifest(format!("`{}` is listed twice", entry.path)));
            }
            match self.sizes.get(&entry.path) {
                None => return Err(ArchiveError::MissingEntry { name: entry.path.clone() }),
                Some(size) if *size != entry.size => {
                    return Err(ArchiveError::SizeMismatch {
                        name: entry.path.clone(),
                        expected: entry.size,
                        found: *size,
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(name) = self.order.iter().find(|name| *name != MANIFEST && !listed.contains(name.as_str())) {
            return Err(ArchiveError::NotInManifest { name: name.clone() });
        }
        if !manifest.entries.iter().any(|entry| entry.path == manifest.binary && entry.kind == EntryKind::Binary) {
            return Err(ArchiveError::InvalidManifest(format!(
                "the binary `{}` is not a binary entry",
                manifest.binary
            )));
        }
        Ok(())
    }
}
