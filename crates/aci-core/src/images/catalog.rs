//! The cached-image catalog: one JSON record per image manifest in `images/`, naming the
//! references that point at it, its blobs, its config and its rootfs disk.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::ImageConfig;

/// Errors of the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A record could not be read, written or removed.
    #[error("image catalog: cannot {op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The record file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A record is not valid JSON.
    #[error("image catalog: corrupt record {path}")]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A layer of a cached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Blob digest.
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
}

/// A cached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedImage {
    /// The platform manifest digest (the cache key).
    pub manifest_digest: String,
    /// The index digest when the image was pulled through an index.
    pub index_digest: Option<String>,
    /// Normalised references that resolve to this image locally.
    pub references: Vec<String>,
    /// The config blob digest.
    pub config_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The image config.
    pub config: ImageConfig,
    /// The erofs disk, once built.
    pub disk: Option<PathBuf>,
}

impl CachedImage {
    /// Every blob the image needs (manifest, index, config, layers).
    pub fn blobs(&self) -> Vec<String> {
        let mut v = vec![self.manifest_digest.clone(), self.config_digest.clone()];
        v.extend(self.index_digest.clone());
        v.extend(self.layers.iter().map(|l| l.digest.clone()));
        v
    }

    /// Whether `reference` (normalised) or a digest names this image.
    pub fn matches(&self, reference: &str, digest: Option<&str>) -> bool {
        match digest {
            Some(d) => self.manifest_digest == d || self.index_digest.as_deref() == Some(d),
            None => self.references.iter().any(|r| r == reference),
        }
    }
}

/// The `images/` directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CatalogError {
    let path = path.to_path_buf();
    move |source| CatalogError::Io { op, path, source }
}

impl Catalog {
    /// Opens (creating) `state/images`.
    pub fn open(state: &Path) -> Result<Self, CatalogError> {
        let dir = state.join("images");
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(Self { dir })
    }

    fn record_path(&self, manifest_digest: &str) -> PathBuf {
        self.dir.join(format!("{}.json", manifest_digest.trim_start_matches("sha256:")))
    }

    /// All records.
    pub fn list(&self) -> Result<Vec<CachedImage>, CatalogError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let path = e.map_err(io_err("list", &self.dir))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let data = std::fs::read(&path).map_err(io_err("read", &path))?;
                let rec = serde_json::from_slice(&data)
                    .map_err(|source| CatalogError::Corrupt { path: path.clone(), source })?;
                out.push(rec);
            }
        }
        out.sort_by(|a: &CachedImage, b| a.references.cmp(&b.references));
        Ok(out)
    }

    /// The record that `reference` (or `digest`) names.
    pub fn find(&self, reference: &str, digest: Option<&str>) -> Result<Option<CachedImage>, CatalogError> {
        Ok(self.list()?.into_iter().find(|r| r.matches(reference, digest)))
    }

    /// Writes `record` (temp file + rename) and takes its references away from other records.
    pub fn put(&self, record: &CachedImage) -> Result<(), CatalogError> {
        for mut other in self.list()? {
            if other.manifest_digest != record.manifest_digest
                && other.references.iter().any(|r| record.references.contains(r))
            {
                other.references.retain(|r| !record.references.contains(r));
                self.write(&other)?;
            }
        }
        self.write(record)
    }

    fn write(&self, record: &CachedImage) -> Result<(), CatalogError> {
        let path = self.record_path(&record.manifest_digest);
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(record)
            .map_err(|source| CatalogError::Corrupt { path: path.clone(), source })?;
        std::fs::write(&tmp, data).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    /// Deletes the record of `manifest_digest`.
    pub fn delete(&self, manifest_digest: &str) -> Result<(), CatalogError> {
        let path = self.record_path(manifest_digest);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}
