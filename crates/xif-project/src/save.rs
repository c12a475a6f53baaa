//! Save: verify the project, then pack it into a XIF, and sign it if asked.

use std::path::{Path, PathBuf};

use xif_archive::{EntryKind, ExtensionId, Input, Manifest, ManifestHeader};
use xif_definition::Definition;

use crate::{DEFINITION_FILE, Progress, ProjectError, Verification, VerifyOptions, verify_project};

/// How to save.
#[derive(Debug, Default, Clone)]
pub struct SaveOptions<'a> {
    /// How to verify first.
    pub verify: VerifyOptions<'a>,
    /// Where to write the XIF.
    pub output: PathBuf,
    /// A minisign secret key to sign the XIF with; the signature goes to `OUTPUT.minisig`.
    pub sign: Option<PathBuf>,
}

/// What Save did.
#[derive(Debug)]
pub struct Saved {
    /// The verification that came first; nothing was saved when it has errors.
    pub verification: Verification,
    /// The XIF's manifest, when it was written.
    pub manifest: Option<Manifest>,
    /// The signature file, when one was written.
    pub signature: Option<PathBuf>,
}

/// Verifies the project in `directory` and, when it has no errors, writes its XIF.
pub fn save(
    directory: &Path,
    options: &SaveOptions<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Saved, ProjectError> {
    let verification = verify_project(directory, &options.verify, progress)?;
    let (Ok(definition), Some(binary)) = (&verification.loaded.definition, verification.binary.clone()) else {
        return Ok(Saved { verification, manifest: None, signature: None });
    };
    if verification.has_errors() {
        return Ok(Saved { verification, manifest: None, signature: None });
    }
    let packed = pack(directory, definition, &binary, &options.output, options.sign.as_deref(), false)?;
    Ok(Saved { verification, manifest: Some(packed.manifest), signature: packed.signature })
}

/// What [`pack`] did.
#[derive(Debug)]
pub struct Packed {
    /// The XIF's manifest.
    pub manifest: Manifest,
    /// The signature file, when one was written.
    pub signature: Option<PathBuf>,
    /// The XIF already held exactly these files, and was kept as it was.
    pub reused: bool,
}

/// Packs the verified project in `directory` (its `definition` and compiled `binary`) into a XIF
/// at `output`, signed with the minisign secret key `sign` if given (the whole file, into
/// `OUTPUT.minisig`). With `reuse`, a XIF that was packed from the same files (same paths, sizes
/// and modification times, recorded next to it in `OUTPUT.inputs`) is kept instead of being
/// written again, and so is its signature when `sign` made it; a new archive never keeps an
/// old signature.
pub fn pack(
    directory: &Path,
    definition: &Definition,
    binary: &Path,
    output: &Path,
    sign: Option<&Path>,
    reuse: bool,
) -> Result<Packed, ProjectError> {
    let inputs = inputs(directory, definition, binary, output, sign)?;
    let stamp = {
        let mut name = output.as_os_str().to_owned();
        name.push(".inputs");
        PathBuf::from(name)
    };
    let fingerprint = if reuse { Some(fingerprint(&inputs)?) } else { None };
    if let Some(fingerprint) = &fingerprint
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint.as_str())
        && let Ok(reader) = xif_archive::XifReader::open(output, xif_archive::Limits::default())
    {
        // The archive is kept, so its signature must be too: one made by this key over these
        // bytes stays, any other is replaced.
        let signature = sign.map(|key| sign_archive(key, output, reader.manifest())).transpose()?;
        return Ok(Packed { manifest: reader.manifest().clone(), signature, reused: true });
    }
    // A stamp must never outlive the archive it describes, nor a signature.
    std::fs::remove_file(&stamp).ok();
    std::fs::remove_file(signature_path(output)).ok();
    let (target, toolchain) = toolchain()?;
    let header = ManifestHeader {
        extension: ExtensionId {
            name: definition.extension.name.value.clone(),
            version: definition.extension.version.value.to_string(),
        },
        target,
        toolchain,
        protocol: xif_protocol::PROTOCOL_VERSION,
    };
    let manifest = xif_archive::write(output, inputs, header)?;
    let signature = sign.map(|key| sign_archive(key, output, &manifest)).transpose()?;
    if let Some(fingerprint) = fingerprint {
        fs_err::write(&stamp, fingerprint)?;
    }
    Ok(Packed { manifest, signature, reused: false })
}

