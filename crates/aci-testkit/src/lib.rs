//! # aci-testkit — real components for aci's host-tier tests
//!
//! - [`Registry`]: Debian's `docker-registry` on 127.0.0.1 with a private config, filesystem
//!   storage in a temp dir, optional htpasswd (bcrypt) auth, an access log to count requests;
//!   killed on drop.
//! - [`OciLayout`]: writes an OCI image layout (blobs, manifests, index) from bytes, and pushes
//!   it with `skopeo copy`. [`TarLayer`] crafts layers, hostile ones included.
//! - [`busybox_image`]: a busybox-static rootfs packed by `umoci` and pushed with `skopeo`;
//!   [`nettool_image`]: the same plus the static `aci-nettool` (network tests and benches).
//! - [`Smbd`]: Samba's `smbd` serving one share from a temp dir (CIFS / azureFile tests).
//! - [`GitDaemon`]: `git daemon` on 127.0.0.1 serving a small repository (gitRepo volumes).
//!
//! [`requirement`] is the one gate every test with a precondition (KVM, root, a tool, a
//! service) goes through: when the precondition is missing the test prints why and returns
//! early, unless `CI` is set, where it fails. [`require_tools`] applies it to commands.

// Test support: a failed setup step is a failed test, so helpers panic with a location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod git;
mod layout;
mod nettool;
mod registry;
mod smbd;
mod tarlayer;
mod umoci;

pub use git::{git, GitDaemon};
pub use layout::{Descriptor, OciLayout, PlatformSpec};
pub use nettool::{nettool_binary, nettool_image};
pub use registry::Registry;
pub use smbd::Smbd;
pub use tarlayer::{LayerBlob, TarLayer};
pub use umoci::busybox_image;

/// The guest artifacts built by `cargo xtask guest` (`vmlinux`, `bzImage`,
/// `initramfs.cpio.gz`): `ACI_GUEST_DIR`, else `<workspace>/target/guest`.
pub fn guest_dir() -> std::path::PathBuf {
    std::env::var_os("ACI_GUEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/guest"))
}

/// True when `CI` is set to anything but empty or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// The gate for a test precondition: `None` (nothing missing) → `true`, run the test.
/// `Some(reason)` → panics when [`in_ci`] (a test must never be skipped in CI), otherwise
/// prints `SKIP <test>: <reason>` and returns `false`.
pub fn requirement(test: &str, missing: Option<&str>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    assert!(!in_ci(), "{test}: cannot run in CI: {reason}");
    eprintln!("SKIP {test}: {reason}");
    false
}

/// Returns `true` when every tool is on `PATH`; otherwise see [`requirement`].
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| which(t).is_none()).collect();
    let reason = (!missing.is_empty())
        .then(|| format!("missing {} (cargo xtask setup installs them)", missing.join(", ")));
    requirement(test, reason.as_deref())
}

/// The full path of `tool` on `PATH` (or `/usr/sbin`, `/sbin`).
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Runs a command and panics with its output when it fails (test support only).
pub(crate) fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Extracts an erofs image with `fsck.erofs --extract` (checking it on the way) into a
/// fresh temp dir, returned with the extracted root at `dir.path()/root`.
pub fn extract_erofs(image: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("aci-erofs-").tempdir().unwrap();
    let root = dir.path().join("root");
    run(std::process::Command::new("fsck.erofs").arg(format!("--extract={}", root.display())).arg(image));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_requirement_fails_in_ci_and_skips_elsewhere() {
        assert!(requirement("t", None));
        let outcome = std::panic::catch_unwind(|| requirement("t", Some("no such thing")));
        if in_ci() {
            assert!(outcome.is_err(), "a missing requirement must fail the test in CI");
        } else {
            assert_eq!(outcome.ok(), Some(false));
        }
        assert!(require_tools("t", &["sh"]));
    }
}
