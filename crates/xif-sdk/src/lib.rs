//! The crate every xif extension links.
//!
//! It gives the Rust type of each platform data type ([`types`]), the error an action returns
//! ([`ActionError`]), and [`serve`], the loop that connects to the host, says hello with the
//! extension's signatures, and runs the host's calls concurrently. Extensions normally reach it
//! through their generated `src/bindings.rs`. During a call, an action reaches the logical
//! databases of its extension through [`database`] (see [`Database`]).

mod database;
mod serve;
pub mod types;

pub use database::{Database, Param, Row, ToParam, database, param};
/// Re-exported for the generated bindings, so that an extension needs no serde dependency.
pub use serde;
pub use serve::{Handler, Manifest, serve};
pub use xif_protocol::{ActionSignature, ParameterSignature, Values};

/// An action's own error: a stable code the caller can branch on, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    /// A stable code, such as `card_declined`.
    pub code: String,
    /// What a person should know.
    pub message: String,
}

impl ActionError {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// The error of an action whose stub has not been written yet.
    pub fn not_implemented(action: &str) -> Self {
        Self::new("not_implemented", format!("action `{action}` is not implemented yet"))
    }

    /// The error for an input the action could not read.
    pub fn invalid_input(parameter: &str, problem: impl std::fmt::Display) -> Self {
        Self::new("invalid_input", format!("input `{parameter}` is not valid: {problem}"))
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ActionError {}

/// Reads input `name` from `inputs` as a `T`; a missing input takes `T`'s default, as the
/// platform gives every omitted optional input its type's default value.
pub fn input<T: serde::de::DeserializeOwned + Default>(inputs: &mut Values, name: &str) -> Result<T, ActionError> {
    match inputs.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(value) => serde_json::from_value(value).map_err(|error| ActionError::invalid_input(name, error)),
    }
}

/// Writes output `value` under `name` into `outputs`.
pub fn output<T: serde::Serialize>(outputs: &mut Values, name: &str, value: &T) -> Result<(), ActionError> {
    let value = serde_json::to_value(value)
        .map_err(|error| ActionError::new("invalid_output", format!("output `{name}` cannot be written: {error}")))?;
    outputs.insert(name.to_owned(), value);
    Ok(())
}
