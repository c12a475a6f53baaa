//! `xif-launch PLAN`: the Platform Server's launcher of extensions, a program of its own so that
//! starting an extension costs little: the `xif` binary (25 MB) takes about a millisecond more
//! to start than this one, on every deploy. It does what `xif __launch-extension PLAN` does (the
//! server falls back to that when this program is not beside it): confines itself as the plan
//! (JSON, written by `xif-host`) says and becomes the extension. Its errors go to stderr, which
//! is the extension's log. Not for people.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut arguments = std::env::args().skip(1);
    let mut plan = arguments.next().unwrap_or_default();
    // Called as the `xif` binary would be, too.
    if plan == xif_host::LAUNCH_SUBCOMMAND {
        plan = arguments.next().unwrap_or_default();
    }
    let error = match serde_json::from_str::<xif_host::LaunchPlan>(&plan) {
        Ok(plan) => xif_host::launch(&plan).to_string(),
        Err(error) => format!("the launch plan is not valid: {error}"),
    };
    report(&error);
    ExitCode::from(2)
}

#[expect(clippy::print_stderr, reason = "the launcher's stderr is the extension's log")]
fn report(error: &str) {
    eprintln!("error: {error}");
}
