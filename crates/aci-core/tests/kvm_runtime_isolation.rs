//! KVM tier: virtual-network isolation and cleanup with real guests.
//!
//! - Groups on VNet A (`subnetIds`, no NAT) reach each other by private IP and by FQDN; a
//!   group on VNet B (with outbound NAT) cannot connect to A's groups, nor A's to it, and
//!   neither reaches the host's addresses (its own address, the NAT uplink's host end) on a
//!   port the host listens on; each still resolves names through its gateway.
//! - 50 create/delete cycles (`ACI_TEST_NET_CYCLES` to change) leave the host's links, namespaces and nft ruleset, and the
//!   network's namespace links, exactly as before; a runtime re-opened after its process
//!   died (a child process that exits with a group running) removes the orphans it owns:
//!   the dead group's lease and an orphan namespace with its prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net_support;
mod runtime_support;

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::runtime::GroupState;
use aci_core::spec::{ContainerGroup, IpAddress, SubnetId};
use aci_net::NetworkConfig;
use net_support::{busybox, free_port, host_snapshot, http_get, http_get_eventually, links, Cleanup};
use runtime_support::{registry, state_dir};

/// `group` joining `vnet`'s subnet `default`.
fn in_subnet(mut group: ContainerGroup, vnet: &str) -> ContainerGroup {
    group.properties.subnet_ids.push(subnet(vnet));
    group
}

fn subnet(vnet: &str) -> SubnetId {
    SubnetId {
        id: format!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/default"
        ),
        name: None,
    }
}

fn vnet(name: &str, octet: u8, nat: bool) -> NetworkConfig {
    NetworkConfig { name: name.into(), subnet: Ipv4Addr::new(10, octet, 0, 0), prefix: 24, outbound_nat: nat }
}

/// Removes an address the test added to `lo`, even when it fails.
struct ExtraAddress(&'static str);

impl Drop for ExtraAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["addr", "del", self.0, "dev", "lo"]).output();
    }
}

