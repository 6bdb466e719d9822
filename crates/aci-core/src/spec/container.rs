//! `properties.containers[]` and `properties.initContainers[]`.

use serde::{Deserialize, Serialize};

use super::instance_view::ContainerInstanceView;
use super::network::Port;
use super::probe::Probe;
use super::secret::Secret;
use super::serde_util;

/// A container of the group: `{name, properties}`. Build one with [`Container::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// The container's name, unique in the group.
    pub name: String,
    /// What to run and with what.
    pub properties: ContainerProperties,
}

/// `containers[].properties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerProperties {
    /// The image reference.
    pub image: String,
    /// Exec-form command; replaces the image's entrypoint when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// CPU, memory and GPU requests and limits.
    pub resources: ResourceRequirements,
    /// Volumes mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Restarts the container when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Decides when the container is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Privileges, capabilities and user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// **aci extension, not in ACI**: give the container's main process a stdin pipe that
    /// `Runtime::attach` can write to and close (otherwise its stdin is `/dev/null`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    /// Read-only: the container's state as reported by the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<ContainerInstanceView>,
}

/// An init container: runs to completion, in order, before the containers start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitContainer {
    /// The init container's name, unique in the group.
    pub name: String,
    /// What to run.
    pub properties: InitContainerProperties,
}

/// `initContainers[].properties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitContainerProperties {
    /// The image reference.
    pub image: String,
    /// Exec-form command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// Volumes mounted into the init container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Privileges, capabilities and user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Read-only: the init container's state as reported by the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<ContainerInstanceView>,
}

/// An environment variable: `value`, or `secureValue` (never shown back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentVariable {
    /// The variable's name.
    pub name: String,
    /// A plain value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A secret value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_value: Option<Secret>,
}

impl EnvironmentVariable {
    /// A variable with a plain value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: Some(value.into()), secure_value: None }
    }

    /// A variable with a secret value.
    pub fn secure(name: impl Into<String>, value: impl Into<Secret>) -> Self {
        Self { name: name.into(), value: None, secure_value: Some(value.into()) }
    }

    /// The value the process sees: the secure value if set, else the plain one; `None` if
    /// neither is set or the secure value was withheld.
    pub fn effective_value(&self) -> Option<&str> {
        match &self.secure_value {
            Some(secret) => secret.expose(),
            None => self.value.as_deref(),
        }
    }
}

/// `resources`: what the container asks for and the most it may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Reserved for the container; the group is sized from the sum of requests.
    pub requests: ResourceRequests,
    /// Upper bounds; each defaults to its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
}

impl ResourceRequirements {
    /// Requests `cpu` cores and `memory_in_gb` GB, with no explicit limits.
    pub fn new(cpu: f64, memory_in_gb: f64) -> Self {
        Self { requests: ResourceRequests { cpu, memory_in_gb, gpu: None }, limits: None }
    }

    /// The CPU limit: the explicit limit, else the request.
    pub fn cpu_limit(&self) -> f64 {
        self.limits.as_ref().and_then(|l| l.cpu).unwrap_or(self.requests.cpu)
    }

    /// The memory limit in GB: the explicit limit, else the request.
    pub fn memory_limit_in_gb(&self) -> f64 {
        self.limits.as_ref().and_then(|l| l.memory_in_gb).unwrap_or(self.requests.memory_in_gb)
    }
}

/// `resources.requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequests {
    /// CPU cores, fractional allowed.
    #[serde(deserialize_with = "serde_util::float")]
    pub cpu: f64,
    /// Memory in GB (`memoryInGB`; ACI's samples also write `memoryInGb`).
    #[serde(rename = "memoryInGB", alias = "memoryInGb", deserialize_with = "serde_util::float")]
    pub memory_in_gb: f64,
    /// GPUs (not supported by aci; rejected by validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
}

/// `resources.limits`: each field defaults to the matching request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceLimits {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_float")]
    pub cpu: Option<f64>,
    /// Memory in GB.
    #[serde(
        default,
        rename = "memoryInGB",
        alias = "memoryInGb",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serde_util::opt_float"
    )]
    pub memory_in_gb: Option<f64>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
}

/// `gpu` `{count, sku}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gpu {
    /// Number of GPUs.
    #[serde(deserialize_with = "serde_util::int")]
    pub count: u32,
    /// GPU model (`K80`, `P100`, `V100`).
    pub sku: String,
}

/// `volumeMounts[]`: a group volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    /// The volume's name in `properties.volumes`.
    pub name: String,
    /// Absolute path in the container, without `:`.
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_bool")]
    pub read_only: Option<bool>,
}

/// `securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    /// Run with all capabilities and device access.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_bool")]
    pub privileged: Option<bool>,
    /// Allow gaining privileges (setuid, file capabilities).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_bool")]
    pub allow_privilege_escalation: Option<bool>,
    /// Capabilities added to or dropped from the default set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// The user id the process runs as.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub run_as_user: Option<i64>,
    /// The group id the process runs as.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub run_as_group: Option<i64>,
    /// A seccomp profile, base64-encoded JSON (as ACI takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
}

/// `securityContext.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Capabilities to add (`NET_ADMIN`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_is_an_extension_that_defaults_off_and_is_written_only_when_on() {
        let plain = Container::new("app", "busybox");
        assert!(!plain.properties.stdin);
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("stdin"), "{json}");
        let open = Container::new("app", "busybox").stdin(true);
        let json = serde_json::to_string(&open).unwrap();
        assert!(json.contains(r#""stdin":true"#), "{json}");
        assert_eq!(serde_json::from_str::<Container>(&json).unwrap(), open);
        let yaml = "name: app\nproperties:\n  image: busybox\n  stdin: true\n  resources:\n    requests:\n      cpu: 1\n      memoryInGB: 1\n";
        assert!(serde_yaml_ng::from_str::<Container>(yaml).unwrap().properties.stdin);
    }
}
