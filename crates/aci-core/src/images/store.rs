//! [`ImageStore`]: pull images and build their rootfs disks (cache management is in `cache.rs`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aci_storage::rootfs::{build_erofs_image, BuildOptions, LayerSource, UnpackWarning};
use oci_client::manifest::OciDescriptor;
use tokio::sync::{broadcast, RwLock};

use super::blobstore::BlobStore;
use super::catalog::{CachedImage, Catalog, LayerRecord};
use super::config::ImageConfig;
use super::error::ImageError;
use super::progress::{ProgressHub, PullProgress};
use super::pull::{BlobFetcher, KeyedLocks};
use super::reference::ImageRef;
use super::registry::{Platform, RegistryCredential, RegistrySession};

/// Layer media types aci unpacks.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Configuration of an [`ImageStore`] (plain data).
#[derive(Debug, Clone)]
pub struct ImageStoreConfig {
    /// Where blobs, the catalog and disks live.
    pub state_dir: PathBuf,
    /// Registry hosts (`127.0.0.1:5000`) spoken to over plain HTTP; all others use HTTPS.
    pub insecure_registries: Vec<String>,
    /// The platform picked from image indexes.
    pub platform: Platform,
    /// Blobs downloaded at once per pull.
    pub parallel_downloads: usize,
    /// Unpack policy and erofs options for rootfs disks.
    pub rootfs: BuildOptions,
}

impl ImageStoreConfig {
    /// Defaults (linux/amd64, HTTPS only, 4 parallel downloads) for `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            insecure_registries: Vec::new(),
            platform: Platform::default(),
            parallel_downloads: 4,
            rootfs: BuildOptions::default(),
        }
    }
}

/// When a pull talks to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Use the cached image when the reference is in the catalog (no network at all).
    #[default]
    IfNotPresent,
    /// Always resolve the reference at the registry (blobs already cached are not fetched).
    Always,
}

/// A rootfs disk ready to attach, with the config that says how to run it.
#[derive(Debug, Clone)]
pub struct ImageDisk {
    /// The image's platform manifest digest.
    pub manifest_digest: String,
    /// The read-only erofs image.
    pub path: PathBuf,
    /// Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts.
    pub config: ImageConfig,
    /// What the unpacker skipped or changed (empty when the disk was cached).
    pub warnings: Vec<UnpackWarning>,
}

pub(super) struct Inner {
    pub(super) config: ImageStoreConfig,
    pub(super) blobs: BlobStore,
    pub(super) catalog: Catalog,
    pub(super) catalog_lock: Mutex<()>,
    pub(super) blob_locks: KeyedLocks,
    pub(super) disk_locks: KeyedLocks,
    pub(super) progress: ProgressHub,
    /// Pulls and disk builds hold it shared; remove and gc exclusively.
    pub(super) gc_lock: RwLock<()>,
}

/// The image cache of one state directory, shared by all container groups.
#[derive(Clone)]
pub struct ImageStore {
    pub(super) inner: Arc<Inner>,
}

