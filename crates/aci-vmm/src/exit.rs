//! How a VM ended, and the shared record the vCPU threads write it to (first reason wins).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::devices::console_watch::ConsoleMarks;
use crate::devices::pio_bus::lock;

/// Why the VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest reset the machine: a triple fault (`reboot=t`), the i8042 reset command
    /// (`reboot=k`) or a KVM reset system event.
    GuestReset,
    /// The guest powered off (a KVM shutdown system event) or halted with no way to wake.
    GuestShutdown,
    /// The guest kernel panicked: it printed `Kernel panic - not syncing` on the console
    /// before it reset, powered off or was stopped (see `devices::console_watch`), or it
    /// reported a crash (a KVM crash system event). [`crate::Vm::panic_message`] has the line.
    GuestPanic,
    /// [`crate::Vm::stop`] ended the VM.
    Stopped,
    /// The VMM failed while running the guest.
    VmmError(String),
}

/// Counters of VM exits, for finding where boot time goes.
#[derive(Debug, Default)]
pub struct ExitCounters {
    /// Port reads.
    pub pio_reads: AtomicU64,
    /// Port writes.
    pub pio_writes: AtomicU64,
    /// MMIO reads.
    pub mmio_reads: AtomicU64,
    /// MMIO writes.
    pub mmio_writes: AtomicU64,
    /// KVM_RUN returns interrupted by a signal.
    pub interrupted: AtomicU64,
    /// Every other exit.
    pub other: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitStats {
    /// Port reads.
    pub pio_reads: u64,
    /// Port writes.
    pub pio_writes: u64,
    /// Port reads no device claimed.
    pub pio_unhandled_reads: u64,
    /// Port writes no device claimed.
    pub pio_unhandled_writes: u64,
    /// MMIO reads.
    pub mmio_reads: u64,
    /// MMIO writes.
    pub mmio_writes: u64,
    /// MMIO reads no device claimed (they read as zeros).
    pub mmio_unhandled_reads: u64,
    /// MMIO writes no device claimed (ignored).
    pub mmio_unhandled_writes: u64,
    /// Signal-interrupted runs.
    pub interrupted: u64,
    /// Other exits.
    pub other: u64,
}

impl ExitStats {
    /// All exits to user space counted.
    pub fn total(&self) -> u64 {
        self.pio_reads + self.pio_writes + self.mmio_reads + self.mmio_writes + self.other
    }
}

/// State shared by the `Vm` handle and its vCPU threads.
#[derive(Debug, Default)]
pub struct RunState {
    stop: AtomicBool,
    reason: Mutex<Option<(ExitReason, Instant)>>,
    ended: Condvar,
    console: Arc<ConsoleMarks>,
    kernel_entry: OnceLock<Instant>,
    /// Exit counters.
    pub counters: ExitCounters,
}

impl RunState {
    /// A run state whose exit reasons take the console's milestones into account: a reset,
    /// power-off or stop after a kernel panic message is recorded as [`ExitReason::GuestPanic`].
    pub fn new(console: Arc<ConsoleMarks>) -> Self {
        Self { console, ..Self::default() }
    }

    /// Notes that the boot vCPU is about to enter the guest for the first time.
    pub fn mark_kernel_entry(&self) {
        let _ = self.kernel_entry.set(Instant::now());
    }

    /// When the boot vCPU first entered the guest.
    pub fn kernel_entry(&self) -> Option<Instant> {
        self.kernel_entry.get().copied()
    }

    /// Records why the VM ends (if nothing was recorded before) and asks all vCPUs to stop.
    pub fn finish(&self, reason: ExitReason) {
        let reason = match reason {
            ExitReason::GuestReset | ExitReason::GuestShutdown | ExitReason::Stopped
                if self.console.panicked().is_some() =>
            {
                ExitReason::GuestPanic
            }
            other => other,
        };
        let mut slot = lock(&self.reason);
        if slot.is_none() {
            *slot = Some((reason, Instant::now()));
        }
        self.stop.store(true, Ordering::SeqCst);
        self.ended.notify_all();
    }

    /// True once the VM is ending.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The recorded reason and when it was recorded, if any.
    pub fn reason(&self) -> Option<(ExitReason, Instant)> {
        lock(&self.reason).clone()
    }

    /// Waits until a reason is recorded or `timeout` passes.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<(ExitReason, Instant)> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut slot = lock(&self.reason);
        loop {
            if let Some(found) = slot.clone() {
                return Some(found);
            }
            slot = match deadline {
                None => self.ended.wait(slot).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    self.ended.wait_timeout(slot, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::devices::console_watch::ConsoleWatch;

    #[test]
    fn first_reason_wins_and_wakes_waiters() {
        let state = Arc::new(RunState::default());
        assert!(state.wait(Some(Duration::from_millis(5))).is_none());
        let waiter = {
            let state = state.clone();
            std::thread::spawn(move || state.wait(None).map(|(r, _)| r))
        };
        state.finish(ExitReason::GuestReset);
        state.finish(ExitReason::Stopped);
        assert!(state.should_stop());
        assert_eq!(waiter.join().unwrap(), Some(ExitReason::GuestReset));
        assert_eq!(state.reason().map(|(r, _)| r), Some(ExitReason::GuestReset));
    }

    #[test]
    fn a_reset_after_a_panic_message_is_a_panic() {
        let marks = Arc::new(ConsoleMarks::default());
        let state = RunState::new(marks.clone());
        let mut console = ConsoleWatch::new(Box::new(std::io::sink()), marks);
        console.write_all(b"Kernel panic - not syncing: VFS: Unable to mount root fs\r\n").unwrap();
        state.finish(ExitReason::GuestReset);
        assert_eq!(state.reason().map(|(r, _)| r), Some(ExitReason::GuestPanic));

        let clean = RunState::new(Arc::new(ConsoleMarks::default()));
        clean.finish(ExitReason::GuestReset);
        assert_eq!(clean.reason().map(|(r, _)| r), Some(ExitReason::GuestReset));
        let failed = RunState::new(Arc::new(ConsoleMarks::default()));
        failed.finish(ExitReason::VmmError("x".into()));
        assert!(matches!(failed.reason(), Some((ExitReason::VmmError(_), _))));
    }
}
