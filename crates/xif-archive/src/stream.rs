//! Checking a XIF as its bytes arrive, in one pass, without a file: what the server does with
//! an upload.
//!
//! A zip can be read front to back: each entry is a local header (name, method, sizes, CRC)
//! followed by its data, and the central directory and its end record come last. The checker
//! reads each local header, inflates the entry (`flate2`, as the `zip` crate does) and hashes
//! it (SHA-256 and CRC-32), keeping nothing but the entries asked for (the definition, the
//! manifest); it keeps the tail from the first central header on (bounded), and at the end
//! cross-checks the central directory against the local headers it saw (offset, name, method,
//! sizes, CRC) and makes every check that [`XifReader::open`](crate::XifReader::open) and
//! [`XifReader::check`](crate::XifReader::check) make, in their order and with their errors.
//! Hand-written because the `zip` crate reads only from a seekable source.
//!
//! Stricter than the file reader on two points, which no writer of XIFs produces: bytes before
//! the first entry, and entries whose sizes follow their data (flag bit 3, written by streaming
//! zip writers), are refused as damaged.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::end::{self, Directory, u16_at, u32_at, u64_at};
use crate::listing::Listing;
use crate::read::{Limits, MAX_MANIFEST, MAX_NAME, NAME_TOO_LONG, RATIO_FLOOR, parse_manifest};
use crate::write::hex;
use crate::{ArchiveError, MANIFEST, Manifest};

const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const END_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
/// The end record is 22 bytes, followed by a comment of at most 65,535.
const END_SEARCH: usize = 22 + 65_535;
/// What a central directory header may take beyond its fixed part and name: extra fields
/// (zip64 sizes, times, Unix ids) and a comment, far more than any zip writer puts there.
const HEADER_SLACK: usize = 96;
/// What the end records may take: the zip64 record and locator, the end record and its
/// longest comment.
const END_RECORDS: usize = 76 + 22 + 65_535;

/// What a local header said, and what its data turned out to be.
struct Local {
    offset: u64,
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    /// The SHA-256 of the data, once read whole; `None` when it was not inflated (over a
    /// limit, which the central directory's checks then report).
    digest: Option<String>,
    /// How many bytes the data inflated to.
    inflated: u64,
    /// What is wrong with the data itself (its CRC, a broken deflate stream).
    problem: Option<String>,
    /// The data, for the entries asked for.
    kept: Option<Vec<u8>>,
}

/// The entry whose data is being read.
struct Current {
    /// Whether its local header is the last in `locals` (not one past the entry limit).
    recorded: bool,
    remaining: u64,
    inflater: Option<flate2::Decompress>,
    ended: bool,
    skip: bool,
    sha256: Sha256,
    crc: crc32fast::Hasher,
    keep: Option<(Vec<u8>, u64)>,
}

enum State {
    /// Expecting a signature: a local header, or the central directory.
    Header,
    /// Inside an entry's data.
    Data(Box<Current>),
    /// From the first central header on: kept whole.
    Tail,
    /// Refused: the rest is ignored.
    Failed,
}

/// A XIF checked as it streams in: feed every byte with [`StreamCheck::update`], then
/// [`StreamCheck::finish`].
pub struct StreamCheck {
    label: PathBuf,
    limits: Limits,
    keep: Vec<(String, u64)>,
    state: State,
    /// Bytes of a header not yet whole.
    pending: Vec<u8>,
    /// The stream offset of the next byte not yet consumed (pending bytes included).
    offset: u64,
    locals: Vec<Local>,
    /// Local headers seen past the entry limit, counted only.
    uncounted: u64,
    /// The most the tail may take: a central header for each local header seen (their names
    /// and some slack), and the end records. The directory lists exactly those entries, so a
    /// larger one is refused as it arrives: the memory an upload takes follows what it sent,
    /// never what its tail claims.
    max_tail: usize,
    /// The sizes the local headers declare, added up.
    declared_total: u64,
    tail: Vec<u8>,
    tail_start: u64,
    error: Option<ArchiveError>,
    buffer: Vec<u8>,
}

