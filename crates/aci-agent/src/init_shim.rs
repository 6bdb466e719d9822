//! The container init shim: `aci-agent init --status-fd=N -- CMD ARGS...`.
//!
//! A container's main process is PID 1 of its pid namespace, and the kernel drops every
//! signal it has no handler for (SIGKILL from outside excepted): a plain `sh -c 'sleep 1000'`
//! ignores SIGTERM, so a stop always waited the whole grace period. The engine therefore
//! starts every container's command below this shim (the agent's own static binary, bound
//! read-only into the container at [`SHIM_PATH`]). The shim, as the namespace's PID 1:
//!
//! - starts CMD as its only direct child, with the same stdio, environment, working
//!   directory and user (the runtime sets the ids before it execs the shim), in a process
//!   group of its own that is the terminal's foreground group when stdin is a terminal;
//! - forwards [`FORWARDED`] signals to it (they are blocked in the shim and taken with
//!   `sigtimedwait`: blocked signals are never dropped, even for a namespace's init);
//! - reaps every process re-parented to it (orphans of the container);
//! - when CMD ends, writes its raw wait status to the status descriptor (the engine's pipe)
//!   and exits with CMD's exit code, or 128 + the signal that killed it.
//!
//! Re-raising the fatal signal on itself is not possible here: a pid namespace's init
//! cannot be killed by a signal it sends itself (the kernel ignores it like any other
//! default-action signal to an unkillable init). The status descriptor carries the precise
//! status instead, and the engine reports "killed by signal N" from it
//! (`containers::shim::decode`). Outside a pid namespace's init (not a case the engine
//! uses) the shim does re-raise.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

/// Where the shim is visible inside every container.
pub const SHIM_PATH: &str = "/.aci/init";
/// The subcommand that selects the shim in the agent's `main`.
pub const SUBCOMMAND: &str = "init";
/// The descriptor the engine passes the status pipe on (the runtime keeps fd 3).
pub const STATUS_FD: i32 = 3;

/// The signals forwarded to the command.
pub const FORWARDED: &[i32] =
    &[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// The argument vector that runs `command` under the shim.
pub fn wrap(command: &[String]) -> Vec<String> {
    let mut args =
        vec![SHIM_PATH.to_owned(), SUBCOMMAND.to_owned(), format!("--status-fd={STATUS_FD}"), "--".into()];
    args.extend(command.iter().cloned());
    args
}

/// The command `args` (a spec's process args) runs under the shim, if they are a [`wrap`].
pub fn unwrap(args: &[String]) -> Option<&[String]> {
    if args.first().map(String::as_str) != Some(SHIM_PATH)
        || args.get(1).map(String::as_str) != Some(SUBCOMMAND)
    {
        return None;
    }
    let dashes = args.iter().position(|a| a == "--")?;
    Some(&args[dashes + 1..])
}

/// What the shim's command line says.
#[derive(Debug, PartialEq, Eq)]
struct Invocation {
    status_fd: Option<i32>,
    command: Vec<OsString>,
}

/// Parses the arguments after the subcommand: `[--status-fd=N] -- CMD ARGS...`.
fn parse(args: &[OsString]) -> Result<Invocation, String> {
    let mut status_fd = None;
    let mut rest = args.iter();
    for arg in rest.by_ref() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        match text.strip_prefix("--status-fd=") {
            Some(n) => status_fd = Some(n.parse().map_err(|_| format!("bad --status-fd value {n:?}"))?),
            None => return Err(format!("unknown option {text:?}")),
        }
    }
    let command: Vec<OsString> = rest.cloned().collect();
    if command.is_empty() {
        return Err("no command after \"--\"".into());
    }
    Ok(Invocation { status_fd, command })
}

