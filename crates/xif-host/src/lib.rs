//! The host side of the extension protocol: start an extension binary, check its handshake
//! against the definition, run calls concurrently with a time limit each, and stop it. Used by
//! `xif call` and by the Platform Server's runtime. During a call, the extension may query its
//! logical databases; the host runs the queries on the [`Databases`] it was started with.
//!
//! Every way an extension can misbehave ends in an error that says what happened (it crashed,
//! hung, spoke another protocol version, wrote garbage on the channel, or implements other
//! actions than its definition declares), never in a hung host.

mod database;
mod isolation;
mod log;
mod outputs;
mod process;
mod signature;
mod validate;

pub use database::{DatabaseAccess, Databases, QueryFuture, QueryRows, logical_databases};
pub use isolation::{
    Isolation, LAUNCH_SUBCOMMAND, LaunchError, LaunchPlan, UserIds, clear_user, kill_tree, landlock_available, launch,
    users_with_processes,
};
pub use log::Log;
pub use outputs::Outputs;
pub use process::{CallError, ExtensionProcess, ResourceLimits, StartError, StartOptions};
pub use signature::{signature_mismatches, signatures};
pub use validate::{InputError, check_value, default_value, validate_inputs, validate_owned_inputs};
pub use xif_protocol::{ActionFailure, Row, Values};
