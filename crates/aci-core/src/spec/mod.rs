//! Container group specs with Azure Container Instances' field names.
//!
//! - Types mirror the `Microsoft.ContainerInstance/containerGroups` resource, so an ACI YAML
//!   file, a JSON resource or an ARM template loads unchanged ([`ContainerGroup::from_path`]);
//!   unknown fields are errors naming their path (`properties.containers[0].properties.imagee`).
//!   Input is as lenient as ACI's: enums in any case (`tcp`), numbers as strings (`"80"`),
//!   `memoryInGb` for `memoryInGB`.
//! - In code, [`ContainerGroup::builder`] with [`Container::new`].
//! - [`ContainerGroup::validate`] applies ACI's rules and reports every [`Violation`] with its
//!   path; [`Limits`] holds the configurable limits and the reserved-ports policy.
//! - Secrets ([`Secret`]) are readable by the runtime and never shown back.
//! - aci extensions, not in ACI: `hostPath` volumes ([`HostPathVolume`]), `tcpSocket`
//!   probes ([`TcpSocketAction`]) and a container's `stdin` ([`ContainerProperties::stdin`]:
//!   a stdin pipe for `Runtime::attach`; default false, stdin is `/dev/null`).
//!
//! ```
//! use aci_core::spec::{Container, ContainerGroup};
//!
//! let group = ContainerGroup::builder("hello")
//!     .container(Container::new("app", "docker.io/library/busybox:1.36").command(["echo", "hi"]))
//!     .build()?;
//! let again = ContainerGroup::from_yaml_str(&group.to_yaml_string()?)?;
//! assert_eq!(again, group);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod arm;
mod builder;
mod container;
mod group;
mod instance_view;
mod load;
mod network;
mod probe;
mod secret;
mod serde_util;
mod validate;
mod volume;

pub use builder::ContainerGroupBuilder;
pub use container::{
    Capabilities, Container, ContainerProperties, EnvironmentVariable, Gpu, InitContainer,
    InitContainerProperties, ResourceLimits, ResourceRequests, ResourceRequirements, SecurityContext,
    VolumeMount,
};
pub use group::{
    ContainerGroup, ContainerGroupProperties, Diagnostics, Identity, ImageRegistryCredential, LogAnalytics,
    OsType, Priority, RestartPolicy, Sku, UserAssignedIdentity, RESOURCE_TYPE,
};
pub use instance_view::{ContainerInstanceView, ContainerState, Event, GroupInstanceView};
pub use load::{EncodeError, Format, LoadError, LoadOptions};
pub use network::{DnsConfig, DnsNameLabelScope, IpAddress, IpAddressType, Port, Protocol, SubnetId};
pub use probe::{
    ExecAction, HttpGetAction, HttpHeader, Probe, ProbeConversionError, ProbeTiming, Scheme, TcpSocketAction,
};
pub use secret::Secret;
pub use serde_util::UnknownVariant;
pub use validate::{Limits, ValidationErrors, Violation, ACI_RESERVED_PORTS};
pub use volume::{AzureFileVolume, EmptyDirVolume, GitRepoVolume, HostPathVolume, Volume, VolumeKind};
