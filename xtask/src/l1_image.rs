//! The L1 test VM's kernel and initramfs.
//!
//! L1 runs Debian's generic `linux-image-amd64` kernel (its KVM, 9p, tun, bridge and
//! nftables are modules), downloaded with `apt-get download` and unpacked without
//! installing. The initramfs holds busybox (static), the modules from
//! `guest/l1/modules.txt` plus their dependencies in load order, and `guest/l1/init.sh`.
//! The result is cached by (kernel package and version, init, module list, busybox).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use aci_storage::initramfs as cpio;

use crate::{cache, cmd, paths};

const META_PACKAGE: &str = "linux-image-amd64";
const BUSYBOX: &str = "/bin/busybox";
/// Bump when the image layout changes.
const RECIPE: &str = "l1-image-v1";

/// The L1 kernel and initramfs.
pub struct L1Image {
    /// The L1 kernel (bzImage).
    pub kernel: PathBuf,
    /// The L1 initramfs (gzip-compressed cpio).
    pub initramfs: PathBuf,
}

/// Returns the cached L1 image, building it first if needed.
pub fn ensure() -> Result<L1Image> {
    crate::setup::ensure()?;
    let (package, version) = kernel_package()?;
    let l1_dir = paths::workspace().join("guest/l1");
    let init = fs::read(l1_dir.join("init.sh")).context("reading guest/l1/init.sh")?;
    let hold_src = l1_dir.join("hold-kvm.c");
    let hold = fs::read(&hold_src).context("reading guest/l1/hold-kvm.c")?;
    let modules = fs::read_to_string(l1_dir.join("modules.txt")).context("reading guest/l1/modules.txt")?;
    let busybox_version = cmd::output(
        "reading the busybox-static version",
        Command::new("dpkg-query").args(["-W", "-f=${Version}", "busybox-static"]),
    )?;
    let key = cache::key(&[
        package.as_bytes(),
        version.as_bytes(),
        &init,
        &hold,
        modules.as_bytes(),
        busybox_version.as_bytes(),
        RECIPE.as_bytes(),
    ]);
    let root = paths::cache();
    let entry = cache::Entry::new(&root, "l1", &key);
    let image = L1Image { kernel: entry.dir.join("vmlinuz"), initramfs: entry.dir.join("initramfs.cpio.gz") };
    if entry.is_complete(&["vmlinuz", "initramfs.cpio.gz"]) {
        return Ok(image);
    }
    let _lock = cache::Lock::acquire(&root.join("l1/.lock"))?;
    if entry.is_complete(&["vmlinuz", "initramfs.cpio.gz"]) {
        return Ok(image);
    }
    eprintln!("xtask l1: preparing the L1 image from {package} {version}");
    entry.create(|dir| build(dir, &package, &init, &hold_src, &modules))?;
    Ok(image)
}

