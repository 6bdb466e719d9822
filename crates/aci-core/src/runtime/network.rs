//! The network step: the group's place on an `aci-net` network (opt-in with
//! [`super::RuntimeBuilder::networking`], it needs root).
//!
//! - [`HostNet`]: the runtime's network manager, its DNS name-label table and DNS server.
//!   Made ready once (started in the background when the runtime opens, awaited before the
//!   first attach): orphans of an earlier process are recovered (namespaces with the
//!   runtime's prefix but no spec, leases of groups that no longer run, their taps), the
//!   configured networks ([`NetworkSettings::networks`]) are created, the DNS server starts.
//! - attach: an address leased for the group on its network (the default one, or the one
//!   named after `subnetIds[0]`), a tap on that network's bridge for the VM's virtio-net
//!   device, the guest interface configuration for `ConfigureSandbox` (address, gateway,
//!   the network's DNS — the gateway, where the DNS server answers that network's guests —
//!   or the spec's `dnsConfig`), the `dnsNameLabel` registered (`dns_labels.rs`);
//! - publish: `ipAddress.ports` of a `Public` group proxied from the runtime's publish
//!   address (default 127.0.0.1) into the network;
//! - release: label released, published ports closed, tap deleted, lease released when the
//!   deployment ends.
//!
//! Without networking, a group has loopback only (its `dnsConfig` still makes the guest's
//! `/etc/resolv.conf`) and `ipAddress` gets a warning event.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use aci_net::config::network_name_for;
use aci_net::dns::{DnsLabels, DnsServer};
use aci_net::{ManagerConfig, NetworkConfig, NetworkManager, PortSpec, Protocol, PublishedPorts};
use aci_proto::sandbox::{DnsConfig, InterfaceConfig};
use aci_vmm::{NetConfig, TapSource};

use super::dns_labels;
use super::error::{RuntimeError, StepError};
use super::events::{EventKind, EventName};
use super::group::{GroupCtx, Shared};
use crate::spec::{self, ContainerGroup, IpAddressType};

/// The DNS zone of name labels by default.
pub const DEFAULT_DNS_ZONE: &str = "azurecontainer.io";

/// Networking settings of a runtime.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// The `aci-net` manager's configuration (state directory, namespace prefix, default
    /// network).
    pub manager: ManagerConfig,
    /// Where published ports listen on the host.
    pub publish_address: IpAddr,
    /// Virtual networks made when networking first starts; a group joins one with
    /// `subnetIds` whose id maps to its name ([`aci_net::config::network_name_for`]:
    /// `…/virtualNetworks/<vnet>/subnets/<subnet>` → `<vnet>-<subnet>`).
    pub networks: Vec<NetworkConfig>,
    /// The region of FQDNs for groups without `location` (default `local`).
    pub region: String,
    /// The zone of FQDNs (default [`DEFAULT_DNS_ZONE`]).
    pub dns_zone: String,
    /// Where the DNS server answers the host (default `127.0.0.1:0`, any free port); the
    /// guests of each network ask their gateway.
    pub dns_address: SocketAddr,
    /// Publish a group's ports only while it is ready (`ready_ports.rs`, `docs/probes.md`);
    /// default off: published from deployment on, like ACI.
    pub publish_when_ready: bool,
}

impl NetworkSettings {
    /// Networks under `state_dir` with `aci-net`'s defaults, ports published on 127.0.0.1.
    pub fn new(state_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            manager: ManagerConfig::new(state_dir),
            publish_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            networks: Vec::new(),
            region: "local".into(),
            dns_zone: DEFAULT_DNS_ZONE.into(),
            dns_address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            publish_when_ready: false,
        }
    }

    /// Adds a virtual network (see [`NetworkSettings::networks`]).
    pub fn network(mut self, config: NetworkConfig) -> Self {
        self.networks.push(config);
        self
    }
}

/// The runtime's host networking: the manager, the name-label table and the DNS server.
pub(crate) struct HostNet {
    /// Networks, leases, taps, published ports.
    pub manager: NetworkManager,
    labels: Arc<DnsLabels>,
    ready: tokio::sync::OnceCell<()>,
    dns: tokio::sync::OnceCell<DnsServer>,
    /// Networks whose gateway socket the DNS server already answers on.
    served: Mutex<HashSet<String>>,
}

impl HostNet {
    /// Opens the manager (touches no networking).
    pub fn open(settings: &NetworkSettings) -> Result<Self, RuntimeError> {
        let manager = NetworkManager::open(settings.manager.clone())
            .map_err(|e| RuntimeError::Config(format!("cannot open the network manager: {e}")))?;
        Ok(Self {
            manager,
            labels: Arc::new(DnsLabels::new(&settings.region, &settings.dns_zone)),
            ready: tokio::sync::OnceCell::new(),
            dns: tokio::sync::OnceCell::new(),
            served: Mutex::new(HashSet::new()),
        })
    }

