//! The bridge to youki's libcontainer: create (init process waiting to start), start, exec
//! (a tenant process in a running container), kill, delete.
//!
//! libcontainer clones its helper processes with a raw `clone3` and runs Rust code in them.
//! In the agent, which has many threads, another thread could hold an allocator or stdio
//! lock at that instant, and the clone would inherit it locked. So create and exec run in a
//! forked, single-threaded child of the agent (`fork(2)` through libc, which resets the
//! allocator's locks), which reports the new pid or the error over a pipe and exits.
//! libcontainer also changes the process's working directory and makes it non-dumpable
//! while it works: in the child, that stays out of the agent.
//!
//! The root is entered with `pivot_root` (the old root is then unmounted from the
//! container's mount namespace). That needs the agent's own root to be a mount with a
//! parent, stacked on the namespace's `/`: the agent's boot moves a tmpfs onto `/` for this
//! (see `docs/sandbox.md`, "tmpfs root"). The container's root then sits on the namespace's
//! `/`, so a process joining the mount namespace later (an exec: `setns` looks `/` up
//! following the mounts stacked on it) lands in the container's root too.
//!
//! Who is whose parent: with `as_sibling(true)` libcontainer clones its intermediate process
//! with `CLONE_PARENT`, and the intermediate clones the container process with
//! `CLONE_PARENT` too, so both are children of the agent itself (not of the forked child),
//! and they exit with no signal to the parent: the reaper waits with `__WALL`.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use super::error::chain;
use super::tty::SizedTerminal;

/// The standard streams handed to a new process (`None`: no terminal, pipes given).
#[derive(Debug)]
pub struct Stdio {
    /// Standard input.
    pub stdin: OwnedFd,
    /// Standard output.
    pub stdout: OwnedFd,
    /// Standard error.
    pub stderr: OwnedFd,
}

/// Where a container's runtime state lives and how its processes get their I/O.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// libcontainer's state directory (one sub-directory per container).
    pub state_root: PathBuf,
}

