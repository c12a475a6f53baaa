//! `xif admin user add|list|grant|revoke|remove`, `xif admin lock list|break` and `xif admin
//! connection …` (in `admin/connection.rs`), with an administrator's token.

use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use clap::{Args, Subcommand};

mod connection;

use crate::commands::login::{Connection, refused};
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// See and break publication locks
    #[command(subcommand)]
    Lock(LockCommand),
    /// Database connections, and the mapping of extensions' logical databases onto them
    #[command(subcommand)]
    Connection(connection::ConnectionCommand),
}

#[derive(Debug, Subcommand)]
enum LockCommand {
    /// List the publication locks held: extension, holder, since when, and when the lease ends
    List,
    /// Break the publication lock of an extension, whoever holds it (a publication still running
    /// goes on, but cannot record its result if it had not yet)
    Break {
        /// The extension
        extension: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for, or read from stdin with --password-stdin
    Add {
        /// The user name
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        administrator: bool,
        /// Grant a permission or role: allow-extensions, allow-foreign-entities, change-and-deploy
        #[arg(long, value_name = "PERMISSION")]
        grant: Vec<String>,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their permissions
    List,
    /// Grant a permission or role
    Grant { name: String, permission: String },
    /// Revoke a permission or role
    Revoke { name: String, permission: String },
    /// Remove a user and their tokens
    Remove { name: String },
}

pub fn run(args: &AdminArgs) -> anyhow::Result<Exit> {
    let client = args.connection.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let AdminCommand::Connection(command) = &args.command {
        return runtime.block_on(connection::run(&client, command));
    }
    let outcome = runtime.block_on(async {
        let command = match &args.command {
            AdminCommand::User(command) => command,
            // Handled above, with exit codes of its own.
            AdminCommand::Connection(_) => return anyhow::Ok(()),
            AdminCommand::Lock(LockCommand::List) => {
                let locks = client.locks().await?;
                if locks.is_empty() {
                    output::eprint("no publication lock is held\n");
                }
                for lock in locks {
                    output::print(&format!(
                        "{}: held by `{}` since {}, lease until {}\n",
                        lock.extension, lock.holder, lock.since, lock.lease_until
                    ));
                }
                return anyhow::Ok(());
            }
            AdminCommand::Lock(LockCommand::Break { extension }) => {
                let lock = client.break_lock(extension).await?;
                output::eprint(&format!(
                    "broke the publication lock of `{}` held by `{}` since {}\n",
                    lock.extension, lock.holder, lock.since
                ));
                return anyhow::Ok(());
            }
        };
        match command {
            UserCommand::Add { name, administrator, grant, password_stdin } => {
                let password = read_password(*password_stdin)?;
                let new = xif_api::NewUser {
                    name: name.clone(),
                    password,
                    administrator: *administrator,
                    grant: grant.clone(),
                };
                let user = client.add_user(&new).await?;
                output::print(&line(&user));
            }
            UserCommand::List => {
                for user in client.users().await? {
                    output::print(&line(&user));
                }
            }
            UserCommand::Grant { name, permission } => output::print(&line(&client.grant(name, permission).await?)),
            UserCommand::Revoke { name, permission } => output::print(&line(&client.revoke(name, permission).await?)),
            UserCommand::Remove { name } => {
                client.remove_user(name).await?;
                output::eprint(&format!("removed user `{name}`\n"));
            }
        }
        anyhow::Ok(())
    });
    refused(outcome)
}

fn line(user: &xif_api::User) -> String {
    let permissions: Vec<&str> = user.permissions.iter().map(|permission| permission.name()).collect();
    let role = if user.administrator { " administrator" } else { "" };
    format!(
        "{}{role}: {}\n",
        user.name,
        if permissions.is_empty() { "no permissions".into() } else { permissions.join(", ") }
    )
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask for the password on; pass it on stdin with `--password-stdin`");
    }
    rpassword::prompt_password("password for the new user: ").context("cannot read the password")
}
