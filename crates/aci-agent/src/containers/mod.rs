//! The container engine: creates, starts, waits for, signals and removes the group's
//! containers, runs execs, keeps their logs and reports their usage.
//!
//! STUB (to be replaced in the agent issue): every call fails with "not implemented".

use std::os::unix::net::UnixStream;

use aci_proto::container::{
    ContainerConfig, ContainerStatus, ExecConfig, ExitStatus, LogsRequest, SandboxStats,
};
use aci_proto::frame::FrameError;
use aci_proto::message::{RemoteError, RemoteErrorKind, Response};

use crate::session::reply;

/// All containers of the group.
#[derive(Debug, Default)]
pub struct Engine {}

impl Engine {
    /// An engine; `is_init` is false when the agent runs as an ordinary process (tests).
    pub fn new(_is_init: bool) -> Self {
        Self {}
    }

    /// Prepares a container.
    pub fn create(&self, _config: ContainerConfig) -> Result<(), RemoteError> {
        Err(not_implemented("create_container"))
    }

    /// Starts (or restarts) a container; returns its init pid.
    pub fn start(&self, _name: &str) -> Result<u32, RemoteError> {
        Err(not_implemented("start_container"))
    }

    /// Blocks until the container's current run ends.
    pub fn wait(&self, _name: &str) -> Result<ExitStatus, RemoteError> {
        Err(not_implemented("wait_container"))
    }

    /// Signals a container's init process.
    pub fn signal(&self, _name: &str, _signal: i32) -> Result<(), RemoteError> {
        Err(not_implemented("signal"))
    }

    /// Every container's state.
    pub fn list(&self) -> Vec<ContainerStatus> {
        Vec::new()
    }

    /// Per-container usage (interfaces are filled in by the sandbox).
    pub fn stats(&self) -> SandboxStats {
        SandboxStats::default()
    }

    /// Removes a container.
    pub fn remove(&self, _name: &str) -> Result<(), RemoteError> {
        Err(not_implemented("remove_container"))
    }

    /// Runs an exec; owns the connection until the process ends.
    pub fn serve_exec(&self, _config: ExecConfig, id: u64, mut stream: UnixStream) -> Result<(), FrameError> {
        reply(&mut stream, &Response { id, result: Err(not_implemented("exec")) })
    }

    /// Streams logs; owns the connection until the stream ends.
    pub fn serve_logs(
        &self,
        _request: LogsRequest,
        id: u64,
        mut stream: UnixStream,
    ) -> Result<(), FrameError> {
        reply(&mut stream, &Response { id, result: Err(not_implemented("logs")) })
    }

    /// Streams lifecycle events; owns the connection until the host closes it.
    pub fn serve_events(&self, id: u64, mut stream: UnixStream) -> Result<(), FrameError> {
        reply(&mut stream, &Response { id, result: Err(not_implemented("events")) })
    }

    /// Stops every container (SIGTERM, then SIGKILL after a grace period) before power-off.
    pub fn stop_all(&self) {}
}

fn not_implemented(call: &str) -> RemoteError {
    RemoteError { kind: RemoteErrorKind::Failed, message: format!("{call} is not implemented yet") }
}
