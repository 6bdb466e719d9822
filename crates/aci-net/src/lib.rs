//! # aci-net — host networking for container groups
//!
//! Each virtual network is a Linux bridge (`br0`) inside a network namespace aci owns
//! (`<prefix><network>`, default prefix `aci-`), so the host's own links, routes and rules are
//! untouched. A group gets an address from the network's allocator (persisted in the state dir),
//! a tap on the bridge whose fd goes to the VMM, and a [`GuestNetConfig`] for the agent.
//! Published ports are proxied from `<bind>:<port>` on the host into the namespace; DNS name
//! labels are served in-process by [`dns::DnsServer`]; aci's nftables table in each namespace
//! isolates the network. See `docs/networking.md` for the steps, addresses and rules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::sync::Arc;
//! use aci_net::{ManagerConfig, NetworkManager, PortSpec, Protocol};
//! use aci_net::dns::{DnsLabels, DnsServer, LabelOwner, LabelScope};
//!
//! let nets = NetworkManager::open(ManagerConfig::new("/var/lib/aci/net"))?;
//! nets.recover(&[]).await?; // after a crash: remove orphans aci owns
//! let network = nets.default_network().await?;
//! let att = nets.attach(&network, "group-1", true).await?; // att.tap → the VMM
//! let ports = [PortSpec { protocol: Protocol::Tcp, port: 8080 }];
//! let bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
//! let published = nets.publish(&network, "group-1", att.guest.address, bind, &ports).await?;
//! let labels = Arc::new(DnsLabels::new("westeurope", "azurecontainer.io"));
//! let dns = DnsServer::start(labels.clone(), "127.0.0.1:0".parse()?).await?;
//! let fqdn = labels.register("web", LabelScope::Unsecure, &LabelOwner::default(), "group-1", Ipv4Addr::LOCALHOST)?;
//! // … the group runs …
//! labels.release("group-1");
//! drop((published, dns));
//! nets.detach(&network, "group-1").await?;
//! # let _ = fqdn; Ok(()) }
//! ```

mod attach;
pub mod config;
pub mod dns;
pub mod ipam;
pub mod links;
pub mod manager;
pub mod netns;
pub mod network;
pub mod nft;
pub mod ports;
mod recover;
pub mod state;
pub mod tap;

pub use attach::Attachment;
pub use config::{GuestNetConfig, ManagerConfig, NetworkConfig};
pub use manager::{ManagerError, NetworkManager, RecoveryReport};
pub use ports::{PortError, PortSpec, Protocol, PublishedPorts};
