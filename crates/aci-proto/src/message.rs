//! Calls the host makes and the agent's replies (JSON in `Call`/`Reply` frames).
//!
//! Every call carries an `id` that its reply repeats. The first call on a connection must be
//! [`Call::Hello`]; the agent answers a different [`crate::PROTOCOL_VERSION`] with a
//! [`RemoteErrorKind::VersionMismatch`] error and serves nothing else on that connection.
//!
//! Most calls are request/reply on the control stream. Three calls turn their connection
//! into a stream after the reply (the host opens one connection per stream):
//! - [`Call::Exec`]: `Data`/`Eof` frames on [`STDIN`] from the host, on [`STDOUT`] and
//!   [`STDERR`] from the agent, [`Call::ResizeTty`] calls from the host, and finally an
//!   [`AgentEvent::ExecExited`] event; then the agent closes.
//! - [`Call::Logs`]: [`AgentEvent::Log`] events, then [`AgentEvent::LogEnd`] unless following.
//! - [`Call::Events`]: container lifecycle events for as long as the connection lives.
//! - [`Call::Attach`]: the live output of a container's main process as `Data` frames on
//!   [`STDOUT`] and [`STDERR`] (an `Eof` per stream when its run's output ends), `Data`/`Eof`
//!   on [`STDIN`] from the host when attached with stdin, and finally
//!   [`AgentEvent::AttachEnded`]; then the agent closes.

use serde::{Deserialize, Serialize};

use crate::container::{
    AttachEnd, AttachRequest, ContainerConfig, ContainerStatus, ExecConfig, ExitStatus, LogEntry,
    LogsRequest, SandboxStats, TtySize,
};
use crate::probe::{ContainerProbes, ProbeReport};
use crate::sandbox::{SandboxConfig, StorageMount};

/// The stream number of a process's standard input (host → agent `Data`/`Eof`).
pub const STDIN: u32 = 1;
/// The stream number of a process's standard output (and of its terminal).
pub const STDOUT: u32 = 2;
/// The stream number of a process's standard error.
pub const STDERR: u32 = 3;

/// A call with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the host, unique per connection; repeated in the reply.
    pub id: u64,
    /// What is asked.
    pub call: Call,
}

/// What the host can ask of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Opens the conversation; the versions must match.
    Hello {
        /// The host's protocol version.
        protocol: u32,
        /// The host library's version, for the agent's log.
        host: String,
    },
    /// Liveness check.
    Ping,
    /// Stop the VM: stop the containers, sync, unmount and power off after replying.
    Shutdown,
    /// Hostname, clock, interfaces, routes, DNS and `/etc/hosts`.
    ConfigureSandbox(SandboxConfig),
    /// Mount a disk, share, tmpfs or secret volume at a guest path.
    MountStorage(StorageMount),
    /// Prepare a container (rootfs overlay, cgroup, namespaces) without starting it.
    CreateContainer(ContainerConfig),
    /// Start a created (or exited: a restart in place) container.
    StartContainer {
        /// The container.
        name: String,
    },
    /// Block until the container's current run ends.
    WaitContainer {
        /// The container.
        name: String,
    },
    /// Send a signal to the container's init process.
    Signal {
        /// The container.
        name: String,
        /// The signal number (15 = SIGTERM, 9 = SIGKILL).
        signal: i32,
    },
    /// Run a process in a container; the connection becomes its I/O (see the module docs).
    Exec(ExecConfig),
    /// Resize the terminal of the exec on this connection.
    ResizeTty(TtySize),
    /// Stream a container's kept log lines (and new ones when following).
    Logs(LogsRequest),
    /// Subscribe to container lifecycle events on this connection.
    Events,
    /// Every container's state.
    ListContainers,
    /// Measured usage per container and per interface.
    Stats,
    /// Set (or clear) a container's liveness and readiness probes; they run with each run of
    /// the container, and their reports arrive as [`AgentEvent::Probe`] on `Events` streams.
    SetProbes(ContainerProbes),
    /// Kill (if running) and remove a container; its logs go with it.
    RemoveContainer {
        /// The container.
        name: String,
    },
    /// Stream a running container's output from now on (and take its input, when asked);
    /// the connection becomes the stream (see the module docs).
    Attach(AttachRequest),
}

