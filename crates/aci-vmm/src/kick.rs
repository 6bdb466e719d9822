//! Getting a vCPU thread out of `KVM_RUN` on demand.
//!
//! [`crate::Vm::stop`] sends each vCPU thread a real-time signal. Its handler sets
//! `immediate_exit` in the thread's own `kvm_run`, so a signal that lands just before the
//! thread enters `KVM_RUN` is not lost: the next `KVM_RUN` returns `EINTR` at once, and the
//! loop sees the stop flag.

use std::cell::Cell;
use std::ptr;
use std::sync::OnceLock;

use kvm_bindings::kvm_run;
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

thread_local! {
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(ptr::null_mut()) };
}

/// Why the kick signal handler could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not install the vCPU kick signal handler")]
pub struct KickError(#[source] vmm_sys_util::errno::Error);

/// The signal used to kick vCPU threads.
pub fn kick_signal() -> c_int {
    SIGRTMIN()
}

extern "C" fn handle_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    let run = KVM_RUN.try_with(Cell::get).unwrap_or(ptr::null_mut());
    if !run.is_null() {
        // SAFETY: the pointer was set by this thread from its own live VcpuFd's kvm_run
        // mapping and is cleared before that VcpuFd is dropped; the handler runs on the same
        // thread, and a volatile byte store is async-signal-safe.
        unsafe { ptr::write_volatile(ptr::addr_of_mut!((*run).immediate_exit), 1) };
    }
}

/// Installs the handler (once per process).
pub fn install_handler() -> Result<(), KickError> {
    static INSTALLED: OnceLock<Result<(), KickError>> = OnceLock::new();
    INSTALLED.get_or_init(|| register_signal_handler(kick_signal(), handle_kick).map_err(KickError)).clone()
}

/// Tells the handler which `kvm_run` belongs to the calling thread (null to forget it).
pub fn set_thread_kvm_run(run: *mut kvm_run) {
    KVM_RUN.with(|cell| cell.set(run));
}

/// Sends the kick signal to a thread.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` comes from a JoinHandle that has not been joined, so it names a live
    // (or finished but unjoined) thread; pthread_kill has no memory effects for us.
    unsafe { libc::pthread_kill(thread, kick_signal()) };
}
