//! Boot step 6 and the run loop: configure each vCPU, then run it on its own thread,
//! dispatching its exits until the VM ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use kvm_bindings::{CpuId, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};

use crate::cpuid::{vcpu_cpuid, CpuidError};
use crate::devices::mmio_bus::MmioBus;
use crate::devices::pio_bus::{DeviceAction, PioBus};
use crate::exit::{ExitCounters, ExitReason, RunState};
use crate::kick;
use crate::lapic::{configure_lapic, LapicError};
use crate::loader::BootInfo;
use crate::msrs::{set_boot_msrs, MsrError};
use crate::regs;

/// Why a vCPU could not be created or configured.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// KVM_CREATE_VCPU failed.
    #[error("could not create the vCPU")]
    Create(#[source] kvm_ioctls::Error),
    /// CPUID could not be prepared or set.
    #[error("could not configure CPUID")]
    Cpuid(#[from] CpuidError),
    /// The boot MSRs could not be set.
    #[error("could not configure MSRs")]
    Msrs(#[from] MsrError),
    /// The LAPIC could not be configured.
    #[error("could not configure the local APIC")]
    Lapic(#[from] LapicError),
    /// A register ioctl failed.
    #[error("could not set the vCPU's {0}")]
    SetRegisters(&'static str, #[source] kvm_ioctls::Error),
}

/// Creates vCPU `index` of `count` and configures it; the boot vCPU (index 0) also gets the
/// long-mode registers that enter the kernel at `boot.entry`.
pub fn create_vcpu(
    vm: &VmFd,
    supported: &CpuId,
    index: u8,
    count: u8,
    boot: &BootInfo,
) -> Result<VcpuFd, VcpuError> {
    let vcpu = vm.create_vcpu(u64::from(index)).map_err(VcpuError::Create)?;
    let cpuid = vcpu_cpuid(supported, index, count)?;
    vcpu.set_cpuid2(&cpuid).map_err(|e| VcpuError::Cpuid(CpuidError::Set(e)))?;
    set_boot_msrs(&vcpu)?;
    vcpu.set_fpu(&regs::boot_fpu()).map_err(|e| VcpuError::SetRegisters("FPU", e))?;
    if index == 0 {
        let sregs = vcpu.get_sregs().map_err(|e| VcpuError::SetRegisters("sregs", e))?;
        vcpu.set_sregs(&regs::long_mode_sregs(sregs)).map_err(|e| VcpuError::SetRegisters("sregs", e))?;
        vcpu.set_regs(&regs::boot_regs(boot.entry)).map_err(|e| VcpuError::SetRegisters("regs", e))?;
    }
    configure_lapic(&vcpu)?;
    Ok(vcpu)
}

/// What the loop does after an exit.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    End(ExitReason),
}

fn count(counter: &std::sync::atomic::AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The buses a vCPU's I/O exits go to.
#[derive(Debug, Default)]
pub struct Buses {
    /// Port I/O.
    pub pio: PioBus,
    /// Memory-mapped I/O (virtio-mmio transports).
    pub mmio: MmioBus,
}

/// Maps one exit to its handling: port I/O and MMIO go to their buses.
fn handle_exit(exit: VcpuExit<'_>, buses: &Buses, counters: &ExitCounters) -> Next {
    let bus = &buses.pio;
    match exit {
        VcpuExit::IoIn(port, data) => {
            count(&counters.pio_reads);
            bus.read(port, data);
            Next::Continue
        }
        VcpuExit::IoOut(port, data) => {
            count(&counters.pio_writes);
            match bus.write(port, data) {
                DeviceAction::None => Next::Continue,
                DeviceAction::Reset => Next::End(ExitReason::GuestReset),
            }
        }
        VcpuExit::MmioRead(addr, data) => {
            count(&counters.mmio_reads);
            buses.mmio.read(addr, data);
            Next::Continue
        }
        VcpuExit::MmioWrite(addr, data) => {
            count(&counters.mmio_writes);
            buses.mmio.write(addr, data);
            Next::Continue
        }
        other => {
            count(&counters.other);
            match other {
                VcpuExit::Shutdown => Next::End(ExitReason::GuestReset),
                VcpuExit::Hlt => Next::End(ExitReason::GuestShutdown),
                VcpuExit::SystemEvent(kind, _) => Next::End(system_event_reason(kind)),
                VcpuExit::Intr | VcpuExit::IrqWindowOpen => Next::Continue,
                VcpuExit::FailEntry(reason, cpu) => Next::End(ExitReason::VmmError(format!(
                    "KVM could not enter the guest on cpu {cpu} (hardware reason {reason:#x})"
                ))),
                VcpuExit::InternalError => Next::End(ExitReason::VmmError("KVM internal error".to_string())),
                other => Next::End(ExitReason::VmmError(format!("unexpected VM exit {other:?}"))),
            }
        }
    }
}

/// The exit reason for a `KVM_EXIT_SYSTEM_EVENT` of type `kind`.
fn system_event_reason(kind: u32) -> ExitReason {
    match kind {
        KVM_SYSTEM_EVENT_RESET => ExitReason::GuestReset,
        KVM_SYSTEM_EVENT_CRASH => ExitReason::GuestPanic,
        KVM_SYSTEM_EVENT_SHUTDOWN => ExitReason::GuestShutdown,
        _ => ExitReason::GuestShutdown,
    }
}

/// A configured vCPU and what its thread needs.
pub struct VcpuRunner {
    /// The vCPU.
    pub fd: VcpuFd,
    /// Its index.
    pub index: u8,
    /// The I/O buses.
    pub bus: Arc<Buses>,
    /// Shared stop flag, exit reason and counters.
    pub state: Arc<RunState>,
}

impl VcpuRunner {
    /// Runs the vCPU until the VM ends; records the reason if this vCPU ended it.
    pub fn run(mut self) {
        kick::set_thread_kvm_run(self.fd.get_kvm_run());
        if self.index == 0 {
            self.state.mark_kernel_entry();
        }
        while !self.state.should_stop() {
            let next = match self.fd.run() {
                Ok(exit) => handle_exit(exit, &self.bus, &self.state.counters),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    count(&self.state.counters.interrupted);
                    Next::Continue
                }
                Err(e) => Next::End(ExitReason::VmmError(format!("KVM_RUN failed: {e}"))),
            };
            // A kick sets immediate_exit; clear it before looking at the stop flag again.
            self.fd.set_kvm_immediate_exit(0);
            if let Next::End(reason) = next {
                let reason = match reason {
                    ExitReason::VmmError(msg) => ExitReason::VmmError(self.describe(msg)),
                    other => other,
                };
                self.state.finish(reason);
            }
        }
        kick::set_thread_kvm_run(std::ptr::null_mut());
    }

    fn describe(&self, msg: String) -> String {
        match self.fd.get_regs() {
            Ok(r) => format!("vCPU {}: {msg} (rip {:#x})", self.index, r.rip),
            Err(_) => format!("vCPU {}: {msg}", self.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::devices::i8042::{I8042Port, I8042_COMMAND_PORT};

    #[test]
    fn port_exits_dispatch_and_reset_ends_the_vm() {
        let mut pio = PioBus::new();
        pio.register(I8042_COMMAND_PORT, 1, Arc::new(Mutex::new(I8042Port::pair().1))).unwrap();
        let bus = Buses { pio, mmio: MmioBus::new() };
        let counters = ExitCounters::default();
        let mut data = [0xffu8; 1];
        assert_eq!(handle_exit(VcpuExit::IoIn(0x80, &mut data), &bus, &counters), Next::Continue);
        assert_eq!(data, [0]);
        let reset = handle_exit(VcpuExit::IoOut(I8042_COMMAND_PORT, &[0xfe]), &bus, &counters);
        assert_eq!(reset, Next::End(ExitReason::GuestReset));
        let mut mmio = [0xffu8; 4];
        handle_exit(VcpuExit::MmioRead(0xd000_0000, &mut mmio), &bus, &counters);
        assert_eq!(mmio, [0; 4]);
        assert_eq!(handle_exit(VcpuExit::Shutdown, &bus, &counters), Next::End(ExitReason::GuestReset));
        assert_eq!(counters.pio_reads.load(Ordering::Relaxed), 1);
        assert_eq!(counters.pio_writes.load(Ordering::Relaxed), 1);
        assert_eq!(counters.mmio_reads.load(Ordering::Relaxed), 1);
        assert_eq!(bus.pio.unhandled().reads.load(Ordering::Relaxed), 1);
        assert_eq!(bus.mmio.unhandled_reads(), 1);
    }

    #[test]
    fn system_events_map_to_reasons() {
        assert_eq!(system_event_reason(KVM_SYSTEM_EVENT_RESET), ExitReason::GuestReset);
        assert_eq!(system_event_reason(KVM_SYSTEM_EVENT_SHUTDOWN), ExitReason::GuestShutdown);
        assert_eq!(system_event_reason(KVM_SYSTEM_EVENT_CRASH), ExitReason::GuestPanic);
    }
}
