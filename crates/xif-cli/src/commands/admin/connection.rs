//! `xif admin connection add|test|list|remove|map|mappings`: the server's database connections
//! and the mapping of extensions' logical databases onto them, with an administrator's token.
//! A connection's password is never printed: the server shows URLs redacted.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::Context as _;
use clap::Subcommand;
use xif_client::Client;

use crate::commands::login::refused;
use crate::{Exit, output};

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a database connection: PostgreSQL, MySQL/MariaDB, or an existing SQLite file on the
    /// server (outside its data directory). The URL is stored encrypted and only ever shown redacted
    Add {
        /// Its name, as mappings refer to it
        name: String,
        /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `mysql://…` (or `mariadb://…`), or
        /// `sqlite:///ABSOLUTE/PATH`. Every user of the machine can read a command line: prefer
        /// --url-stdin or XIF_CONNECTION_URL for one with a password
        #[arg(
            long,
            value_name = "URL",
            env = "XIF_CONNECTION_URL",
            hide_env_values = true,
            required_unless_present = "url_stdin"
        )]
        url: Option<String>,
        /// Read the URL from the first line of stdin
        #[arg(long, conflicts_with = "url")]
        url_stdin: bool,
    },
    /// Connect to a database connection and run `SELECT 1` (within 5 seconds); exit code 5 when
    /// it fails, saying why (refused, authentication failed, unknown database)
    Test {
        /// The connection
        name: String,
    },
    /// List the database connections: name, kind, redacted URL, who added it and when, and the
    /// logical databases mapped to it
    List,
    /// Remove a database connection; refused while logical databases are mapped to it, unless
    /// --force (they are then missing configuration)
    Remove {
        /// The connection
        name: String,
        /// Remove it even though logical databases are mapped to it
        #[arg(long)]
        force: bool,
    },
    /// Map a logical database of a published extension to a connection, after checking that
    /// every entity's table and column exists there with a fitting type (each mismatch is
    /// reported, located in extension.toml)
    Map {
        /// The extension
        extension: String,
        /// Its logical database (`main` unless its entities name another)
        logical_database: String,
        /// The connection
        connection: String,
        /// Map without checking the database
        #[arg(long)]
        force: bool,
    },
    /// List an extension's logical databases, each with its connection or "missing configuration"
    Mappings {
        /// The extension
        extension: String,
    },
}

pub async fn run(client: &Client, command: &ConnectionCommand) -> anyhow::Result<Exit> {
    let mut exit = Exit::Success;
    let outcome = async {
        match command {
            ConnectionCommand::Add { name, url, url_stdin } => {
                let url = match url {
                    Some(url) if !*url_stdin => url.clone(),
                    _ => read_url()?,
                };
                let added = client.add_connection(name, &url).await?;
                output::print(&line(&added));
                output::progress_line(&format!(
                    "added database connection `{}`; check it with `xif admin connection test {}`",
                    added.name, added.name
                ));
            }
            ConnectionCommand::Test { name } => {
                let test = client.test_connection(name).await?;
                if test.ok {
                    output::print(&format!("{}: ok, {}\n", test.name, test.message));
                } else {
                    output::eprint(&format!("error: connection `{}` failed: {}\n", test.name, test.message));
                    exit = Exit::Network;
                }
            }
            ConnectionCommand::List => {
                let connections = client.connections().await?;
                if connections.is_empty() {
                    output::eprint("no database connection; add one with `xif admin connection add NAME --url URL`\n");
                }
                for connection in &connections {
                    output::print(&line(connection));
                }
            }
            ConnectionCommand::Remove { name, force } => {
                client.remove_connection(name, *force).await?;
                output::progress_line(&format!("removed database connection `{name}`"));
            }
            ConnectionCommand::Map { extension, logical_database, connection, force } => {
                let mapped = client.map_database(extension, logical_database, connection, *force).await?;
                output::progress_line(&format!(
                    "mapped `{}`'s logical database `{}` to connection `{}`{}",
                    mapped.extension,
                    mapped.logical,
                    mapped.connection.as_deref().unwrap_or("?"),
                    if *force { " (not checked: --force)" } else { " (checked: every entity fits)" }
                ));
            }
            ConnectionCommand::Mappings { extension } => {
                for database in client.databases(extension).await? {
                    let mapped = match &database.connection {
                        Some(connection) => format!("connection `{connection}`"),
                        None => format!(
                            "missing configuration (map it with `xif admin connection map {} {} CONNECTION`)",
                            database.extension, database.logical
                        ),
                    };
                    output::print(&format!(
                        "{}/{}: {mapped}; entities: {}\n",
                        database.extension,
                        database.logical,
                        database.entities.join(", ")
                    ));
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    match refused(outcome)? {
        Exit::Success => Ok(exit),
        other => Ok(other),
    }
}

fn line(connection: &xif_api::Connection) -> String {
    let mappings = if connection.mappings.is_empty() {
        "not mapped".to_owned()
    } else {
        format!("mapped by {}", connection.mappings.join(", "))
    };
    format!(
        "{} ({}): {}, added by {} at {}; {mappings}\n",
        connection.name,
        connection.kind.label(),
        connection.url,
        connection.added_by,
        connection.added_at
    )
}

fn read_url() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        output::eprint("database URL: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the URL from stdin")?;
    let url = line.trim().to_owned();
    if url.is_empty() {
        anyhow::bail!("no URL on stdin; give it with --url, XIF_CONNECTION_URL or on stdin with --url-stdin");
    }
    Ok(url)
}
