//! `xif save [--path DIR] [-o FILE] [--sign KEY]`

use std::path::PathBuf;

use clap::Args;
use xif_project::{SaveOptions, VerifyOptions};

use crate::commands::BuildArgs;
use crate::commands::verify::Format;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The project directory, which holds `extension.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Where to write the archive [default: ./NAME.xif]
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sign the archive with this minisign secret key (made by `xif keygen`); the signature of
    /// the whole file goes to FILE.minisig, which `minisign -Vm FILE -p KEY.pub` checks
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn run(args: &SaveArgs) -> anyhow::Result<Exit> {
    // The default name needs the extension's name, which needs the definition.
    let output_path = match &args.output {
        Some(path) => path.clone(),
        None => {
            let loaded = xif_project::load_definition(&args.path)?;
            match &loaded.definition {
                Ok(definition) => PathBuf::from(format!("{}.xif", definition.extension.name.value)),
                Err(_) => PathBuf::from("extension.xif"),
            }
        }
    };
    let options = SaveOptions {
        verify: VerifyOptions { build: args.build.options(), ..VerifyOptions::default() },
        output: output_path.clone(),
        sign: args.sign.clone(),
    };
    let saved = xif_project::save(&args.path, &options, &mut output::progress)?;
    if !saved.verification.diagnostics.is_empty() || saved.manifest.is_none() {
        output::report(&args.path, &saved.verification, Format::Human)?;
    }
    let Some(manifest) = &saved.manifest else { return Ok(Exit::Errors) };
    let size = std::fs::metadata(&output_path).map(|metadata| metadata.len()).unwrap_or_default();
    let mut text = format!(
        "saved `{}` {} to `{}`: {} entries and the manifest, {}\n",
        manifest.extension.name,
        manifest.extension.version,
        output_path.display(),
        manifest.entries.len(),
        output::bytes(size)
    );
    if let Some(signature) = &saved.signature {
        text.push_str(&format!("signed: `{}`\n", signature.display()));
    }
    output::eprint(&text);
    output::print(&format!("{}\n", output_path.display()));
    Ok(Exit::Success)
}
