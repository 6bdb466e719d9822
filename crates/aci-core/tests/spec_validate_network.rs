//! Host tier: validation of ports, the group IP, subnets and registry credentials; each rule
//! fails naming the right field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use aci_core::spec::{ContainerGroup, ImageRegistryCredential, IpAddress, Limits, Port, SubnetId};
use spec_support::{base, fails_at, P0};

#[test]
fn ports() {
    fails_at("properties.ipAddress.ports[1]", "already listed at ports[0]", |g| {
        g.properties.ip_address.as_mut().unwrap().ports.push(Port::tcp(80));
    });
    fails_at("properties.ipAddress.ports", "at most 5", |g| {
        let mut c = g.properties.containers[0].clone();
        for p in 81..86 {
            c = c.port(p);
        }
        g.properties.containers[0] = c;
        g.properties.ip_address = Some(IpAddress::public(80..86));
    });
    fails_at("properties.ipAddress.ports", "at least one port", |g| {
        g.properties.ip_address.as_mut().unwrap().ports.clear();
    });
    fails_at("properties.ipAddress.ports[1]", "not exposed by any container", |g| {
        g.properties.ip_address.as_mut().unwrap().ports.push(Port::tcp(8080));
    });
    fails_at("properties.ipAddress.ports[1]", "8080/UDP is not exposed", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().port(8080);
        g.properties.ip_address.as_mut().unwrap().ports.push(Port::udp(8080));
    });
    fails_at(
        "properties.containers[1].properties.ports[0]",
        "already used by properties.containers[0].properties.ports[0]",
        |g| {
            g.properties.containers[1] = g.properties.containers[1].clone().port(80);
        },
    );
    fails_at(&format!("{P0}.ports[1].port"), "1 to 65535", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().port(0);
    });
    fails_at("properties.ipAddress.ip", "not an IP address", |g| {
        g.properties.ip_address.as_mut().unwrap().ip = Some("300.1.1.1".into());
    });
    fails_at("properties.ipAddress.type", "Private IP", |g| {
        g.properties.subnet_ids.push(SubnetId { id: "/subscriptions/x/subnets/a".into(), name: None });
    });
    fails_at("properties.ipAddress.dnsNameLabel", "needs a Public IP", |g| {
        let mut ip = IpAddress::private([80]);
        ip.dns_name_label = Some("demo".into());
        g.properties.ip_address = Some(ip);
    });
}

#[test]
fn reserved_ports_are_a_policy() {
    let publish = |g: &mut ContainerGroup, port: u16| {
        g.properties.containers[0] = g.properties.containers[0].clone().port(port);
        g.properties.ip_address.as_mut().unwrap().ports.push(Port::tcp(port));
    };
    for port in [22, 443, 1026, 3390, 19390, 25000, 50000] {
        fails_at("properties.ipAddress.ports[1].port", "reserved", |g| publish(g, port));
    }
    let mut group = base();
    publish(&mut group, 443);
    let open = Limits { reject_reserved_ports: false, ..Limits::default() };
    group.validate_with(&open).unwrap();
    let mut group = base();
    publish(&mut group, 8443);
    group.validate().unwrap();
}

#[test]
fn registry_credentials() {
    fails_at("properties.imageRegistryCredentials[0].server", "without a scheme", |g| {
        g.properties.image_registry_credentials.push(ImageRegistryCredential::new(
            "https://r.example",
            "u",
            "p",
        ));
    });
}
