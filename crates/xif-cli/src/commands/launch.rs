//! `xif __launch-extension PLAN`: not for people. The Platform Server runs its own binary this
//! way to start an extension: the launcher confines itself as the plan (JSON, written by
//! `xif-host`) says and then becomes the extension. Its errors go to stderr, which is the
//! extension's log.

use anyhow::Context as _;
use clap::Args;

use crate::Exit;

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The launch plan, as JSON
    pub plan: String,
}

pub fn run(args: &LaunchArgs) -> anyhow::Result<Exit> {
    let plan: xif_host::LaunchPlan = serde_json::from_str(&args.plan).context("the launch plan is not valid")?;
    // Returns only when the extension could not be started.
    Err(xif_host::launch(&plan).into())
}
