//! The commands of modules that use published extensions: `xif token create|list|revoke`
//! (module tokens, scoped to some extensions), `xif consumers NAME` (the modules that use an
//! extension, and their state), and `xif calls NAME` (its integration log).

use clap::{Args, Subcommand};

use crate::commands::login::{Connection, refused};
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a module token: it acts as module NAME, may call the actions of and use the records
    /// of the extensions named only, and declare NAME's dependencies. Printed this once. Needs
    /// the allow-extensions permission, or an administrator
    Create(CreateArgs),
    /// List your tokens, with each module token's scope
    List(ListArgs),
    /// Revoke one of your tokens by its id
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The module the token acts as
    module: String,
    /// An extension the token may use (repeat for several)
    #[arg(long = "extension", value_name = "NAME", required = true)]
    extensions: Vec<String>,
    /// How long the token lasts: `90d`, `12h`, `30m` or seconds [default: the server's, 30 days
    /// unless configured]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expires: Option<u64>,
    /// What the token is for, shown when tokens are listed [default: `module NAME`]
    #[arg(long)]
    label: Option<String>,
    /// Print the answer as JSON (with the token)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print the tokens as a JSON array
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// The token's id (`xif token list`)
    id: i64,
}

/// A duration as `--expires` takes it: a number of seconds, or a number followed by `s`, `m`,
/// `h` or `d`; in seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("`{text}` is not a duration: write it as 90d, 12h, 30m, 45s or a number of seconds");
    let (number, factor) = match text.char_indices().last() {
        Some((index, 's')) => (&text[..index], 1),
        Some((index, 'm')) => (&text[..index], 60),
        Some((index, 'h')) => (&text[..index], 3_600),
        Some((index, 'd')) => (&text[..index], 86_400),
        _ => (text, 1),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    number.checked_mul(factor).filter(|seconds| *seconds > 0).ok_or_else(invalid)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

pub fn token(args: &TokenArgs) -> anyhow::Result<Exit> {
    let connection = &args.connection;
    match &args.command {
        TokenCommand::Create(args) => {
            let client = connection.client()?;
            refused(runtime()?.block_on(async {
                let request = xif_api::NewModuleToken {
                    module: args.module.clone(),
                    extensions: args.extensions.clone(),
                    label: args.label.clone(),
                    expires_in: args.expires,
                };
                let made = client.create_module_token(&request).await?;
                if args.json {
                    output::print(&format!("{}\n", serde_json::to_string_pretty(&made)?));
                    return anyhow::Ok(());
                }
                output::print(&format!("{}\n", made.token));
                let expiry = made.expires_at.as_deref().map(|at| format!(", until {at}")).unwrap_or_default();
                output::progress_line(&format!(
                    "module token {} for module `{}`, scoped to {}{expiry}; it is shown this once: keep it \
                     secret (revoke it with `xif token revoke {}`)",
                    made.token_id,
                    made.module,
                    made.extensions.join(", "),
                    made.token_id
                ));
                anyhow::Ok(())
            }))
        }
        TokenCommand::List(args) => {
            let client = connection.client()?;
            refused(runtime()?.block_on(async {
                let tokens = client.tokens().await?;
                if args.json {
                    output::print(&format!("{}\n", serde_json::to_string_pretty(&tokens)?));
                    return anyhow::Ok(());
                }
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|token| {
                        let state = if token.revoked_at.is_some() { "revoked" } else { "active" };
                        let scope = match &token.module {
                            Some(module) => format!("module {module}: {}", token.extensions.join(", ")),
                            None => "user".to_owned(),
                        };
                        vec![
                            token.id.to_string(),
                            state.to_owned(),
                            token.created_at.clone(),
                            token.expires_at.clone().unwrap_or_else(|| "never".to_owned()),
                            token.label.clone().unwrap_or_default(),
                            scope,
                        ]
                    })
                    .collect();
                output::print(&table(&["ID", "STATE", "CREATED", "EXPIRES", "LABEL", "SCOPE"], &rows));
                anyhow::Ok(())
            }))
        }
        TokenCommand::Revoke(args) => {
            let client = connection.client()?;
            refused(runtime()?.block_on(async {
                client.revoke_token(args.id).await?;
                output::progress_line(&format!("token {} revoked", args.id));
                anyhow::Ok(())
            }))
        }
    }
}

