//! `xif verify [--path DIR] [--definition-only] [--format human|json]`

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use xif_project::VerifyOptions;

use crate::commands::BuildArgs;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The project directory, which holds `extension.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub path: PathBuf,
    /// Verify the definition only, without updating the source code or compiling
    #[arg(long)]
    pub definition_only: bool,
    /// `human`: rustc-style diagnostics on stderr; `json`: one JSON document on stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people, on stderr.
    Human,
    /// For machines, on stdout.
    Json,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let options = VerifyOptions {
        definition_only: args.definition_only,
        build: args.build.options(),
        ..VerifyOptions::default()
    };
    let human = args.format == Format::Human;
    let verification = xif_project::verify_project(&args.path, &options, &mut |progress| {
        if human {
            output::progress(progress);
        }
    })?;
    output::report(&args.path, &verification, args.format)?;
    Ok(if verification.has_errors() { Exit::Errors } else { Exit::Success })
}
