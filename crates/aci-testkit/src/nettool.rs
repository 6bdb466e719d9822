//! The network test image: busybox plus the static `aci-nettool` (UDP/TCP echo servers,
//! sinks, sources and round-trip clients), packed by `umoci` and pushed with `skopeo` like
//! [`crate::busybox_image`].
//!
//! The tool comes from `cargo xtask test` / `cargo xtask bench net`, which build it static into
//! `target/guest/aci-nettool` (see docs/testing.md); `ACI_NETTOOL` overrides the path.

use std::path::PathBuf;

use crate::umoci::UmociBuild;
use crate::Registry;

/// The static `aci-nettool`: `$ACI_NETTOOL`, else `aci-nettool` in [`crate::guest_dir`].
/// Panics, saying how to build it, when it is missing.
pub fn nettool_binary() -> PathBuf {
    let path = std::env::var_os("ACI_NETTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::guest_dir().join("aci-nettool"));
    assert!(
        path.is_file(),
        "{} is missing: `cargo xtask test` and `cargo xtask bench net` build the static aci-nettool \
         there (or set ACI_NETTOOL to one)",
        path.display()
    );
    path
}

/// Builds and pushes `dest` (`repo:tag`) to `registry`: one layer with static busybox (and
/// `sh` linked to it) and `/bin/aci-nettool`. Config: Entrypoint `/bin/aci-nettool`, Cmd
/// `help`, User `1000:1000` (servers use ports above 1023).
pub fn nettool_image(registry: &Registry, dest: &str) {
    let tool = nettool_binary();
    let build = UmociBuild::busybox("aci-umoci-net-", &["bin", "etc", "tmp"], &["sh"]);
    std::fs::copy(&tool, build.rootfs().join("bin/aci-nettool")).unwrap();
    build.repack(false);
    build.push(
        registry,
        dest,
        &["--config.entrypoint", "/bin/aci-nettool", "--config.cmd", "help", "--config.user", "1000:1000"],
    );
}
