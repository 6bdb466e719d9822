//! The error of the image store's public operations.

use super::blobstore::BlobError;
use super::catalog::CatalogError;
use super::reference::ReferenceError;
use super::registry::RegistryError;

/// Errors of [`super::ImageStore`] operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference does not parse.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// Talking to the registry failed (including refused credentials).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A blob failed verification (digest mismatch) or could not be stored.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The local catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The state directory could not be prepared.
    #[error("cannot prepare the image state directory {path}")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The image config blob is not valid JSON.
    #[error("cannot parse the config {digest} of {image}")]
    ParseConfig {
        /// The image.
        image: String,
        /// The config blob.
        digest: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A layer has a media type aci cannot unpack.
    #[error("layer {digest} of {image} has unsupported media type {media_type}")]
    UnsupportedLayer {
        /// The image.
        image: String,
        /// The layer.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// Building the rootfs disk failed.
    #[error("cannot build the rootfs disk of {image}")]
    BuildDisk {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: aci_storage::rootfs::RootfsError,
    },
    /// A background task panicked or was cancelled.
    #[error("background task for {image} failed")]
    Task {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
}
