//! Signing a XIF: a detached minisign signature over the whole `.xif` file, in the standard
//! format, so that what a user downloaded is checked as it is
//! (`minisign -Vm NAME.xif -p KEY.pub` reads `NAME.xif.minisig`).
//!
//! Signatures are prehashed (BLAKE2b-512 of the file, then Ed25519), as the `minisign` tool
//! makes them by default: signing and checking stream the file, whatever its size.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use crate::ArchiveError;

fn signature_error(what: &str) -> impl FnOnce(minisign::PError) -> ArchiveError + '_ {
    move |error| ArchiveError::Signature(format!("{what}: {error}"))
}

/// A key id as minisign shows it: 16 upper-case hexadecimal digits.
fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(keynum) {
        *to = *from;
    }
    format!("{:016X}", u64::from_le_bytes(bytes))
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

fn open(path: &Path) -> Result<BufReader<File>, ArchiveError> {
    File::open(path).map(|file| BufReader::with_capacity(1 << 20, file)).map_err(ArchiveError::io(path))
}

fn secret_key(path: &Path) -> Result<minisign::SecretKey, ArchiveError> {
    let text = std::fs::read_to_string(path).map_err(ArchiveError::io(path))?;
    minisign::SecretKeyBox::from_string(&text).and_then(minisign::SecretKeyBox::into_unencrypted_secret_key).map_err(
        |error| {
            ArchiveError::Signature(format!("`{}` is not an unencrypted minisign secret key: {error}", path.display()))
        },
    )
}

/// Signs the file at `file` (a XIF) with the minisign secret key in `secret_key`; returns the
/// signature file's text, which `minisign -V` reads.
pub fn sign_file(secret_key_path: &Path, file: &Path, trusted_comment: &str) -> Result<String, ArchiveError> {
    let key = secret_key(secret_key_path)?;
    let signature = minisign::sign(None, &key, open(file)?, Some(trusted_comment), Some("signature of a XIF archive"))
        .map_err(signature_error("cannot sign the archive"))?;
    Ok(signature.to_string())
}

/// Whether `signature` (a signature file's text) is a valid signature of the file at `file` by
/// the secret key in `secret_key`: how a signature made before is kept when its archive is.
pub fn is_signed_by(secret_key_path: &Path, file: &Path, signature: &str) -> Result<bool, ArchiveError> {
    let key = secret_key(secret_key_path)?;
    let public = minisign::PublicKey::from_secret_key(&key)
        .map_err(signature_error(&format!("`{}` holds no public key", secret_key_path.display())))?;
    let Ok(signature) = Signature::parse(signature) else { return Ok(false) };
    if signature.key_id() != key_id(public.keynum()) {
        return Ok(false);
    }
    Ok(minisign::verify(&public, &signature.boxed, open(file)?, true, false, false).is_ok())
}

/// A minisign public key, read from its file.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: minisign::PublicKey,
}

impl PublicKey {
    /// Reads the public key file at `path` (as `xif keygen` or `minisign -G` write it).
    pub fn from_file(path: &Path) -> Result<Self, ArchiveError> {
        let text = std::fs::read_to_string(path).map_err(ArchiveError::io(path))?;
        minisign::PublicKey::from_box(text.into()).map(|key| Self { key }).map_err(|error| {
            ArchiveError::Signature(format!("`{}` is not a minisign public key: {error}", path.display()))
        })
    }

    /// Its id, as minisign shows it (16 upper-case hexadecimal digits).
    pub fn key_id(&self) -> String {
        key_id(self.key.keynum())
    }
}

/// A detached minisign signature, parsed from its file's text.
#[derive(Clone)]
pub struct Signature {
    boxed: minisign::SignatureBox,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Signature").field("key_id", &self.key_id()).finish()
    }
}

impl Signature {
    /// Parses a signature file's text.
    pub fn parse(text: &str) -> Result<Self, ArchiveError> {
        minisign::SignatureBox::from_string(text)
            .map(|boxed| Self { boxed })
            .map_err(|error| ArchiveError::InvalidSignature(error.to_string()))
    }

    /// The id of the key that made it.
    pub fn key_id(&self) -> String {
        key_id(self.boxed.keynum())
    }

    /// Checks that this signature was made by `key` over exactly the bytes of the file at
    /// `file`, reading it once.
    pub fn verify_file(&self, key: &PublicKey, file: &Path) -> Result<(), ArchiveError> {
        self.verify_reader(key, open(file)?)
    }

    /// Checks this signature by `key` over the bytes `reader` gives, read once, in order: the
    /// server checks an upload as it arrives.
    pub fn verify_reader(&self, key: &PublicKey, reader: impl std::io::Read) -> Result<(), ArchiveError> {
        if self.key_id() != key.key_id() {
            return Err(ArchiveError::OtherKey { signature: self.key_id(), public_key: key.key_id() });
        }
        if !self.boxed.is_prehashed() {
            return Err(ArchiveError::InvalidSignature(
                "it is a legacy (not prehashed) minisign signature, which xif does not accept".into(),
            ));
        }
        minisign::verify(&key.key, &self.boxed, Forward(reader), true, false, false)
            .map_err(|_| ArchiveError::SignatureMismatch { key_id: key.key_id() })
    }
}

/// Checks `signature` (a signature file's text) over the file at `file` with the public key in
/// `public_key`.
pub fn verify_file(public_key: &Path, file: &Path, signature: &str) -> Result<(), ArchiveError> {
    let key = PublicKey::from_file(public_key)?;
    Signature::parse(signature)?.verify_file(&key, file)
}

/// A reader read once, front to back: `minisign::verify` asks for `Seek`, but seeks only to
/// print the data again, which is never asked of it here.
struct Forward<R>(R);

impl<R: std::io::Read> std::io::Read for Forward<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buffer)
    }
}

impl<R> std::io::Seek for Forward<R> {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::other("a signed upload is read once, front to back"))
    }
}
