//! `xif`: verify, build and publish platform extensions.
//!
//! Each subcommand parses its arguments into an options struct and calls one library function;
//! this binary only turns outcomes into output and exit codes. Data goes to stdout, everything
//! else (diagnostics, progress, errors) to stderr.

mod commands;
mod output;
mod window;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; warnings may have been reported.
    Success = 0,
    /// The extension has errors, or an archive was refused.
    Errors = 1,
    /// The command could not run: bad arguments, a missing or unreadable file.
    CouldNotRun = 2,
    /// The action that was called failed: its own error, a crash or a time-out.
    CallFailed = 3,
    /// The server refused: a permission, a conflict with another publication, a stale version,
    /// a token it does not accept, an input or archive it would not take.
    Refused = 4,
    /// The server could not be reached, or cannot serve now (busy, its storage out of reach):
    /// the same command may succeed later.
    Network = 5,
    /// Cancelled with Ctrl-C.
    Cancelled = 130,
}

impl Exit {
    /// The exit code for an error the server answered with: the one place that decides it.
    pub fn of(code: xif_api::ErrorCode) -> Exit {
        match code.class() {
            xif_api::ErrorClass::Refused => Exit::Refused,
            xif_api::ErrorClass::CallFailed => Exit::CallFailed,
            xif_api::ErrorClass::Unavailable => Exit::Network,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "xif",
    version,
    about = "Verify, build and publish platform extensions",
    long_about = "Verify, build and publish platform extensions.\n\n\
        An extension is defined in `extension.toml` (actions, structures, entities, resources) \
        and implemented in Rust.",
    after_help = "Exit codes: 0 success (warnings allowed), 1 the extension has errors or an archive was refused, \
        2 the command could not run, 3 the called action failed, 4 the server refused (permission, conflict, \
        stale version, token), 5 the server could not be reached or cannot serve now (retry later), 130 cancelled (Ctrl-C).\n\
        Server commands use --server/XIF_SERVER and --token/XIF_TOKEN, else the last `xif login`.\n\
        Set NO_COLOR to turn colours off."
)]
struct Cli {
    /// Print no progress lines (diagnostics and results are still printed)
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new extension project that verifies as it is
    New(commands::new::NewArgs),
    /// Verify the extension: its definition, and every rule of the catalogue
    Verify(commands::verify::VerifyArgs),
    /// Bring the source code in line with the definition: regenerate `src/bindings.rs`, add stubs
    UpdateSource(commands::update_source::UpdateSourceArgs),
    /// Compile the extension with cargo; prints the binary's path
    Compile(commands::compile::CompileArgs),
    /// Call an action of the compiled extension locally and print its outputs as JSON
    Call(commands::call::CallArgs),
    /// Verify, then pack the extension into a XIF archive (optionally signed)
    Save(commands::save::SaveArgs),
    /// Check a XIF (every digest, and the signature with --public-key) and print its manifest
    Inspect(commands::inspect::InspectArgs),
    /// Unpack a XIF into a project that verifies and compiles
    Unpack(commands::unpack::UnpackArgs),
    /// Make a minisign key pair for signing XIF archives
    Keygen(commands::keygen::KeygenArgs),
    /// Run the Platform Server: users, uploads, versions, publishing
    Server(Box<commands::server::ServerArgs>),
    /// Administer a Platform Server (users and permissions, publication locks, database connections)
    Admin(commands::admin::AdminArgs),
    /// Call an action of a published extension through the server; prints its outputs as JSON
    Invoke(commands::invoke::InvokeArgs),
    /// Print the log (stdout and stderr) of a published extension's running version; in a farm,
    /// every live node's log, each headed by the node's name (`--node` for one)
    Logs(commands::invoke::LogsArgs),
    /// List the nodes of the server's farm (administrators only): address, version, heartbeat,
    /// and the extensions each runs. A node is live while its heartbeat is under 5 s old, down
    /// otherwise; a node that stopped beating stays listed as down for 10 minutes
    Nodes(commands::nodes::NodesArgs),
    /// The 1-Click Publish: verify, save, upload, publish and deploy the extension in one step
    Publish(commands::publish::PublishArgs),
    /// Verify, save and upload the extension as a new version, without publishing it
    Upload(commands::publish::UploadArgs),
    /// List the versions of an extension on the server
    Versions(commands::publish::VersionsArgs),
    /// Log in to a Platform Server and keep the token for the next commands
    Login(commands::login::LoginArgs),
    /// Log out: forget the token and revoke it on the server
    Logout(commands::login::LogoutArgs),
    /// Show who you are on the server, and your permissions
    Whoami(commands::login::WhoamiArgs),
    /// Make, list and revoke tokens; a module token acts as a module and may use the extensions
    /// it is scoped to only
    Token(commands::modules::TokenArgs),
    /// List the modules that use an extension, each with its state against the published
    /// version (up to date, outdated, possibly incompatible, incompatible) and what changed
    Consumers(commands::modules::ConsumersArgs),
    /// Print an extension's integration log: its calls and record operations, newest first
    Calls(commands::modules::CallsArgs),
    /// Try it all on this machine: an embedded server, a sample extension, a 1-Click Publish and a call
    Quickstart(commands::quickstart::QuickstartArgs),
    /// Explain a diagnostic code, as `rustc --explain` does; list every code without one
    Explain(commands::explain::ExplainArgs),
    /// Start an extension confined (run by the server itself, not by people)
    #[command(name = xif_host::LAUNCH_SUBCOMMAND, hide = true)]
    LaunchExtension(commands::launch::LaunchArgs),
}

fn main() -> ExitCode {
    // The launcher runs before every extension starts: it skips parsing the whole command line
    // (and clap's building of every subcommand), which is in the time a deploy takes.
    let mut arguments = std::env::args_os().skip(1);
    if arguments.next().is_some_and(|first| first == xif_host::LAUNCH_SUBCOMMAND) {
        let plan = arguments.next().map(|plan| plan.to_string_lossy().into_owned()).unwrap_or_default();
        return match commands::launch::run(&commands::launch::LaunchArgs { plan }) {
            Ok(exit) => ExitCode::from(exit as u8),
            Err(error) => {
                output::report_error(&error);
                ExitCode::from(Exit::CouldNotRun as u8)
            }
        };
    }
    let cli = Cli::parse();
    output::set_quiet(cli.quiet);
    let outcome = match cli.command {
        Command::New(args) => commands::new::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::UpdateSource(args) => commands::update_source::run(&args),
        Command::Compile(args) => commands::compile::run(&args),
        Command::Call(args) => commands::call::run(&args),
        Command::Save(args) => commands::save::run(&args),
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Unpack(args) => commands::unpack::run(&args),
        Command::Keygen(args) => commands::keygen::run(&args),
        Command::Server(args) => commands::server::run(&args),
        Command::Admin(args) => commands::admin::run(&args),
        Command::Invoke(args) => commands::invoke::run(&args),
        Command::Logs(args) => commands::invoke::logs(&args),
        Command::Nodes(args) => commands::nodes::run(&args),
        Command::Publish(args) => commands::publish::publish(&args),
        Command::Upload(args) => commands::publish::upload(&args),
        Command::Versions(args) => commands::publish::versions(&args),
        Command::Login(args) => commands::login::login(&args),
        Command::Logout(args) => commands::login::logout(&args),
        Command::Whoami(args) => commands::login::whoami(&args),
        Command::Token(args) => commands::modules::token(&args),
        Command::Consumers(args) => commands::modules::consumers(&args),
        Command::Calls(args) => commands::modules::calls(&args),
        Command::Quickstart(args) => commands::quickstart::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::LaunchExtension(args) => commands::launch::run(&args),
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            output::report_error(&error);
            ExitCode::from(Exit::CouldNotRun as u8)
        }
    }
}
