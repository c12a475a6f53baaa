//! The embedded blob store: a directory of files named by their SHA-256.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::store::{BlobRead, BlobStore, BlobUpload, StoreError, is_sha256};

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
        if !is_sha256(sha256) {
            return Err(StoreError(format!("`{sha256}` is not a SHA-256")));
        }
        Ok(self.root.join("sha256").join(sha256))
    }
}

fn joined(error: tokio::task::JoinError) -> StoreError {
    StoreError(format!("storage: {error}"))
}

#[async_trait]
impl BlobStore for DirectoryBlobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, StoreError> {
        let staging = self.root.join("staging");
        let (file, path) =
            tokio::task::spawn_blocking(move || tempfile::Builder::new().prefix("upload-").tempfile_in(staging))
                .await
                .map_err(joined)??
                .into_parts();
        // Writing runs on a thread of its own, fed through a short queue, so that the next
        // bytes are received while the last ones are written; memory holds the queue.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
        let committing = Arc::new(AtomicBool::new(false));
        let durable = Arc::clone(&committing);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(chunk) = receiver.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.flush()?;
            // The blob is durable before any metadata points at it; a dropped upload, whose
            // file is gone already, is not worth the wait.
            if durable.load(Ordering::Acquire) { file.get_ref().sync_all() } else { Ok(()) }
        });
        Ok(Box::new(DirectoryUpload {
            root: self.root.clone(),
            staged: path,
            sender: Some(sender),
            committing,
            writer,
        }))
    }

    async fn open(&self, sha256: &str) -> Result<Option<BlobRead>, StoreError> {
        let path = self.blob(sha256)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let size = file.metadata().await?.len();
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 16).map(|chunk| chunk.map_err(StoreError::from));
        Ok(Some(BlobRead { size, stream: stream.boxed() }))
    }

    async fn exists(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(tokio::fs::try_exists(self.blob(sha256)?).await?)
    }
}

/// An upload to a staged file, removed on drop unless committed.
struct DirectoryUpload {
    root: PathBuf,
    staged: tempfile::TempPath,
    sender: Option<tokio::sync::mpsc::Sender<Bytes>>,
    /// Set before the queue closes when the upload is committed: the writer then makes the file
    /// durable.
    committing: Arc<AtomicBool>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DirectoryUpload {
    /// The writer's failure, once it has stopped.
    async fn failure(&mut self) -> StoreError {
        self.sender = None;
        match (&mut self.writer).await {
            Ok(Err(error)) => error.into(),
            Ok(Ok(())) => StoreError("storage: the writer stopped early".into()),
            Err(error) => joined(error),
        }
    }
}

#[async_trait]
impl BlobUpload for DirectoryUpload {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        let Some(sender) = &self.sender else { return Err(StoreError("storage: the upload has failed".into())) };
        if sender.send(bytes).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, sha256: &str) -> Result<(), StoreError> {
        if !is_sha256(sha256) {
            return Err(StoreError(format!("`{sha256}` is not a SHA-256")));
        }
        self.committing.store(true, Ordering::Release);
        self.sender = None;
        (&mut self.writer).await.map_err(joined)??;
        let DirectoryUpload { root, staged, .. } = *self;
        let target = root.join("sha256").join(sha256);
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if target.exists() {
                // The same bytes are stored already; the staged copy goes away on drop.
                return Ok(());
            }
            staged.persist(&target).map_err(|error| StoreError(format!("storage: {}", error.error)))?;
            if let Some(directory) = target.parent() {
                std::fs::File::open(directory)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(joined)?
    }
}