/// The concrete kernel package behind the `linux-image-amd64` metapackage, and its version.
fn kernel_package() -> Result<(String, String)> {
    let resolve = || -> Result<(String, String)> {
        let deps =
            cmd::output("apt-cache depends", Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
        let package = deps
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .ok_or_else(|| anyhow!("apt-cache knows no kernel behind {META_PACKAGE}"))?
            .to_owned();
        let show = cmd::output(
            "apt-cache show",
            Command::new("apt-cache").args(["show", "--no-all-versions", &package]),
        )?;
        let version = show
            .lines()
            .find_map(|l| l.strip_prefix("Version: "))
            .ok_or_else(|| anyhow!("apt-cache show {package} printed no version"))?
            .to_owned();
        Ok((package, version))
    };
    match resolve() {
        Ok(found) => Ok(found),
        Err(_) => {
            cmd::run("apt-get update", Command::new("apt-get").args(["update", "-qq"]))?;
            resolve().context("finding the L1 kernel package")
        }
    }
}

fn build(dir: &Path, package: &str, init: &[u8], hold_src: &Path, modules: &str) -> Result<()> {
    let work = dir.join("work");
    fs::create_dir_all(&work)?;
    let hold = work.join("hold-kvm");
    cmd::run(
        "compiling guest/l1/hold-kvm.c (static)",
        Command::new("gcc").args(["-static", "-O2", "-Wall", "-o"]).arg(&hold).arg(hold_src),
    )?;
    cmd::run(
        &format!("apt-get download {package}"),
        Command::new("apt-get").current_dir(&work).args(["download", "-qq", package]),
    )?;
    let deb = fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| anyhow!("apt-get download {package} produced no .deb"))?;
    let root = work.join("root");
    cmd::run("unpacking the L1 kernel package", Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    let kver = fs::read_dir(root.join("lib/modules"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| anyhow!("{package} has no /lib/modules/<version>"))?;
    cmd::run("depmod", Command::new("depmod").arg("-b").arg(&root).arg(&kver))?;
    let mod_root = root.join("lib/modules").join(&kver);
    let deps = fs::read_to_string(mod_root.join("modules.dep"))?;

    let wanted = parse_module_list(modules);
    let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    let order = load_order(&deps, &names)?;
    let params: BTreeMap<&str, &str> = wanted.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();

    let mut archive = cpio::Archive::new();
    for d in ["/bin", "/dev", "/proc", "/sys", "/tmp", "/etc", "/lib", "/lib/modules", "/newroot"] {
        archive.dir(d, 0o755);
    }
    archive.char_dev("/dev/console", 0o600, 5, 1);
    archive.file("/bin/busybox", 0o755, &fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}"))?);
    archive.file("/init", 0o755, init);
    archive.file("/bin/hold-kvm", 0o755, &fs::read(&hold)?);
    let mut load = String::new();
    for rel in &order {
        let name = module_name(rel);
        let bytes = fs::read(mod_root.join(rel)).with_context(|| format!("reading module {rel}"))?;
        archive.file(&format!("/lib/modules/{name}.ko"), 0o644, &bytes);
        load.push_str(&name);
        if let Some(p) = params.get(name.as_str()).filter(|p| !p.is_empty()) {
            load.push(' ');
            load.push_str(p);
        }
        load.push('\n');
    }
    archive.file("/etc/modules.load", 0o644, load.as_bytes());
    archive.finish_gzip(fs::File::create(dir.join("initramfs.cpio.gz"))?)?;
    fs::copy(root.join("boot").join(format!("vmlinuz-{kver}")), dir.join("vmlinuz"))?;
    fs::remove_dir_all(&work)?;
    Ok(())
}

/// `NAME [PARAMS...]` lines, comments and blanks skipped; names normalised to underscores.
fn parse_module_list(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, params) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.replace('-', "_"), params.trim().to_owned())
        })
        .collect()
}

/// The module name of a `kernel/.../foo-bar.ko` path: `foo_bar`.
fn module_name(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    file.split('.').next().unwrap_or(file).replace('-', "_")
}

/// Module paths to load, dependencies first, for the `wanted` names, from `modules.dep`.
fn load_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>> {
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for line in modules_dep.lines() {
        let Some((module, rest)) = line.split_once(':') else { continue };
        by_name.insert(module_name(module), module.to_owned());
        deps.insert(module.to_owned(), rest.split_whitespace().map(str::to_owned).collect());
    }
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    fn visit(
        m: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(m.to_owned()) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, seen, order);
        }
        order.push(m.to_owned());
    }
    for name in wanted {
        let Some(path) = by_name.get(*name) else {
            bail!("module {name} (guest/l1/modules.txt) is not in the L1 kernel package");
        };
        visit(path, &deps, &mut seen, &mut order);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/arch/x86/kvm/kvm-amd.ko: kernel/drivers/crypto/ccp/ccp.ko kernel/arch/x86/kvm/kvm.ko kernel/virt/lib/irqbypass.ko
kernel/arch/x86/kvm/kvm.ko: kernel/virt/lib/irqbypass.ko
kernel/virt/lib/irqbypass.ko:
kernel/drivers/crypto/ccp/ccp.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
";

    #[test]
    fn dependencies_load_first_and_once() {
        let order = load_order(DEP, &["kvm_amd", "bridge", "kvm"]).unwrap();
        let pos = |m: &str| order.iter().position(|p| p.ends_with(m)).unwrap();
        assert!(pos("irqbypass.ko") < pos("kvm.ko"));
        assert!(pos("kvm.ko") < pos("kvm-amd.ko"));
        assert!(pos("llc.ko") < pos("stp.ko") && pos("stp.ko") < pos("bridge.ko"));
        assert_eq!(order.len(), 7);
    }

    #[test]
    fn unknown_module_is_named() {
        let err = load_order(DEP, &["nosuch"]).unwrap_err().to_string();
        assert!(err.contains("nosuch"), "{err}");
    }

    #[test]
    fn module_list_parses_names_and_parameters() {
        let list = parse_module_list("# c\nkvm-amd nested=1 npt=1\n\n9p\n");
        assert_eq!(list, vec![("kvm_amd".into(), "nested=1 npt=1".into()), ("9p".into(), String::new())]);
    }
}
