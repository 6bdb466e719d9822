//! A group's status: its spec, state, containers, events and usage. The same record is
//! kept on disk (see `state.rs`), so it outlives the process.

use serde::{Deserialize, Serialize};

use super::accounting::UsageRecord;
use crate::spec::{ContainerGroup, ContainerInstanceView, ContainerState, Event, GroupInstanceView};

/// A group's state, as ACI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    /// Being deployed: images pulling, VM booting, init containers running.
    Pending,
    /// The containers run (or wait to be restarted).
    Running,
    /// Every container ended with exit code 0 and none will restart.
    Succeeded,
    /// A container failed and will not restart, an init container failed, or deploying
    /// failed.
    Failed,
    /// Stopped by `stop`, or its VM ended with the process that ran it (see `reason`).
    Stopped,
}

impl GroupState {
    /// ACI's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
        }
    }

    /// Whether the group holds a VM in this state.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

/// One container's (or init container's) status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// An init container.
    pub init: bool,
    /// Restarts in this deployment.
    pub restart_count: u32,
    /// `Waiting`, `Running` or `Terminated`, with times and exit code.
    pub current_state: ContainerState,
    /// The state before the last restart.
    pub previous_state: Option<ContainerState>,
    /// Its events.
    pub events: Vec<Event>,
    /// Running and passing its readiness probe (without one: running); see `probes.rs`.
    #[serde(default)]
    pub ready: bool,
}

impl ContainerStatus {
    /// A container waiting to be created.
    pub fn waiting(name: &str, init: bool) -> Self {
        Self {
            name: name.to_string(),
            init,
            restart_count: 0,
            current_state: ContainerState {
                state: Some("Waiting".into()),
                detail_status: Some("Pending".into()),
                ..Default::default()
            },
            previous_state: None,
            events: Vec::new(),
            ready: false,
        }
    }

    /// `Waiting`, `Running` or `Terminated`.
    pub fn state(&self) -> &str {
        self.current_state.state.as_deref().unwrap_or("Waiting")
    }

    /// The exit code of the current state, once terminated.
    pub fn exit_code(&self) -> Option<i32> {
        self.current_state.exit_code
    }

    /// Whether any of its events is named `name`.
    pub fn has_event(&self, name: super::EventName) -> bool {
        self.events.iter().any(|e| e.name.as_deref() == Some(name.as_str()))
    }
}

/// A group as the runtime knows it (also its on-disk record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group's name.
    pub name: String,
    /// The spec it was created with (secrets are written as `<redacted>`).
    pub spec: ContainerGroup,
    /// The group's state.
    pub state: GroupState,
    /// Why it is in this state, when that needs saying (a failure, a VM that died with its
    /// process).
    pub reason: Option<String>,
    /// The current (or last) deployment number.
    pub deployment: u32,
    /// Init containers first, then the containers.
    pub containers: Vec<ContainerStatus>,
    /// Group events.
    pub events: Vec<Event>,
    /// One usage record per deployment, oldest first.
    pub usage: Vec<UsageRecord>,
    /// The process whose runtime ran the VM, while the group is active.
    pub owner_pid: Option<u32>,
    /// When this record was last written (ms since the Unix epoch).
    pub updated_at_ms: u64,
    /// The guest serial console of the current (or last) deployment.
    #[serde(default)]
    pub console_log: Option<std::path::PathBuf>,
    /// The network the group is attached to, while it is (runtimes with networking).
    #[serde(default)]
    pub network: Option<String>,
    /// The group's IP address on its network (the last one, once released).
    #[serde(default)]
    pub ip: Option<String>,
    /// The FQDN of its `dnsNameLabel` (the last one, once released).
    #[serde(default)]
    pub fqdn: Option<String>,
    /// Host addresses its ports are published at, while they are.
    #[serde(default)]
    pub published: Vec<String>,
    /// How long the phases of the current (or last) deployment took, in order.
    #[serde(default)]
    pub deploy_phases: Vec<PhaseTiming>,
}

/// How long one phase of a deployment took (it ends with the named step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// The step that ends the phase (`pull images`, `boot the VM`, ...).
    pub step: String,
    /// Milliseconds.
    pub ms: f64,
}

impl GroupStatus {
    /// The status of a container by name.
    pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub(crate) fn container_mut(&mut self, name: &str) -> Option<&mut ContainerStatus> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Whether any group event is named `name`.
    pub fn has_event(&self, name: super::EventName) -> bool {
        self.events.iter().any(|e| e.name.as_deref() == Some(name.as_str()))
    }

    /// The usage record of the current (or last) deployment.
    pub fn current_usage(&self) -> Option<&UsageRecord> {
        self.usage.last()
    }

    /// The group as ACI shows it: the spec with `provisioningState` and the group's and each
    /// container's `instanceView` filled in.
    pub fn to_container_group(&self) -> ContainerGroup {
        let mut group = self.spec.clone();
        let p = &mut group.properties;
        p.provisioning_state = Some(
            match self.state {
                GroupState::Pending => "Creating",
                GroupState::Failed if self.containers.iter().all(|c| c.state() == "Waiting") => "Failed",
                _ => "Succeeded",
            }
            .to_string(),
        );
        p.instance_view = Some(GroupInstanceView {
            state: Some(self.state.as_str().into()),
            events: self.events.clone(),
            ready: Some(self.is_ready()),
        });
        let view = |c: &ContainerStatus| ContainerInstanceView {
            restart_count: Some(c.restart_count),
            current_state: Some(c.current_state.clone()),
            previous_state: c.previous_state.clone(),
            events: c.events.clone(),
            ready: (!c.init).then(|| c.is_ready()),
        };
        if let (Some(ip), Some(spec_ip)) = (&self.ip, p.ip_address.as_mut()) {
            spec_ip.ip = Some(ip.clone());
        }
        if let (Some(fqdn), Some(spec_ip)) = (&self.fqdn, p.ip_address.as_mut()) {
            spec_ip.fqdn = Some(fqdn.clone());
        }
        for c in &mut p.containers {
            c.properties.instance_view = self.container(&c.name).map(view);
        }
        for c in &mut p.init_containers {
            c.properties.instance_view = self.container(&c.name).map(view);
        }
        group
    }
}
