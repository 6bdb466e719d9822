//! Installing what the build and the tests need from Debian's archive.
//!
//! Each requirement is a Debian package; missing ones are installed with `apt-get` (the
//! machines run as root). A non-root user gets an error naming the packages instead.

use std::process::Command;

use anyhow::{bail, Result};

use crate::cmd;

/// Debian packages the project needs, with what each is for.
pub const PACKAGES: &[(&str, &str)] = &[
    ("linux-source-6.1", "guest kernel source"),
    ("build-essential", "guest kernel build"),
    ("flex", "guest kernel build"),
    ("bison", "guest kernel build"),
    ("bc", "guest kernel build"),
    ("libelf-dev", "guest kernel build"),
    ("libssl-dev", "guest kernel build"),
    ("dwarves", "guest kernel build"),
    ("cpio", "initramfs checks"),
    ("kmod", "L1 module dependencies (depmod)"),
    ("qemu-system-x86", "the nested L1 test VM"),
    ("busybox-static", "the L1 test VM's init"),
    ("docker-registry", "images tests: loopback registry"),
    ("skopeo", "images tests: pushing test images"),
    ("umoci", "images tests: building test images"),
    ("erofs-utils", "rootfs disks (mkfs.erofs) and their tests"),
    ("apache2-utils", "images tests: htpasswd for registry auth"),
    ("zstd", "images tests: zstd layers"),
    ("nftables", "aci-net: isolation and NAT rules (nft) and their tests"),
    ("iproute2", "aci-net tests: ip netns/link checks"),
    ("git", "gitRepo volumes (git clone) and their tests (git daemon)"),
    ("libseccomp-dev", "the agent's container engine: seccomp (linked statically)"),
    ("samba", "azureFile (CIFS) tests: a real smbd (aci_testkit::Smbd)"),
    ("smbclient", "azureFile tests: reading the share back from the host"),
];

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the missing packages of [`PACKAGES`]; a no-op when all are present.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().map(|(p, _)| *p).filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("missing Debian packages (run as root or install them): {}", missing.join(" "));
    }
    eprintln!("xtask setup: installing {}", missing.join(" "));
    cmd::run("apt-get update", Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        "apt-get install",
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        bail!("apt-get did not install: {}", still.join(" "));
    }
    Ok(())
}
