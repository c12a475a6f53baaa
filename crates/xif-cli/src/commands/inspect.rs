//! `xif inspect FILE [--json] [--public-key KEY]`

use std::path::{Path, PathBuf};

use clap::Args;
use xif_archive::{Limits, XifReader};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The XIF to inspect
    file: PathBuf,
    /// Print the manifest as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Check the signature of the whole file in FILE.minisig with this minisign public key
    #[arg(long, value_name = "KEY")]
    public_key: Option<PathBuf>,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<Exit> {
    let mut reader = match XifReader::open(&args.file, Limits::default()) {
        Ok(reader) => reader,
        Err(error) => return Ok(output::archive_refused(&error)),
    };
    if let Err(error) = reader.check() {
        return Ok(output::archive_refused(&error));
    }
    let signature = match &args.public_key {
        None => None,
        Some(key) => match check_signature(&args.file, key) {
            Ok(path) => Some(path),
            Err(exit) => return Ok(exit),
        },
    };
    let manifest = reader.manifest();
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(manifest)?));
    } else {
        let mut text = format!(
            "{} {}\nformat {}, protocol {}, built for {} by {}\nbinary: {}\n\n",
            manifest.extension.name,
            manifest.extension.version,
            manifest.format,
            manifest.protocol,
            manifest.target,
            manifest.toolchain,
            manifest.binary
        );
        for entry in &manifest.entries {
            text.push_str(&format!("{:>10}  {}  {}\n", output::bytes(entry.size), &entry.sha256[..16], entry.path));
        }
        output::print(&text);
    }
    let mut status = format!("checked: {} entries match their digests\n", manifest.entries.len());
    if let Some(path) = signature {
        status.push_str(&format!("signature `{}` is valid for this public key\n", path.display()));
    }
    output::eprint(&status);
    Ok(Exit::Success)
}

/// Checks the signature in `FILE.minisig` of the whole file `file` with the public key `key`;
/// returns the signature's path, or reports why it is refused and the exit code.
pub fn check_signature(file: &Path, key: &Path) -> Result<PathBuf, Exit> {
    let path = xif_project::signature_path(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            output::eprint(&format!("error: cannot read the signature `{}`: {error}\n", path.display()));
            return Err(Exit::Errors);
        }
    };
    match xif_archive::verify_file(key, file, &text) {
        Ok(()) => Ok(path),
        Err(error) => Err(output::archive_refused(&error)),
    }
}