/// The host's global IPv4 addresses (not loopback).
fn host_addresses() -> Vec<Ipv4Addr> {
    net_support::run("ip", &["-4", "-o", "addr", "show", "scope", "global"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests on real networks; run by `cargo xtask test`"]
async fn vnets_isolate_groups_from_each_other_and_the_host() {
    let test = "vnets_isolate_groups_from_each_other_and_the_host";
    if !net_support::gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("iso");
    let prefix = net_support::prefix("iso");
    let _cleanup = Cleanup(prefix.clone());
    let settings = net_support::settings(state.path(), &prefix, 95, false)
        .network(vnet("vneta-default", 91, false))
        .network(vnet("vnetb-default", 92, true));
    let rt = net_support::runtime(&reg.host(), state.path(), settings);

    // The host listens on every address; guests must not reach it.
    let host_port = free_port();
    let listener = TcpListener::bind(("0.0.0.0", host_port)).unwrap();
    listener.set_nonblocking(true).unwrap();

    let port = free_port();
    let a1 = ContainerGroup::builder("a1")
        .container(net_support::httpd(&image, port))
        .ip_address(IpAddress::private([port]))
        .build()
        .map(|g| in_subnet(g, "vneta"))
        .unwrap();
    let a2 = ContainerGroup::builder("a2")
        .container(net_support::idler(&image))
        .build()
        .map(|g| in_subnet(g, "vneta"))
        .unwrap();
    let b1 = ContainerGroup::builder("b1")
        .container(net_support::httpd(&image, port))
        .build()
        .map(|g| in_subnet(g, "vnetb"))
        .unwrap();
    let mut ips = Vec::new();
    for group in [a1, a2, b1] {
        let status = runtime_support::create(&rt, group).await;
        assert_eq!(status.state, GroupState::Running);
        println!("{} on {:?} at {:?}", status.name, status.network, status.ip);
        ips.push(status.ip.unwrap());
    }
    let (a1_ip, b1_ip) = (&ips[0], &ips[2]);
    assert!(a1_ip.starts_with("10.91.0.") && ips[1].starts_with("10.91.0."), "{ips:?}");
    assert!(b1_ip.starts_with("10.92.0."), "{ips:?}");

    // Same VNet: by private IP (by FQDN is kvm_runtime_dns: ACI gives labels to public
    // groups only, and a group in a VNet is private).
    let page = http_get_eventually(&rt, "a2", a1_ip, port, "/motd", 20).await;
    assert!(page.as_deref().is_ok_and(|p| p.contains("hello from aci")), "a2 → a1: {page:?}");
    // b1's server is up (its own loopback answers), so failures below are the network's.
    let page = http_get_eventually(&rt, "b1", "127.0.0.1", port, "/motd", 20).await;
    assert!(page.is_ok(), "b1's own httpd: {page:?}");

    // Across VNets: nothing connects, either way.
    let denied = http_get(&rt, "b1", a1_ip, port, "/motd").await;
    assert!(denied.is_err(), "b1 (VNet B) reached a1 (VNet A): {denied:?}");
    let denied = http_get(&rt, "a2", b1_ip, port, "/motd").await;
    assert!(denied.is_err(), "a2 (VNet A) reached b1 (VNet B): {denied:?}");
    // The gateway's DNS service stays reachable on both networks (an authoritative NXDOMAIN
    // is an answer from it; a blocked server would time out).
    for group in ["a2", "b1"] {
        let (_, text) = busybox(&rt, group, &["nslookup", "nobody.local.azurecontainer.io"]).await;
        assert!(text.contains("NXDOMAIN"), "{group}: nslookup through the gateway: {text}");
    }

    // The host: its global addresses (plus one the test adds to `lo`, so there is one besides
    // the uplink) and the NAT uplink's host end, on a port it listens on.
    let _extra = ExtraAddress("198.51.100.7/32");
    net_support::run("ip", &["addr", "add", "198.51.100.7/32", "dev", "lo"]);
    let mut targets = host_addresses();
    let nets = aci_net::NetworkManager::open(aci_net::ManagerConfig {
        name_prefix: prefix.clone(),
        ..aci_net::ManagerConfig::new(state.path().join("net"))
    })
    .unwrap();
    let uplink_host = links(None).into_iter().find(|l| l.starts_with("acu")).and_then(|_| {
        let ns = nets.namespace_of("vnetb-default");
        let route = net_support::run("ip", &["-n", &ns, "-4", "route", "show", "default"]);
        route.split_whitespace().nth(2).and_then(|a| a.parse::<Ipv4Addr>().ok())
    });
    targets.extend(uplink_host);
    targets.sort();
    targets.dedup();
    assert!(targets.contains(&Ipv4Addr::new(198, 51, 100, 7)), "{targets:?}");
    assert!(!targets.is_empty(), "no host address to try");
    for target in &targets {
        for group in ["a2", "b1"] {
            let denied = http_get(&rt, group, &target.to_string(), host_port, "/").await;
            assert!(denied.is_err(), "{group} reached the host at {target}:{host_port}: {denied:?}");
        }
    }
    // The listener never saw a connection.
    assert!(listener.accept().is_err(), "a guest connected to the host");
    println!("isolation: host targets tried {targets:?}");
    for g in ["a1", "a2", "b1"] {
        rt.delete(g).await.unwrap();
    }
}

/// Set by the parent of [`crash_child`]: the child's state directory, registry and prefix.
const CRASH_ENV: &str = "ACI_TEST_CRASH_CHILD";

/// Not a test on its own: the child process of
/// `delete_and_crash_leave_nothing_behind`, which creates a group and exits with it running
/// (its VM dies with it). Does nothing unless the parent set [`CRASH_ENV`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: the child process of delete_and_crash_leave_nothing_behind"]
async fn crash_child() {
    let Ok(spec) = std::env::var(CRASH_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (dir, registry, prefix, image) =
        (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let dir = std::path::Path::new(dir);
    let rt = net_support::runtime(registry, dir, net_support::settings(dir, prefix, 96, true));
    let port = free_port();
    let group = ContainerGroup::builder("victim")
        .container(net_support::httpd(image, port))
        .ip_address(IpAddress::public([port]))
        .build()
        .unwrap();
    let status = runtime_support::create(&rt, group).await;
    println!("crash child: victim {:?} at {:?}, exiting", status.state, status.ip);
    std::process::exit(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests on a real network; run by `cargo xtask test`"]
async fn delete_and_crash_leave_nothing_behind() {
    let test = "delete_and_crash_leave_nothing_behind";
    if !net_support::gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("clean");
    let prefix = net_support::prefix("cln");
    let cleanup = Cleanup(prefix.clone());
    let before = host_snapshot();
    let settings = net_support::settings(state.path(), &prefix, 96, true);
    let ns = format!("{prefix}default");
    let leases_path = state.path().join("net/networks/default.leases.json");
    let leases = || std::fs::read_to_string(&leases_path).unwrap_or_default();

    // Create/delete cycles: the network's namespace and the host look the same after each.
    let cycles: u32 = std::env::var("ACI_TEST_NET_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    {
        let rt = net_support::runtime(&reg.host(), state.path(), settings.clone());
        let mut baseline = None;
        for i in 0..cycles {
            let port = free_port();
            let mut ip = IpAddress::public([port]);
            ip.dns_name_label = Some("cycle".into());
            let group = ContainerGroup::builder("cycle")
                .container(net_support::httpd(&image, port))
                .ip_address(ip)
                .build()
                .unwrap();
            let started = Instant::now();
            let status = runtime_support::create(&rt, group).await;
            assert_eq!(status.state, GroupState::Running);
            let with_group = links(Some(&ns));
            assert!(with_group.iter().any(|l| l.starts_with('t')), "no tap in {ns}: {with_group:?}");
            rt.delete("cycle").await.unwrap();
            let after = (links(Some(&ns)), host_snapshot(), leases());
            assert!(!after.0.iter().any(|l| l.starts_with('t')), "tap left in {ns}: {:?}", after.0);
            assert!(!after.2.contains("\"cycle\""), "lease left: {}", after.2);
            assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} still bound");
            println!("cycle {i}: {:.1} s", started.elapsed().as_secs_f64());
            match &baseline {
                None => baseline = Some(after),
                Some(b) => assert_eq!(b, &after, "cycle {i} changed the host"),
            }
        }
        let (_, host, _) = baseline.unwrap();
        // The network (its namespace, uplink, host table) is all that was added.
        assert_eq!(host.namespaces.len(), before.namespaces.len() + 1, "{host:?}");
        assert!(host.namespaces.contains(&ns));
        rt.shutdown().await;
    }

    // A crash: a child process creates a group and exits with it running.
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{}|{}|{}|{}", state.path().display(), reg.host(), prefix, image);
    let out = Command::new(exe)
        .args(["crash_child", "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, spec)
        .output()
        .unwrap();
    let child_out = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && child_out.contains("victim Running"), "child: {child_out}");
    assert!(leases().contains("\"victim\""), "the crashed group's lease: {}", leases());
    // And a namespace with the runtime's prefix but no network spec (a crash mid-create).
    let ghost = format!("{prefix}ghost");
    aci_net::netns::create(&ghost).unwrap();
    assert!(aci_net::netns::list(&prefix).unwrap().contains(&ghost));

    // A runtime re-opened on the state directory removes the orphans by itself.
    let rt = net_support::runtime(&reg.host(), state.path(), settings);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let namespaces = aci_net::netns::list(&prefix).unwrap();
        let done = !leases().contains("\"victim\"") && !namespaces.contains(&ghost);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "orphans left: {namespaces:?}, leases {}", leases());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let victim = rt.get("victim").unwrap();
    assert_eq!(victim.state, GroupState::Stopped, "{victim:?}");
    assert!(!links(Some(&ns)).iter().any(|l| l.starts_with('t')), "tap left after the crash");
    assert!(aci_net::netns::list(&prefix).unwrap().contains(&ns), "the network itself is kept");
    rt.delete("victim").await.unwrap();
    rt.shutdown().await;

    drop(rt);
    // With the network deleted too (the manager's own call), the host is exactly as before.
    let nets = aci_net::NetworkManager::open(aci_net::ManagerConfig {
        name_prefix: prefix.clone(),
        ..aci_net::ManagerConfig::new(state.path().join("net"))
    })
    .unwrap();
    nets.delete_network("default").await.unwrap();
    drop(cleanup);
    assert_eq!(host_snapshot(), before, "the host changed");
}
