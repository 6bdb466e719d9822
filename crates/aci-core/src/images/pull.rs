//! Downloading an image's blobs: in parallel, each blob once even when several pulls of the
//! same image (or images sharing layers) run at the same time, with progress events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oci_client::manifest::OciDescriptor;

use super::blobstore::BlobStore;
use super::error::ImageError;
use super::progress::{ProgressHub, ProgressKind};
use super::registry::RegistrySession;

const PROGRESS_STEP: u64 = 256 * 1024;

/// Per-key async locks (blob digests, manifest digests), dropped when unused.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Runs `f` while holding the lock for `key`.
    pub async fn with<T>(&self, key: &str, f: impl std::future::Future<Output = T>) -> T {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.to_string()).or_default())
        };
        let out = {
            let _guard = lock.lock().await;
            f.await
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody waits, so forget it.
        if Arc::strong_count(&lock) == 2 {
            map.remove(key);
        }
        out
    }
}

/// What one image pull needs to download blobs.
pub(crate) struct BlobFetcher<'a> {
    pub blobs: &'a BlobStore,
    pub locks: &'a KeyedLocks,
    pub progress: &'a ProgressHub,
    pub session: &'a RegistrySession,
    pub image: &'a str,
    pub parallel: usize,
}

impl BlobFetcher<'_> {
    /// Makes every descriptor's blob present and verified in the store.
    pub async fn fetch_all(&self, descs: &[OciDescriptor]) -> Result<(), ImageError> {
        let slots = tokio::sync::Semaphore::new(self.parallel.max(1));
        let mut downloads = Vec::with_capacity(descs.len());
        for desc in descs {
            downloads.push(self.fetch(desc, &slots));
        }
        futures_util::future::try_join_all(downloads).await?;
        Ok(())
    }

    async fn fetch(&self, desc: &OciDescriptor, slots: &tokio::sync::Semaphore) -> Result<(), ImageError> {
        // Closed never happens (the semaphore is local); treat it as "no limit".
        let _slot = slots.acquire().await.ok();
        self.locks.with(&desc.digest, self.fetch_locked(desc)).await
    }

    async fn fetch_locked(&self, desc: &OciDescriptor) -> Result<(), ImageError> {
        let total = u64::try_from(desc.size).unwrap_or(0);
        let digest = desc.digest.as_str();
        if self.blobs.contains(digest) {
            self.progress.send(self.image, digest, ProgressKind::Cached, total, total);
            return Ok(());
        }
        let mut pending = self.blobs.begin(digest).await?;
        let resumed_at = pending.written();
        let started = ProgressKind::Started;
        self.progress.send(self.image, digest, started, resumed_at, total);
        let (hub, image, d) = (self.progress.clone(), self.image.to_string(), digest.to_string());
        let mut last = resumed_at;
        pending.on_write(move |n| {
            if n - last >= PROGRESS_STEP {
                last = n;
                hub.send(&image, &d, ProgressKind::Downloading, n, total);
            }
        });
        // On error or cancellation the partial file stays; the next pull resumes it.
        self.session.download(desc, &mut pending).await?;
        let done = pending.written();
        pending.commit().await?;
        self.progress.send(self.image, digest, ProgressKind::Done, done, total);
        Ok(())
    }
}
