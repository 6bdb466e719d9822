//! Where things live: the workspace, the artifact cache and the guest output directory.

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn workspace() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cargo target directory of the workspace.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// The directory guest artifacts are published to (`vmlinux`, `bzImage`, `initramfs.cpio.gz`).
pub fn guest_out() -> PathBuf {
    std::env::var_os("ACI_GUEST_DIR").map(PathBuf::from).unwrap_or_else(|| target().join("guest"))
}

/// The machine-wide cache for expensive artifacts (kernels, L1 images), shared by clones.
///
/// `ACI_CACHE_DIR`, else `$XDG_CACHE_HOME/aci`, else `$HOME/.cache/aci`.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("ACI_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("aci");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache").join("aci")
}