impl Runtime {
    fn builder(&self, id: &str, stdio: &Stdio, console: Option<&Path>) -> Result<ContainerBuilder, String> {
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("duplicating a stdio descriptor: {e}"));
        let builder = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
            .with_root_path(&self.state_root)
            .map_err(|e| chain(&e))?
            .with_stdin(dup(&stdio.stdin)?)
            .with_stdout(dup(&stdio.stdout)?)
            .with_stderr(dup(&stdio.stderr)?)
            .with_executor(SizedTerminal);
        Ok(builder.with_console_socket(console))
    }

    /// Creates container `id` from the bundle (its init process waits for [`Self::start`]);
    /// returns the init pid. With `console`, the process gets a terminal whose master is
    /// sent to that Unix socket. With `status`, the init process gets that descriptor as
    /// fd 3 (the init shim's status pipe, `crate::init_shim::STATUS_FD`).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: &Stdio,
        console: Option<&Path>,
        status: Option<&OwnedFd>,
    ) -> Result<i32, String> {
        std::fs::create_dir_all(&self.state_root)
            .map_err(|e| format!("creating {}: {e}", self.state_root.display()))?;
        in_child(|report| {
            // Before the builder duplicates the stdio descriptors, which could land on 3.
            if let Some(fd) = status {
                place_at_fd3(fd, report)?;
            }
            let builder = self.builder(id, stdio, console)?.with_preserved_fds(i32::from(status.is_some()));
            let container = builder
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
                .as_sibling(true)
                .build()
                .map_err(|e| chain(&e))?;
            container.pid().map(|p| p.as_raw()).ok_or_else(|| "the runtime reported no init pid".to_owned())
        })
    }

    fn load(&self, id: &str) -> Result<Container, String> {
        Container::load(self.state_root.join(id)).map_err(|e| chain(&e))
    }

    /// Lets the created init process exec the container's command. (In a child too:
    /// libcontainer changes the working directory to reach the notify socket.)
    pub fn start(&self, id: &str) -> Result<(), String> {
        in_child(|_| self.load(id)?.start().map(|()| 0).map_err(|e| chain(&e))).map(|_| ())
    }

    /// Runs `process` (an OCI `process.json`) in running container `id`; returns its pid.
    pub fn exec(
        &self,
        id: &str,
        process: &Path,
        stdio: &Stdio,
        console: Option<&Path>,
    ) -> Result<i32, String> {
        in_child(|_| {
            let pid = self
                .builder(id, stdio, console)?
                .as_tenant()
                .with_process(Some(process))
                .with_detach(true)
                .as_sibling(true)
                .build()
                .map_err(|e| chain(&e))?;
            Ok(pid.as_raw())
        })
    }

    /// Sends `signal` to every process of container `id` (through its cgroup).
    pub fn kill_all(&self, id: &str, signal: i32) -> Result<(), String> {
        let signal = libcontainer::signal::Signal::try_from(signal).map_err(|e| chain(&e))?;
        self.load(id)?.kill(signal, true).map_err(|e| chain(&e))
    }

    /// Deletes container `id`'s runtime state and cgroup (killing what still runs).
    /// A container the runtime does not know is not an error.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        self.load(id)?.delete(true).map_err(|e| chain(&e))
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded; both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null`, for the streams a process does not use.
pub fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::options().read(true).write(true).open("/dev/null")?.into())
}

/// In the forked helper: puts a duplicate of `fd` at descriptor 3 (inheritable), first moving
/// the helper's answer pipe `report` away from 3 if it is there.
fn place_at_fd3(fd: &OwnedFd, report: &mut OwnedFd) -> Result<(), String> {
    const TARGET: i32 = 3;
    let os_err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    if report.as_raw_fd() == TARGET {
        // SAFETY: duplicating a descriptor we own to the lowest free number above 3.
        let moved = unsafe { libc::fcntl(TARGET, libc::F_DUPFD_CLOEXEC, TARGET + 1) };
        if moved < 0 {
            return Err(os_err("moving the helper's pipe"));
        }
        // SAFETY: `moved` is a fresh descriptor of ours; the old one is closed by the swap.
        *report = unsafe { OwnedFd::from_raw_fd(moved) };
    }
    if fd.as_raw_fd() == TARGET {
        // SAFETY: clearing close-on-exec on our own descriptor.
        if unsafe { libc::fcntl(TARGET, libc::F_SETFD, 0) } != 0 {
            return Err(os_err("keeping the status pipe open"));
        }
        return Ok(());
    }
    // SAFETY: dup2 onto 3, which (after the move above) holds nothing the helper still needs;
    // the copy is inheritable. It stays open for the rest of the helper's short life.
    if unsafe { libc::dup2(fd.as_raw_fd(), TARGET) } != TARGET {
        return Err(os_err("passing the status pipe"));
    }
    Ok(())
}

/// Runs `work` in a forked child and returns what it returned; `work` gets the child's
/// answer pipe (to keep it clear of descriptors it rearranges). The child writes `+pid\n` or
/// `-message\n` to a pipe and exits without running destructors or atexit handlers. The
/// answer is read up to its newline, not to end of file: the container process, cloned
/// from the child, holds the pipe open until it execs.
fn in_child(work: impl FnOnce(&mut OwnedFd) -> Result<i32, String>) -> Result<i32, String> {
    let (read_end, mut write_end) = pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    // SAFETY: fork(2) through libc, so the allocator's fork handlers run; the child only runs
    // `work` (on this thread's copy of the address space) and then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("forking the runtime helper: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(read_end);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut write_end)))
            .unwrap_or_else(|_| Err("the runtime panicked".to_owned()));
        let message = match outcome {
            Ok(pid) => format!("+{pid}\n"),
            Err(msg) => format!("-{}\n", msg.replace('\n', " ")),
        };
        // SAFETY: writing our own buffer to the pipe we own; then leaving without unwinding.
        unsafe {
            libc::write(write_end.as_raw_fd(), message.as_ptr().cast(), message.len());
            libc::_exit(0);
        }
    }
    drop(write_end);
    let mut pipe = std::fs::File::from(read_end);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                if bytes.ends_with(b"\n") {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let answer = String::from_utf8_lossy(&bytes).trim_end().to_owned();
    // The helper itself is reaped by the engine's reaper (it reaps every child).
    match (read, answer.split_at_checked(1)) {
        (Ok(_), Some(("+", pid))) => pid.parse().map_err(|_| format!("the runtime helper said {answer:?}")),
        (Ok(_), Some(("-", msg))) => Err(msg.to_owned()),
        (Ok(_), _) => Err("the runtime helper died without an answer".to_owned()),
        (Err(e), _) => Err(format!("reading the runtime helper's answer: {e}")),
    }
}
