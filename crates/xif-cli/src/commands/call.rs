//! `xif call ACTION [--input JSON] [--path DIR] [--database LOGICAL=URL]…`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use xif_host::{ExtensionProcess, StartOptions};
use xif_project::VerifyOptions;

use crate::commands::BuildArgs;
use crate::commands::verify::Format;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The action to call
    action: String,
    /// The inputs, as a JSON object of input names to values
    #[arg(long, value_name = "JSON", default_value = "{}")]
    input: String,
    /// The project directory, which holds `extension.toml`
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Run the extension's queries on logical database LOGICAL at URL (`postgres://…`,
    /// `mysql://…`, `sqlite:///PATH`), as the server runs them on a mapped connection; repeat for
    /// each. Other users of the machine can read a password here: prefer a URL without one
    /// (PostgreSQL reads `PGPASSWORD` and `~/.pgpass`)
    #[arg(long = "database", value_name = "LOGICAL=URL")]
    databases: Vec<String>,
    /// Stop the call after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    call_timeout: u64,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn run(args: &CallArgs) -> anyhow::Result<Exit> {
    let inputs: serde_json::Value =
        serde_json::from_str(&args.input).with_context(|| format!("`--input` is not JSON: `{}`", args.input))?;
    let options = VerifyOptions { build: args.build.options(), ..VerifyOptions::default() };
    let verification = xif_project::verify_project(&args.path, &options, &mut output::progress)?;
    let (Some(definition), Some(binary)) = (verification.definition(), verification.binary.clone()) else {
        output::report(&args.path, &verification, Format::Human)?;
        return Ok(Exit::Errors);
    };
    if !verification.diagnostics.is_empty() {
        output::report(&args.path, &verification, Format::Human)?;
    }
    let (action, inputs) = match xif_host::validate_inputs(definition, &args.action, &inputs) {
        Ok(checked) => checked,
        Err(errors) => {
            let mut text: String = errors.iter().map(|error| format!("error: {error}\n")).collect();
            text.push_str(&format!(
                "hint: `xif call` takes `--input '{{\"Name\": value, …}}'`; see the action in `{}`\n",
                output::shown(&args.path.join(xif_project::DEFINITION_FILE))
            ));
            output::eprint(&text);
            return Ok(Exit::CouldNotRun);
        }
    };
    let mut start = StartOptions::new(
        binary,
        args.path.clone(),
        definition.extension.name.value.clone(),
        definition.extension.version.value.to_string(),
    );
    start.signatures = xif_host::signatures(definition);
    // Queries on the extension's logical databases run on the server's mapped connections;
    // here they fail, saying so (and naming the declared ones when another is asked for).
    start.databases = xif_host::DatabaseAccess::new(definition, None);
    start.call_timeout = Duration::from_secs(args.call_timeout);
    start.databases.query_timeout = start.call_timeout;
    let mut urls = Vec::new();
    for given in &args.databases {
        let Some((logical, url)) = given.split_once('=') else {
            output::eprint(&format!(
                "error: `--database` takes `LOGICAL=URL`, such as `main=postgres://localhost/shop`, not `{}`\n",
                given.split("://").next().unwrap_or_default()
            ));
            return Ok(Exit::CouldNotRun);
        };
        urls.push((logical.trim().to_owned(), url.trim().to_owned()));
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        if !urls.is_empty() {
            match xif_server::entities::broker::Direct::connect(&urls).await {
                Ok(direct) => start.databases.databases = Some(Arc::new(direct)),
                Err(error) => {
                    output::eprint(&format!("error: {error}\n"));
                    return Ok(Exit::CouldNotRun);
                }
            }
        }
        let extension = match ExtensionProcess::start(start).await {
            Ok(extension) => extension,
            Err(error) => {
                output::eprint(&format!("error: {error}\n"));
                return Ok(Exit::CallFailed);
            }
        };
        let outcome = extension.call(&action.name.value, inputs).await;
        let log = extension.log().text();
        let stopped = extension.stop(Duration::from_secs(5)).await;
        if !log.is_empty() {
            output::eprint(&log.lines().map(|line| format!("log: {line}\n")).collect::<String>());
        }
        if let Err(error) = stopped {
            output::eprint(&format!("warning: the extension did not stop cleanly: {error}\n"));
        }
        match outcome {
            Ok(outputs) => {
                output::print(&format!("{}\n", serde_json::to_string_pretty(&outputs)?));
                Ok(Exit::Success)
            }
            Err(error) => {
                output::eprint(&format!("error: {error}\n"));
                Ok(Exit::CallFailed)
            }
        }
    })
}
