//! `xtask hold-kvm`: keep one idle KVM VM open until killed.
//!
//! In the nested L1 VM, every KVM VM creation makes L1's KVM patch kernel code (static keys)
//! while the other vCPU runs it, which QEMU 7.2's TCG occasionally does not survive (L1
//! freezes about once in 100-300 guest boots). With one VM held open for the whole session
//! no patching happens. The L1 init starts this before the command.

use anyhow::{Context, Result};

/// The file created once the VM is held; the L1 init waits for it.
const HELD_MARKER: &str = "/run/aci-kvm-held";

/// Opens `/dev/kvm`, creates a VM, marks it held and sleeps forever.
pub fn run() -> Result<()> {
    let kvm = kvm_ioctls::Kvm::new().context("opening /dev/kvm")?;
    let _vm = kvm.create_vm().context("creating the idle VM")?;
    std::fs::write(HELD_MARKER, b"").with_context(|| format!("creating {HELD_MARKER}"))?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
