//! Containers: what the host asks the agent to run, and what the agent reports back.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// What [`crate::message::Call::CreateContainer`] carries. The host has already applied the
/// image config and the group's spec (argv resolved from Entrypoint/Cmd/`command`, the
/// environment merged), so the agent runs exactly this.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container's name, unique in the group.
    pub name: String,
    /// The guest path where the image's root filesystem is mounted (read-only, by an earlier
    /// `MountStorage`); the agent puts a writable overlay on top for this container.
    pub image_root: String,
    /// The process: `args[0]` is looked up in the container's `PATH` when not absolute.
    pub args: Vec<String>,
    /// The environment, in order; later entries win.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory (default `/`).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The image's `User`: `name`, `uid`, `uid:gid` or `name:group`, resolved against the
    /// container's `/etc/passwd` and `/etc/group` (default root).
    #[serde(default)]
    pub user: Option<String>,
    /// cgroup limits.
    #[serde(default)]
    pub resources: Resources,
    /// Volumes bound into the container.
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// Allocate a terminal for the process.
    #[serde(default)]
    pub tty: bool,
    /// Keep the process's stdin open for `attach`.
    #[serde(default)]
    pub stdin: bool,
}

/// An environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// The name.
    pub name: String,
    /// The value; a [`Secret`] so it never prints.
    pub value: Secret,
    /// ACI `secureValue`: never logged by either side, never returned by `get`.
    #[serde(default)]
    pub secure: bool,
}

/// cgroup v2 limits for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// `cpu.max` in thousandths of a CPU (1000 = one CPU); unlimited when absent.
    #[serde(default)]
    pub cpu_millis: Option<u64>,
    /// `memory.max` in bytes; unlimited when absent.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// `pids.max`; unlimited when absent.
    #[serde(default)]
    pub pids_max: Option<u64>,
}

/// A guest directory bound into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The guest path (a `StorageMount::mount_point` or a directory below it).
    pub source: String,
    /// The path inside the container (absolute, no `:`).
    pub destination: String,
    /// Bind read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// The process runs.
    Running,
    /// The process ended.
    Exited,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, when it exited (128 + signal when killed, as shells report it).
    pub code: i32,
    /// The signal that killed it, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The cgroup's `memory.events` counted an OOM kill during this run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Start, guest wall clock, ms since the Unix epoch.
    #[serde(default)]
    pub started_at_ms: u64,
    /// End, guest wall clock, ms since the Unix epoch.
    #[serde(default)]
    pub finished_at_ms: u64,
}

/// One container as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// The name.
    pub name: String,
    /// The state.
    pub state: ContainerState,
    /// The init process's pid in the guest, while running.
    #[serde(default)]
    pub pid: Option<u32>,
    /// How the last run ended.
    #[serde(default)]
    pub last_exit: Option<ExitStatus>,
}

/// Measured usage of one container (its cgroup).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerStats {
    /// The name.
    pub name: String,
    /// `cpu.stat` `usage_usec`.
    pub cpu_usage_usec: u64,
    /// `memory.current`.
    pub memory_current_bytes: u64,
    /// `memory.peak` (the maximum since creation).
    pub memory_peak_bytes: u64,
    /// `pids.current`.
    pub pids_current: u64,
}

/// Counters of one guest network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// The guest's name for it (`eth0`).
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The answer to [`crate::message::Call::Stats`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SandboxStats {
    /// Per container.
    pub containers: Vec<ContainerStats>,
    /// Per interface (loopback excluded).
    pub interfaces: Vec<InterfaceStats>,
}

/// What [`crate::message::Call::Exec`] carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container to run in (its namespaces, cgroup and root).
    pub container: String,
    /// The argv.
    pub args: Vec<String>,
    /// Extra environment on top of the container's.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory (default: the container's).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Run on a terminal of `rows`×`cols` (stdout and stderr then share stream 2).
    #[serde(default)]
    pub tty: Option<TtySize>,
}

/// A terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtySize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// What [`crate::message::Call::Logs`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// The container.
    pub container: String,
    /// Only the last N lines already kept (all kept lines when absent).
    #[serde(default)]
    pub tail: Option<usize>,
    /// Keep the stream open and send new lines as they come.
    #[serde(default)]
    pub follow: bool,
}

/// What [`crate::message::Call::Attach`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// The container (it must be running).
    pub container: String,
    /// Also take input for the container's main process (it must have been created with
    /// [`ContainerConfig::stdin`]).
    #[serde(default)]
    pub stdin: bool,
}

/// How an attach stream ended ([`crate::message::AgentEvent::AttachEnded`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachEnd {
    /// How the attached run ended; absent when the stream ended before it did.
    #[serde(default)]
    pub exit: Option<ExitStatus>,
    /// Why the stream ended without an exit (the container was removed, or this attach fell
    /// too far behind the output).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Guest wall clock when the line was read, in nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// Which output.
    pub stream: LogStream,
    /// The line, without its newline (invalid UTF-8 replaced; lines over 16 KiB split).
    pub line: String,
    /// Which run of the container produced it (0 for the first, +1 per restart).
    #[serde(default)]
    pub run: u32,
}
