//! The container group resource: top level and `properties`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::container::{Container, InitContainer};
use super::instance_view::GroupInstanceView;
use super::network::{DnsConfig, IpAddress, SubnetId};
use super::secret::Secret;
use super::serde_util::ci_enum;
use super::volume::Volume;

/// The ARM resource type of a container group.
pub const RESOURCE_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";

/// A container group, as in an ACI YAML file or the `containerGroups` resource of an ARM
/// template. Field names are ACI's, so such files load unchanged (see
/// [`ContainerGroup::from_path`]); build one in code with [`ContainerGroup::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerGroup {
    /// The ACI API version the file was written for (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The region; informational for a local runtime (appears in the FQDN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The group's name.
    pub name: String,
    /// What the group runs.
    pub properties: ContainerGroupProperties,
    /// The resource type, [`RESOURCE_TYPE`] when given.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Read-only: the resource ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Managed identity (accepted for compatibility; aci does not use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Availability zones (accepted for compatibility; meaningless locally).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
}

impl ContainerGroup {
    /// Sum of the containers' CPU requests: the group's size.
    pub fn total_cpu(&self) -> f64 {
        self.properties.containers.iter().map(|c| c.properties.resources.requests.cpu).sum()
    }

    /// Sum of the containers' memory requests in GB: the group's size.
    pub fn total_memory_in_gb(&self) -> f64 {
        self.properties.containers.iter().map(|c| c.properties.resources.requests.memory_in_gb).sum()
    }
}

/// `properties` of a container group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerGroupProperties {
    /// The containers (1 to 60).
    pub containers: Vec<Container>,
    /// Containers run in order, each to completion, before `containers` start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<InitContainer>,
    /// Credentials for private registries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// `Always` (default), `OnFailure` or `Never`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The group's IP and published ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddress>,
    /// `Linux` (`Windows` is rejected by validation).
    #[serde(default)]
    pub os_type: OsType,
    /// Volumes the containers may mount (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Virtual network subnets (private IP only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<SubnetId>,
    /// Resolver configuration for the containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    /// Log shipping settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
    /// `Standard`, `Dedicated` or `Confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// `Regular` or `Spot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Read-only: `Pending`, `Creating`, `Succeeded`, `Failed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Read-only: the group's state and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<GroupInstanceView>,
}

ci_enum! {
    /// `restartPolicy`: what happens when a container exits.
    pub enum RestartPolicy default Always {
        /// Always restart (the default).
        Always => "Always",
        /// Restart only after a non-zero exit.
        OnFailure => "OnFailure",
        /// Never restart.
        Never => "Never",
    }
}

ci_enum! {
    /// `osType`.
    pub enum OsType default Linux {
        /// Linux (the only one aci runs).
        Linux => "Linux",
        /// Windows (not supported).
        Windows => "Windows",
    }
}

ci_enum! {
    /// `sku`.
    pub enum Sku {
        /// Shared hosts.
        Standard => "Standard",
        /// A dedicated host.
        Dedicated => "Dedicated",
        /// Confidential computing.
        Confidential => "Confidential",
    }
}

ci_enum! {
    /// `priority`.
    pub enum Priority {
        /// Regular priority.
        Regular => "Regular",
        /// Spot: may be evicted.
        Spot => "Spot",
    }
}

/// `imageRegistryCredentials[]`: how to log in to a private registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRegistryCredential {
    /// Registry host (and port), without a scheme: `myregistry.azurecr.io`.
    pub server: String,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password. Never shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Managed identity to log in with (accepted; not used by aci).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Identity URL (accepted; not used by aci).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_url: Option<String>,
}

impl ImageRegistryCredential {
    /// A user name and password for `server`.
    pub fn new(server: impl Into<String>, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            server: server.into(),
            username: Some(username.into()),
            password: Some(password.into()),
            identity: None,
            identity_url: None,
        }
    }
}

/// `diagnostics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Diagnostics {
    /// Ship logs to a Log Analytics workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_analytics: Option<LogAnalytics>,
}

/// `diagnostics.logAnalytics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogAnalytics {
    /// Workspace ID.
    pub workspace_id: String,
    /// Workspace key. Never shown back.
    pub workspace_key: Secret,
    /// `ContainerInsights` or `ContainerInstanceLogs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
    /// Workspace resource ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_resource_id: Option<String>,
    /// Extra metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// `identity`: managed identities (accepted so ACI files load; aci does not use them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type")]
    pub kind: String,
    /// User-assigned identities by resource ID.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, UserAssignedIdentity>,
    /// Read-only: principal ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Read-only: tenant ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// A user-assigned identity's read-only IDs (usually given as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserAssignedIdentity {
    /// Principal ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Client ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}
