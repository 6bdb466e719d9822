//! Read-only `instanceView` types: what the runtime reports back about a group and its
//! containers. Accepted on input (so `get` output loads again) but never required.

use serde::{Deserialize, Serialize};

use super::serde_util;

/// `properties.instanceView` of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupInstanceView {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Group-level events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// **aci extension**: the group is ready (every container that runs or will run again
    /// is running and passes its readiness probe; see `docs/probes.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// `instanceView` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerInstanceView {
    /// Times the container was restarted.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub restart_count: Option<u32>,
    /// The container's current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_state: Option<ContainerState>,
    /// The state before the last restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<ContainerState>,
    /// Container events (Pulling, Pulled, Created, Started, Killing, BackOff, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// **aci extension**: the container runs and passes its readiness probe (without one:
    /// it runs). Absent for init containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// A container state: `Waiting`, `Running` or `Terminated`, with its times and exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerState {
    /// `Waiting`, `Running` or `Terminated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the state began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// The exit code, once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub exit_code: Option<i32>,
    /// When the container terminated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
    /// Why the container is in this state (`Completed`, `Error`, `CrashLoopBackOff`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_status: Option<String>,
}

/// An event about a group or a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// How many times it happened.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub count: Option<u32>,
    /// First occurrence (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<String>,
    /// Last occurrence (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
    /// The event's name (`Pulling`, `Started`, `Killing`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}
