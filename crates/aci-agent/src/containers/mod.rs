//! The container engine: creates, starts, waits for, signals and removes the group's
//! containers, runs execs, keeps their logs and reports their usage. Built on youki's
//! libcontainer (see `crates/aci-agent/docs/containers.md`).
//!
//! Layout in the guest:
//! - `/run/aci/containers/<name>/`: the bundle (`config.json`), the overlay root (`rootfs/`)
//!   and the tmpfs with its writable layer (`scratch/`), plus exec process files and
//!   console sockets;
//! - `/run/aci/runtime/<name>/`: libcontainer's state;
//! - `/sys/fs/cgroup/aci/<name>`: the container's cgroup.

mod attach;
mod bundle;
mod error;
mod exec;
mod fanout;
mod lifecycle;
mod logs;
mod probes;
mod reaper;
mod rootfs;
mod runtime;
mod seccomp;
mod shim;
mod stats;
mod streams;
mod tty;
mod user;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock};

use aci_proto::container::{
    AttachRequest, ContainerConfig, ContainerState, ContainerStatus, ExecConfig, ExitStatus, LogsRequest,
    SandboxStats,
};
use aci_proto::frame::FrameError;
use aci_proto::message::{AgentEvent, RemoteError};

pub use probes::wire as wire_probes;

/// Where the engine keeps its files in the guest.
pub const RUN_DIR: &str = "/run/aci";

/// All containers of the group.
#[derive(Debug)]
pub struct Engine {
    shared: Arc<Shared>,
}

/// The engine's state, shared with the reaper's exit callbacks and stream threads.
#[derive(Debug)]
struct Shared {
    is_init: bool,
    bundles: PathBuf,
    runtime: runtime::Runtime,
    reaper: OnceLock<reaper::Reaper>,
    table: Mutex<HashMap<String, Entry>>,
    /// Signalled whenever a container changes state.
    changed: Condvar,
    subscribers: Mutex<Vec<mpsc::Sender<AgentEvent>>>,
    next_exec: AtomicU64,
    /// Told when a run starts (`Some(run)`) or ends (`None`): the probes.
    observer: OnceLock<RunObserver>,
    /// The init shim's published path (published on first create; `None` if that failed,
    /// and containers then run their command directly).
    shim: OnceLock<Option<PathBuf>>,
}

/// See [`Shared::observer`].
struct RunObserver(Box<ObserveRun>);

/// Called with a container's name and `Some(run)` when a run starts, `None` when it ends.
type ObserveRun = dyn Fn(&str, Option<u32>) + Send + Sync;

impl std::fmt::Debug for RunObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunObserver")
    }
}

/// One container.
#[derive(Debug)]
struct Entry {
    config: ContainerConfig,
    layout: rootfs::Layout,
    user: user::UserIds,
    state: ContainerState,
    /// The current (or last) run: 0 for the first, +1 per restart.
    run: u32,
    /// Whether a run was ever started.
    started: bool,
    pid: Option<i32>,
    started_at_ms: u64,
    last_exit: Option<ExitStatus>,
    logs: logs::LogBook,
    /// Live output for attaches (fed by the same readers as `logs`).
    output: fanout::OutputHub,
    /// `memory.events` `oom_kill` when the run started.
    oom_base: u64,
    /// Held open while the process runs: its terminal's master.
    keep_open: Option<OwnedFd>,
    /// The write end of the current run's stdin pipe (`stdin: true`, no terminal), shared
    /// with attaches; dropped here when the run ends.
    stdin: Option<fanout::StdinSlot>,
    /// The read end of the current run's init-shim status pipe (see `shim::decode`).
    shim_status: Option<OwnedFd>,
}

impl Engine {
    /// An engine; `is_init` is false when the agent runs as an ordinary process (tests).
    pub fn new(is_init: bool) -> Self {
        let run = PathBuf::from(RUN_DIR);
        Self {
            shared: Arc::new(Shared {
                is_init,
                bundles: run.join("containers"),
                runtime: runtime::Runtime { state_root: run.join("runtime") },
                reaper: OnceLock::new(),
                table: Mutex::new(HashMap::new()),
                changed: Condvar::new(),
                subscribers: Mutex::new(Vec::new()),
                next_exec: AtomicU64::new(1),
                observer: OnceLock::new(),
                shim: OnceLock::new(),
            }),
        }
    }

