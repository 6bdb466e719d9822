//! Images: pull, verify and cache OCI images, and turn them into rootfs disks.
//!
//! The pieces, one file each:
//! - `reference.rs` — [`ImageRef`]: `[registry/]name[:tag][@digest]`, `docker.io` and
//!   `library/` defaults, `host:port` registries.
//! - `registry.rs` — `oci-client` sessions: HTTPS except the caller's insecure allow-list,
//!   anonymous / basic / bearer-token auth from [`RegistryCredential`]s, OCI and Docker
//!   schema 2 manifests and indexes (always both `Accept` types), platform selection.
//! - `blobstore.rs` — [`BlobStore`]: `blobs/sha256/<hex>`, sha256 checked before a blob
//!   becomes visible (temp file + rename).
//! - `pull.rs` — parallel blob downloads, one download per blob even across concurrent pulls.
//! - `progress.rs` — [`PullProgress`] events per blob on a broadcast channel.
//! - `catalog.rs` — [`CachedImage`] records: references, blobs, config, disk.
//! - `config.rs` — [`ImageConfig`]: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts.
//! - `store.rs` — [`ImageStore`]: pull, prepare (erofs disk via `aci_storage::rootfs`).
//! - `cache.rs` — list, remove and garbage-collect ([`GcReport`]).
//!
//! State directory layout: `blobs/sha256/`, `images/<manifest>.json`, `disks/<manifest>.erofs`,
//! `tmp/`.

mod blobstore;
mod cache;
mod catalog;
mod config;
mod error;
mod progress;
mod pull;
mod reference;
mod registry;
mod store;

pub use blobstore::{BlobError, BlobStore, PendingBlob};
pub use cache::GcReport;
pub use catalog::{CachedImage, CatalogError, LayerRecord};
pub use config::ImageConfig;
pub use error::ImageError;
pub use progress::{ProgressKind, PullProgress};
pub use reference::{ImageRef, ReferenceError, DEFAULT_REGISTRY};
pub use registry::{Platform, RegistryCredential, RegistryError, MANIFEST_ACCEPT};
pub use store::{ImageDisk, ImageStore, ImageStoreConfig, PullPolicy};
