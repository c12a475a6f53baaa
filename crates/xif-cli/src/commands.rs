//! One module per subcommand: arguments in, one library call, output out.

pub mod admin;
pub mod call;
pub mod compile;
pub mod explain;
pub mod inspect;
pub mod invoke;
pub mod keygen;
pub mod launch;
pub mod login;
pub mod modules;
pub mod new;
pub mod nodes;
pub mod publish;
pub mod quickstart;
pub mod save;
pub mod server;
pub mod unpack;
pub mod update_source;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// How Compile runs, for the commands that compile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The cargo profile to build with
    #[arg(long, value_name = "PROFILE", default_value = "release")]
    pub profile: String,
    /// Stop a build that takes longer than this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Where build output goes [default: the project's `target/`, or `CARGO_TARGET_DIR`]
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
}

impl BuildArgs {
    /// The library's build options.
    pub fn options(&self) -> xif_project::BuildOptions {
        xif_project::BuildOptions {
            profile: self.profile.clone(),
            timeout: Duration::from_secs(self.timeout),
            target_dir: self.target_dir.clone(),
            cargo: None,
            cancel: None,
        }
    }
}