    /// Prepares a container: overlay root, user, bundle. The process is created and
    /// started by [`Self::start`].
    pub fn create(&self, config: ContainerConfig) -> Result<(), RemoteError> {
        self.shared.create(config).map_err(RemoteError::from)
    }

    /// Starts (or restarts) a container; returns its init pid.
    pub fn start(&self, name: &str) -> Result<u32, RemoteError> {
        Shared::start(&self.shared, name).map(|pid| pid as u32).map_err(RemoteError::from)
    }

    /// Blocks until the container's current run ends.
    pub fn wait(&self, name: &str) -> Result<ExitStatus, RemoteError> {
        self.shared.wait(name).map_err(RemoteError::from)
    }

    /// Signals a container's init process.
    pub fn signal(&self, name: &str, signal: i32) -> Result<(), RemoteError> {
        self.shared.signal(name, signal).map_err(RemoteError::from)
    }

    /// Every container's state.
    pub fn list(&self) -> Vec<ContainerStatus> {
        let table = self.shared.table();
        let mut list: Vec<ContainerStatus> = table
            .iter()
            .map(|(name, e)| ContainerStatus {
                name: name.clone(),
                state: e.state,
                pid: e.pid.map(|p| p as u32),
                last_exit: e.last_exit,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Per-container usage (interfaces are filled in by the sandbox).
    pub fn stats(&self) -> SandboxStats {
        let names: Vec<String> = self.shared.table().keys().cloned().collect();
        let mut containers: Vec<_> =
            names.iter().map(|n| stats::read(n, &lifecycle::cgroup_dir(n))).collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        SandboxStats { containers, interfaces: Vec::new() }
    }

    /// Removes a container (killing it if it runs); its logs go with it.
    pub fn remove(&self, name: &str) -> Result<(), RemoteError> {
        self.shared.remove(name).map_err(RemoteError::from)
    }

    /// Runs an exec; owns the connection until the process ends.
    pub fn serve_exec(&self, config: ExecConfig, id: u64, stream: UnixStream) -> Result<(), FrameError> {
        exec::serve(&self.shared, config, id, stream)
    }

    /// Streams logs; owns the connection until the stream ends.
    pub fn serve_logs(&self, request: LogsRequest, id: u64, stream: UnixStream) -> Result<(), FrameError> {
        streams::serve_logs(&self.shared, request, id, stream)
    }

    /// Attaches to a running container's output (and input); owns the connection until the
    /// run ends or the host detaches.
    pub fn serve_attach(
        &self,
        request: AttachRequest,
        id: u64,
        stream: UnixStream,
    ) -> Result<(), FrameError> {
        attach::serve(&self.shared, request, id, stream)
    }

    /// Streams lifecycle events; owns the connection until the host closes it.
    pub fn serve_events(&self, id: u64, stream: UnixStream) -> Result<(), FrameError> {
        streams::serve_events(&self.shared, id, stream)
    }

    /// Stops every container (SIGTERM, then SIGKILL after a grace period) before power-off.
    pub fn stop_all(&self) {
        self.shared.stop_all(lifecycle::STOP_GRACE);
    }
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reaper, started on first use (so unit tests that never run a container do not
    /// reap their harness's children).
    fn reaper(&self) -> &reaper::Reaper {
        self.reaper.get_or_init(|| reaper::Reaper::start(self.is_init))
    }

    /// The init shim's path in the agent's namespace, published on first use.
    fn shim(&self) -> Option<PathBuf> {
        self.shim
            .get_or_init(|| match shim::publish(self.is_init) {
                Ok(path) => Some(path),
                Err(e) => {
                    eprintln!("aci-agent: publishing the init shim failed ({e}); containers run without it");
                    None
                }
            })
            .clone()
    }

    /// Tells the observer (the probes) that a run of `name` started or ended.
    fn observe(&self, name: &str, run: Option<u32>) {
        if let Some(observer) = self.observer.get() {
            (observer.0)(name, run);
        }
    }

    /// Sends `event` to every subscriber still listening.
    fn emit(&self, event: AgentEvent) {
        let mut subs = self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        subs.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// Now, guest wall clock, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    logs::now_unix_ns() / 1_000_000
}
