//! `xif keygen [--secret FILE] [--public FILE]`

use std::path::PathBuf;

use clap::Args;

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (readable by you only)
    #[arg(long, value_name = "FILE", default_value = "xif.key")]
    secret: PathBuf,
    /// Where to write the public key, which `minisign -V` and `xif inspect` check with
    #[arg(long, value_name = "FILE", default_value = "xif.pub")]
    public: PathBuf,
}

pub fn run(args: &KeygenArgs) -> anyhow::Result<Exit> {
    xif_archive::generate_keys(&args.secret, &args.public)?;
    output::eprint(&format!(
        "wrote the secret key to `{}` (keep it private) and the public key to `{}`\nnext: `xif save --sign {}`\n",
        args.secret.display(),
        args.public.display(),
        args.secret.display()
    ));
    Ok(Exit::Success)
}
