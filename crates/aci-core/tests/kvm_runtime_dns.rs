//! KVM tier: DNS name labels and `dnsConfig` with real guests.
//!
//! - A group's `dnsNameLabel` becomes `<label>.<region>.<zone>` in its status; the runtime's
//!   DNS server answers the host with the published address and NXDOMAIN for unknown names;
//!   another group on the same network resolves it (through its gateway) to the private
//!   address and fetches a page from it there; a second group asking for the same label
//!   fails at create with a conflict and leaves no lease; deleting the group frees the name.
//! - `dnsConfig` (name servers, search domains, options) is the containers'
//!   `/etc/resolv.conf`, with networking (the search domain makes a short name resolve) and
//!   without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net_support;
mod runtime_support;

use std::net::{Ipv4Addr, SocketAddr};

use aci_core::runtime::GroupState;
use aci_core::spec::{ContainerGroup, DnsConfig, IpAddress};
use net_support::{busybox, dns_query, free_port, http_get_eventually, Cleanup};
use runtime_support::{registry, state_dir};

const NXDOMAIN: u8 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests on a real network; run by `cargo xtask test`"]
async fn name_labels_resolve_for_the_host_and_guests_and_conflict() {
    let test = "name_labels_resolve_for_the_host_and_guests_and_conflict";
    if !net_support::gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("dns");
    let prefix = net_support::prefix("dns");
    let _cleanup = Cleanup(prefix.clone());
    let settings = net_support::settings(state.path(), &prefix, 94, false);
    let rt = net_support::runtime(&reg.host(), state.path(), settings);

    let port = free_port();
    let mut ip = IpAddress::public([port]);
    ip.dns_name_label = Some("web1".into());
    let web = ContainerGroup::builder("web")
        .container(net_support::httpd(&image, port))
        .ip_address(ip.clone())
        .build()
        .unwrap();
    let status = runtime_support::create(&rt, web).await;
    assert_eq!(status.state, GroupState::Running);
    let fqdn = "web1.local.azurecontainer.io";
    assert_eq!(status.fqdn.as_deref(), Some(fqdn));
    let shown = status.to_container_group().properties.ip_address.unwrap();
    assert_eq!(shown.fqdn.as_deref(), Some(fqdn));
    let web_ip: Ipv4Addr = status.ip.clone().unwrap().parse().unwrap();
    let dns_addr: SocketAddr = rt.dns_address().unwrap();
    assert!(dns_addr.ip().is_loopback() && dns_addr.port() != 0, "{dns_addr}");

    // The host asks the runtime's DNS server: the published address; unknown names: NXDOMAIN.
    let (rcode, addrs) = tokio::task::spawn_blocking(move || dns_query(dns_addr, fqdn)).await.unwrap();
    assert_eq!((rcode, addrs), (0, vec![Ipv4Addr::LOCALHOST]));
    let (rcode, addrs) =
        tokio::task::spawn_blocking(move || dns_query(dns_addr, "nobody.local.azurecontainer.io"))
            .await
            .unwrap();
    assert_eq!((rcode, addrs.len()), (NXDOMAIN, 0));

    // A second group on the same network, with a dnsConfig naming its gateway and the zone as
    // search domain: its resolv.conf says so, and it reaches `web` by FQDN and by short name.
    let client = ContainerGroup::builder("client")
        .container(net_support::idler(&image))
        .dns_config(DnsConfig {
            name_servers: vec!["10.94.0.1".into()],
            search_domains: Some("local.azurecontainer.io example.test".into()),
            options: Some("ndots:1 timeout:2".into()),
        })
        .build()
        .unwrap();
    let status = runtime_support::create(&rt, client).await;
    assert_eq!(status.state, GroupState::Running);
    let (_, resolv) = busybox(&rt, "client", &["cat", "/etc/resolv.conf"]).await;
    println!("client resolv.conf:\n{resolv}");
    assert!(resolv.contains("nameserver 10.94.0.1"), "{resolv}");
    assert!(resolv.contains("search local.azurecontainer.io example.test"), "{resolv}");
    assert!(resolv.contains("options ndots:1 timeout:2"), "{resolv}");
    // The client resolves web's FQDN through its gateway to web's private address (same
    // network), and the short name through the search domain, then fetches the page there.
    let answer = net_support::resolve(&rt, "client", fqdn).await;
    assert_eq!(answer, Ok(vec![web_ip]), "client resolving {fqdn}");
    let short = net_support::resolve(&rt, "client", "web1").await;
    assert_eq!(short, Ok(vec![web_ip]), "client resolving web1 with the search domain");
    let page = http_get_eventually(&rt, "client", &web_ip.to_string(), port, "/motd", 20).await;
    assert!(page.as_deref().is_ok_and(|p| p.contains("hello from aci")), "client → web: {page:?}");

    // The same label for another group: a conflict at create, nothing left behind.
    // (Another port, so the conflict is the label's, not the published port's.)
    let dup_port = free_port();
    let dup = ContainerGroup::builder("dup")
        .container(net_support::httpd(&image, dup_port))
        .ip_address(IpAddress { ports: vec![aci_core::spec::Port::tcp(dup_port)], ..ip.clone() })
        .build()
        .unwrap();
    let err = rt.create(dup).await.unwrap_err();
    let chain = net_support::chain(&err);
    assert!(chain.contains("dnsNameLabel") && chain.contains("already in use by group web"), "{chain}");
    let dup = rt.get("dup").unwrap();
    assert_eq!(dup.state, GroupState::Failed);
    assert!(dup.network.is_none() && dup.published.is_empty(), "{dup:?}");
    let leases =
        std::fs::read_to_string(state.path().join("net/networks/default.leases.json")).unwrap_or_default();
    assert!(!leases.contains("\"dup\""), "dup kept a lease: {leases}");

    // Deleting `web` frees the name.
    rt.delete("web").await.unwrap();
    let (rcode, _) = tokio::task::spawn_blocking(move || dns_query(dns_addr, fqdn)).await.unwrap();
    assert_eq!(rcode, NXDOMAIN, "{fqdn} still resolves after delete");
    rt.delete("client").await.unwrap();
    rt.delete("dup").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn dns_config_is_the_resolv_conf_without_networking() {
    let test = "dns_config_is_the_resolv_conf_without_networking";
    if !runtime_support::gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("dnscfg");
    let rt = runtime_support::runtime(&reg, state.path());
    let group = ContainerGroup::builder("resolv")
        .container(net_support::idler(&image))
        .dns_config(DnsConfig {
            name_servers: vec!["192.0.2.53".into(), "2001:db8::53".into()],
            search_domains: Some("corp.example".into()),
            options: Some("rotate".into()),
        })
        .build()
        .unwrap();
    runtime_support::create(&rt, group).await;
    let (code, resolv) = busybox(&rt, "resolv", &["cat", "/etc/resolv.conf"]).await;
    assert_eq!(code, 0, "{resolv}");
    let lines: Vec<&str> = resolv.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        ["nameserver 192.0.2.53", "nameserver 2001:db8::53", "search corp.example", "options rotate"],
        "{resolv}"
    );
    rt.delete("resolv").await.unwrap();
}
