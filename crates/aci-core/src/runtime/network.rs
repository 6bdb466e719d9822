//! The network step: the group's place on an `aci-net` network (opt-in with
//! [`super::RuntimeBuilder::networking`], it needs root).
//!
//! - attach: an address leased for the group on its network (the default one, or the one
//!   named after `subnetIds[0]`), a tap on that network's bridge for the VM's virtio-net
//!   device, and the guest interface configuration for `ConfigureSandbox` (address, gateway,
//!   the network's DNS, or the spec's `dnsConfig`);
//! - publish: `ipAddress.ports` of a `Public` group proxied from the runtime's publish
//!   address (default 127.0.0.1) into the network;
//! - release: published ports closed, tap deleted, lease released when the deployment ends.
//!
//! Without networking, a group has loopback only and `ipAddress` gets a warning event.

use std::net::{IpAddr, Ipv4Addr};

use aci_net::config::network_name_for;
use aci_net::{ManagerConfig, PortSpec, Protocol, PublishedPorts};
use aci_proto::sandbox::{DnsConfig, InterfaceConfig};
use aci_vmm::{NetConfig, TapSource};

use super::error::StepError;
use super::events::{EventKind, EventName};
use super::group::GroupCtx;
use crate::spec::{self, ContainerGroup, IpAddressType};

/// Networking settings of a runtime.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// The `aci-net` manager's configuration (state directory, namespace prefix, default
    /// network).
    pub manager: ManagerConfig,
    /// Where published ports listen on the host.
    pub publish_address: IpAddr,
}

impl NetworkSettings {
    /// Networks under `state_dir` with `aci-net`'s defaults, ports published on 127.0.0.1.
    pub fn new(state_dir: impl Into<std::path::PathBuf>) -> Self {
        Self { manager: ManagerConfig::new(state_dir), publish_address: IpAddr::V4(Ipv4Addr::LOCALHOST) }
    }
}

/// What the network step gives a deployment.
pub(crate) struct GroupNetwork {
    /// The VM's virtio-net device.
    pub nic: NetConfig,
    /// The guest's interface and DNS configuration.
    pub interface: InterfaceConfig,
    /// `/etc/resolv.conf`.
    pub dns: DnsConfig,
    /// Open while the deployment runs.
    pub published: Option<PublishedPorts>,
}

/// The network a group belongs on.
fn network_of(default: &str, spec: &ContainerGroup) -> String {
    network_name_for(spec.properties.subnet_ids.first().map(|s| s.id.as_str()), default)
}

/// Step: attach the group (and publish its ports). `Ok(None)` without networking.
pub(crate) async fn attach(ctx: &GroupCtx, spec: &ContainerGroup) -> Result<Option<GroupNetwork>, StepError> {
    let Some((nets, settings)) = ctx.shared.network().await else {
        if spec.properties.ip_address.is_some() {
            ctx.event(
                None,
                EventName::Failed,
                EventKind::Warning,
                "ipAddress needs networking, which this runtime was built without: the group has loopback only",
            );
        }
        return Ok(None);
    };
    let net_err = |e: aci_net::ManagerError| StepError::Network(Box::new(e));
    let default = nets.default_network().await.map_err(net_err)?;
    let network = network_of(&default, spec);
    if nets.network_config(&network).map_err(net_err)?.is_none() {
        return Err(StepError::Unsupported(format!(
            "subnetIds[0]: network {network:?} does not exist (create it with aci_net::NetworkManager::create_network)"
        )));
    }
    let attachment = nets.attach(&network, &ctx.name, false).await.map_err(net_err)?;
    let guest = attachment.guest.clone();
    let published = match &spec.properties.ip_address {
        Some(ip) if ip.kind == IpAddressType::Public && !ip.ports.is_empty() => {
            let ports: Vec<PortSpec> = ip.ports.iter().map(port_spec).collect();
            match nets.publish(&network, &ctx.name, guest.address, settings.publish_address, &ports).await {
                Ok(published) => Some(published),
                Err(err) => {
                    drop(attachment);
                    let _ = nets.detach(&network, &ctx.name).await;
                    return Err(net_err(err));
                }
            }
        }
        _ => None,
    };
    let mac = guest.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let dns = match &spec.properties.dns_config {
        Some(d) => DnsConfig {
            name_servers: d.name_servers.clone(),
            search_domains: d
                .search_domains
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_string)
                .collect(),
            options: d.options.iter().flat_map(|s| s.split_whitespace()).map(str::to_string).collect(),
        },
        None => DnsConfig {
            name_servers: guest.dns_servers.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
    };
    ctx.update(|s| {
        s.network = Some(network.clone());
        s.ip = Some(guest.address.to_string());
        s.published = published
            .as_ref()
            .map(|p| p.addresses.iter().map(|(_, a)| a.to_string()).collect())
            .unwrap_or_default();
    });
    Ok(Some(GroupNetwork {
        nic: NetConfig { tap: TapSource::Fd(attachment.tap), mac: guest.mac },
        interface: InterfaceConfig {
            mac,
            addresses: vec![format!("{}/{}", guest.address, guest.prefix)],
            gateway: Some(guest.gateway.to_string()),
            mtu: None,
        },
        dns,
        published,
    }))
}

fn port_spec(port: &spec::Port) -> PortSpec {
    let protocol = match port.protocol.unwrap_or_default() {
        spec::Protocol::Tcp => Protocol::Tcp,
        spec::Protocol::Udp => Protocol::Udp,
    };
    PortSpec { protocol, port: port.port }
}

/// Ends the deployment's networking: the tap and the lease (published ports close when
/// their [`PublishedPorts`] is dropped).
pub(crate) async fn release(ctx: &GroupCtx) {
    let Some((nets, _)) = ctx.shared.network().await else {
        return;
    };
    let network = ctx.update(|s| {
        s.published.clear();
        s.network.take()
    });
    if let Some(network) = network {
        if let Err(err) = nets.detach(&network, &ctx.name).await {
            tracing::warn!(group = %ctx.name, %network, error = %err, "detaching the group from its network failed");
        }
    }
}
