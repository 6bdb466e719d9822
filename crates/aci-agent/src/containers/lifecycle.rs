//! Create, start (and restart in place), wait, signal, remove and stop-all.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aci_proto::container::{ContainerConfig, ContainerState, ExitStatus, LogStream, TtySize};
use aci_proto::message::AgentEvent;

use super::bundle::{self, BundleInputs};
use super::error::EngineError;
use super::fanout::{Output, OutputHub, StdinSlot};
use super::logs::LogBook;
use super::reaper::Exit;
use super::rootfs::{self, Layout};
use super::runtime::{dev_null, pipe, Stdio};
use super::shim;
use super::stats::{self, CGROUP_ROOT};
use super::tty::{self, ConsoleSocket};
use super::user;
use super::{now_ms, Entry, Shared};

/// How long `stop_all` waits after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a kill may take to be reaped before the caller gives up waiting.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long the runtime may take to hand over a terminal.
const CONSOLE_WAIT: Duration = Duration::from_secs(10);
/// Guest files bound read-only into every container when they exist.
const ETC_FILES: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"];

/// The cgroup directory of container `name`.
pub fn cgroup_dir(name: &str) -> PathBuf {
    Path::new(CGROUP_ROOT).join(bundle::cgroup_path(name).strip_prefix("/").unwrap_or(Path::new(name)))
}

/// Container names become paths and cgroup names: letters, digits, `-`, `_`, `.`, not
/// starting with a dot or dash, at most 63 characters.
fn check_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidConfig {
            name: name.to_owned(),
            what: "name must be 1-63 letters, digits, '-', '_' or '.', not starting with '.' or '-'".into(),
        })
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "aci".to_owned();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Reads `pipe` into `logs` on a thread of its own, publishing each chunk to `output`.
fn capture(logs: &LogBook, output: &OutputHub, pipe: OwnedFd, stream: LogStream, run: u32, terminal: bool) {
    let logs = logs.clone();
    let output = output.clone();
    let spawned = std::thread::Builder::new()
        .name("container-log".into())
        .spawn(move || logs.capture(output.tee(File::from(pipe), stream, run), stream, run, terminal));
    if let Err(e) = spawned {
        eprintln!("aci-agent: starting a log reader failed: {e}");
    }
}

/// A note for a start failure when the working directory is not in the image (the
/// runtime's own message for it is a bare "failed to unix syscall").
fn missing_working_dir(entry: &Entry) -> String {
    let Some(cwd) = entry.config.working_dir.as_deref() else { return String::new() };
    let under_mount = entry.config.mounts.iter().any(|m| Path::new(cwd).starts_with(&m.destination));
    let in_image = entry.layout.rootfs().join(cwd.trim_start_matches('/')).is_dir();
    if under_mount || in_image {
        String::new()
    } else {
        format!(" (working_dir {cwd:?} is not a directory in the image)")
    }
}

/// The process's I/O for one run: what the runtime gets, what the engine keeps.
struct RunIo {
    stdio: Stdio,
    console: Option<ConsoleSocket>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// The write end of the stdin pipe (`stdin: true`).
    stdin: Option<OwnedFd>,
}

fn run_io(entry: &Entry, name: &str) -> Result<RunIo, EngineError> {
    if entry.config.tty {
        let null = dev_null().map_err(EngineError::setup(name, "opening /dev/null"))?;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(EngineError::setup(name, "duplicating /dev/null"));
        let stdio = Stdio { stdin: dup(&null)?, stdout: dup(&null)?, stderr: null };
        let console = ConsoleSocket::bind(&entry.layout.dir.join("console.sock"))
            .map_err(EngineError::setup(name, "creating the console socket"))?;
        return Ok(RunIo { stdio, console: Some(console), stdout: None, stderr: None, stdin: None });
    }
    let (out_r, out_w) = pipe().map_err(EngineError::setup(name, "creating the stdout pipe"))?;
    let (err_r, err_w) = pipe().map_err(EngineError::setup(name, "creating the stderr pipe"))?;
    let (stdin, stdin_writer) = if entry.config.stdin {
        let (r, w) = pipe().map_err(EngineError::setup(name, "creating the stdin pipe"))?;
        (r, Some(w))
    } else {
        (dev_null().map_err(EngineError::setup(name, "opening /dev/null"))?, None)
    };
    Ok(RunIo {
        stdio: Stdio { stdin, stdout: out_w, stderr: err_w },
        console: None,
        stdout: Some(out_r),
        stderr: Some(err_r),
        stdin: stdin_writer,
    })
}

