//! `cargo xtask guest`: the guest kernel, the static agent and the guest initramfs.
//!
//! Outputs in `target/guest/` (or `$ACI_GUEST_DIR`): `vmlinux` and `bzImage` (symlinks into
//! the kernel cache), `aci-agent` and `initramfs.cpio.gz` (the agent as `/init`).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use aci_storage::initramfs as cpio;

use crate::{kernel, paths, static_build};

/// Where the guest artifacts are.
pub struct GuestArtifacts {
    /// ELF kernel image.
    pub vmlinux: PathBuf,
    /// bzImage kernel.
    pub bzimage: PathBuf,
    /// The gzip-compressed initramfs with the agent as `/init`.
    pub initramfs: PathBuf,
}

impl GuestArtifacts {
    /// Prints the artifact paths, one per line.
    pub fn print(&self) {
        println!("vmlinux   {}", self.vmlinux.display());
        println!("bzImage   {}", self.bzimage.display());
        println!("initramfs {}", self.initramfs.display());
    }
}

/// Builds (or reuses) everything and publishes it into the guest output directory.
pub fn build() -> Result<GuestArtifacts> {
    crate::setup::ensure()?;
    let out = paths::guest_out();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let kernel = kernel::build()?;
    let agent = build_agent()?;
    let artifacts = GuestArtifacts {
        vmlinux: out.join("vmlinux"),
        bzimage: out.join("bzImage"),
        initramfs: out.join("initramfs.cpio.gz"),
    };
    replace_symlink(&kernel.vmlinux, &artifacts.vmlinux)?;
    replace_symlink(&kernel.bzimage, &artifacts.bzimage)?;
    fs::copy(&agent, out.join("aci-agent"))?;
    write_initramfs(&agent, &artifacts.initramfs)?;
    Ok(artifacts)
}

fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let _ = fs::remove_file(link);
    symlink(target, link).with_context(|| format!("linking {}", link.display()))
}

/// Builds the agent as a fully static binary and checks that it is.
fn build_agent() -> Result<PathBuf> {
    static_build::build(
        "aci-agent",
        // libseccomp (the container engine's seccomp filters) must be linked statically too:
        // a static binary with a dynamic libseccomp crashes at start.
        &[("LIBSECCOMP_LINK_TYPE", "static"), ("LIBSECCOMP_LIB_PATH", "/usr/lib/x86_64-linux-gnu")],
    )
}

fn write_initramfs(agent: &Path, out: &Path) -> Result<()> {
    let mut archive = cpio::Archive::new();
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] {
        archive.dir(dir, 0o755);
    }
    archive.char_dev("/dev/console", 0o600, 5, 1);
    archive.char_dev("/dev/null", 0o666, 1, 3);
    let agent_bytes = fs::read(agent).with_context(|| format!("reading {}", agent.display()))?;
    archive.file("/init", 0o755, &agent_bytes);
    let tmp = out.with_extension("tmp");
    archive.finish_gzip(fs::File::create(&tmp)?)?;
    fs::rename(&tmp, out)?;
    Ok(())
}
