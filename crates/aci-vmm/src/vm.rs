//! The running microVM: wait for it to end, or stop it.

use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use kvm_ioctls::VmFd;

use crate::builder::DeviceMeter;
use crate::devices::console_watch::ConsoleMarks;
use crate::devices::pio_bus::lock;
use crate::devices::serial::SerialDevice;
use crate::exit::{ExitReason, ExitStats, RunState};
use crate::kick;
use crate::loader::KernelFormat;
use crate::memory::GuestMem;
use crate::metrics::{BootTimes, DeviceStats, VmMetrics};
use crate::vcpu::Buses;

/// How often [`Vm::stop`] re-sends the kick while a vCPU thread has not finished.
const KICK_INTERVAL: Duration = Duration::from_millis(5);

/// A booted microVM. Dropping it stops it.
pub struct Vm {
    pub(crate) state: Arc<RunState>,
    pub(crate) vcpu_threads: Vec<JoinHandle<()>>,
    pub(crate) bus: Arc<Buses>,
    pub(crate) serial: Arc<Mutex<SerialDevice>>,
    pub(crate) console: Arc<ConsoleMarks>,
    pub(crate) devices: Vec<DeviceMeter>,
    pub(crate) created: SystemTime,
    pub(crate) built: Duration,
    pub(crate) started: Instant,
    pub(crate) format: KernelFormat,
    pub(crate) build_timings: Vec<(&'static str, Duration)>,
    // Dropped after the vCPU threads are joined (see `Drop`), in this order.
    pub(crate) _vm: VmFd,
    pub(crate) _memory: GuestMem,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("vcpus", &self.vcpu_threads.len())
            .field("format", &self.format)
            .field("reason", &self.state.reason())
            .finish_non_exhaustive()
    }
}

/// When the VM ended, relative to when it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmExit {
    /// Why it ended.
    pub reason: ExitReason,
    /// Time from the start of [`crate::Vm::build`] to the exit.
    pub elapsed: Duration,
}

impl Vm {
    /// Blocks until the guest ends the VM (or a vCPU fails), then joins the vCPU threads.
    pub fn wait(&mut self) -> VmExit {
        let found = self.state.wait(None);
        self.finish(found)
    }

    /// Like [`Vm::wait`], but gives up after `timeout` and returns `None` (the VM keeps
    /// running).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<VmExit> {
        let found = self.state.wait(Some(timeout))?;
        Some(self.finish(Some(found)))
    }

    /// Forces the VM to stop: every vCPU is kicked out of `KVM_RUN` and joined. Returns the
    /// guest's own exit if it had already ended, [`ExitReason::Stopped`] otherwise (or
    /// [`ExitReason::GuestPanic`] if the guest had printed a kernel panic and hung, as it does
    /// with `panic=0`).
    pub fn stop(&mut self) -> VmExit {
        self.state.finish(ExitReason::Stopped);
        let found = self.state.reason();
        self.finish(found)
    }

    fn finish(&mut self, found: Option<(ExitReason, Instant)>) -> VmExit {
        self.state.finish(ExitReason::Stopped);
        self.join_vcpus();
        let (reason, at) =
            found.or_else(|| self.state.reason()).unwrap_or_else(|| (ExitReason::Stopped, Instant::now()));
        VmExit { reason, elapsed: at.saturating_duration_since(self.started) }
    }

    fn join_vcpus(&mut self) {
        for handle in self.vcpu_threads.drain(..) {
            while !handle.is_finished() {
                kick::kick(handle.as_pthread_t());
                std::thread::sleep(KICK_INTERVAL);
            }
            // A vCPU thread that panicked has nothing left to clean up.
            let _ = handle.join();
        }
    }

    /// The exit counters so far ([`Vm::metrics`] has them with the device counters and boot
    /// timestamps).
    pub fn stats(&self) -> ExitStats {
        let c = &self.state.counters;
        let unhandled = self.bus.pio.unhandled();
        let mmio_unhandled = self.bus.mmio.unhandled();
        ExitStats {
            pio_reads: c.pio_reads.load(Ordering::Relaxed),
            pio_writes: c.pio_writes.load(Ordering::Relaxed),
            pio_unhandled_reads: unhandled.reads.load(Ordering::Relaxed),
            pio_unhandled_writes: unhandled.writes.load(Ordering::Relaxed),
            mmio_reads: c.mmio_reads.load(Ordering::Relaxed),
            mmio_writes: c.mmio_writes.load(Ordering::Relaxed),
            mmio_unhandled_reads: mmio_unhandled.reads.load(Ordering::Relaxed),
            mmio_unhandled_writes: mmio_unhandled.writes.load(Ordering::Relaxed),
            interrupted: c.interrupted.load(Ordering::Relaxed),
            other: c.other.load(Ordering::Relaxed),
        }
    }

    /// Everything measured so far: exits by kind, per-device bytes, boot milestones.
    pub fn metrics(&self) -> VmMetrics {
        let devices = self
            .devices
            .iter()
            .map(|(name, kind, counters)| DeviceStats {
                name: name.clone(),
                kind: *kind,
                counts: counters.snapshot(),
            })
            .collect();
        VmMetrics { exits: self.stats(), devices, boot: self.boot_times() }
    }

    /// The boot milestones reached so far.
    pub fn boot_times(&self) -> BootTimes {
        let since = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(self.started));
        BootTimes {
            created: self.created,
            built: self.built,
            kernel_entry: since(self.state.kernel_entry()),
            first_console_byte: since(self.console.first_byte()),
            agent_ready: since(self.console.ready()),
        }
    }

    /// Records that the guest's agent is ready now (for callers that learn it another way
    /// than the console's `aci-agent ready` line, e.g. a first successful agent call). The
    /// first of the two counts.
    pub fn mark_agent_ready(&self) {
        self.console.mark_ready();
    }

    /// The guest kernel's panic line (`Kernel panic - not syncing: ...`), if it printed one.
    pub fn panic_message(&self) -> Option<String> {
        self.console.panic_message()
    }

    /// The host virtual address ranges backing guest RAM (to measure how much of it the
    /// guest has touched, e.g. from `/proc/self/smaps`).
    pub fn guest_memory_host_ranges(&self) -> Vec<std::ops::Range<usize>> {
        use vm_memory::{GuestMemory, GuestMemoryRegion};
        self._memory
            .iter()
            .map(|region| {
                let start = region.as_ptr() as usize;
                start..start + region.len() as usize
            })
            .collect()
    }

    /// Port I/O exits per port, busiest first: `(port, reads, writes)`.
    pub fn port_counts(&self) -> Vec<crate::devices::pio_bus::PortCount> {
        self.bus.pio.port_counts()
    }

    /// Sends bytes to the guest's serial console; returns how many fit in its FIFO.
    pub fn send_serial_input(&self, bytes: &[u8]) -> usize {
        lock(&self.serial).enqueue_input(bytes)
    }

    /// The kernel image format that was booted.
    pub fn kernel_format(&self) -> KernelFormat {
        self.format
    }

    /// How long each step of [`crate::Vm::build`] took, in order.
    pub fn build_timings(&self) -> &[(&'static str, Duration)] {
        &self.build_timings
    }

    /// When [`crate::Vm::build`] started.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// Time from the start of [`crate::Vm::build`] to the guest's first console byte, if it
    /// has printed one (with `quiet`, usually userspace's first line).
    pub fn first_console_byte(&self) -> Option<Duration> {
        let at = self.serial.lock().ok()?.first_output_at()?;
        Some(at.saturating_duration_since(self.started))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if !self.vcpu_threads.is_empty() {
            self.stop();
        }
    }
}
