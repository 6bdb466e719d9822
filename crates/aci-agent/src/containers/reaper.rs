//! The one place that waits for child processes. The agent is PID 1, so every orphan in the
//! guest becomes its child; a single thread waits for any child (`waitpid(-1, __WALL)`:
//! libcontainer's processes exit without signalling their parent) and routes each status
//! to whoever watches that pid, reaping everything else.
//!
//! A process can end before its watcher is registered (an exec of a missing file, a
//! command that exits at once): the statuses of unwatched pids are kept for a while
//! ([`UNCLAIMED_KEPT`] of them) and handed over on registration.
//!
//! Nothing else in the agent may wait for its children (`std::process::Child::wait` would
//! see `ECHILD`); use [`Reaper::wait_for`] instead.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How many statuses of unwatched pids are kept for a late watcher.
pub const UNCLAIMED_KEPT: usize = 512;

/// How a process ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code; 128 + the signal when a signal killed it.
    pub code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
}

impl Exit {
    /// Decodes a raw `waitpid` status.
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            Self { code: 128 + sig, signal: Some(sig) }
        } else {
            Self { code: libc::WEXITSTATUS(status), signal: None }
        }
    }
}

type Callback = Box<dyn FnOnce(Exit) + Send>;

#[derive(Default)]
struct Table {
    watched: HashMap<i32, Callback>,
    unclaimed: VecDeque<(i32, Exit)>,
}

/// The reaper; cheap to clone.
#[derive(Clone, Default)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reaper")
    }
}

impl Reaper {
    /// Starts the reaping thread. When the agent is not PID 1 (tests), it also becomes a
    /// child subreaper, so processes orphaned below it come back to it rather than to init.
    pub fn start(is_init: bool) -> Self {
        if !is_init {
            // SAFETY: prctl with constant arguments; failure only means orphans go to init.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
        let reaper = Self::default();
        let thread = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || thread.run())
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("aci-agent: starting the reaper failed: {e}"));
        reaper
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run(&self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
            if pid < 0 {
                // ECHILD: no children right now; EINTR: try again.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            self.route(pid, Exit::from_wait_status(status));
        }
    }

    fn route(&self, pid: i32, exit: Exit) {
        let mut table = self.table();
        match table.watched.remove(&pid) {
            Some(callback) => {
                drop(table);
                callback(exit);
            }
            None => {
                if table.unclaimed.len() >= UNCLAIMED_KEPT {
                    table.unclaimed.pop_front();
                }
                table.unclaimed.push_back((pid, exit));
            }
        }
    }

    /// Calls `callback` (on the reaper's thread) when `pid` ends, or now if it already did.
    pub fn watch(&self, pid: i32, callback: impl FnOnce(Exit) + Send + 'static) {
        let mut table = self.table();
        if let Some(i) = table.unclaimed.iter().position(|(p, _)| *p == pid) {
            let exit = table.unclaimed.remove(i).map(|(_, e)| e);
            drop(table);
            if let Some(exit) = exit {
                callback(exit);
            }
            return;
        }
        table.watched.insert(pid, Box::new(callback));
    }

    /// A receiver that gets `pid`'s exit.
    pub fn wait_for(&self, pid: i32) -> Receiver<Exit> {
        let (tx, rx) = mpsc::channel();
        self.watch(pid, move |exit| {
            let _ = tx.send(exit);
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_to_code_and_signal() {
        assert_eq!(Exit::from_wait_status(3 << 8), Exit { code: 3, signal: None });
        assert_eq!(Exit::from_wait_status(0), Exit { code: 0, signal: None });
        assert_eq!(Exit::from_wait_status(libc::SIGKILL), Exit { code: 137, signal: Some(9) });
        // Killed with a core dump: the 0x80 bit is set.
        assert_eq!(Exit::from_wait_status(libc::SIGSEGV | 0x80), Exit { code: 139, signal: Some(11) });
    }

    #[test]
    fn early_exits_are_kept_for_late_watchers_and_others_are_routed() {
        let reaper = Reaper::default();
        reaper.route(42, Exit { code: 1, signal: None });
        let rx = reaper.wait_for(42);
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap().code, 1);
        let rx = reaper.wait_for(43);
        reaper.route(43, Exit { code: 143, signal: Some(15) });
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap().signal, Some(15));
        for pid in 0..(UNCLAIMED_KEPT as i32 + 10) {
            reaper.route(1000 + pid, Exit { code: 0, signal: None });
        }
        assert_eq!(reaper.table().unclaimed.len(), UNCLAIMED_KEPT);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // Reaped with waitpid below, as the reaper does.
    fn real_children_are_reaped_and_routed() {
        let reaper = Reaper::default();
        let child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let pid = child.id() as i32;
        let rx = reaper.wait_for(pid);
        let mut status = 0;
        // SAFETY: waiting for our own child, as the reaper thread would.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        assert_eq!(got, pid);
        reaper.route(got, Exit::from_wait_status(status));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Exit { code: 7, signal: None });
    }
}
