//! Errors of the runtime's operations and of the deployment steps.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::resolve::ResolveError;
use super::sizing::SizingError;
use crate::agent::{ChannelError, ConnectError};
use crate::images::ImageError;
use crate::spec::ValidationErrors;

/// Errors of [`super::Runtime`] operations.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A directory or file of the state directory cannot be used.
    #[error("cannot use {}", path.display())]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another runtime (in this or another process) holds the state directory.
    #[error("another aci runtime holds {}; one runtime per state directory", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A group record cannot be written or read.
    #[error("cannot write or read the group record {}", path.display())]
    Record {
        /// The record.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The builder lacks something or was given something unusable.
    #[error("runtime configuration: {0}")]
    Config(String),
    /// The image store could not be opened.
    #[error("cannot open the image store")]
    Images(#[source] Box<ImageError>),
    /// The group breaks ACI's rules.
    #[error("container group {name:?} is not valid")]
    Invalid {
        /// The group.
        name: String,
        /// Every violation with its path.
        #[source]
        source: ValidationErrors,
    },
    /// No group has this name.
    #[error("no container group named {0:?}")]
    NotFound(String),
    /// The group is being deployed or runs; stop or delete it first.
    #[error("container group {0:?} is active (Pending or Running); stop or delete it first")]
    Active(String),
    /// The operation needs a running group.
    #[error("container group {0:?} is not running")]
    NotRunning(String),
    /// The group has no such container.
    #[error("container group {group:?} has no container {container:?}")]
    NoSuchContainer {
        /// The group.
        group: String,
        /// The container asked for.
        container: String,
    },
    /// Deploying the group failed at a step; the group's record says `Failed` with the same
    /// reason.
    #[error("deploying container group {group:?} failed at step '{step}'")]
    Deploy {
        /// The group.
        group: String,
        /// The step.
        step: Step,
        /// What went wrong.
        #[source]
        source: Box<StepError>,
    },
    /// A call to the group's agent failed.
    #[error("container group {group:?}: {what} failed")]
    Agent {
        /// The group.
        group: String,
        /// The operation (`exec in "web"`, `logs of "web"`, ...).
        what: String,
        /// The cause.
        #[source]
        source: AgentCallError,
    },
    /// `stop` or `delete` ended the deployment before its containers ran.
    #[error("deploying container group {0:?} was cancelled by stop or delete")]
    Cancelled(String),
    /// The group's supervisor task ended before answering (the runtime is shutting down).
    #[error("container group {0:?}: its supervisor is gone")]
    SupervisorGone(String),
    /// Waiting for a condition timed out.
    #[error("container group {group:?}: {what} did not happen within {waited:?}")]
    Timeout {
        /// The group.
        group: String,
        /// What was awaited.
        what: String,
        /// How long.
        waited: std::time::Duration,
    },
    /// [`super::Runtime::wait_ready`] timed out.
    #[error(
        "container group {group:?} was not ready within {waited:?}; not ready: {}",
        containers.join(", ")
    )]
    NotReady {
        /// The group.
        group: String,
        /// The containers that were not ready.
        containers: Vec<String>,
        /// How long.
        waited: std::time::Duration,
    },
}

/// A call to an agent failed: connecting, or the call itself.
#[derive(Debug, Error)]
pub enum AgentCallError {
    /// Connecting (vsock handshake, hello) failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The call failed or the agent refused it.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The reply was not the one the call expects.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// The blocking task running the call panicked or was cancelled.
    #[error("the task running the call ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}

/// The named steps of a deployment (see `docs/runtime.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `validate()`.
    Validate,
    /// Pull every image and build its disk.
    PullImages,
    /// Work out each container's process from its spec and image.
    ResolveContainers,
    /// Size the VM from the requests.
    SizeVm,
    /// Prepare the volumes on the host and resolve the containers' `volumeMounts`.
    Volumes,
    /// Attach to the network, register the DNS name label, publish the ports.
    Network,
    /// Build and boot the VM.
    Boot,
    /// Connect to the agent and exchange hellos.
    AgentHello,
    /// Subscribe to container events.
    SubscribeEvents,
    /// Hostname and clock.
    ConfigureSandbox,
    /// Mount each image disk.
    MountImages,
    /// Mount each volume in the guest.
    MountVolumes,
    /// Run the init containers in order.
    InitContainers,
    /// Create and start the containers.
    StartContainers,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Validate => "validate",
            Self::PullImages => "pull images",
            Self::ResolveContainers => "resolve containers",
            Self::SizeVm => "size the VM",
            Self::Volumes => "volumes",
            Self::Network => "network",
            Self::Boot => "boot the VM",
            Self::AgentHello => "agent hello",
            Self::SubscribeEvents => "subscribe to container events",
            Self::ConfigureSandbox => "configure the sandbox",
            Self::MountImages => "mount images",
            Self::MountVolumes => "mount volumes",
            Self::InitContainers => "init containers",
            Self::StartContainers => "start containers",
        })
    }
}

/// What went wrong in a deployment step.
#[derive(Debug, Error)]
pub enum StepError {
    /// The group breaks ACI's rules.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// An image could not be pulled or its disk built.
    #[error("image {image:?}")]
    Image {
        /// The image reference.
        image: String,
        /// The cause.
        #[source]
        source: Box<ImageError>,
    },
    /// A container's process could not be worked out.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The requests do not make a VM.
    #[error(transparent)]
    Sizing(#[from] SizingError),
    /// A directory the step needs (sockets, consoles) cannot be created.
    #[error("cannot create {}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec uses something the runtime does not provide yet.
    #[error("{0}")]
    Unsupported(String),
    /// A container's probe cannot be run (e.g. `httpGet` with `scheme: https`).
    #[error(transparent)]
    Probe(#[from] super::probes::ProbeSpecError),
    /// A volume could not be prepared or mounted, or a `volumeMounts` entry is wrong.
    #[error(transparent)]
    Volume(#[from] super::volumes::VolumeStepError),
    /// The group could not be attached to its network or its ports published.
    #[error("networking")]
    Network(#[source] Box<aci_net::ManagerError>),
    /// `ipAddress.dnsNameLabel` is invalid or held by another group.
    #[error("ipAddress.dnsNameLabel")]
    DnsLabel(#[source] aci_net::dns::LabelError),
    /// The runtime's DNS server could not be started.
    #[error("starting the DNS server")]
    DnsServer(#[source] aci_net::dns::DnsServerError),
    /// The VM could not be built.
    #[error("building the VM")]
    Boot(#[source] super::guest::BootError),
    /// A call to the agent failed.
    #[error(transparent)]
    Agent(#[from] AgentCallError),
    /// An init container exited non-zero (or was killed).
    #[error("init container {container:?} exited with code {exit_code}")]
    InitFailed {
        /// The init container.
        container: String,
        /// Its exit code.
        exit_code: i32,
    },
    /// The VM or the agent's event stream ended during the deployment.
    #[error("the VM ended during deployment: {0}")]
    VmEnded(String),
    /// A blocking task panicked or was cancelled.
    #[error("a deployment task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}