/// The shim's entry point; `args` are the ones after the subcommand. Never returns.
pub fn main(args: &[OsString]) -> ! {
    let inv = match parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("aci-init: {e} (usage: {SHIM_PATH} {SUBCOMMAND} [--status-fd=N] -- CMD ARGS...)");
            std::process::exit(125);
        }
    };
    if let Some(fd) = inv.status_fd {
        // SAFETY: fcntl on a descriptor number; a bad one only fails. The command must not
        // inherit the status pipe.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            eprintln!("aci-init: status descriptor {fd}: {}", std::io::Error::last_os_error());
        }
    }
    let argv: Vec<CString> = match inv.command.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(argv) => argv,
        Err(_) => {
            eprintln!("aci-init: the command has a NUL byte");
            std::process::exit(125);
        }
    };
    let set = signal_set();
    let mut old = empty_set();
    // SAFETY: sigprocmask with valid set pointers; the shim is single-threaded.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) };
    // SAFETY: fork(2) in a single-threaded process.
    let child = unsafe { libc::fork() };
    if child < 0 {
        eprintln!("aci-init: fork: {}", std::io::Error::last_os_error());
        std::process::exit(125);
    }
    if child == 0 {
        exec_child(&argv, &old);
    }
    let status = supervise(child, &set);
    if let Some(fd) = inv.status_fd {
        let report = format!("{status}\n");
        // SAFETY: writing our buffer to the status descriptor (a failure changes nothing).
        unsafe { libc::write(fd, report.as_ptr().cast(), report.len()) };
    }
    finish(status)
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our set.
    unsafe { libc::sigemptyset(&mut set) };
    set
}

/// [`FORWARDED`] plus SIGCHLD.
fn signal_set() -> libc::sigset_t {
    let mut set = empty_set();
    for sig in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
        // SAFETY: a valid pointer to our set and a valid signal number.
        unsafe { libc::sigaddset(&mut set, *sig) };
    }
    set
}

/// In the forked child: own process group (the terminal's foreground one), the original
/// signal mask, then exec. Exits 127 (not found) or 126 (not runnable) on failure.
fn exec_child(argv: &[CString], old_mask: &libc::sigset_t) -> ! {
    // SAFETY: plain syscalls on our own process; argv pointers stay valid until execvp.
    unsafe {
        libc::setpgid(0, 0);
        if libc::isatty(libc::STDIN_FILENO) == 1 {
            // A background group's tcsetpgrp raises SIGTTOU: ignore it for the call.
            let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
            libc::signal(libc::SIGTTOU, previous);
        }
        libc::sigprocmask(libc::SIG_SETMASK, old_mask, std::ptr::null_mut());
        // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored across exec.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        libc::execvp(ptrs[0], ptrs.as_ptr());
    }
    let err = std::io::Error::last_os_error();
    eprintln!("aci-init: cannot run {:?}: {err}", argv[0]);
    let code = if err.raw_os_error() == Some(libc::ENOENT) { 127 } else { 126 };
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

/// Forwards signals to `child` and reaps every child until `child` has ended; returns its
/// raw wait status.
fn supervise(child: libc::pid_t, set: &libc::sigset_t) -> i32 {
    // A periodic look catches a SIGCHLD merged with one already taken.
    let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
    loop {
        // SAFETY: `set` and `timeout` are valid for the call; no siginfo is wanted.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill(2) on our own child (not reaped yet, so the pid is still its).
            unsafe { libc::kill(child, sig) };
            continue;
        }
        if let Some(status) = reap(child) {
            return status;
        }
    }
}

/// Reaps every child that has ended; the status of `child` if it was among them.
fn reap(child: libc::pid_t) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == child {
            found = Some(status);
        }
    }
}

/// Exits the way the command did: its code, or 128 + its signal (re-raised when the shim is
/// not a pid namespace's init, where that works).
fn finish(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        if std::process::id() != 1 {
            // SAFETY: restoring the default action, unblocking and raising our own signal.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                let mut one = empty_set();
                libc::sigaddset(&mut one, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                libc::raise(sig);
            }
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn wrap_and_unwrap_round_trip() {
        let cmd = vec!["sh".to_owned(), "-c".into(), "echo --".into()];
        let args = wrap(&cmd);
        assert_eq!(args[..4], [SHIM_PATH, SUBCOMMAND, "--status-fd=3", "--"]);
        assert_eq!(unwrap(&args), Some(&cmd[..]));
        assert_eq!(unwrap(&cmd), None);
    }

    #[test]
    fn the_command_line_is_parsed() {
        let inv = parse(&os(&["--status-fd=3", "--", "sleep", "1"])).unwrap();
        assert_eq!(inv, Invocation { status_fd: Some(3), command: os(&["sleep", "1"]) });
        let inv = parse(&os(&["--", "--status-fd=4"])).unwrap();
        assert_eq!(inv.status_fd, None);
        assert!(parse(&os(&["--", ""])).is_ok());
        assert!(parse(&os(&["--status-fd=3", "--"])).unwrap_err().contains("no command"));
        assert!(parse(&os(&["--status-fd=x", "--", "a"])).unwrap_err().contains("--status-fd"));
        assert!(parse(&os(&["-v", "--", "a"])).unwrap_err().contains("-v"));
    }
}
