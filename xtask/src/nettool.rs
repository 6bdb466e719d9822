//! The static `aci-nettool` (network test and benchmark tool) for test images.
//!
//! Built like the agent (glibc, `+crt-static`, release, in `target/guest-build`), checked static
//! with `ldd`, and published as `target/guest/aci-nettool` (`$ACI_GUEST_DIR`), where
//! `aci_testkit::nettool_binary` finds it. `cargo xtask test` and `cargo xtask bench net`
//! build it before anything that needs it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{paths, static_build};

/// Builds the tool and publishes it into the guest output directory; returns its path there.
pub fn build() -> Result<PathBuf> {
    let binary = static_build::build("aci-nettool", &[])?;
    let out = paths::guest_out();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let published = out.join("aci-nettool");
    let tmp = out.join("aci-nettool.tmp");
    fs::copy(&binary, &tmp).with_context(|| format!("copying {} to {}", binary.display(), tmp.display()))?;
    fs::rename(&tmp, &published).with_context(|| format!("publishing {}", published.display()))?;
    Ok(published)
}