impl ImageStore {
    /// Opens (creating) the store and removes partial downloads older than a day (younger
    /// ones are resumed by the next pull of their blob).
    ///
    /// ```no_run
    /// use aci_core::images::{ImageStore, ImageStoreConfig, PullPolicy, RegistryCredential};
    /// # async fn run() -> Result<(), aci_core::images::ImageError> {
    /// let mut config = ImageStoreConfig::new("/var/lib/aci/images");
    /// config.insecure_registries.push("127.0.0.1:5000".into());
    /// let store = ImageStore::open(config)?;
    /// let mut progress = store.subscribe();
    /// tokio::spawn(async move {
    ///     while let Ok(p) = progress.recv().await {
    ///         println!("{} {:?} {}/{}", p.digest, p.kind, p.done, p.total);
    ///     }
    /// });
    /// let creds = [RegistryCredential {
    ///     server: "127.0.0.1:5000".into(),
    ///     username: "me".into(),
    ///     password: "secret".into(),
    /// }];
    /// let disk = store.prepare("127.0.0.1:5000/app:v1", &creds, PullPolicy::IfNotPresent).await?;
    /// println!("{} runs {:?}", disk.path.display(), disk.config.entrypoint);
    /// # Ok(()) }
    /// ```
    pub fn open(config: ImageStoreConfig) -> Result<Self, ImageError> {
        let state = &config.state_dir;
        let disks = state.join("disks");
        std::fs::create_dir_all(&disks)
            .map_err(|source| ImageError::StateDir { path: disks.clone(), source })?;
        let blobs = BlobStore::open(state)?;
        blobs.clean_tmp(std::time::Duration::from_secs(24 * 3600))?;
        let catalog = Catalog::open(state)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                blobs,
                catalog,
                catalog_lock: Mutex::new(()),
                blob_locks: KeyedLocks::default(),
                disk_locks: KeyedLocks::default(),
                progress: ProgressHub::new(),
                gc_lock: RwLock::new(()),
            }),
        })
    }

    /// Progress events of all pulls from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PullProgress> {
        self.inner.progress.subscribe()
    }

    /// Pulls `reference` into the cache (manifest, config and layers, all verified).
    pub async fn pull(
        &self,
        reference: &str,
        credentials: &[RegistryCredential],
        policy: PullPolicy,
    ) -> Result<CachedImage, ImageError> {
        let image = ImageRef::parse(reference)?;
        let _shared = self.inner.gc_lock.read().await;
        self.pull_locked(&image, credentials, policy).await
    }

    /// Pulls `reference` (per `policy`) and returns its erofs rootfs disk, building it once
    /// per manifest digest.
    pub async fn prepare(
        &self,
        reference: &str,
        credentials: &[RegistryCredential],
        policy: PullPolicy,
    ) -> Result<ImageDisk, ImageError> {
        let image = ImageRef::parse(reference)?;
        let _shared = self.inner.gc_lock.read().await;
        let record = self.pull_locked(&image, credentials, policy).await?;
        let key = record.manifest_digest.clone();
        self.inner.disk_locks.with(&key, self.build_disk(&image, record)).await
    }

    async fn pull_locked(
        &self,
        image: &ImageRef,
        credentials: &[RegistryCredential],
        policy: PullPolicy,
    ) -> Result<CachedImage, ImageError> {
        let inner = &self.inner;
        let name = image.to_string();
        if policy == PullPolicy::IfNotPresent {
            if let Some(rec) = inner.catalog.find(&name, image.digest())? {
                let mut needed = vec![&rec.manifest_digest, &rec.config_digest];
                needed.extend(rec.layers.iter().map(|l| &l.digest));
                if needed.into_iter().all(|d| inner.blobs.contains(d)) {
                    return Ok(rec);
                }
            }
        }
        let session = RegistrySession::new(image, &inner.config.insecure_registries, credentials);
        let resolved = session.resolve(&inner.config.platform).await?;
        let manifest = &resolved.manifest;
        if let Some(l) = manifest.layers.iter().find(|l| !LAYER_TYPES.contains(&l.media_type.as_str())) {
            return Err(ImageError::UnsupportedLayer {
                image: name,
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
            });
        }
        let mut descs: Vec<OciDescriptor> = vec![manifest.config.clone()];
        descs.extend(manifest.layers.iter().cloned());
        BlobFetcher {
            blobs: &inner.blobs,
            locks: &inner.blob_locks,
            progress: &inner.progress,
            session: &session,
            image: &name,
            parallel: inner.config.parallel_downloads,
        }
        .fetch_all(&descs)
        .await?;
        inner.blobs.put_bytes(&resolved.digest, &resolved.raw)?;
        let config_digest = manifest.config.digest.clone();
        let config =
            ImageConfig::from_json(&inner.blobs.read_verified(&config_digest)?).map_err(|source| {
                ImageError::ParseConfig { image: name.clone(), digest: config_digest.clone(), source }
            })?;
        let _catalog = inner.catalog_lock.lock().unwrap_or_else(|p| p.into_inner());
        let previous = inner.catalog.find("", Some(&resolved.digest))?;
        let mut references = previous.as_ref().map(|p| p.references.clone()).unwrap_or_default();
        if !references.contains(&name) {
            references.push(name);
        }
        let record = CachedImage {
            manifest_digest: resolved.digest.clone(),
            index_digest: resolved.index_digest.clone(),
            references,
            config_digest,
            layers: manifest
                .layers
                .iter()
                .map(|l| LayerRecord {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    size: u64::try_from(l.size).unwrap_or(0),
                })
                .collect(),
            config,
            disk: previous.and_then(|p| p.disk),
        };
        inner.catalog.put(&record)?;
        Ok(record)
    }

    pub(super) fn disk_path(&self, manifest_digest: &str) -> PathBuf {
        let hex = manifest_digest.trim_start_matches("sha256:");
        self.inner.config.state_dir.join("disks").join(format!("{hex}.erofs"))
    }

    async fn build_disk(&self, image: &ImageRef, record: CachedImage) -> Result<ImageDisk, ImageError> {
        let path = self.disk_path(&record.manifest_digest);
        let mut warnings = Vec::new();
        if !path.is_file() {
            let mut layers = Vec::new();
            for l in &record.layers {
                layers.push(LayerSource {
                    path: self.inner.blobs.path(&l.digest)?,
                    media_type: l.media_type.clone(),
                    name: l.digest.clone(),
                });
            }
            let (work, dest, options) =
                (self.inner.blobs.tmp_dir().to_path_buf(), path.clone(), self.inner.config.rootfs);
            let name = image.to_string();
            warnings =
                tokio::task::spawn_blocking(move || build_erofs_image(&layers, &work, &dest, &options))
                    .await
                    .map_err(|source| ImageError::Task { image: name.clone(), source })?
                    .map_err(|source| ImageError::BuildDisk { image: name, source })?;
        }
        if record.disk.as_deref() != Some(path.as_path()) {
            let _catalog = self.inner.catalog_lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mut current) = self.inner.catalog.find("", Some(&record.manifest_digest))? {
                current.disk = Some(path.clone());
                self.inner.catalog.put(&current)?;
            }
        }
        Ok(ImageDisk { manifest_digest: record.manifest_digest, path, config: record.config, warnings })
    }
}
