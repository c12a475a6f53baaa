//! `xif explain [CODE]`

use clap::Args;
use xif_diagnostics::{Code, Severity, did_you_mean};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as XE0103; without one, every code is listed
    code: Option<String>,
}

pub fn run(args: &ExplainArgs) -> anyhow::Result<Exit> {
    let Some(text) = &args.code else {
        let mut list = String::new();
        for code in Code::ALL {
            list.push_str(&format!("{code}  {:<7}  {}\n", severity(*code), code.title()));
        }
        output::print(&list);
        return Ok(Exit::Success);
    };
    match Code::parse(text) {
        Some(code) => {
            output::print(&format!(
                "{code} ({}): {}\n\n{}\n",
                severity(code),
                code.title(),
                code.explanation().trim_end()
            ));
            Ok(Exit::Success)
        }
        None => {
            let suggestion = did_you_mean(text, Code::ALL.iter().map(|code| code.as_str()))
                .map(|close| format!("did you mean `{close}`? "))
                .unwrap_or_default();
            output::eprint(&format!(
                "error: `{text}` is not a diagnostic code of xif\nhint: {suggestion}run `xif explain` without a code to list every code\n"
            ));
            Ok(Exit::CouldNotRun)
        }
    }
}

fn severity(code: Code) -> &'static str {
    match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
