//! Static release builds of workspace binaries that run inside the guest (the agent, the
//! network test tool): glibc with `+crt-static`, no debug info, in `target/guest-build`, and
//! checked with `ldd` afterwards.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cmd, paths};

/// The target triple guest binaries are built for (glibc, linked statically).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `package`'s binary of the same name statically, with `env` added to cargo's
/// environment, and returns its path after checking that it has no dynamic dependencies.
pub fn build(package: &str, env: &[(&str, &str)]) -> Result<PathBuf> {
    let target_dir = paths::target().join("guest-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(paths::workspace())
        .args(["build", "--quiet", "--release", "--package", package, "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // No debug info in the guest: it is most of a binary's size, and the initramfs is
        // unpacked at every boot.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .envs(env.iter().copied());
    cmd::run(&format!("building the static {package}"), &mut command)?;
    let binary = target_dir.join(TARGET).join("release").join(package);
    let ldd = Command::new("ldd").arg(&binary).output().context("running ldd")?;
    let said = format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    if !(said.contains("statically linked") || said.contains("not a dynamic executable")) {
        bail!("{} is not static; ldd says: {}", binary.display(), said.trim());
    }
    Ok(binary)
}
