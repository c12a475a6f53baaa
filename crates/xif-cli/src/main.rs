//! `xif`: verify, build and publish platform extensions.
//!
//! Each subcommand parses its arguments into an options struct and calls one library function;
//! this binary only turns outcomes into output and exit codes. Data goes to stdout, everything
//! else (diagnostics, progress, errors) to stderr.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; warnings may have been reported.
    Success = 0,
    /// The extension has errors.
    Errors = 1,
    /// The command could not run: bad arguments, a missing or unreadable file.
    CouldNotRun = 2,
    /// The action that was called failed: its own error, a crash or a time-out.
    CallFailed = 3,
}

#[derive(Debug, Parser)]
#[command(
    name = "xif",
    version,
    about = "Verify, build and publish platform extensions",
    long_about = "Verify, build and publish platform extensions.\n\n\
        An extension is defined in `extension.toml` (actions, structures, entities, resources) \
        and implemented in Rust.",
    after_help = "Exit codes: 0 success (warnings allowed), 1 the extension has errors, \
        2 the command could not run, 3 the called action failed.\nSet NO_COLOR to turn colours off."
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
    /// Explain a diagnostic code, as `rustc --explain` does; list every code without one
    Explain(commands::explain::ExplainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_quiet(cli.quiet);
    let outcome = match cli.command {
        Command::New(args) => commands::new::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::UpdateSource(args) => commands::update_source::run(&args),
        Command::Compile(args) => commands::compile::run(&args),
        Command::Call(args) => commands::call::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            output::report_error(&error);
            ExitCode::from(Exit::CouldNotRun as u8)
        }
    }
}
