//! `validate()`: ACI's rules for a container group, every violation reported with its path.
//!
//! Each submodule checks one area (names and counts, resources, containers, probes, volumes,
//! network, secrets) and adds to one [`Report`], so a file with five mistakes gets five
//! [`Violation`]s, not one at a time.

mod containers;
mod names;
mod network;
mod probes;
mod resources;
mod secrets;
mod volumes;

use std::fmt;
use std::ops::RangeInclusive;

use super::container::{EnvironmentVariable, VolumeMount};
use super::group::ContainerGroup;

/// ACI's reserved ports, which a group may not publish.
pub const ACI_RESERVED_PORTS: &[RangeInclusive<u16>] = &[
    22..=22,
    443..=443,
    1025..=1027,
    3389..=3399,
    9999..=9999,
    19000..=19000,
    19080..=19080,
    19100..=19100,
    19390..=19390,
    20000..=30000,
    49152..=65534,
];

/// The limits and policies `validate` applies. [`Limits::default`] is ACI's.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Containers per group (ACI: 60).
    pub max_containers: usize,
    /// Volumes per group (ACI: 20).
    pub max_volumes: usize,
    /// Ports published on the group's IP (ACI: 5).
    pub max_ports_per_ip: usize,
    /// Sum of the containers' CPU requests (ACI Linux default: 4).
    pub max_cpu: f64,
    /// Sum of the containers' memory requests in GB (ACI Linux default: 16).
    pub max_memory_in_gb: f64,
    /// Reject published ports in [`Limits::reserved_ports`] (ACI does).
    pub reject_reserved_ports: bool,
    /// Ports a group may not publish when [`Limits::reject_reserved_ports`] is set.
    pub reserved_ports: Vec<RangeInclusive<u16>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_containers: 60,
            max_volumes: 20,
            max_ports_per_ip: 5,
            max_cpu: 4.0,
            max_memory_in_gb: 16.0,
            reject_reserved_ports: true,
            reserved_ports: ACI_RESERVED_PORTS.to_vec(),
        }
    }
}

/// One broken rule: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, as in the file: `properties.containers[0].properties.resources.requests.cpu`.
    pub path: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every rule a container group breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<Violation>);

impl ValidationErrors {
    /// The violations, in the order found.
    pub fn violations(&self) -> &[Violation] {
        &self.0
    }

    /// Whether some violation is at exactly `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|v| v.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "the container group is invalid ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for violation in &self.0 {
            write!(f, "\n  - {violation}")?;
        }
        Ok(())
    }
}

impl ContainerGroup {
    /// Checks the group against ACI's rules with the default [`Limits`].
    ///
    /// ```
    /// use aci_core::spec::{Container, ContainerGroup};
    ///
    /// let group = ContainerGroup::builder("Bad_Name")
    ///     .container(Container::new("app", "nginx").cpu(8.0).volume_mount("data", "C:/data"))
    ///     .build_unchecked();
    /// let errors = group.validate().unwrap_err();
    /// for path in [
    ///     "name",
    ///     "properties.containers",
    ///     "properties.containers[0].properties.volumeMounts[0].mountPath",
    ///     "properties.containers[0].properties.volumeMounts[0].name",
    /// ] {
    ///     assert!(errors.has_path(path), "{path} missing from {errors}");
    /// }
    /// ```
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        self.validate_with(&Limits::default())
    }

    /// Checks the group against ACI's rules with `limits`.
    pub fn validate_with(&self, limits: &Limits) -> Result<(), ValidationErrors> {
        let mut report = Report::default();
        names::check(self, limits, &mut report);
        resources::check(self, limits, &mut report);
        containers::check(self, &mut report);
        probes::check(self, &mut report);
        volumes::check(self, &mut report);
        network::check(self, limits, &mut report);
        secrets::check(self, &mut report);
        if report.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(report.0))
        }
    }
}

/// Collects violations.
#[derive(Debug, Default)]
struct Report(Vec<Violation>);

impl Report {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation { path: path.into(), message: message.into() });
    }
}

/// What containers and init containers have in common, with the path of each.
struct Workload<'a> {
    /// `properties.containers[0]` or `properties.initContainers[0]`.
    path: String,
    name: &'a str,
    image: &'a str,
    env: &'a [EnvironmentVariable],
    mounts: &'a [VolumeMount],
}

/// The group's containers, then its init containers.
fn workloads(group: &ContainerGroup) -> Vec<Workload<'_>> {
    let props = &group.properties;
    let containers = props.containers.iter().enumerate().map(|(i, c)| Workload {
        path: format!("properties.containers[{i}]"),
        name: &c.name,
        image: &c.properties.image,
        env: &c.properties.environment_variables,
        mounts: &c.properties.volume_mounts,
    });
    let inits = props.init_containers.iter().enumerate().map(|(i, c)| Workload {
        path: format!("properties.initContainers[{i}]"),
        name: &c.name,
        image: &c.properties.image,
        env: &c.properties.environment_variables,
        mounts: &c.properties.volume_mounts,
    });
    containers.chain(inits).collect()
}
