//! The content-addressed blob store: `blobs/sha256/<hex>` under the state directory.
//!
//! A blob becomes visible only after its sha256 was checked: bytes go to a temp file in
//! `tmp/`, are hashed while written, synced, and renamed into place only when the digest
//! matches. A crash or kill leaves at most a temp file that [`BlobStore::clean_tmp`] removes.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite};

use super::reference::is_sha256_digest;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A digest that is not `sha256:<64 hex>`.
    #[error("unsupported or malformed digest {digest:?}")]
    InvalidDigest {
        /// The digest.
        digest: String,
    },
    /// Downloaded bytes do not hash to the expected digest; nothing was kept.
    #[error("digest mismatch for blob {digest}: content hashes to {actual}")]
    DigestMismatch {
        /// The expected digest.
        digest: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A file operation on the store failed.
    #[error("blob store: cannot {op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobError {
    let path = path.to_path_buf();
    move |source| BlobError::Io { op, path, source }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The blob directory of a state dir.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating) `state/blobs/sha256` and `state/tmp`.
    pub fn open(state: &Path) -> Result<Self, BlobError> {
        let store = Self { blobs: state.join("blobs/sha256"), tmp: state.join("tmp") };
        std::fs::create_dir_all(&store.blobs).map_err(io_err("create", &store.blobs))?;
        std::fs::create_dir_all(&store.tmp).map_err(io_err("create", &store.tmp))?;
        Ok(store)
    }

    /// The temp directory (same filesystem as the blobs).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Where blob `digest` lives (whether or not it is present).
    pub fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        if !is_sha256_digest(digest) {
            return Err(BlobError::InvalidDigest { digest: digest.into() });
        }
        Ok(self.blobs.join(&digest["sha256:".len()..]))
    }

    /// Whether blob `digest` is present (and so was verified when it was stored).
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Reads a whole (small) blob, re-checking its digest.
    pub fn read_verified(&self, digest: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(digest)?;
        let data = std::fs::read(&path).map_err(io_err("read", &path))?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        if actual != digest {
            return Err(BlobError::DigestMismatch { digest: digest.into(), actual });
        }
        Ok(data)
    }

    /// Stores `data` as blob `digest` if it hashes to it.
    pub fn put_bytes(&self, digest: &str, data: &[u8]) -> Result<PathBuf, BlobError> {
        let path = self.path(digest)?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        if actual != digest {
            return Err(BlobError::DigestMismatch { digest: digest.into(), actual });
        }
        let tmp = self.tmp_name(digest);
        std::fs::write(&tmp, data).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        Ok(path)
    }

    /// Opens the resumable download file of `digest` (`tmp/<hex>.partial`): bytes a killed or
    /// failed earlier download left there are hashed and kept, and the download continues
    /// after them. Call [`PendingBlob::commit`] when complete. The caller must hold the
    /// digest's lock: one writer per partial file.
    pub async fn begin(&self, digest: &str) -> Result<PendingBlob, BlobError> {
        let dest = self.path(digest)?;
        let tmp = self.tmp.join(format!("{}.partial", digest.trim_start_matches("sha256:")));
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&tmp)
            .await
            .map_err(io_err("open", &tmp))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(io_err("read", &tmp))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        Ok(PendingBlob {
            digest: digest.into(),
            tmp,
            dest,
            file: Some(file),
            hasher,
            written,
            on_write: None,
        })
    }

    fn tmp_name(&self, digest: &str) -> PathBuf {
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let hex = digest.trim_start_matches("sha256:");
        self.tmp.join(format!("{hex}.{}.{seq}.partial", std::process::id()))
    }

    /// Digests of all stored blobs.
    pub fn list(&self) -> Result<Vec<String>, BlobError> {
        let entries = std::fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io_err("list", &self.blobs))?;
            let digest = format!("sha256:{}", e.file_name().to_string_lossy());
            if is_sha256_digest(&digest) {
                out.push(digest);
            }
        }
        Ok(out)
    }

    /// Removes blob `digest`; returns its size if it was present.
    pub fn remove(&self, digest: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(digest)?;
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        Ok(Some(size))
    }

    /// Removes temp files and scratch directories older than `min_age` (left by killed pulls
    /// and disk builds).
    pub fn clean_tmp(&self, min_age: std::time::Duration) -> Result<usize, BlobError> {
        let mut n = 0;
        let entries = std::fs::read_dir(&self.tmp).map_err(io_err("list", &self.tmp))?;
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old {
                let path = e.path();
                let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(io_err("remove", &path))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A download in progress: an [`AsyncWrite`] that appends to the partial file and hashes what
/// it writes. Dropped without [`PendingBlob::commit`] (network failure, cancelled pull), the
/// partial file stays for the next attempt to resume.
pub struct PendingBlob {
    digest: String,
    tmp: PathBuf,
    dest: PathBuf,
    /// `None` once committed.
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    written: u64,
    on_write: Option<Box<dyn FnMut(u64) + Send>>,
}

impl PendingBlob {
    /// Calls `f` with the running byte count after every write.
    pub fn on_write(&mut self, f: impl FnMut(u64) + Send + 'static) {
        self.on_write = Some(Box::new(f));
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks the digest, syncs and renames into place; on mismatch the temp file is removed.
    pub async fn commit(mut self) -> Result<PathBuf, BlobError> {
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize_reset()));
        if actual != self.digest {
            self.file = None;
            let _ = tokio::fs::remove_file(&self.tmp).await;
            return Err(BlobError::DigestMismatch { digest: self.digest.clone(), actual });
        }
        if let Some(file) = self.file.as_mut() {
            file.sync_data().await.map_err(io_err("sync", &self.tmp))?;
        }
        self.file = None;
        tokio::fs::rename(&self.tmp, &self.dest).await.map_err(io_err("rename", &self.dest))?;
        Ok(self.dest.clone())
    }

    /// Starts over (the registry sent the whole blob instead of the requested range).
    pub async fn restart(&mut self) -> io::Result<()> {
        let file = self.file()?;
        file.set_len(0).await?;
        file.seek(std::io::SeekFrom::Start(0)).await?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    fn file(&mut self) -> io::Result<&mut tokio::fs::File> {
        self.file.as_mut().ok_or_else(|| io::Error::other("blob already committed"))
    }
}

impl AsyncWrite for PendingBlob {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let file = match this.file() {
            Ok(f) => f,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match Pin::new(file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.written += n as u64;
                if let Some(f) = this.on_write.as_mut() {
                    f(this.written);
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file() {
            Ok(f) => Pin::new(f).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file() {
            Ok(f) => Pin::new(f).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
