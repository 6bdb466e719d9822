//! The engine's side of the init shim (`crate::init_shim`): making the agent's binary
//! available to bind into containers, and reading the command's precise exit status.
//!
//! The agent's binary is the shim. In the guest it is the initramfs's `/init`, hidden below
//! the tmpfs root the agent moves onto `/` at boot, so it is published at [`SOURCE`] by a
//! read-only bind mount of `/proc/self/exe` (no copy: the initramfs file stays the only
//! one). Every container's spec then binds [`SOURCE`] read-only to
//! [`crate::init_shim::SHIM_PATH`]. A bind mount rather than a memfd: the container
//! sees an ordinary read-only file (`EROFS` for writes, also through `/proc/<pid>/exe`),
//! restarts and execs need nothing re-created, and no descriptor has to survive the runtime's
//! clean-up of inherited descriptors.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::reaper::Exit;

/// Where the agent's binary is published in the agent's own mount namespace.
pub const SOURCE: &str = "/run/aci/init";

/// Names the shim binary instead of the running one; honoured only when the agent is not
/// PID 1. The engine's fast tests run a host build of the agent, which is dynamically linked
/// and cannot run in a container's root; they point this at the static guest build.
pub const SHIM_ENV: &str = "ACI_AGENT_INIT_SHIM";

/// Binds the shim binary (the running one, `/proc/self/exe`, or [`SHIM_ENV`]'s when not
/// PID 1) read-only at [`SOURCE`]; returns the path. A dynamically linked binary is refused:
/// a container's root has no loader for it.
pub fn publish(is_init: bool) -> io::Result<PathBuf> {
    let binary = match std::env::var_os(SHIM_ENV).filter(|_| !is_init) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from("/proc/self/exe"),
    };
    // The program headers sit right after the ELF header, in the first page.
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(&binary)?.take(4096).read_to_end(&mut head)?;
    if has_interpreter(&head) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} is dynamically linked (set {SHIM_ENV} to a static agent)", binary.display()),
        ));
    }
    let target = Path::new(SOURCE);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // An earlier agent life's bind (tests start agents one after another) goes first.
    let c_target = cstring(target)?;
    // SAFETY: a valid NUL-terminated path; failure (nothing mounted) is fine.
    unsafe { libc::umount2(c_target.as_ptr(), libc::MNT_DETACH) };
    if !target.exists() {
        std::fs::File::create(target)?;
    }
    let exe = cstring(&binary)?;
    // SAFETY: valid NUL-terminated paths; no data argument for a bind.
    let rc = unsafe {
        libc::mount(exe.as_ptr(), c_target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: as above; a read-only remount of the bind just made.
    let rc = unsafe {
        libc::mount(std::ptr::null(), c_target.as_ptr(), std::ptr::null(), flags, std::ptr::null())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target.to_path_buf())
}

/// Whether an ELF64 image has a `PT_INTERP` program header (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |at: usize| {
        elf.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).map(|v| v as usize)
    };
    let (Some(phoff), Some(size), Some(count)) = (u64_at(32), u16_at(54), u16_at(56)) else { return false };
    (0..count).any(|i| {
        let at = phoff + i * size;
        elf.get(at..at + 4).is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == PT_INTERP)
    })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// What the shim wrote on its status pipe (empty when it wrote nothing: killed itself, or
/// never started). Does not block: the shim has exited, so the pipe is at end of file.
pub fn read_report(pipe: OwnedFd) -> Vec<u8> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(pipe.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut bytes = Vec::new();
    let _ = std::fs::File::from(pipe).take(64).read_to_end(&mut bytes);
    bytes
}

/// The container's exit: the command's own status from the shim's `report` when it agrees
/// with how the shim itself ended (`shim`), otherwise the shim's status (e.g. SIGKILL to the
/// whole container kills the shim first).
pub fn decode(shim: Exit, report: &[u8]) -> Exit {
    let Some(raw) = std::str::from_utf8(report).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
        return shim;
    };
    let command = Exit::from_wait_status(raw);
    if shim.signal.is_none() && shim.code == command.code {
        command
    } else {
        shim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_signal_is_reported_when_the_shim_agrees() {
        let shim = Exit { code: 137, signal: None };
        assert_eq!(decode(shim, b"9\n"), Exit { code: 137, signal: Some(9) });
        let shim = Exit { code: 143, signal: None };
        assert_eq!(decode(shim, b"15\n"), Exit { code: 143, signal: Some(15) });
        // A plain exit code 3.
        assert_eq!(decode(Exit { code: 3, signal: None }, b"768\n"), Exit { code: 3, signal: None });
    }

    #[test]
    fn the_shims_own_status_wins_otherwise() {
        let killed = Exit { code: 137, signal: Some(9) };
        assert_eq!(decode(killed, b""), killed);
        assert_eq!(decode(killed, b"15\n"), killed);
        let plain = Exit { code: 143, signal: None };
        assert_eq!(decode(plain, b"garbage"), plain);
        // Disagreeing code: not the command's report.
        assert_eq!(decode(plain, b"9\n"), plain);
    }

    #[test]
    fn dynamic_binaries_are_told_apart() {
        // The test binary itself is a host build: dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_interpreter(&me));
        assert!(!has_interpreter(b"\x7fELF"));
        assert!(!has_interpreter(&[]));
    }

    #[test]
    fn a_report_is_read_from_a_closed_pipe_without_blocking() {
        use std::io::Write;
        let (r, w) = super::super::runtime::pipe().unwrap();
        std::fs::File::from(w).write_all(b"15\n").unwrap();
        assert_eq!(read_report(r), b"15\n");
        let (r, w) = super::super::runtime::pipe().unwrap();
        let _keep = w; // Still open: must not block.
        assert!(read_report(r).is_empty());
    }
}
