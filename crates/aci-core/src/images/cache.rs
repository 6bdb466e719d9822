//! Cache management of an [`ImageStore`]: list, remove, garbage-collect.

use std::collections::HashSet;
use std::path::Path;

use super::catalog::CachedImage;
use super::error::ImageError;
use super::reference::ImageRef;
use super::store::ImageStore;

/// What [`ImageStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Catalog records without references.
    pub images_removed: usize,
    /// Blobs no image references.
    pub blobs_removed: usize,
    /// Bytes of those blobs.
    pub bytes_freed: u64,
    /// Disks of no cached image.
    pub disks_removed: usize,
    /// Leftover temp files.
    pub temp_files_removed: usize,
}

impl ImageStore {
    /// The cached images (ACI's "list cached images").
    pub fn list(&self) -> Result<Vec<CachedImage>, ImageError> {
        Ok(self.inner.catalog.list()?)
    }

    /// Forgets `reference`; when no reference is left, the image's record and disk go too
    /// (its blobs go at the next [`ImageStore::gc`]). Returns whether it was cached.
    pub async fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let image = ImageRef::parse(reference)?;
        let _exclusive = self.inner.gc_lock.write().await;
        let _catalog = self.inner.catalog_lock.lock().unwrap_or_else(|p| p.into_inner());
        let name = image.to_string();
        let Some(mut record) = self.inner.catalog.find(&name, image.digest())? else {
            return Ok(false);
        };
        if image.digest().is_some() {
            record.references.clear();
        } else {
            record.references.retain(|r| r != &name);
        }
        if record.references.is_empty() {
            self.delete_image(&record)?;
        } else {
            self.inner.catalog.put(&record)?;
        }
        Ok(true)
    }

    fn delete_image(&self, record: &CachedImage) -> Result<(), ImageError> {
        remove_file_if_present(&self.disk_path(&record.manifest_digest))?;
        self.inner.catalog.delete(&record.manifest_digest)?;
        Ok(())
    }

    /// Removes images without references, blobs and disks no cached image uses, and temp
    /// files. Waits for running pulls; pulls started meanwhile wait for it.
    pub async fn gc(&self) -> Result<GcReport, ImageError> {
        let _exclusive = self.inner.gc_lock.write().await;
        let _catalog = self.inner.catalog_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = GcReport::default();
        let mut keep = HashSet::new();
        let mut disks = HashSet::new();
        for record in self.inner.catalog.list()? {
            if record.references.is_empty() {
                self.delete_image(&record)?;
                report.images_removed += 1;
            } else {
                keep.extend(record.blobs());
                disks.insert(self.disk_path(&record.manifest_digest));
            }
        }
        for digest in self.inner.blobs.list()? {
            if !keep.contains(&digest) {
                if let Some(size) = self.inner.blobs.remove(&digest)? {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
            }
        }
        let dir = self.inner.config.state_dir.join("disks");
        let entries =
            std::fs::read_dir(&dir).map_err(|source| ImageError::StateDir { path: dir.clone(), source })?;
        for e in entries.flatten() {
            if !disks.contains(&e.path()) {
                remove_file_if_present(&e.path())?;
                report.disks_removed += 1;
            }
        }
        report.temp_files_removed = self.inner.blobs.clean_tmp(std::time::Duration::ZERO)?;
        Ok(report)
    }
}

fn remove_file_if_present(path: &Path) -> Result<(), ImageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ImageError::StateDir { path: path.to_path_buf(), source: e })
        }
        _ => Ok(()),
    }
}
