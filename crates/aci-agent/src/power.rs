//! Stopping the VM.
//!
//! aci's VMM treats a guest reset as the end of the VM (as Firecracker does), so "power
//! off" is a clean reboot request after syncing the filesystems. The guest kernel is booted
//! with `reboot=t`, which turns the reboot into a triple fault the VMM sees as a shutdown.

/// Syncs and asks the kernel to stop the machine. Never returns.
pub fn power_off() -> ! {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    // SAFETY: reboot(2) with a valid command; as PID 1 with CAP_SYS_BOOT it does not return
    // on success.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    // Not PID 1 or not permitted: nothing else to do but stop this process.
    std::process::exit(1);
}
