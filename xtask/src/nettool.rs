//! The static `aci-nettool` (network test and benchmark tool) for test images.
//!
//! Built like the agent (glibc, `+crt-static`, release, in `target/guest-build`), checked static
//! with `ldd`, and published as `target/guest/aci-nettool` (`$ACI_GUEST_DIR`), where
//! `aci_testkit::nettool_binary` finds it. `cargo xtask test` and `cargo xtask bench net`
//! build it before anything that needs it.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cmd, paths};

/// The target triple (glibc, linked statically), as for the agent.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the tool and publishes it into the guest output directory; returns its path there.
pub fn build() -> Result<PathBuf> {
    let target_dir = paths::target().join("guest-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        "building the static aci-nettool",
        Command::new(cargo)
            .current_dir(paths::workspace())
            .args(["build", "--quiet", "--release", "--package", "aci-nettool", "--target", TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    )?;
    let binary = target_dir.join(TARGET).join("release/aci-nettool");
    let ldd = Command::new("ldd").arg(&binary).output().context("running ldd")?;
    let said = format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    if !(said.contains("statically linked") || said.contains("not a dynamic executable")) {
        bail!("{} is not static; ldd says: {}", binary.display(), said.trim());
    }
    let out = paths::guest_out();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let published = out.join("aci-nettool");
    let tmp = out.join("aci-nettool.tmp");
    fs::copy(&binary, &tmp).with_context(|| format!("copying {} to {}", binary.display(), tmp.display()))?;
    fs::rename(&tmp, &published).with_context(|| format!("publishing {}", published.display()))?;
    Ok(published)
}
