//! Ports, the group IP, subnets, DNS and registry servers.

use std::collections::HashMap;
use std::net::IpAddr;

use super::names::name_problem;
use super::{Limits, Report};
use crate::spec::group::ContainerGroup;
use crate::spec::network::{IpAddressType, Protocol};

pub(super) fn check(group: &ContainerGroup, limits: &Limits, report: &mut Report) {
    let props = &group.properties;

    // Containers share the group's network namespace: a port may be taken by one only.
    let mut exposed: HashMap<(u16, Protocol), String> = HashMap::new();
    for (i, container) in props.containers.iter().enumerate() {
        for (j, port) in container.properties.ports.iter().enumerate() {
            let path = format!("properties.containers[{i}].properties.ports[{j}]");
            if port.port == 0 {
                report.add(format!("{path}.port"), "must be from 1 to 65535");
            }
            let key = (port.port, port.protocol());
            if let Some(first) = exposed.get(&key) {
                report.add(&path, format!("port {}/{} is already used by {first}", key.0, key.1));
            } else {
                exposed.insert(key, path);
            }
        }
    }

    if let Some(ip) = &props.ip_address {
        let count = ip.ports.len();
        if count == 0 {
            report.add("properties.ipAddress.ports", "an IP address must publish at least one port");
        } else if count > limits.max_ports_per_ip {
            report.add(
                "properties.ipAddress.ports",
                format!("{count} ports; an IP may publish at most {}", limits.max_ports_per_ip),
            );
        }
        let mut seen: HashMap<(u16, Protocol), usize> = HashMap::new();
        for (i, port) in ip.ports.iter().enumerate() {
            let path = format!("properties.ipAddress.ports[{i}]");
            let key = (port.port, port.protocol());
            if port.port == 0 {
                report.add(format!("{path}.port"), "must be from 1 to 65535");
            } else if limits.reject_reserved_ports
                && limits.reserved_ports.iter().any(|r| r.contains(&port.port))
            {
                report.add(
                    format!("{path}.port"),
                    format!("port {} is reserved and may not be published", port.port),
                );
            }
            if let Some(first) = seen.insert(key, i) {
                report.add(&path, format!("port {}/{} is already listed at ports[{first}]", key.0, key.1));
            }
            if !exposed.contains_key(&key) {
                report.add(&path, format!("port {}/{} is not exposed by any container", key.0, key.1));
            }
        }
        if let Some(addr) = &ip.ip {
            if addr.parse::<IpAddr>().is_err() {
                report.add("properties.ipAddress.ip", format!("'{addr}' is not an IP address"));
            }
        }
        if let Some(label) = &ip.dns_name_label {
            if ip.kind != IpAddressType::Public {
                report.add("properties.ipAddress.dnsNameLabel", "a DNS name label needs a Public IP");
            }
            if let Some(problem) = name_problem(label) {
                report.add("properties.ipAddress.dnsNameLabel", problem);
            }
        }
        if !props.subnet_ids.is_empty() && ip.kind == IpAddressType::Public {
            report.add(
                "properties.ipAddress.type",
                "a group in a virtual network (subnetIds) must have a Private IP",
            );
        }
    }

    for (i, subnet) in props.subnet_ids.iter().enumerate() {
        if subnet.id.trim().is_empty() {
            report.add(format!("properties.subnetIds[{i}].id"), "the subnet ID is required");
        }
    }

    if let Some(dns) = &props.dns_config {
        for (i, server) in dns.name_servers.iter().enumerate() {
            if server.parse::<IpAddr>().is_err() {
                report.add(
                    format!("properties.dnsConfig.nameServers[{i}]"),
                    format!("'{server}' is not an IP address"),
                );
            }
        }
    }

    for (i, credential) in props.image_registry_credentials.iter().enumerate() {
        let path = format!("properties.imageRegistryCredentials[{i}].server");
        let server = credential.server.trim();
        if server.is_empty() {
            report.add(path, "the registry server is required");
        } else if server.contains("://") {
            report.add(path, format!("'{server}' must be a host name without a scheme"));
        }
    }
}
