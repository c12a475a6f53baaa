//! `xif new NAME [--path DIR]`

use std::path::PathBuf;

use clap::Args;

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The extension's name: letters, digits and `_`, starting with a letter
    name: String,
    /// The directory to create the project in [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
}

pub fn run(args: &NewArgs) -> anyhow::Result<Exit> {
    let directory = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    xif_project::create_project(&args.name, &directory)?;
    output::eprint(&format!(
        "created extension `{}` in `{}`\nnext: `xif verify --path {}`\n",
        args.name,
        directory.display(),
        directory.display()
    ));
    Ok(Exit::Success)
}
