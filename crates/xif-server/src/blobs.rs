//! The embedded blob store: a directory of files named by their SHA-256.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::store::{BlobStore, StoreError};

/// XIF files under `DIR/sha256/`, staged in `DIR/staging/`.
pub struct DirectoryBlobs {
    root: PathBuf,
}

impl DirectoryBlobs {
    /// Opens the store at `root`, creating it, and removes what an interrupted upload left in
    /// the staging directory.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(root.join("sha256"))?;
        // The archives are the server's alone: no other user of the machine lists or reads them.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        let staging = root.join("staging");
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        Ok(Self { root: root.to_owned() })
    }

    fn blob(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(StoreError(format!("`{sha256}` is not a SHA-256")));
        }
        Ok(self.root.join("sha256").join(sha256))
    }
}

#[async_trait]
impl BlobStore for DirectoryBlobs {
    async fn stage(&self) -> Result<tempfile::TempPath, StoreError> {
        let staging = self.root.join("staging");
        Ok(tokio::task::spawn_blocking(move || tempfile::Builder::new().prefix("upload-").tempfile_in(staging))
            .await
            .map_err(|error| StoreError(error.to_string()))??
            .into_temp_path())
    }

    async fn commit(&self, staged: tempfile::TempPath, sha256: &str) -> Result<(), StoreError> {
        let target = self.blob(sha256)?;
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if target.exists() {
                // The same bytes are stored already; the staged copy goes away on drop.
                return Ok(());
            }
            // The blob is durable before any metadata points at it.
            std::fs::File::open(&staged)?.sync_all()?;
            staged.persist(&target).map_err(|error| StoreError(format!("storage: {}", error.error)))?;
            if let Some(directory) = target.parent() {
                std::fs::File::open(directory)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|error| StoreError(error.to_string()))?
    }

    async fn path(&self, sha256: &str) -> Result<Option<PathBuf>, StoreError> {
        let path = self.blob(sha256)?;
        Ok(path.exists().then_some(path))
    }
}
