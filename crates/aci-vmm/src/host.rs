//! What kind of KVM this host offers.
//!
//! `/dev/kvm` alone says little: on some clouds it is a PVM device that runs ordinary guests
//! by emulation, far too slowly to boot Linux. [`KvmHost::detect`] reads the host's facts
//! (device node, loaded modules, CPU flags) and names the flavour, so callers can refuse to
//! run, or route work to a nested runner, with a precise reason.

use std::fs;
use std::path::Path;

/// The KVM flavour found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmFlavor {
    /// Hardware virtualization (Intel VMX or AMD SVM) behind `/dev/kvm`.
    Hardware(CpuVendor),
    /// `/dev/kvm` is provided by the `kvm_pvm` module: ordinary guests run by emulation.
    Pvm,
    /// `/dev/kvm` exists but the CPU shows neither `vmx` nor `svm` and no PVM module is
    /// loaded; its semantics are unknown.
    Unknown,
    /// There is no `/dev/kvm`.
    Missing,
}

/// The hardware virtualization extension the CPU advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuVendor {
    /// Intel VT-x (`vmx` in `/proc/cpuinfo`).
    IntelVmx,
    /// AMD-V (`svm` in `/proc/cpuinfo`).
    AmdSvm,
}

/// Facts about the host's KVM, read from the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmHost {
    /// The flavour the facts add up to.
    pub flavor: KvmFlavor,
}

impl KvmHost {
    /// Reads `/dev/kvm`, `/sys/module/kvm_pvm` and `/proc/cpuinfo` of this host.
    pub fn detect() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self::from_facts(Path::new("/dev/kvm").exists(), Path::new("/sys/module/kvm_pvm").exists(), &cpuinfo)
    }

    /// Decides the flavour from explicit facts (used by [`KvmHost::detect`] and tests).
    pub fn from_facts(dev_kvm: bool, pvm_module: bool, cpuinfo: &str) -> Self {
        let flavor = if !dev_kvm {
            KvmFlavor::Missing
        } else if pvm_module {
            KvmFlavor::Pvm
        } else if let Some(vendor) = cpu_vendor(cpuinfo) {
            KvmFlavor::Hardware(vendor)
        } else {
            KvmFlavor::Unknown
        };
        Self { flavor }
    }

    /// True when microVMs can run here at hardware speed.
    pub fn is_hardware(&self) -> bool {
        matches!(self.flavor, KvmFlavor::Hardware(_))
    }

    /// A sentence saying why this host cannot run microVMs at hardware speed, or `None`.
    pub fn unusable_reason(&self) -> Option<&'static str> {
        match self.flavor {
            KvmFlavor::Hardware(_) => None,
            KvmFlavor::Pvm => Some(
                "/dev/kvm is a PVM device (kvm_pvm is loaded); it emulates ordinary guests \
                 about 1000x slower than hardware",
            ),
            KvmFlavor::Unknown => Some("/dev/kvm exists but the CPU advertises neither vmx nor svm"),
            KvmFlavor::Missing => Some("there is no /dev/kvm on this host"),
        }
    }
}

fn cpu_vendor(cpuinfo: &str) -> Option<CpuVendor> {
    let flags = cpuinfo.lines().find(|line| line.starts_with("flags"))?.split_once(':')?.1;
    let mut words = flags.split_whitespace();
    if words.clone().any(|w| w == "svm") {
        Some(CpuVendor::AmdSvm)
    } else if words.any(|w| w == "vmx") {
        Some(CpuVendor::IntelVmx)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVM: &str = "processor\t: 0\nflags\t\t: fpu vme svm npt lm\n";
    const PLAIN: &str = "processor\t: 0\nflags\t\t: fpu vme lm hypervisor\n";

    #[test]
    fn names_each_flavor_from_facts() {
        let hw = KvmHost::from_facts(true, false, SVM);
        assert_eq!(hw.flavor, KvmFlavor::Hardware(CpuVendor::AmdSvm));
        assert!(hw.is_hardware() && hw.unusable_reason().is_none());
        assert_eq!(KvmHost::from_facts(true, true, SVM).flavor, KvmFlavor::Pvm);
        assert_eq!(KvmHost::from_facts(true, false, PLAIN).flavor, KvmFlavor::Unknown);
        let missing = KvmHost::from_facts(false, false, SVM);
        assert_eq!(missing.flavor, KvmFlavor::Missing);
        assert!(missing.unusable_reason().is_some_and(|r| r.contains("/dev/kvm")));
    }

    #[test]
    fn does_not_mistake_substrings_for_flags() {
        let tricky = "flags\t\t: fpu svm_lock vmxyz\n";
        assert_eq!(KvmHost::from_facts(true, false, tricky).flavor, KvmFlavor::Unknown);
    }
}
