//! Building a read-only erofs image from an unpacked tree with `mkfs.erofs`.

use std::path::Path;
use std::process::Command;

use super::RootfsError;

/// How file data in the erofs image is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErofsCompression {
    /// Uncompressed: the fastest to build and to read.
    #[default]
    None,
    /// lz4 (smaller images, slightly slower to build).
    Lz4,
}

/// Runs `mkfs.erofs` to write `image` from the directory `tree`, keeping every file's mtime
/// (interpreters compare them, e.g. Python's `.pyc` checks).
pub fn mkfs_erofs(tree: &Path, image: &Path, compression: ErofsCompression) -> Result<(), RootfsError> {
    let mut cmd = Command::new("mkfs.erofs");
    cmd.arg("--quiet").arg("--preserve-mtime");
    if compression == ErofsCompression::Lz4 {
        cmd.arg("-zlz4");
    }
    cmd.arg(image).arg(tree);
    let out = cmd.output().map_err(|source| RootfsError::RunMkfs { image: image.to_path_buf(), source })?;
    if !out.status.success() {
        return Err(RootfsError::Mkfs {
            image: image.to_path_buf(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(())
}
