//! Building the guest kernel from Debian's `linux-source-6.1` package.
//!
//! Steps: unpack the source tarball once per package version (a shared tree in the cache)
//! → `make tinyconfig` → merge `guest/kernel/microvm.config` → `make olddefconfig` → check
//! that every option of the fragment survived → `make vmlinux bzImage` → publish `vmlinux`,
//! `bzImage` and `config` into a cache entry keyed by (package version, fragment, recipe).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cache, cmd, paths};

const SOURCE_PACKAGE: &str = "linux-source-6.1";
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// Bump when the build steps change in a way that changes the output.
const RECIPE: &str = "guest-kernel-v1";

/// The built guest kernel.
pub struct Kernel {
    /// Uncompressed ELF image with the PVH entry note.
    pub vmlinux: PathBuf,
    /// Compressed bzImage (64-bit boot protocol).
    pub bzimage: PathBuf,
}

/// Builds the guest kernel, or returns the cached one for the same inputs.
pub fn build() -> Result<Kernel> {
    let fragment_path = paths::workspace().join("guest/kernel/microvm.config");
    let fragment = fs::read(&fragment_path)
        .with_context(|| format!("reading the kernel config fragment {}", fragment_path.display()))?;
    let version = source_version()?;
    let key = cache::key(&[SOURCE_PACKAGE.as_bytes(), version.as_bytes(), &fragment, RECIPE.as_bytes()]);
    let root = paths::cache();
    let entry = cache::Entry::new(&root, "kernel", &key);
    let outputs = ["vmlinux", "bzImage", "config"];
    let kernel = Kernel { vmlinux: entry.dir.join("vmlinux"), bzimage: entry.dir.join("bzImage") };
    if entry.is_complete(&outputs) {
        return Ok(kernel);
    }
    let _lock = cache::Lock::acquire(&root.join("kernel/.lock"))?;
    if entry.is_complete(&outputs) {
        return Ok(kernel);
    }
    eprintln!(
        "xtask guest: building the guest kernel ({SOURCE_PACKAGE} {version}, key {key}); this takes minutes"
    );
    let tree = unpacked_tree(&root, &version)?;
    configure(&tree, &fragment_path, &String::from_utf8_lossy(&fragment))?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    cmd::run_logged(
        "kernel build (make vmlinux bzImage)",
        make(&tree).arg(format!("-j{jobs}")).args(["vmlinux", "bzImage"]),
        &tree.join("aci-build.log"),
    )?;
    entry.create(|dir| {
        fs::copy(tree.join("vmlinux"), dir.join("vmlinux"))?;
        fs::copy(tree.join("arch/x86/boot/bzImage"), dir.join("bzImage"))?;
        fs::copy(tree.join(".config"), dir.join("config"))?;
        Ok(())
    })?;
    Ok(kernel)
}

fn source_version() -> Result<String> {
    if !Path::new(TARBALL).is_file() {
        bail!("{TARBALL} is missing: install the {SOURCE_PACKAGE} package (`cargo xtask setup`)");
    }
    let version = cmd::output(
        "reading the linux-source package version",
        Command::new("dpkg-query").args(["-W", "-f=${Version}", SOURCE_PACKAGE]),
    )?;
    if version.trim().is_empty() {
        bail!("{SOURCE_PACKAGE} is not installed");
    }
    Ok(version.trim().to_owned())
}

/// The source tree for `version`, unpacked once and shared by all fragment builds.
fn unpacked_tree(root: &Path, version: &str) -> Result<PathBuf> {
    let tree = root.join("kernel").join(format!("tree-{version}"));
    if tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    let staging = root.join("kernel").join(format!(".tree-{version}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    let unpacked = cmd::run(
        "unpacking the kernel source",
        Command::new("tar").arg("-xf").arg(TARBALL).arg("-C").arg(&staging).arg("--strip-components=1"),
    );
    if let Err(err) = unpacked {
        let _ = fs::remove_dir_all(&staging);
        return Err(err
            .context(format!("{TARBALL} could not be unpacked: is it corrupt? reinstall {SOURCE_PACKAGE}")));
    }
    if !staging.join("Makefile").is_file() {
        let _ = fs::remove_dir_all(&staging);
        bail!("{TARBALL} does not contain a kernel tree (no top-level Makefile)");
    }
    fs::rename(&staging, &tree)?;
    Ok(tree)
}

fn make(tree: &Path) -> Command {
    let mut c = Command::new("make");
    c.current_dir(tree)
        .env("KBUILD_BUILD_USER", "aci")
        .env("KBUILD_BUILD_HOST", "aci")
        .env("KBUILD_BUILD_TIMESTAMP", "1970-01-01");
    c
}

fn configure(tree: &Path, fragment_path: &Path, fragment: &str) -> Result<()> {
    let log = tree.join("aci-config.log");
    cmd::run_logged("make tinyconfig", make(tree).arg("tinyconfig"), &log)?;
    cmd::run_logged(
        "merging the config fragment",
        Command::new("scripts/kconfig/merge_config.sh")
            .current_dir(tree)
            .args(["-m", ".config"])
            .arg(fragment_path),
        &log,
    )?;
    cmd::run_logged("make olddefconfig", make(tree).arg("olddefconfig"), &log)?;
    let config = fs::read_to_string(tree.join(".config"))?;
    let dropped = dropped_options(fragment, &config);
    if !dropped.is_empty() {
        bail!(
            "Kconfig dropped options the fragment {} asks for (missing dependencies?): {}",
            fragment_path.display(),
            dropped.join(", ")
        );
    }
    Ok(())
}

/// Options of `fragment` whose value differs in the resolved `.config` text.
pub fn dropped_options(fragment: &str, config: &str) -> Vec<String> {
    let resolved = parse(config);
    parse(fragment)
        .into_iter()
        .filter(|(name, want)| {
            let have = resolved.get(name).map(String::as_str).unwrap_or("n");
            have != want
        })
        .map(|(name, want)| {
            let have = resolved.get(&name).map(String::as_str).unwrap_or("n");
            format!("{name}={want} (got {have})")
        })
        .collect()
}

/// Parses `CONFIG_X=v` and `# CONFIG_X is not set` lines into name → value (`n` for unset).
fn parse(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                map.insert(name.to_owned(), "n".to_owned());
            }
        } else if let Some((name, value)) = line.split_once('=') {
            if name.starts_with("CONFIG_") {
                map.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dropped_and_changed_options() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=y\nCONFIG_C=n\n# CONFIG_D is not set\nCONFIG_E=32\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_E=64\n";
        let dropped = dropped_options(fragment, config);
        assert_eq!(dropped, vec!["CONFIG_B=y (got n)".to_owned(), "CONFIG_E=32 (got 64)".to_owned()]);
    }

    #[test]
    fn committed_fragment_parses() {
        let text = fs::read_to_string(paths::workspace().join("guest/kernel/microvm.config")).unwrap();
        let options = parse(&text);
        assert!(options.get("CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES").is_some_and(|v| v == "y"));
        assert!(options.get("CONFIG_MODULES").is_some_and(|v| v == "n"));
    }
}
