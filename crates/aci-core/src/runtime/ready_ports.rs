//! Published ports that follow readiness (opt-in: [`NetworkSettings::publish_when_ready`],
//! off by default like ACI, which publishes regardless of probes; see `docs/probes.md`).
//!
//! With the option on, the network step leaves a `Public` group's ports unpublished; the
//! supervisor calls [`follow`] after every event it handles, which publishes the ports when
//! the group becomes ready ([`GroupStatus::is_ready`](super::GroupStatus::is_ready)) and
//! closes them (connections to them are refused) when it stops being ready.

use std::net::Ipv4Addr;

use aci_net::{PortSpec, PublishedPorts};

use super::events::{EventKind, EventName};
use super::group::{lock, GroupCtx};
use super::network::{port_spec, NetworkSettings};
use crate::spec::IpAddressType;

/// Publishes or closes the group's ports to match its readiness (a no-op unless the runtime
/// was built with networking and [`NetworkSettings::publish_when_ready`]).
pub(crate) async fn follow(ctx: &GroupCtx, published: &mut Option<PublishedPorts>) {
    let Some(settings) = ctx.shared.config.network.as_ref() else { return };
    if !settings.publish_when_ready {
        return;
    }
    let status = ctx.status();
    match (status.is_ready(), published.is_some()) {
        (true, false) => {
            let ports = ports(&lock(&ctx.spec));
            if ports.is_empty() {
                return;
            }
            match publish(ctx, settings, status.network.as_deref(), status.ip.as_deref(), &ports).await {
                Ok(p) => {
                    let addresses: Vec<String> = p.addresses.iter().map(|(_, a)| a.to_string()).collect();
                    tracing::info!(group = %ctx.name, ?addresses, "ready: ports published");
                    ctx.update(|s| s.published = addresses);
                    *published = Some(p);
                }
                Err(why) => ctx.event(
                    None,
                    EventName::Failed,
                    EventKind::Warning,
                    format!("publishing the ports of the ready group failed: {why}"),
                ),
            }
        }
        (false, true) => {
            // Dropping the proxies closes the host ports.
            drop(published.take());
            tracing::info!(group = %ctx.name, "not ready: ports closed");
            ctx.update(|s| s.published.clear());
        }
        _ => {}
    }
}

/// The ports a `Public` group publishes.
fn ports(spec: &crate::spec::ContainerGroup) -> Vec<PortSpec> {
    match &spec.properties.ip_address {
        Some(ip) if ip.kind == IpAddressType::Public => ip.ports.iter().map(port_spec).collect(),
        _ => Vec::new(),
    }
}

async fn publish(
    ctx: &GroupCtx,
    settings: &NetworkSettings,
    network: Option<&str>,
    ip: Option<&str>,
    ports: &[PortSpec],
) -> Result<PublishedPorts, String> {
    let nets = ctx.shared.nets.as_ref().ok_or("the runtime has no networking")?;
    let network = network.ok_or("the group is not attached to a network")?;
    let ip: Ipv4Addr = ip
        .ok_or("the group has no address")?
        .parse()
        .map_err(|e| format!("the group's address is not IPv4: {e}"))?;
    nets.manager
        .publish(network, &ctx.name, ip, settings.publish_address, ports)
        .await
        .map_err(|e| super::deploy::error_chain(&e))
}
