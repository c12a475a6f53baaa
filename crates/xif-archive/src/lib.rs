//! The XIF format: one standard zip archive holding an extension.
//!
//! | entry | what |
//! |---|---|
//! | `extension.toml` | the definition |
//! | `source/…` | the project's source files, by their path in the project |
//! | `resources/…` | the declared resources and the icon, by their declared path |
//! | `binary/NAME` | the compiled extension |
//! | `manifest.json` | last: format version, extension, target, toolchain, protocol, and the size and SHA-256 of every other entry |
//!
//! Writing is deterministic (entries sorted by path, fixed times and permissions, compression
//! chosen from the content alone) and streams: memory stays bounded whatever the sizes.
//! Reading trusts nothing: see [`ArchiveError`] for every refusal. A detached minisign
//! signature over `manifest.json` vouches for the whole archive, since the manifest holds the
//! digest of every entry.

mod central;
mod error;
mod manifest;
mod read;
mod sign;
mod write;

pub use error::ArchiveError;
pub use manifest::{Entry, EntryKind, ExtensionId, FORMAT_VERSION, MANIFEST, Manifest};
pub use read::{Limits, XifReader};
pub use sign::{generate_keys, sign_manifest, verify_manifest};
pub use write::{Input, ManifestHeader, write};
