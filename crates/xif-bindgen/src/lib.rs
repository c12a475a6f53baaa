//! Update Source Code: bring an extension's Rust code in line with its definition.
//!
//! [`generate`] writes the whole of `src/bindings.rs` from the definition, byte-for-byte the
//! same for the same definition: a struct per structure and entity, an `Extension` trait with
//! one method per action, and the `serve` function that dispatches the host's calls to it.
//! Its first lines carry a digest of the rest, so that [`is_hand_edited`] can tell an edited
//! file from a generated one.
//!
//! [`insert_stubs`] adds, to the author's `impl Extension for …`, a method for every action
//! that has none, which compiles and returns a "not implemented" error. The author's code is
//! otherwise left as it is: a removed or renamed action's method stays, for the compiler to
//! point at.
//!
//! This crate does no IO: it turns text into text.

mod generate;
mod names;
mod stubs;

pub use generate::{HEADER, generate, is_hand_edited};
pub use names::{snake_case, type_name};
pub use stubs::{StubOutcome, insert_stubs};
