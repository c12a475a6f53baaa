//! Signing a XIF: a detached minisign signature over its `manifest.json`, which the standard
//! `minisign` tool verifies (`minisign -Vm manifest.json -p KEY.pub -x FILE.xif.minisig`).

use std::io::{Cursor, Write};
use std::path::Path;

use crate::ArchiveError;

fn signature_error(what: &str) -> impl FnOnce(minisign::PError) -> ArchiveError + '_ {
    move |error| ArchiveError::Signature(format!("{what}: {error}"))
}

/// Writes a new key pair: the secret key to `secret` (readable by its owner only) and the
/// public key to `public`. Refuses to overwrite either.
pub fn generate_keys(secret: &Path, public: &Path) -> Result<(), ArchiveError> {
    for path in [secret, public] {
        if path.exists() {
            return Err(ArchiveError::Signature(format!("`{}` already exists; not overwriting a key", path.display())));
        }
    }
    let pair =
        minisign::KeyPair::generate_unencrypted_keypair().map_err(signature_error("cannot generate a key pair"))?;
    let secret_text =
        pair.sk.to_box(Some("xif secret key")).map_err(signature_error("cannot encode the secret key"))?.to_string();
    let public_text = pair.pk.to_box().map_err(signature_error("cannot encode the public key"))?.to_string();
    write_new(secret, secret_text.as_bytes(), 0o600)?;
    write_new(public, public_text.as_bytes(), 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ArchiveError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(ArchiveError::io(path))?;
    file.write_all(bytes).map_err(ArchiveError::io(path))
}

/// Signs `manifest` with the secret key in `secret_key`; returns the signature file's text.
pub fn sign_manifest(secret_key: &Path, manifest: &[u8], trusted_comment: &str) -> Result<String, ArchiveError> {
    let text = std::fs::read_to_string(secret_key).map_err(ArchiveError::io(secret_key))?;
    let key = minisign::SecretKeyBox::from_string(&text)
        .and_then(minisign::SecretKeyBox::into_unencrypted_secret_key)
        .map_err(|error| {
            ArchiveError::Signature(format!(
                "`{}` is not an unencrypted minisign secret key: {error}",
                secret_key.display()
            ))
        })?;
    let signature =
        minisign::sign(None, &key, Cursor::new(manifest), Some(trusted_comment), Some("signature of a XIF manifest"))
            .map_err(signature_error("cannot sign the manifest"))?;
    Ok(signature.to_string())
}

/// Checks `signature` (a signature file's text) over `manifest` with the public key in
/// `public_key`.
pub fn verify_manifest(public_key: &Path, manifest: &[u8], signature: &str) -> Result<(), ArchiveError> {
    let key = minisign::PublicKey::from_file(public_key).map_err(|error| {
        ArchiveError::Signature(format!("`{}` is not a minisign public key: {error}", public_key.display()))
    })?;
    let signature = minisign::SignatureBox::from_string(signature)
        .map_err(|error| ArchiveError::Signature(format!("the signature file is not valid: {error}")))?;
    minisign::verify(&key, &signature, Cursor::new(manifest), true, false, false)
        .map_err(|_| ArchiveError::Signature("the signature does not match the manifest and this public key".into()))
}