/// An archive that passed every check, with the entries asked for.
#[derive(Debug)]
pub struct StreamChecked {
    manifest: Manifest,
    kept: HashMap<String, Vec<u8>>,
}

impl StreamChecked {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Entry `name`, checked against the manifest, as [`XifReader::read_entry`](crate::XifReader::read_entry)
    /// gives it: refused when the manifest does not list it or it is over `max` bytes. It must
    /// have been asked for when the check began.
    pub fn entry(&self, name: &str, max: u64) -> Result<Vec<u8>, ArchiveError> {
        let Some(entry) = self.manifest.entries.iter().find(|entry| entry.path == name) else {
            return Err(ArchiveError::MissingEntry { name: name.to_owned() });
        };
        if entry.size > max {
            return Err(ArchiveError::EntryTooLarge { name: entry.path.clone(), size: entry.size, limit: max });
        }
        self.kept.get(name).cloned().ok_or_else(|| ArchiveError::MissingEntry { name: name.to_owned() })
    }
}

impl StreamCheck {
    /// A check under `limits`, which keeps the entries named in `keep` (each up to its size
    /// limit) for [`StreamChecked::entry`]. `label` stands for the archive in the errors that
    /// name one (it is never opened).
    pub fn new(label: &Path, limits: Limits, keep: &[(&str, u64)]) -> Self {
        let mut keep: Vec<(String, u64)> = keep.iter().map(|(name, max)| ((*name).to_owned(), *max)).collect();
        keep.push((MANIFEST.to_owned(), MAX_MANIFEST));
        Self {
            label: label.to_owned(),
            limits,
            keep,
            state: State::Header,
            pending: Vec::new(),
            offset: 0,
            locals: Vec::new(),
            uncounted: 0,
            max_tail: END_RECORDS,
            declared_total: 0,
            tail: Vec::new(),
            tail_start: 0,
            error: None,
            buffer: vec![0; 1 << 16],
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> ArchiveError {
        ArchiveError::Corrupt { path: self.label.clone(), detail: detail.into() }
    }

    fn fail(&mut self, error: ArchiveError) {
        self.error = Some(error);
        self.state = State::Failed;
        self.pending = Vec::new();
        self.tail = Vec::new();
    }

    /// Reads the next bytes of the archive. A refusal found on the way is kept for
    /// [`StreamCheck::finish`], and what follows is ignored.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Failed => return,
                State::Tail => {
                    if self.tail.len() + bytes.len() > self.max_tail {
                        let error = if self.uncounted > 0 {
                            ArchiveError::TooManyEntries {
                                count: self
                                    .locals
                                    .len()
                                    .saturating_add(usize::try_from(self.uncounted).unwrap_or(usize::MAX)),
                                limit: self.limits.max_entries,
                            }
                        } else {
                            self.corrupt(format!(
                                "its central directory is longer than its {} entries need",
                                self.locals.len()
                            ))
                        };
                        self.fail(error);
                        return;
                    }
                    self.tail.extend_from_slice(bytes);
                    self.offset += bytes.len() as u64;
                    return;
                }
                State::Data(current) => {
                    let take = usize::try_from(current.remaining).unwrap_or(usize::MAX).min(bytes.len());
                    let (data, rest) = bytes.split_at(take);
                    bytes = rest;
                    current.remaining -= take as u64;
                    self.offset += take as u64;
                    if !current.skip {
                        self.data(data);
                    }
                    if let State::Data(current) = &self.state
                        && current.remaining == 0
                    {
                        self.end_entry();
                    }
                }
                State::Header => {
                    let consumed = self.header(bytes);
                    bytes = &bytes[consumed..];
                }
            }
        }
    }

    /// Takes header bytes from `bytes` into `pending` until a whole header is there, and reads
    /// it; returns how many bytes it took.
    fn header(&mut self, bytes: &[u8]) -> usize {
        // A signature first, then a fixed part, then the variable lengths it gives.
        let needed = |pending: &[u8]| -> usize {
            if pending.len() < 4 {
                return 4;
            }
            if u32_at(pending, 0) != Some(LOCAL_SIGNATURE) {
                return 4;
            }
            if pending.len() < 30 {
                return 30;
            }
            30 + usize::from(u16_at(pending, 26).unwrap_or(0)) + usize::from(u16_at(pending, 28).unwrap_or(0))
        };
        let mut taken = 0;
        loop {
            let want = needed(&self.pending);
            if self.pending.len() >= want {
                break;
            }
            let more = (want - self.pending.len()).min(bytes.len() - taken);
            if more == 0 {
                return taken;
            }
            self.pending.extend_from_slice(&bytes[taken..taken + more]);
            taken += more;
        }
        let signature = u32_at(&self.pending, 0).unwrap_or(0);
        if signature != LOCAL_SIGNATURE {
            if matches!(signature, CENTRAL_SIGNATURE | END_SIGNATURE | ZIP64_END_SIGNATURE) {
                self.tail_start = self.offset;
                self.tail = std::mem::take(&mut self.pending);
                self.offset += 4;
                self.state = State::Tail;
            } else {
                let error = self.corrupt(format!("the bytes at offset {} are not a zip entry", self.offset));
                self.fail(error);
            }
            return taken;
        }
        let header = std::mem::take(&mut self.pending);
        let offset = self.offset;
        self.offset += header.len() as u64;
        if let Err(error) = self.local(offset, &header) {
            self.fail(error);
        }
        taken
    }

    /// Reads a whole local header at stream `offset` and starts reading its data.
    fn local(&mut self, offset: u64, header: &[u8]) -> Result<(), ArchiveError> {
        let field16 = |at| u16_at(header, at).unwrap_or(0);
        let field32 = |at| u32_at(header, at).unwrap_or(0);
        let flags = field16(6);
        let method = field16(8);
        let crc = field32(14);
        let mut compressed = u64::from(field32(18));
        let mut size = u64::from(field32(22));
        let name_length = usize::from(field16(26));
        let name = header[30..30 + name_length].to_vec();
        let extra = &header[30 + name_length..];
        let shown = String::from_utf8_lossy(&name).into_owned();
        if flags & 0x0001 != 0 {
            return Err(self.corrupt(format!("entry `{shown}` is encrypted")));
        }
        if flags & 0x0008 != 0 {
            return Err(self.corrupt(format!(
                "entry `{shown}` gives its sizes after its data (a zip written as a stream); save the archive with `xif save`"
            )));
        }
        if size == 0xffff_ffff || compressed == 0xffff_ffff {
            let (zip64_size, zip64_compressed, _) = zip64_extra(extra, size, compressed, 0)
                .ok_or_else(|| self.corrupt(format!("entry `{shown}` has a damaged zip64 field")))?;
            size = zip64_size;
            compressed = zip64_compressed;
        }
        if !matches!(method, 0 | 8) {
            return Err(self.corrupt(format!("entry `{shown}` uses compression method {method}, which XIF does not")));
        }
        if name.len() > MAX_NAME {
            // Before it is kept: names are what an upload's memory holds per entry.
            return Err(ArchiveError::UnsafePath { name: shown, reason: NAME_TOO_LONG });
        }
        if self.locals.len() >= self.limits.max_entries {
            // Past the limit entries are only skipped: the end record's count is reported.
            self.uncounted += 1;
        } else {
            self.max_tail = self.max_tail.saturating_add(46 + HEADER_SLACK + name.len());
            self.locals.push(Local {
                offset,
                name: name.clone(),
                flags,
                method,
                crc,
                compressed,
                size,
                digest: None,
                inflated: 0,
                problem: None,
                kept: None,
            });
        }
        // An entry over a limit is not inflated: the central directory's checks report it. The
        // declared total bounds the work, as the file reader's does before it reads content.
        self.declared_total = self.declared_total.saturating_add(size);
        let skip = self.uncounted > 0
            || self.declared_total > self.limits.max_total_size
            || size > self.limits.max_entry_size
            || (size >= RATIO_FLOOR && size / compressed.max(1) > self.limits.max_ratio);
        let keep =
            self.keep.iter().find(|(kept, _)| kept.as_bytes() == name.as_slice()).map(|(_, max)| (Vec::new(), *max));
        let current = Box::new(Current {
            recorded: self.uncounted == 0,
            remaining: compressed,
            inflater: (method == 8).then(|| flate2::Decompress::new(false)),
            ended: method == 0,
            skip,
            sha256: Sha256::new(),
            crc: crc32fast::Hasher::new(),
            keep,
        });
        self.state = State::Data(current);
        if compressed == 0 {
            self.end_entry();
        }
        Ok(())
    }

    /// Inflates and hashes compressed `data` of the current entry.
    fn data(&mut self, data: &[u8]) {
        let State::Data(current) = &mut self.state else { return };
        if !current.recorded {
            return;
        }
        let Some(local) = self.locals.last_mut() else { return };
        let Some(mut inflater) = current.inflater.take() else {
            produce(data, current, local);
            return;
        };
        let mut input = data;
        while !input.is_empty() && !current.skip {
            if current.ended {
                local.problem = Some("its data goes on past the end of its deflate stream".into());
                break;
            }
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater.decompress(input, &mut self.buffer, flate2::FlushDecompress::None);
            let consumed = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX).min(input.len());
            let produced = usize::try_from(inflater.total_out() - before_out).unwrap_or(0).min(self.buffer.len());
            input = &input[consumed..];
            match status {
                Ok(status) => current.ended = status == flate2::Status::StreamEnd,
                Err(_) => {
                    local.problem = Some("its deflate stream is damaged".into());
                    break;
                }
            }
            produce(&self.buffer[..produced], current, local);
            if consumed == 0 && produced == 0 && !current.ended {
                local.problem = Some("its deflate stream stalls".into());
                break;
            }
        }
        current.inflater = Some(inflater);
    }

    /// Ends the current entry once its compressed data is read: drains the inflater, and
    /// records the entry's digest or what is wrong with it.
    fn end_entry(&mut self) {
        let State::Data(mut current) = std::mem::replace(&mut self.state, State::Header) else { return };
        if !current.recorded {
            return;
        }
        let Some(local) = self.locals.last_mut() else { return };
        if current.skip && local.problem.is_none() {
            // Over a limit: not inflated, reported by the central directory's checks.
            return;
        }
        if let Some(mut inflater) = current.inflater.take() {
            while !current.ended && local.problem.is_none() {
                let before_out = inflater.total_out();
                match inflater.decompress(&[], &mut self.buffer, flate2::FlushDecompress::Finish) {
                    Ok(status) => current.ended = status == flate2::Status::StreamEnd,
                    Err(_) => local.problem = Some("its deflate stream is damaged".into()),
                }
                let produced = usize::try_from(inflater.total_out() - before_out).unwrap_or(0).min(self.buffer.len());
                produce(&self.buffer[..produced], &mut current, local);
                if produced == 0 && !current.ended && local.problem.is_none() {
                    local.problem = Some("its deflate stream ends early".into());
                }
            }
        }
        if local.problem.is_some() {
            return;
        }
        if current.crc.clone().finalize() != local.crc {
            local.problem = Some("invalid checksum".into());
            return;
        }
        local.digest = Some(hex(&current.sha256.finalize()));
        local.kept = current.keep.take().map(|(kept, _)| kept);
    }

    /// Ends the check: the central directory against the local headers, then every check of
    /// the file reader, in its order.
    pub fn finish(mut self) -> Result<StreamChecked, ArchiveError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if !matches!(self.state, State::Tail) {
            return Err(self.corrupt("the archive ends before its central directory"));
        }
        let tail = std::mem::take(&mut self.tail);
        let central = self.central(&tail)?;
        self.check(central)
    }

    /// Reads the end record and the central directory from the tail, and checks them against
    /// the local headers.
    fn central(&self, tail: &[u8]) -> Result<Vec<CentralEntry>, ArchiveError> {
        let search_from = tail.len().saturating_sub(END_SEARCH);
        let end = (search_from..tail.len().saturating_sub(21))
            .rev()
            .find(|&at| u32_at(tail, at) == Some(END_SIGNATURE))
            .ok_or_else(|| self.corrupt("no end of central directory record"))?;
        // The end records by the rule the file reader (the `zip` crate) follows too.
        let Directory { count, size, offset, end: directory_end } =
            end::directory(tail, self.tail_start, end).map_err(|detail| self.corrupt(detail))?;
        let short = || self.corrupt("a short central directory");
        if count > self.limits.max_entries as u64 {
            return Err(ArchiveError::TooManyEntries {
                count: usize::try_from(count).unwrap_or(usize::MAX),
                limit: self.limits.max_entries,
            });
        }
        // The central directory starts where the entries end, and ends before the end records.
        if offset != self.tail_start || offset.checked_add(size) != Some(directory_end) {
            return Err(self.corrupt("the central directory is not where its end record says"));
        }
        let directory = &tail[..usize::try_from(size).map_err(|_| short())?];
        let mut entries = Vec::new();
        let mut at = 0;
        while at + 46 <= directory.len() {
            if u32_at(directory, at) != Some(CENTRAL_SIGNATURE) {
                return Err(self.corrupt("a damaged central directory header"));
            }
            let field16 = |offset| u16_at(directory, at + offset).unwrap_or(0);
            let field32 = |offset| u32_at(directory, at + offset).unwrap_or(0);
            let name_length = usize::from(field16(28));
            let extra_length = usize::from(field16(30));
            let comment_length = usize::from(field16(32));
            let name = directory
                .get(at + 46..at + 46 + name_length)
                .ok_or_else(|| self.corrupt("a name past the central directory's end"))?
                .to_vec();
            let extra = directory
                .get(at + 46 + name_length..at + 46 + name_length + extra_length)
                .ok_or_else(|| self.corrupt("an extra field past the central directory's end"))?;
            let (mut size, mut compressed, mut offset) =
                (u64::from(field32(24)), u64::from(field32(20)), u64::from(field32(42)));
            if size == 0xffff_ffff || compressed == 0xffff_ffff || offset == 0xffff_ffff {
                (size, compressed, offset) = zip64_extra(extra, size, compressed, offset)
                    .ok_or_else(|| self.corrupt("a damaged zip64 field in the central directory"))?;
            }
            entries.push(CentralEntry {
                made_by: field16(4),
                flags: field16(8),
                method: field16(10),
                crc: field32(16),
                compressed,
                size,
                external: field32(38),
                offset,
                name,
            });
            at += 46 + name_length + extra_length + comment_length;
        }
        // The headers fill the directory exactly: one whose comment runs into the end record
        // (or bytes left over) is damage that the file reader refuses too.
        if at != directory.len() {
            return Err(self.corrupt("a central directory header runs past the directory's end"));
        }
        // The names as the central directory has them, before anything else (as the file
        // reader does): two entries with one name is how content is smuggled past a check.
        let mut distinct = HashSet::with_capacity(entries.len());
        for entry in &entries {
            if !distinct.insert(entry.name.as_slice()) {
                return Err(ArchiveError::Duplicate { name: String::from_utf8_lossy(&entry.name).into_owned() });
            }
        }
        if entries.len() as u64 != count || self.uncounted > 0 || self.locals.len() != entries.len() {
            return Err(self.corrupt(format!(
                "the central directory lists {} entries, its end record {count}, and the archive holds {}",
                entries.len(),
                self.locals.len() as u64 + self.uncounted
            )));
        }
        let locals: HashMap<u64, &Local> = self.locals.iter().map(|local| (local.offset, local)).collect();
        for entry in &entries {
            let shown = String::from_utf8_lossy(&entry.name);
            let Some(local) = locals.get(&entry.offset) else {
                return Err(self.corrupt(format!("entry `{shown}` has no local header where the directory says")));
            };
            if local.name != entry.name
                || local.flags != entry.flags
                || local.method != entry.method
                || local.crc != entry.crc
                || local.compressed != entry.compressed
                || local.size != entry.size
            {
                return Err(self.corrupt(format!("entry `{shown}` differs between its local header and the directory")));
            }
        }
        Ok(entries)
    }

    /// The checks of [`XifReader::open`](crate::XifReader::open), then of
    /// [`XifReader::check`](crate::XifReader::check), on the central directory and the entries
    /// as read.
    fn check(&self, entries: Vec<CentralEntry>) -> Result<StreamChecked, ArchiveError> {
        let mut listing = Listing::new(self.limits, entries.len());
        for entry in &entries {
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            // As the zip crate's `unix_mode`: a Unix host's mode in the high bits.
            let link =
                entry.made_by >> 8 == 3 && entry.external != 0 && (entry.external >> 16) & 0o170_000 == 0o120_000;
            listing.admit(name, link, entry.size, entry.compressed)?;
        }
        listing.has_manifest()?;
        let by_name: HashMap<String, &Local> =
            self.locals.iter().map(|local| (String::from_utf8_lossy(&local.name).into_owned(), local)).collect();
        let manifest_bytes = match by_name.get(MANIFEST) {
            Some(Local { problem: Some(problem), .. }) => {
                return Err(self.corrupt(format!("cannot read `{MANIFEST}`: {problem}")));
            }
            Some(Local { kept: Some(kept), .. }) => kept.clone(),
            _ => return Err(self.corrupt(format!("cannot read `{MANIFEST}`"))),
        };
        let manifest = parse_manifest(&manifest_bytes)?;
        listing.check_manifest(&manifest)?;
        // The content: every listed entry's size and digest, in the manifest's order.
        let mut kept = HashMap::new();
        for entry in &manifest.entries {
            let Some(local) = by_name.get(&entry.path) else {
                return Err(ArchiveError::MissingEntry { name: entry.path.clone() });
            };
            if let Some(problem) = &local.problem {
                return Err(self.corrupt(format!("cannot read `{}`: {problem}", entry.path)));
            }
            if local.inflated != entry.size {
                return Err(ArchiveError::SizeMismatch {
                    name: entry.path.clone(),
                    expected: entry.size,
                    found: local.inflated,
                });
            }
            let Some(digest) = &local.digest else {
                return Err(self.corrupt(format!("cannot read `{}`", entry.path)));
            };
            if *digest != entry.sha256 {
                return Err(ArchiveError::DigestMismatch { name: entry.path.clone() });
            }
            if let Some(bytes) = &local.kept {
                kept.insert(entry.path.clone(), bytes.clone());
            }
        }
        Ok(StreamChecked { manifest, kept })
    }
}

