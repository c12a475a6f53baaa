//! `xif unpack FILE DIR [--public-key KEY]`: refuses whatever `xif inspect` refuses, since
//! unpacking reads and checks every entry (the binary too) through the reader's one check path.

use std::path::PathBuf;

use clap::Args;
use xif_archive::{Limits, XifReader};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The XIF to unpack
    file: PathBuf,
    /// The directory to unpack into; it must not exist or be empty
    directory: PathBuf,
    /// First check the signature in FILE.minisig with this minisign public key
    #[arg(long, value_name = "KEY")]
    public_key: Option<PathBuf>,
}

pub fn run(args: &UnpackArgs) -> anyhow::Result<Exit> {
    if let Some(key) = &args.public_key
        && let Err(exit) = crate::commands::inspect::check_signature(&args.file, key)
    {
        return Ok(exit);
    }
    let outcome = XifReader::open(&args.file, Limits::default()).and_then(|mut reader| {
        reader.unpack(&args.directory)?;
        Ok(reader.manifest().extension.clone())
    });
    match outcome {
        Ok(extension) => {
            output::eprint(&format!(
                "unpacked `{}` {} into `{}`\nnext: `xif verify --path {}`\n",
                extension.name,
                extension.version,
                args.directory.display(),
                args.directory.display()
            ));
            Ok(Exit::Success)
        }
        Err(error) => Ok(output::archive_refused(&error)),
    }
}
