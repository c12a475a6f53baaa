//! The actions of the extension __NAME__.
//!
//! `src/bindings.rs` is generated from `extension.toml` by `xif update-source` (which `xif
//! verify` runs); this file is yours and is never overwritten. When an action is added to the
//! definition, a stub for it is added to the `impl` below.

#[rustfmt::skip]
mod bindings;

use bindings::*;

/// Implements the actions of the definition.
struct Implementation;

impl bindings::Extension for Implementation {
    fn greet(&self, person: Person, formal: bool) -> Result<Text, ActionError> {
        let name = person.name.trim();
        if name.is_empty() {
            return Err(ActionError::new("missing_name", "the person has no name"));
        }
        let name = if formal { name } else { name.split_whitespace().next().unwrap_or(name) };
        Ok(format!("Hello, {name}!"))
    }
}

fn main() -> std::process::ExitCode {
    bindings::serve(Implementation)
}