/// An entry as the central directory lists it.
struct CentralEntry {
    made_by: u16,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    external: u32,
    offset: u64,
    name: Vec<u8>,
}

/// Hashes and keeps inflated `bytes` of the current entry; stops at more than its header's size.
fn produce(bytes: &[u8], current: &mut Current, local: &mut Local) {
    local.inflated += bytes.len() as u64;
    if local.inflated > local.size {
        // Longer than its header says: no need to inflate more.
        local.problem = Some(format!("it inflates to more than its {} bytes", local.size));
        current.skip = true;
        return;
    }
    current.sha256.update(bytes);
    current.crc.update(bytes);
    if let Some((kept, max)) = &mut current.keep {
        let room = usize::try_from(max.saturating_sub(kept.len() as u64)).unwrap_or(usize::MAX);
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// The sizes and offset a zip64 extra field (id 1) gives for those of `size`, `compressed` and
/// `offset` that are 0xffffffff, in that order; `None` when it lacks one.
fn zip64_extra(mut extra: &[u8], size: u64, compressed: u64, offset: u64) -> Option<(u64, u64, u64)> {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0)?;
        let length = usize::from(u16_at(extra, 2)?);
        let data = extra.get(4..4 + length)?;
        if id == 1 {
            let mut at = 0;
            let mut next = |value: u64| -> Option<u64> {
                if value != 0xffff_ffff {
                    return Some(value);
                }
                let read = u64_at(data, at)?;
                at += 8;
                Some(read)
            };
            let size = next(size)?;
            let compressed = next(compressed)?;
            let offset = next(offset)?;
            return Some((size, compressed, offset));
        }
        extra = &extra[4 + length..];
    }
    (size != 0xffff_ffff && compressed != 0xffff_ffff && offset != 0xffff_ffff).then_some((size, compressed, offset))
}
