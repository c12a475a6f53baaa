//! `xif invoke NAME ACTION [--input JSON]` and `xif logs NAME`: the published extension, through
//! the server.

use anyhow::Context as _;
use clap::Args;

use crate::commands::login::{Connection, refused};
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    connection: Connection,
    /// The extension
    extension: String,
    /// The action
    action: String,
    /// The inputs, as a JSON object of input names to values
    #[arg(long, value_name = "JSON", default_value = "{}")]
    input: String,
}

pub fn run(args: &InvokeArgs) -> anyhow::Result<Exit> {
    let inputs: serde_json::Value =
        serde_json::from_str(&args.input).with_context(|| format!("`--input` is not JSON: `{}`", args.input))?;
    let client = args.connection.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        let outputs = client.invoke(&args.extension, &args.action, &inputs).await?;
        output::print(&format!("{}\n", serde_json::to_string_pretty(&outputs)?));
        anyhow::Ok(())
    });
    refused(outcome)
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    connection: Connection,
    /// The extension
    extension: String,
    /// Only this node's log (a name from `xif nodes`); in a farm, every live node's by default
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

pub fn logs(args: &LogsArgs) -> anyhow::Result<Exit> {
    let client = args.connection.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    refused(runtime.block_on(async {
        let log = client.logs(&args.extension, args.node.as_deref()).await?;
        if log.is_empty() {
            // Said on stderr: stdout stays the log itself, empty.
            output::eprint(&format!("the running version of `{}` has written nothing yet\n", args.extension));
        }
        output::print(&log);
        anyhow::Ok(())
    }))
}