/// Signs the whole XIF at `output` with the secret key `key` into `OUTPUT.minisig`, unless that
/// file holds a signature by this key over these bytes already (signatures are randomised, so
/// signing again would change the file for nothing). Returns the signature file.
fn sign_archive(key: &Path, output: &Path, manifest: &Manifest) -> Result<PathBuf, ProjectError> {
    let path = signature_path(output);
    if let Ok(existing) = std::fs::read_to_string(&path)
        && xif_archive::is_signed_by(key, output, &existing)?
    {
        return Ok(path);
    }
    let comment = format!("{} {} {}", manifest.extension.name, manifest.extension.version, file_name(output));
    let text = xif_archive::sign_file(key, output, &comment)?;
    fs_err::write(&path, text)?;
    Ok(path)
}

/// Each input's archive path, size and modification time, one line each.
fn fingerprint(inputs: &[Input]) -> Result<String, ProjectError> {
    let mut text = String::new();
    for input in inputs {
        let metadata = fs_err::metadata(&input.file)?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |time| time.as_nanos());
        text.push_str(&format!("{}\t{}\t{modified}\n", input.path, metadata.len()));
    }
    Ok(text)
}

/// The signature file of the XIF at `archive`: `NAME.xif.minisig`.
pub fn signature_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The files to pack: the definition, the declared resources and icon, the binary, and every
/// source file that is not build output, ignored (`.gitignore`, hidden), a resource, or an
/// archive or signature.
fn inputs(
    directory: &Path,
    definition: &Definition,
    binary: &Path,
    output: &Path,
    signing_key: Option<&Path>,
) -> Result<Vec<Input>, ProjectError> {
    let mut inputs = vec![Input {
        path: DEFINITION_FILE.into(),
        file: directory.join(DEFINITION_FILE),
        kind: EntryKind::Definition,
    }];
    let mut resources: Vec<&str> = definition.resources.iter().map(|resource| resource.path.value.as_str()).collect();
    resources.extend(definition.extension.icon.as_ref().map(|icon| icon.value.as_str()));
    resources.sort_unstable();
    resources.dedup();
    for resource in &resources {
        inputs.push(Input {
            path: format!("resources/{resource}"),
            file: directory.join(resource),
            kind: EntryKind::Resource,
        });
    }
    let binary_name =
        binary.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "extension".into());
    inputs.push(Input { path: format!("binary/{binary_name}"), file: binary.to_owned(), kind: EntryKind::Binary });

    let root = directory.canonicalize()?;
    let excluded_directories: Vec<PathBuf> =
        [Some(root.join("target")), std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)]
            .into_iter()
            .flatten()
            .filter_map(|path| path.canonicalize().ok())
            .collect();
    let output = output.canonicalize().ok();
    let signing_key = signing_key.and_then(|key| key.canonicalize().ok());
    let walker = ignore::WalkBuilder::new(&root)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(false)
        .git_global(false)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .filter_entry(move |entry| !excluded_directories.iter().any(|excluded| entry.path() == excluded))
        .build();
    for entry in walker {
        let entry = entry.map_err(|error| std::io::Error::other(error.to_string()))?;
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(&root) else { continue };
        let relative = relative.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
        let is_archive = relative.ends_with(".xif") || relative.ends_with(".minisig");
        if relative == DEFINITION_FILE
            || is_archive
            || resources.contains(&relative.as_str())
            || output.as_deref() == Some(path)
            || signing_key.as_deref() == Some(path)
            || is_secret_key(path)
        {
            continue;
        }
        inputs.push(Input { path: format!("source/{relative}"), file: path.to_owned(), kind: EntryKind::Source });
    }
    Ok(inputs)
}

/// Whether `path` holds a minisign secret key, which must never be packed into an archive that
/// others download. Such a file is small: a comment line, then base64 that starts with the
/// signature algorithm `Ed` and a key derivation algorithm (`Sc`, or none), which encode as
/// `RWRTY` and `RWQAA`.
fn is_secret_key(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else { return false };
    if metadata.len() > 4096 {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let mut lines = text.lines();
    lines.next().is_some_and(|line| line.starts_with("untrusted comment:"))
        && lines.next().is_some_and(|line| line.starts_with("RWRTY") || line.starts_with("RWQAA"))
}

/// The host target triple and the compiler's version, from `rustc -vV`.
fn toolchain() -> Result<(String, String), ProjectError> {
    let program = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = std::process::Command::new(&program)
        .arg("-vV")
        .output()
        .map_err(|error| ProjectError::Toolchain { program: program.clone(), detail: error.to_string() })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next().unwrap_or_default().trim().to_owned();
    let host = text.lines().find_map(|line| line.strip_prefix("host: ")).map(str::trim).unwrap_or_default().to_owned();
    if !output.status.success() || version.is_empty() || host.is_empty() {
        return Err(ProjectError::Toolchain {
            program,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok((host, version))
}
