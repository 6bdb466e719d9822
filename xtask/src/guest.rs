//! `cargo xtask guest`: the guest kernel, the static agent and the guest initramfs.
//!
//! Outputs in `target/guest/` (or `$ACI_GUEST_DIR`): `vmlinux` and `bzImage` (symlinks into
//! the kernel cache), `aci-agent` and `initramfs.cpio.gz` (the agent as `/init`).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use aci_storage::initramfs as cpio;

use crate::{cmd, kernel, paths};

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

/// The target triple the agent is built for (glibc, linked statically).
const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";

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
    let target_dir = paths::target().join("guest-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        "building the static agent",
        Command::new(cargo)
            .current_dir(paths::workspace())
            .args(["build", "--quiet", "--release", "--package", "aci-agent", "--target", AGENT_TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            // libseccomp (the container engine's seccomp filters) must be linked statically
            // too: a static binary with a dynamic libseccomp crashes at start.
            .env("LIBSECCOMP_LINK_TYPE", "static")
            .env("LIBSECCOMP_LIB_PATH", "/usr/lib/x86_64-linux-gnu")
            // No debug info in the initramfs: with libcontainer it would be 40 MB of the
            // agent's 48 MB, and the kernel unpacks all of it at every boot.
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    )?;
    let binary = target_dir.join(AGENT_TARGET).join("release/aci-agent");
    let ldd = Command::new("ldd").arg(&binary).output().context("running ldd")?;
    let said = format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    if !(said.contains("statically linked") || said.contains("not a dynamic executable")) {
        bail!("{} is not static; ldd says: {}", binary.display(), said.trim());
    }
    Ok(binary)
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
