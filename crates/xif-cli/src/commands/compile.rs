//! `xif compile [--path DIR] [--profile P] [--timeout S]`

use std::path::PathBuf;

use clap::Args;

use crate::commands::BuildArgs;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The project directory, which holds `Cargo.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn run(args: &CompileArgs) -> anyhow::Result<Exit> {
    let outcome = xif_build::compile(&args.path, &args.build.options(), &mut |name| {
        output::progress(xif_project::Progress::Compiling(name));
    });
    let sources = output::sources(&args.path, None, &outcome.diagnostics);
    output::eprint(&xif_diagnostics::render_human(&outcome.diagnostics, &sources, output::stderr_color()));
    match &outcome.binary {
        Some(binary) if !outcome.diagnostics.iter().any(xif_diagnostics::Diagnostic::is_error) => {
            output::eprint(&format!("compiled: {}\n", xif_diagnostics::summary(&outcome.diagnostics)));
            output::print(&format!("{}\n", binary.display()));
            Ok(Exit::Success)
        }
        _ => {
            output::eprint(&format!("error: compiling failed: {}\n", xif_diagnostics::summary(&outcome.diagnostics)));
            Ok(Exit::Errors)
        }
    }
}
