//! `xif update-source [--path DIR]`

use std::path::PathBuf;

use clap::Args;
use xif_project::{BINDINGS_FILE, MAIN_FILE, VerifyOptions};

use crate::commands::verify::Format;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct UpdateSourceArgs {
    /// The project directory, which holds `extension.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
}

pub fn run(args: &UpdateSourceArgs) -> anyhow::Result<Exit> {
    let mut verification = xif_project::verify_definition(&args.path, &VerifyOptions::default())?;
    if !verification.has_errors()
        && let Ok(definition) = &verification.loaded.definition
    {
        let update = xif_project::update_source(&args.path, definition)?;
        let mut lines = String::new();
        if update.bindings_written {
            lines.push_str(&format!("wrote `{BINDINGS_FILE}`\n"));
        } else {
            lines.push_str(&format!("`{BINDINGS_FILE}` is up to date\n"));
        }
        for action in &update.stubs {
            lines.push_str(&format!("added a stub for action `{action}` to `{MAIN_FILE}`\n"));
        }
        output::eprint(&lines);
        verification.diagnostics.extend(update.diagnostics.iter().cloned());
        verification.source = Some(update);
    }
    output::report(&args.path, &verification, Format::Human)?;
    Ok(if verification.has_errors() { Exit::Errors } else { Exit::Success })
}
