//! Running the `git` program non-interactively, with a deadline.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a running git is polled for exit.
const POLL: Duration = Duration::from_millis(20);

/// How a git run ended.
pub(crate) enum GitOutcome {
    /// Exit status 0, with stdout.
    Success(String),
    /// Non-zero exit, signal or timeout: the last meaningful stderr line (or what happened).
    Failure(String),
}

/// A `git` program with the settings every run gets.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    pub(crate) program: PathBuf,
    pub(crate) timeout: Duration,
}

impl Git {
    /// Runs `git <args>` in `cwd` (if given). Prompts are disabled (no terminal, SSH in
    /// batch mode) and the `ext::` transport refused, so a hostile URL can neither hang on
    /// input nor run commands.
    pub(crate) fn run(&self, cwd: Option<&Path>, args: &[&OsStr]) -> io::Result<GitOutcome> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-c", "protocol.ext.allow=never"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // git runs helpers (remote-http, fetch-pack, ssh) as children that hold our
            // pipes: a group of their own lets a timeout end them all.
            .process_group(0);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                kill_group(child.id());
                let _ = child.wait();
                break None;
            }
            thread::sleep(POLL);
        };
        let stdout = stdout.map(join).unwrap_or_default();
        let stderr = stderr.map(join).unwrap_or_default();
        Ok(match status {
            Some(s) if s.success() => GitOutcome::Success(stdout),
            Some(s) => GitOutcome::Failure(last_line(&stderr).unwrap_or_else(|| s.to_string())),
            None => GitOutcome::Failure(format!("timed out after {}s", self.timeout.as_secs())),
        })
    }
}

/// Kills the process group led by `pid` (a git started with `process_group(0)`).
fn kill_group(pid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes no pointers; `-pgid` names the group this module created
        // for its own child, which has not been reaped yet (so the id is not reused).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn join(handle: thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

/// The last non-empty line of git's stderr, which carries the `fatal:` reason.
fn last_line(stderr: &str) -> Option<String> {
    stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).map(str::to_owned)
}
