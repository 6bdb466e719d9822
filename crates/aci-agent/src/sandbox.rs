//! Sandbox-wide set-up asked by the host: hostname, clock, network interfaces, DNS,
//! `/etc/hosts`, and the storage mounts containers bind from.
//!
//! STUB (to be replaced in the agent issue): every call fails with "not implemented".

use aci_proto::container::InterfaceStats;
use aci_proto::message::{RemoteError, RemoteErrorKind};
use aci_proto::sandbox::{SandboxConfig, StorageMount};

/// The guest's sandbox-wide state.
#[derive(Debug, Default)]
pub struct Sandbox {}

impl Sandbox {
    /// A sandbox; `is_init` is false when the agent runs as an ordinary process (tests).
    pub fn new(_is_init: bool) -> Self {
        Self {}
    }

    /// Applies [`SandboxConfig`].
    pub fn configure(&self, _config: &SandboxConfig) -> Result<(), RemoteError> {
        Err(not_implemented("configure_sandbox"))
    }

    /// Mounts one storage.
    pub fn mount(&self, _mount: &StorageMount) -> Result<(), RemoteError> {
        Err(not_implemented("mount_storage"))
    }

    /// Counters of the non-loopback interfaces.
    pub fn interface_stats(&self) -> Vec<InterfaceStats> {
        Vec::new()
    }
}

fn not_implemented(call: &str) -> RemoteError {
    RemoteError { kind: RemoteErrorKind::Failed, message: format!("{call} is not implemented yet") }
}
