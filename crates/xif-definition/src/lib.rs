//! The extension definition: the typed model of `extension.toml` and its parser.
//!
//! Every element keeps the [`Span`] of the text it came from, so that the verifier can point at
//! it. This crate does no IO: it parses text that its caller has read.

mod model;
mod parse;

pub use model::*;
pub use parse::{MAX_DEFINITION_BYTES, parse};
pub use xif_diagnostics::{Span, article};
