//! The network test image: busybox plus the static `aci-nettool` (UDP/TCP echo servers,
//! sinks, sources and round-trip clients), packed by `umoci` and pushed with `skopeo` like
//! [`crate::busybox_image`].
//!
//! The tool comes from `cargo xtask test` / `cargo xtask bench net`, which build it static into
//! `target/guest/aci-nettool` (see docs/testing.md); `ACI_NETTOOL` overrides the path.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, Registry};

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
    let work = tempfile::Builder::new().prefix("aci-umoci-net-").tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = format!("{}:img", layout.display());
    let bundle = work.path().join("bundle");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::copy(&tool, rootfs.join("bin/aci-nettool")).unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/bin/aci-nettool",
        "--config.cmd",
        "help",
        "--config.user",
        "1000:1000",
    ]));
    registry.push_oci(&layout, "img", dest);
}

fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("busybox-static is installed")
}
