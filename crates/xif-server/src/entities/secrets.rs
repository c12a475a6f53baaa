//! The key that database connections' URLs are encrypted under, and their sealing.
//!
//! A single server generates its key at first need in `DATA_DIR/secrets.key` (owner-only); the
//! nodes of a farm share one given by `--secrets-key FILE`, whose fingerprint the farm records
//! so that a node with another key is refused at start. The file holds 32 random bytes in
//! hexadecimal. Sealing is ChaCha20-Poly1305 (the `chacha20poly1305` crate, an audited AEAD)
//! with a random 96-bit nonce per URL, the connection's name as associated data (a sealed URL
//! copied onto another connection's row does not open).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest as _, Sha256};

/// The name of a single server's key file in its data directory.
pub const KEY_FILE: &str = "secrets.key";

/// A secrets key, loaded.
#[derive(Clone)]
pub struct SecretsKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(formatter, "SecretsKey({})", self.fingerprint())
    }
}

impl SecretsKey {
    /// Reads the key in `path`: 64 hexadecimal digits (surrounding white space ignored).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the secrets key `{}`: {error}", path.display()))?;
        let bytes =
            hex::decode(text.trim()).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()).ok_or_else(|| {
                format!(
                    "the secrets key `{}` is not 64 hexadecimal digits; make one with \
                 `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE` and give every node the same",
                    path.display()
                )
            })?;
        Ok(Self { key: bytes })
    }

    /// The key in `path`, made there (owner-only, `0600`) when there is none.
    pub fn read_or_create(path: &Path) -> Result<Self, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        if path.exists() {
            return Self::read(path);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|error| format!("no randomness for a secrets key: {error}"))?;
        let made =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).and_then(|mut file| {
                file.write_all(hex::encode(key).as_bytes())?;
                file.sync_all()
            });
        match made {
            Ok(()) => Ok(Self { key }),
            // Made meanwhile by another request: that one holds.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Self::read(path),
            Err(error) => Err(format!("cannot write the secrets key `{}`: {error}", path.display())),
        }
    }

    /// What identifies the key without revealing it: `sha256:` and 16 hexadecimal digits of the
    /// SHA-256 of a label and the key.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"xif secrets key fingerprint\0");
        hasher.update(self.key);
        format!("sha256:{}", &hex::encode(hasher.finalize())[..16])
    }

    /// `secret` encrypted for the connection `name`: base64 of the nonce and the ciphertext.
    pub fn seal(&self, name: &str, secret: &str) -> Result<String, String> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|error| format!("no randomness for a nonce: {error}"))?;
        let aad = name.to_lowercase();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| "cannot encrypt".to_owned())?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The secret [`SecretsKey::seal`] sealed for `name`; an error when this is not the key it
    /// was sealed under, or the text was altered.
    pub fn open(&self, name: &str, sealed: &str) -> Result<String, String> {
        let wrong = || {
            format!(
                "the URL of connection `{name}` cannot be decrypted with this server's secrets key (key {}): \
                 it was stored under another key; add the connection again, or start the server with the key it \
                 was added under",
                self.fingerprint()
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < 12 {
            return Err(wrong());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let aad = name.to_lowercase();
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }
}

/// Where the server's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A single server: made at first need in this file.
    Local(PathBuf),
    /// A farm node started with `--secrets-key`.
    Given(SecretsKey),
    /// A farm node started without: connections' secrets cannot be stored or read.
    Missing,
}

impl KeySource {
    /// The key, made first for a single server; an error a person can act on otherwise.
    pub fn key(&self) -> Result<SecretsKey, String> {
        match self {
            KeySource::Local(path) => SecretsKey::read_or_create(path),
            KeySource::Given(key) => Ok(key.clone()),
            KeySource::Missing => Err(MISSING.to_owned()),
        }
    }
}

/// Why a farm node without a key cannot store or read a connection's secret.
pub const MISSING: &str = "this server keeps its metadata in a shared database (a farm) and was started without a \
     secrets key, so it cannot store or read a database connection's password: make a key file \
     (`head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > secrets.key`, mode 0600), and start every node with \
     `--secrets-key secrets.key` (or XIF_SECRETS_KEY)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_name() {
        let directory = tempfile::tempdir().expect("a directory");
        let path = directory.path().join(KEY_FILE);
        let key = SecretsKey::read_or_create(&path).expect("made");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).expect("there").permissions().mode() & 0o777, 0o600);
        let again = SecretsKey::read_or_create(&path).expect("read");
        assert_eq!(key.fingerprint(), again.fingerprint());
        let sealed = key.seal("Sales", "postgres://u:hunter2@h/d").expect("sealed");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(again.open("sales", &sealed).expect("opened"), "postgres://u:hunter2@h/d");
        assert!(key.open("other", &sealed).is_err(), "another connection's name");
        let other = SecretsKey::read_or_create(&directory.path().join("other.key")).expect("made");
        assert_ne!(other.fingerprint(), key.fingerprint());
        assert!(other.open("sales", &sealed).is_err(), "another key");
    }
}
