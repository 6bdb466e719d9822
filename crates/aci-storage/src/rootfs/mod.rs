//! Root filesystem disks from OCI layers.
//!
//! Steps, each in its own file:
//! 1. [`LayerSource::open_tar`] (`layer.rs`) decompresses a verified layer blob (gzip, zstd,
//!    plain tar; sniffed when the media type does not say).
//! 2. [`unpack_layers`] (`unpack.rs`) applies the layers in order to one directory: OCI
//!    whiteouts (`.wh.NAME`, `.wh..wh..opq`), hard links, symlinks, modes, ownership, mtimes,
//!    `SCHILY.xattr` attributes. Hostile entries are contained by `root_dir.rs`: every parent
//!    is opened with `openat2(RESOLVE_IN_ROOT)` and the last component is never followed, so
//!    `..`, absolute paths and symlink-then-write-through cannot leave the target. Device nodes
//!    and setuid bits follow the [`UnpackPolicy`].
//! 3. [`mkfs_erofs`] (`erofs.rs`) turns the tree into a read-only erofs image.
//!
//! [`build_erofs_image`] runs all three, writing to a temporary name and renaming, so a
//! crash never leaves a half image at the destination.

mod erofs;
mod layer;
mod policy;
mod root_dir;
mod unpack;

use std::io;
use std::path::{Path, PathBuf};

pub use erofs::{mkfs_erofs, ErofsCompression};
pub use layer::{Compression, LayerSource};
pub use policy::{DevicePolicy, SetuidPolicy, UnpackPolicy, UnpackWarning, WarningKind};
pub use unpack::unpack_layers;

/// Errors of unpacking layers and building rootfs images.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The target directory could not be opened.
    #[error("cannot open unpack target {path}")]
    OpenTarget {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layer blob could not be opened or its compression not set up.
    #[error("cannot open layer {layer} at {path}")]
    OpenLayer {
        /// The layer.
        layer: String,
        /// The blob file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The layer's tar stream is corrupt or truncated.
    #[error("cannot read layer {layer}")]
    ReadLayer {
        /// The layer.
        layer: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing one entry failed.
    #[error("cannot write entry {path} of layer {layer}")]
    WriteEntry {
        /// The layer.
        layer: String,
        /// The entry path as written in the layer.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The policy rejects an entry.
    #[error("layer {layer} entry {path} rejected: {reason}")]
    Rejected {
        /// The layer.
        layer: String,
        /// The entry path as written in the layer.
        path: String,
        /// What the policy rejects.
        reason: String,
    },
    /// A work directory or the output could not be prepared.
    #[error("cannot prepare {path}")]
    Prepare {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `mkfs.erofs` could not be started.
    #[error("cannot run mkfs.erofs for {image}")]
    RunMkfs {
        /// The image being built.
        image: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `mkfs.erofs` failed.
    #[error("mkfs.erofs failed for {image}: {detail}")]
    Mkfs {
        /// The image being built.
        image: PathBuf,
        /// Exit status and stderr.
        detail: String,
    },
}

/// Options for [`build_erofs_image`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Unpack policy.
    pub policy: UnpackPolicy,
    /// erofs data compression.
    pub compression: ErofsCompression,
}

/// Unpacks `layers` into a scratch directory under `work_dir`, builds the erofs image at
/// `dest` (via a temporary file and a rename) and removes the scratch tree. Returns the
/// warnings the unpack recorded.
///
/// ```no_run
/// use aci_storage::rootfs::{build_erofs_image, BuildOptions, LayerSource};
/// let layers = vec![LayerSource {
///     path: "/var/lib/aci/blobs/sha256/ab12".into(),
///     media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
///     name: "sha256:ab12".into(),
/// }];
/// let warnings = build_erofs_image(
///     &layers,
///     "/var/lib/aci/tmp".as_ref(),
///     "/var/lib/aci/disks/x.erofs".as_ref(),
///     &BuildOptions::default(),
/// )?;
/// for w in warnings { eprintln!("{w}"); }
/// # Ok::<(), aci_storage::rootfs::RootfsError>(())
/// ```
pub fn build_erofs_image(
    layers: &[LayerSource],
    work_dir: &Path,
    dest: &Path,
    options: &BuildOptions,
) -> Result<Vec<UnpackWarning>, RootfsError> {
    let prepare = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Prepare { path, source }
    };
    std::fs::create_dir_all(work_dir).map_err(prepare(work_dir))?;
    let scratch =
        tempfile::Builder::new().prefix("rootfs-").tempdir_in(work_dir).map_err(prepare(work_dir))?;
    let tree = scratch.path().join("tree");
    std::fs::create_dir(&tree).map_err(prepare(&tree))?;
    let warnings = unpack_layers(layers, &tree, &options.policy)?;
    let tmp_image = scratch.path().join("image.erofs");
    mkfs_erofs(&tree, &tmp_image, options.compression)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(prepare(parent))?;
    }
    std::fs::rename(&tmp_image, dest).map_err(prepare(dest))?;
    Ok(warnings)
}