/// The reply to a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The id of the call answered.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, RemoteError>,
}

/// A successful outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The agent's side of [`Call::Hello`].
    Hello {
        /// The agent's protocol version (equal to the host's).
        protocol: u32,
        /// The agent's version.
        agent: String,
        /// Guest uptime when the reply was made, in milliseconds.
        uptime_ms: u64,
    },
    /// Answer to [`Call::Ping`].
    Pong,
    /// The agent is powering the VM off.
    ShuttingDown,
    /// The call succeeded and has nothing to return.
    Done,
    /// Answer to [`Call::WaitContainer`].
    Exited(ExitStatus),
    /// Answer to [`Call::StartContainer`].
    Started {
        /// The container's init process in the guest.
        pid: u32,
    },
    /// Answer to [`Call::Exec`]: the process runs; its I/O follows on this connection.
    ExecStarted {
        /// The process in the guest.
        pid: u32,
    },
    /// Answer to [`Call::Logs`] and [`Call::Events`]: events follow on this connection.
    Streaming,
    /// Answer to [`Call::ListContainers`]. (A struct variant: an internally tagged enum
    /// cannot serialize a newtype variant holding a sequence.)
    Containers {
        /// Every container, by name.
        containers: Vec<ContainerStatus>,
    },
    /// Answer to [`Call::Stats`].
    Stats(SandboxStats),
}

/// An unsolicited message from the agent (JSON in an `Event` frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    /// A log line of the container a [`Call::Logs`] stream follows.
    Log(LogEntry),
    /// The end of a non-following log stream.
    LogEnd,
    /// The end of an attach stream: the attached run ended (or the stream could not go on).
    AttachEnded(AttachEnd),
    /// The process of an exec ended.
    ExecExited(ExitStatus),
    /// A container's process started.
    ContainerStarted {
        /// The container.
        name: String,
        /// Its init process in the guest.
        pid: u32,
    },
    /// A probe attempt failed, or a probe's verdict changed.
    Probe(ProbeReport),
    /// A container's process ended.
    ContainerExited {
        /// The container.
        name: String,
        /// How.
        status: ExitStatus,
    },
}

/// A failed outcome, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// The class of failure.
    pub kind: RemoteErrorKind,
    /// A sentence for humans.
    pub message: String,
}

/// Classes of agent-side failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteErrorKind {
    /// The protocol versions differ.
    VersionMismatch,
    /// A call other than Hello came first.
    HelloRequired,
    /// The agent does not know the call (it is older than the host).
    UnknownCall,
    /// The call was understood but failed.
    Failed,
    /// The call names a container that does not exist.
    NoSuchContainer,
    /// The container's process could not be started (unknown command, missing
    /// entrypoint, bad working directory or user).
    StartFailed,
    /// A storage could not be mounted (unknown disk, bad filesystem, wrong credentials).
    MountFailed,
    /// The call is not valid in the container's current state (e.g. a second create).
    InvalidState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_round_trip_as_tagged_json() {
        let req = Request { id: 3, call: Call::Hello { protocol: 1, host: "0.1.0".into() } };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""call":"hello""#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        let resp = Response {
            id: 3,
            result: Err(RemoteError { kind: RemoteErrorKind::VersionMismatch, message: "x".into() }),
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), resp);
    }

    #[test]
    fn attach_calls_and_their_end_round_trip() {
        let req =
            Request { id: 4, call: Call::Attach(AttachRequest { container: "app".into(), stdin: true }) };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""call":"attach""#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        let old = r#"{"id":5,"call":{"call":"attach","container":"app"}}"#;
        let Call::Attach(parsed) = serde_json::from_str::<Request>(old).unwrap().call else { panic!() };
        assert!(!parsed.stdin, "stdin defaults to false");
        let end = AgentEvent::AttachEnded(AttachEnd {
            exit: Some(ExitStatus { code: 3, ..Default::default() }),
            reason: None,
        });
        let json = serde_json::to_string(&end).unwrap();
        assert!(json.contains(r#""event":"attach_ended""#), "{json}");
        assert_eq!(serde_json::from_str::<AgentEvent>(&json).unwrap(), end);
    }

    #[test]
    fn every_reply_with_a_list_serializes() {
        let reply = Reply::Containers { containers: Vec::new() };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
    }
}
