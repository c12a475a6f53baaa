//! `xif verify [--path DIR] [--definition-only] [--format human|json]`

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;
use xif_diagnostics::{JsonDiagnostic, count, render_human, render_json, summary};
use xif_project::{Verification, VerifyOptions};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The project directory, which holds `extension.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Verify the definition only, without updating the source code or compiling
    #[arg(long)]
    definition_only: bool,
    /// `human`: rustc-style diagnostics on stderr; `json`: one JSON document on stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

/// The JSON document of `xif verify --format json`.
#[derive(Serialize)]
struct Report<'a> {
    /// The definition file verified.
    definition: String,
    /// The extension's name and version, when the definition could be read.
    extension: Option<ExtensionId<'a>>,
    /// How many diagnostics are errors.
    errors: usize,
    /// How many are warnings.
    warnings: usize,
    /// Every diagnostic, in source order.
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct ExtensionId<'a> {
    name: &'a str,
    version: String,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<Exit> {
    // Source update and compilation join this command with the Compile step; until then the
    // definition is all there is to verify, with or without `--definition-only`.
    let verification = xif_project::verify_definition(&args.path, &VerifyOptions::default())?;
    let shown = display_path(&verification.loaded.path);
    match args.format {
        Format::Human => output::eprint(&human(&verification, &shown)),
        Format::Json => {
            let (errors, warnings) = count(&verification.diagnostics);
            let report = Report {
                definition: shown.clone(),
                extension: verification.definition().map(|definition| ExtensionId {
                    name: &definition.extension.name.value,
                    version: definition.extension.version.value.to_string(),
                }),
                errors,
                warnings,
                diagnostics: render_json(&verification.diagnostics, &verification.loaded.source, &shown),
            };
            output::print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
        }
    }
    Ok(if verification.has_errors() { Exit::Errors } else { Exit::Success })
}

fn human(verification: &Verification, shown: &str) -> String {
    let diagnostics = &verification.diagnostics;
    let mut text = render_human(diagnostics, &verification.loaded.source, shown, output::stderr_color());
    let what = match verification.definition() {
        Some(definition) => format!("`{}` {}", definition.extension.name.value, definition.extension.version.value),
        None => format!("`{shown}`"),
    };
    if verification.has_errors() {
        text.push_str(&format!("error: verification of {what} failed: {}\n", summary(diagnostics)));
    } else {
        text.push_str(&format!("verified {what}: {}\n", summary(diagnostics)));
    }
    text
}

/// The definition's path as the user would write it: without a leading `./`.
fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.display().to_string()
}
