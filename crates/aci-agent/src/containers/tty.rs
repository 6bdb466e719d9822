//! Terminals: libcontainer creates the pty inside the container and sends its master over
//! a "console socket" (a Unix socket we listen on); we receive it, size it, and use it as
//! the process's input and output.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aci_proto::container::TtySize;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::get_executor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

/// A console socket waiting for a terminal master.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `path` (replacing a stale socket file).
    pub fn bind(path: &Path) -> io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, path: path.to_owned() })
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection (already queued when the process started) and
    /// receives the master; gives up after `timeout`.
    pub fn receive_master(&self, timeout: Duration) -> io::Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        receive_fd(&stream)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives one descriptor sent with `SCM_RIGHTS`.
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // Room for one cmsg carrying one int, 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain old data; all-zero is a valid starting value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at our buffers, valid for the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the cmsg macros walk the control buffer recvmsg filled, within its length.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null() && (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "the console socket carried no terminal descriptor"))
}

/// Sets a terminal's window size.
pub fn resize(master: &impl AsRawFd, size: TtySize) -> io::Result<()> {
    resize_fd(master.as_raw_fd(), size)
}

fn resize_fd(fd: libc::c_int, size: TtySize) -> io::Result<()> {
    let ws = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The runtime's executor, plus two steps: the command validated is the one under the init
/// shim, if any; and a process on a terminal gets the spec's
/// `consoleSize` set on its terminal just before it execs (libcontainer does not apply it,
/// and sizing the master from the agent afterwards races with the program's first look).
#[derive(Clone)]
pub struct SizedTerminal;

impl Executor for SizedTerminal {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let process = spec.process().as_ref();
        if let Some(size) = process.filter(|p| p.terminal() == Some(true)).and_then(|p| p.console_size()) {
            let rows = u16::try_from(size.height()).unwrap_or(u16::MAX);
            let cols = u16::try_from(size.width()).unwrap_or(u16::MAX);
            // Best effort: a failure leaves the terminal at its default size.
            let _ = resize_fd(libc::STDIN_FILENO, TtySize { rows, cols });
        }
        get_executor().exec(spec)
    }

    /// The runtime's check that the command exists and is executable (run inside the
    /// container's root); for a command under the init shim, the check is of the command,
    /// so an unknown command still fails the start rather than becoming the shim's exit 127.
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let args = spec.process().as_ref().and_then(|p| p.args().as_deref()).unwrap_or_default();
        match crate::init_shim::unwrap(args) {
            Some(command) => {
                let mut inner = spec.clone();
                if let Some(process) = inner.process_mut() {
                    process.set_args(Some(command.to_vec()));
                }
                get_executor().validate(&inner)
            }
            None => get_executor().validate(spec),
        }
    }
}
