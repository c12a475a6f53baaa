//! `xif unpack FILE DIR`

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
}

pub fn run(args: &UnpackArgs) -> anyhow::Result<Exit> {
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
