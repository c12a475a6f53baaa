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
//! Reading trusts nothing: see [`ArchiveError`] for every refusal; checking and unpacking read
//! every entry through one path, so that what one refuses the other refuses too. A detached
//! minisign signature (`NAME.xif.minisig`) covers the whole `.xif` file, so that the standard
//! `minisign -Vm NAME.xif -p KEY.pub` checks exactly what was downloaded.

mod central;
mod end;
mod error;
mod listing;
mod manifest;
mod read;
mod sign;
mod stream;
mod write;

pub use error::ArchiveError;
pub use manifest::{Entry, EntryKind, ExtensionId, FORMAT_VERSION, MANIFEST, Manifest};
pub use read::{Limits, XifReader};
pub use sign::{PublicKey, Signature, generate_keys, is_signed_by, sign_file, verify_file};
pub use stream::{StreamCheck, StreamChecked};
pub use write::{Input, ManifestHeader, write};