impl Shared {
    fn entry_mut<'a>(
        table: &'a mut std::collections::HashMap<String, Entry>,
        name: &str,
    ) -> Result<&'a mut Entry, EngineError> {
        table.get_mut(name).ok_or_else(|| EngineError::NoSuchContainer(name.to_owned()))
    }

    /// CreateContainer: overlay root, user, bundle.
    pub(super) fn create(&self, config: ContainerConfig) -> Result<(), EngineError> {
        let name = config.name.clone();
        check_name(&name)?;
        let mut table = self.table();
        if table.contains_key(&name) {
            return Err(EngineError::InvalidState {
                name,
                what: "a container of this name already exists".into(),
            });
        }
        let image_root = rootfs::check_image_root(&config.image_root)
            .map_err(|what| EngineError::InvalidConfig { name: name.clone(), what })?;
        let layout = Layout { dir: self.bundles.join(&name) };
        // Leftovers of an earlier agent life (or a failed remove) go first.
        let _ = self.runtime.delete(&name);
        let _ = rootfs::remove(&layout);
        let guest_ram =
            rootfs::guest_ram().map_err(EngineError::setup(&name, "reading the guest's memory size"))?;
        let upper_bytes = rootfs::upper_size(config.resources.memory_bytes, guest_ram);
        let rootfs = rootfs::mount_overlay(&layout, &image_root, upper_bytes)
            .map_err(EngineError::setup(&name, "mounting the overlay root"))?;
        match self.prepare(&config, &layout, rootfs) {
            Ok(user) => {
                let entry = Entry {
                    config,
                    layout,
                    user,
                    state: ContainerState::Created,
                    run: 0,
                    started: false,
                    pid: None,
                    started_at_ms: 0,
                    last_exit: None,
                    logs: LogBook::default(),
                    output: OutputHub::default(),
                    oom_base: 0,
                    keep_open: None,
                    stdin: None,
                    shim_status: None,
                };
                table.insert(name, entry);
                Ok(())
            }
            Err(e) => {
                let _ = rootfs::remove(&layout);
                Err(e)
            }
        }
    }

    /// Resolves the user against the image and writes `config.json`.
    fn prepare(
        &self,
        config: &ContainerConfig,
        layout: &Layout,
        rootfs: PathBuf,
    ) -> Result<user::UserIds, EngineError> {
        let name = &config.name;
        let read = |f: &str| std::fs::read_to_string(rootfs.join(f)).unwrap_or_default();
        let user =
            user::resolve(config.user.as_deref(), &read("etc/passwd"), &read("etc/group")).map_err(|e| {
                EngineError::StartFailed {
                    name: name.clone(),
                    command: config.args.first().cloned().unwrap_or_default(),
                    reason: e.to_string(),
                }
            })?;
        let etc_files =
            ETC_FILES.iter().map(PathBuf::from).filter(|p| p.is_file()).map(|p| (p.clone(), p)).collect();
        let inputs =
            BundleInputs { rootfs, hostname: hostname(), user: user.clone(), etc_files, shim: self.shim() };
        let spec = bundle::spec(config, &inputs)
            .map_err(|e| EngineError::InvalidConfig { name: name.clone(), what: e.to_string() })?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| EngineError::InvalidConfig {
            name: name.clone(),
            what: format!("the OCI spec does not serialize: {e}"),
        })?;
        rootfs::write_private(&layout.dir.join("config.json"), &json)
            .map_err(EngineError::setup(name, "writing config.json"))?;
        Ok(user)
    }

    /// StartContainer: a created container's first run, or a restart in place of an
    /// exited one (same writable layer, logs kept, run number + 1).
    pub(super) fn start(self: &Arc<Self>, name: &str) -> Result<i32, EngineError> {
        self.reaper();
        let mut table = self.table();
        let entry = Self::entry_mut(&mut table, name)?;
        match entry.state {
            ContainerState::Running => {
                return Err(EngineError::InvalidState {
                    name: name.to_owned(),
                    what: "it is already running".into(),
                })
            }
            ContainerState::Exited => {
                self.runtime.delete(name).map_err(|reason| EngineError::Runtime {
                    name: name.to_owned(),
                    step: "deleting the previous run",
                    reason,
                })?;
                entry.run += 1;
            }
            ContainerState::Created if entry.started => entry.run += 1,
            ContainerState::Created => {}
        }
        entry.started = true;
        let run = entry.run;
        let command = entry.config.args.first().cloned().unwrap_or_default();
        let hint = missing_working_dir(entry);
        let failed = |reason: String| EngineError::StartFailed {
            name: name.to_owned(),
            command: command.clone(),
            reason: format!("{reason}{hint}"),
        };

        let io = run_io(entry, name)?;
        let console_path = io.console.as_ref().map(|c| c.path().to_owned());
        let (status_r, status_w) =
            pipe().map_err(EngineError::setup(name, "creating the shim's status pipe"))?;
        let created =
            self.runtime.create(name, &entry.layout.dir, &io.stdio, console_path.as_deref(), Some(&status_w));
        drop(status_w); // Only the shim may hold it: end of file when it exits.
        let pid = match created {
            Ok(pid) => pid,
            Err(reason) => {
                let _ = self.runtime.delete(name);
                return Err(failed(reason));
            }
        };
        drop(io.stdio); // The process has its own copies; EOF must come when it exits.
        let mut keep_open = None;
        if let Some(console) = &io.console {
            let master = match console.receive_master(CONSOLE_WAIT) {
                Ok(master) => master,
                Err(e) => {
                    let _ = self.runtime.delete(name);
                    return Err(failed(format!("no terminal from the runtime: {e}")));
                }
            };
            let _ = tty::resize(&master, TtySize { rows: 24, cols: 80 });
            if let Ok(reader) = master.try_clone() {
                capture(&entry.logs, &entry.output, reader, LogStream::Stdout, run, true);
            }
            keep_open = Some(master);
        }
        if let Some(out) = io.stdout {
            capture(&entry.logs, &entry.output, out, LogStream::Stdout, run, false);
        }
        if let Some(err) = io.stderr {
            capture(&entry.logs, &entry.output, err, LogStream::Stderr, run, false);
        }
        entry.oom_base = stats::keyed(&cgroup_dir(name), "memory.events", "oom_kill").unwrap_or(0);
        if let Err(reason) = self.runtime.start(name) {
            let _ = self.runtime.delete(name);
            return Err(failed(reason));
        }
        entry.state = ContainerState::Running;
        entry.pid = Some(pid);
        entry.started_at_ms = now_ms();
        entry.keep_open = keep_open;
        entry.stdin = io.stdin.map(|w| StdinSlot::new(File::from(w)));
        entry.shim_status = Some(status_r);
        drop(table);
        self.changed.notify_all();
        self.emit(AgentEvent::ContainerStarted { name: name.to_owned(), pid: pid as u32 });
        self.observe(name, Some(run));
        // Registered after the table lock is released: an exit that already happened is
        // delivered from inside `watch`, and its handler takes the lock.
        let shared = Arc::clone(self);
        let owned = name.to_owned();
        self.reaper().watch(pid, move |exit| shared.exited(&owned, run, exit));
        Ok(pid)
    }

    /// The reaper saw run `run` of `name` end.
    fn exited(&self, name: &str, run: u32, exit: Exit) {
        let mut table = self.table();
        let Some(entry) = table.get_mut(name) else { return };
        if entry.run != run || entry.state != ContainerState::Running {
            return;
        }
        let exit = match entry.shim_status.take() {
            Some(pipe) => shim::decode(exit, &shim::read_report(pipe)),
            None => exit,
        };
        let ooms = stats::keyed(&cgroup_dir(name), "memory.events", "oom_kill").unwrap_or(0);
        let status = ExitStatus {
            code: exit.code,
            signal: exit.signal,
            oom_killed: ooms > entry.oom_base,
            started_at_ms: entry.started_at_ms,
            finished_at_ms: now_ms(),
        };
        entry.state = ContainerState::Exited;
        entry.pid = None;
        entry.last_exit = Some(status);
        entry.keep_open = None;
        // Attaches hold their own clones of the slot until they end.
        entry.stdin = None;
        let output = entry.output.clone();
        drop(table);
        // After the state change: an attach subscribes only while the run is running, under
        // the table lock, so every attach of this run gets its exit.
        output.publish(run, &Output::Exited(status));
        self.changed.notify_all();
        self.emit(AgentEvent::ContainerExited { name: name.to_owned(), status });
        self.observe(name, None);
    }

    /// WaitContainer: blocks until the current run (or, for a created container, its first
    /// run) has ended.
    pub(super) fn wait(&self, name: &str) -> Result<ExitStatus, EngineError> {
        let mut table = self.table();
        let target = Self::entry_mut(&mut table, name)?.run;
        loop {
            let entry = Self::entry_mut(&mut table, name)?;
            if entry.state == ContainerState::Exited && entry.run >= target {
                if let Some(status) = entry.last_exit {
                    return Ok(status);
                }
            }
            table = self.changed.wait(table).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits until `name` is no longer running or `timeout` passes; true if it stopped.
    fn wait_stopped(&self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut table = self.table();
        loop {
            match table.get(name) {
                Some(e) if e.state == ContainerState::Running => {}
                _ => return true,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            table =
                self.changed.wait_timeout(table, left).map(|(t, _)| t).unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Signal: to the container's init process.
    pub(super) fn signal(&self, name: &str, signal: i32) -> Result<(), EngineError> {
        let mut table = self.table();
        let entry = Self::entry_mut(&mut table, name)?;
        let pid = match (entry.state, entry.pid) {
            (ContainerState::Running, Some(pid)) => pid,
            _ => {
                return Err(EngineError::InvalidState {
                    name: name.to_owned(),
                    what: "it is not running".into(),
                })
            }
        };
        // SAFETY: kill(2) on a pid we own (the reaper has not reported it, and the table
        // lock, which the exit handler needs, is held).
        if unsafe { libc::kill(pid, signal) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(EngineError::Runtime {
                name: name.to_owned(),
                step: "sending the signal",
                reason: format!("signal {signal}: {err}"),
            });
        }
        Ok(())
    }

    /// RemoveContainer: kill (if running), delete the runtime state and cgroup, unmount the
    /// root, drop the logs.
    pub(super) fn remove(&self, name: &str) -> Result<(), EngineError> {
        let running = {
            let mut table = self.table();
            Self::entry_mut(&mut table, name)?.state == ContainerState::Running
        };
        if running {
            let _ = self.runtime.kill_all(name, libc::SIGKILL);
            self.wait_stopped(name, KILL_WAIT);
        }
        let mut table = self.table();
        let entry = Self::entry_mut(&mut table, name)?;
        self.runtime.delete(name).map_err(|reason| EngineError::Runtime {
            name: name.to_owned(),
            step: "deleting the container",
            reason,
        })?;
        rootfs::remove(&entry.layout).map_err(EngineError::setup(name, "unmounting the root"))?;
        entry.logs.close();
        entry.output.close();
        table.remove(name);
        drop(table);
        self.changed.notify_all();
        Ok(())
    }

    /// Before power-off: SIGTERM to every running container, SIGKILL to what is left after
    /// `grace`.
    pub(super) fn stop_all(&self, grace: Duration) {
        let running: Vec<(String, i32)> = self
            .table()
            .iter()
            .filter_map(|(n, e)| e.pid.filter(|_| e.state == ContainerState::Running).map(|p| (n.clone(), p)))
            .collect();
        for (_, pid) in &running {
            // SAFETY: kill(2) on a container's init pid; at worst it already exited.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        for (name, _) in &running {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.wait_stopped(name, left) {
                let _ = self.runtime.kill_all(name, libc::SIGKILL);
                self.wait_stopped(name, Duration::from_secs(2));
            }
        }
    }
}