    /// Once: recovers orphans of an earlier process (no group runs yet, so every lease is
    /// stale) and creates the configured networks. Failures are logged; an attach to a
    /// network that could not be made fails on its own.
    pub async fn ready(&self, settings: &NetworkSettings) {
        self.ready
            .get_or_init(|| async {
                match self.manager.recover(&[]).await {
                    Ok(report) if report != Default::default() => {
                        tracing::info!(?report, "recovered networks left by an earlier process")
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "recovering networks left by an earlier process failed")
                    }
                }
                for net in &settings.networks {
                    if let Err(err) = self.manager.create_network(net).await {
                        tracing::warn!(network = %net.name, error = %err, "cannot create the network");
                    }
                }
            })
            .await;
    }

    /// The DNS server (started on first use) answering on `network`'s gateway too.
    async fn serve(&self, settings: &NetworkSettings, network: &str) -> Result<&DnsServer, StepError> {
        let dns = self
            .dns
            .get_or_try_init(|| DnsServer::start(self.labels.clone(), settings.dns_address))
            .await
            .map_err(StepError::DnsServer)?;
        let mut served = self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !served.contains(network) {
            let socket = self.manager.dns_socket(network).map_err(|e| StepError::Network(Box::new(e)))?;
            dns.add_network_socket(socket, network).map_err(StepError::DnsServer)?;
            served.insert(network.to_owned());
        }
        Ok(dns)
    }

    /// The name labels in use.
    pub fn labels(&self) -> &DnsLabels {
        &self.labels
    }

    /// Where the DNS server answers the host, once it runs.
    pub fn dns_address(&self) -> Option<SocketAddr> {
        self.dns.get().map(DnsServer::local_addr)
    }
}

/// Starts [`HostNet::ready`] in the background when the runtime opens inside a tokio
/// runtime (a runtime opened elsewhere recovers before its first attach).
pub(crate) fn recover_at_open(shared: &Arc<Shared>) {
    if shared.nets.is_none() {
        return;
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let shared = shared.clone();
        handle.spawn(async move {
            shared.network().await;
        });
    }
}

/// `dnsConfig` for `/etc/resolv.conf`, or the network's servers without one.
fn resolver(spec: &ContainerGroup, default_servers: &[Ipv4Addr]) -> DnsConfig {
    let words = |v: &Option<String>| -> Vec<String> {
        v.iter().flat_map(|s| s.split_whitespace()).map(str::to_string).collect()
    };
    match &spec.properties.dns_config {
        Some(d) => DnsConfig {
            name_servers: d.name_servers.clone(),
            search_domains: words(&d.search_domains),
            options: words(&d.options),
        },
        None => DnsConfig {
            name_servers: default_servers.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
    }
}

/// The guest's resolver configuration for a group without networking: its `dnsConfig`.
pub(crate) fn loopback_dns(spec: &ContainerGroup) -> DnsConfig {
    resolver(spec, &[])
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

/// Step: attach the group, register its DNS name label, publish its ports. `Ok(None)`
/// without networking. All-or-nothing: a failure undoes what the step did.
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
    let manager = &nets.manager;
    let default = manager.default_network().await.map_err(net_err)?;
    let network = network_of(&default, spec);
    if manager.network_config(&network).map_err(net_err)?.is_none() {
        return Err(StepError::Unsupported(format!(
            "subnetIds[0]: network {network:?} does not exist (add it to NetworkSettings::networks)"
        )));
    }
    nets.serve(settings, &network).await?;
    let attachment = manager.attach(&network, &ctx.name, true).await.map_err(net_err)?;
    let guest = attachment.guest.clone();
    let answer = dns_labels::answer_address(spec, settings.publish_address, guest.address);
    let fqdn =
        match dns_labels::register(nets.labels(), spec, &settings.region, &network, answer, guest.address) {
            Ok(fqdn) => fqdn,
            Err(err) => {
                undo(nets, ctx, &network, attachment).await;
                return Err(StepError::DnsLabel(err));
            }
        };
    let published = match &spec.properties.ip_address {
        // With publish_when_ready, `ready_ports.rs` publishes them once the group is ready.
        Some(ip)
            if ip.kind == IpAddressType::Public && !ip.ports.is_empty() && !settings.publish_when_ready =>
        {
            let ports: Vec<PortSpec> = ip.ports.iter().map(port_spec).collect();
            match manager.publish(&network, &ctx.name, guest.address, settings.publish_address, &ports).await
            {
                Ok(published) => Some(published),
                Err(err) => {
                    undo(nets, ctx, &network, attachment).await;
                    return Err(net_err(err));
                }
            }
        }
        _ => None,
    };
    let mac = guest.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let dns = resolver(spec, &guest.dns_servers);
    ctx.update(|s| {
        s.network = Some(network.clone());
        s.ip = Some(guest.address.to_string());
        s.fqdn = fqdn.clone();
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

/// Undoes a half-done attach: the tap, the label, the lease.
async fn undo(nets: &HostNet, ctx: &GroupCtx, network: &str, attachment: aci_net::Attachment) {
    drop(attachment);
    nets.labels().release(&ctx.name);
    if let Err(err) = nets.manager.detach(network, &ctx.name).await {
        tracing::warn!(group = %ctx.name, %network, error = %err, "undoing the attach failed");
    }
}

pub(crate) fn port_spec(port: &spec::Port) -> PortSpec {
    let protocol = match port.protocol.unwrap_or_default() {
        spec::Protocol::Tcp => Protocol::Tcp,
        spec::Protocol::Udp => Protocol::Udp,
    };
    PortSpec { protocol, port: port.port }
}

/// Ends the deployment's networking: the DNS name label, the tap and the lease (published ports close when
/// their [`PublishedPorts`] is dropped).
pub(crate) async fn release(ctx: &GroupCtx) {
    let Some((nets, _)) = ctx.shared.network().await else {
        return;
    };
    nets.labels().release(&ctx.name);
    let network = ctx.update(|s| {
        s.published.clear();
        s.network.take()
    });
    if let Some(network) = network {
        if let Err(err) = nets.manager.detach(&network, &ctx.name).await {
            tracing::warn!(group = %ctx.name, %network, error = %err, "detaching the group from its network failed");
        }
    }
}