#[derive(Debug, Args)]
pub struct ConsumersArgs {
    /// The extension
    name: String,
    /// Print the consumers as a JSON array
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub fn consumers(args: &ConsumersArgs) -> anyhow::Result<Exit> {
    let client = args.connection.client()?;
    refused(runtime()?.block_on(async {
        let consumers = client.consumers(&args.name).await?;
        if args.json {
            output::print(&format!("{}\n", serde_json::to_string_pretty(&consumers)?));
            return anyhow::Ok(());
        }
        if consumers.is_empty() {
            output::progress_line(&format!("no module declared that it uses `{}`", args.name));
            return anyhow::Ok(());
        }
        let rows: Vec<Vec<String>> = consumers
            .iter()
            .map(|consumer| {
                vec![
                    consumer.module.clone(),
                    consumer.built_against.to_string(),
                    consumer.impact.clone(),
                    if consumer.changes.is_empty() { "-".to_owned() } else { consumer.changes.join("; ") },
                ]
            })
            .collect();
        output::print(&table(&["MODULE", "BUILT AGAINST", "STATE", "CHANGES"], &rows));
        anyhow::Ok(())
    }))
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    /// The extension
    name: String,
    /// Only the calls since then: an RFC 3339 time, or back from now (90s, 30m, 1h, 2d)
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only the calls that failed
    #[arg(long)]
    failed: bool,
    /// The most entries to print, the newest (read a page of up to 1,000 at a time); a note on
    /// standard error says when older ones were left out
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Print the entries as a JSON array
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub fn calls(args: &CallsArgs) -> anyhow::Result<Exit> {
    let client = args.connection.client()?;
    refused(runtime()?.block_on(async {
        let (calls, more) = client.calls(&args.name, args.since.as_deref(), args.failed, args.limit as usize).await?;
        // After what was printed, where a terminal shows it last.
        let left_out = || {
            if more {
                let newest = if calls.len() == 1 { "entry".to_owned() } else { format!("{} entries", calls.len()) };
                output::eprint(&format!(
                    "(the newest {newest}; older ones with a larger --limit, or a narrower --since)\n"
                ));
            }
        };
        if args.json {
            output::print(&format!("{}\n", serde_json::to_string_pretty(&calls)?));
            left_out();
            return anyhow::Ok(());
        }
        if calls.is_empty() {
            let since = args.since.as_ref().map(|since| format!(" since {since}")).unwrap_or_default();
            let what = if args.failed { "failed calls" } else { "calls" };
            output::eprint(&format!(
                "no {what} of `{}` recorded{since} (a call is recorded within about 200 ms)\n",
                args.name
            ));
            return anyhow::Ok(());
        }
        let rows: Vec<Vec<String>> = calls
            .iter()
            .map(|call| {
                vec![
                    call.at.clone(),
                    call.module
                        .clone()
                        .map_or_else(|| format!("user {}", call.user), |module| format!("module {module}")),
                    call.kind.clone(),
                    call.operation.clone(),
                    duration(call.duration_us),
                    call.error.clone().unwrap_or_else(|| call.outcome.clone()),
                ]
            })
            .collect();
        output::print(&table(&["AT", "BY", "KIND", "OPERATION", "DURATION", "OUTCOME"], &rows));
        left_out();
        anyhow::Ok(())
    }))
}

/// A call's duration as `xif calls` shows it: microseconds under a millisecond, else milliseconds.
fn duration(micros: i64) -> String {
    if micros < 1_000 { format!("{micros} µs") } else { format!("{:.1} ms", micros as f64 / 1000.0) }
}

/// A table: a line of headers, then a line a row, columns padded to their widest cell (the last
/// column unpadded).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push('\n');
        text
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn short_durations_are_shown_in_microseconds() {
        assert_eq!(duration(13), "13 µs");
        assert_eq!(duration(999), "999 µs");
        assert_eq!(duration(1_500), "1.5 ms");
    }

    #[test]
    fn a_table_pads_every_column_but_the_last() {
        let text = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(text, "A     BB\nlong  x\n");
    }
}
