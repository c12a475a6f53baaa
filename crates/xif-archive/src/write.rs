//! Writing a XIF, deterministically and in one streaming pass over each file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::DeflateEncoder;
use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::{ArchiveError, Entry, EntryKind, ExtensionId, FORMAT_VERSION, MANIFEST, Manifest};

/// A file to pack.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its path in the archive, such as `source/src/main.rs`.
    pub path: String,
    /// The file on disk.
    pub file: PathBuf,
    /// What it is.
    pub kind: EntryKind,
}

/// What the manifest says besides the entries.
#[derive(Debug, Clone)]
pub struct ManifestHeader {
    /// The extension.
    pub extension: ExtensionId,
    /// The binary's target triple.
    pub target: String,
    /// The compiler's version.
    pub toolchain: String,
    /// The binary's protocol version.
    pub protocol: u32,
}

/// Bytes read from a file at a time.
const CHUNK: usize = 1 << 20;
/// Bytes of a file that decide whether it is compressed.
const PROBE: usize = 64 * 1024;

/// Writes `inputs` and their manifest to the XIF at `output` and returns the manifest. The
/// archive is written to a temporary file beside `output` and renamed into place, so that a
/// failure leaves no partial archive and an existing one untouched.
pub fn write(output: &Path, mut inputs: Vec<Input>, header: ManifestHeader) -> Result<Manifest, ArchiveError> {
    inputs.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = inputs.windows(2).find(|pair| pair[0].path == pair[1].path) {
        return Err(ArchiveError::Duplicate { name: pair[0].path.clone() });
    }
    let binary = inputs
        .iter()
        .find(|input| input.kind == EntryKind::Binary)
        .map(|input| input.path.clone())
        .ok_or_else(|| ArchiveError::InvalidManifest("the archive has no binary".into()))?;
    let directory = output.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temporary =
        tempfile::Builder::new().prefix(".xif-").tempfile_in(directory).map_err(ArchiveError::io(directory))?;
    let writer = BufWriter::with_capacity(CHUNK, temporary.as_file().try_clone().map_err(ArchiveError::io(output))?);
    let mut zip = zip::ZipWriter::new(writer);
    let zip_error = |error: zip::result::ZipError| ArchiveError::Io { path: output.to_owned(), source: error.into() };

    let mut entries = Vec::with_capacity(inputs.len());
    let mut buffer = vec![0; CHUNK];
    for input in &inputs {
        let mut file = File::open(&input.file).map_err(ArchiveError::io(&input.file))?;
        let length = file.metadata().map_err(ArchiveError::io(&input.file))?.len();
        let filled = read_full(&mut file, &mut buffer[..PROBE]).map_err(ArchiveError::io(&input.file))?;
        let options = options(input.kind, length, &buffer[..filled]);
        zip.start_file(input.path.as_str(), options).map_err(zip_error)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut pending = filled;
        loop {
            hasher.update(&buffer[..pending]);
            zip.write_all(&buffer[..pending]).map_err(ArchiveError::io(output))?;
            size += pending as u64;
            pending = read_full(&mut file, &mut buffer).map_err(ArchiveError::io(&input.file))?;
            if pending == 0 {
                break;
            }
        }
        entries.push(Entry { path: input.path.clone(), kind: input.kind, size, sha256: hex(&hasher.finalize()) });
    }

    let manifest = Manifest {
        format: FORMAT_VERSION,
        extension: header.extension,
        target: header.target,
        toolchain: header.toolchain,
        protocol: header.protocol,
        binary,
        entries,
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|error| ArchiveError::InvalidManifest(error.to_string()))?;
    manifest_bytes.push(b'\n');
    zip.start_file(MANIFEST, fixed(CompressionMethod::Deflated, 0o644)).map_err(zip_error)?;
    zip.write_all(&manifest_bytes).map_err(ArchiveError::io(output))?;
    let mut writer = zip.finish().map_err(zip_error)?;
    writer.flush().map_err(ArchiveError::io(output))?;
    drop(writer);
    // The temporary file is private to its owner; an archive is meant to be shared.
    std::fs::set_permissions(temporary.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(ArchiveError::io(output))?;
    temporary.persist(output).map_err(|error| ArchiveError::Io { path: output.to_owned(), source: error.error })?;
    Ok(manifest)
}

/// The entry options: fixed time and permissions, and compression only when a sample of the
/// content shrinks, so that the choice depends on the content alone.
fn options(kind: EntryKind, length: u64, probe: &[u8]) -> SimpleFileOptions {
    let mode = if kind == EntryKind::Binary { 0o755 } else { 0o644 };
    let method = if compresses(probe) { CompressionMethod::Deflated } else { CompressionMethod::Stored };
    fixed(method, mode).large_file(length >= u64::from(u32::MAX) / 2)
}

fn fixed(method: CompressionMethod, mode: u32) -> SimpleFileOptions {
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(mode);
    if method == CompressionMethod::Deflated { options.compression_level(Some(6)) } else { options }
}

fn compresses(probe: &[u8]) -> bool {
    if probe.is_empty() {
        return false;
    }
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(probe.len()), Compression::fast());
    // Compressing into memory cannot fail.
    match encoder.write_all(probe).and_then(|()| encoder.finish()) {
        Ok(compressed) => compressed.len() * 10 < probe.len() * 9,
        Err(_) => false,
    }
}

/// Reads until `buffer` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
