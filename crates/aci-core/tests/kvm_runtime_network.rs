//! KVM tier: a group on a real `aci-net` network. The guest's virtio-net device sits on a
//! tap on the network's bridge; the agent configures the interface; the group's public port
//! is published on the host's loopback and answers HTTP from the host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use aci_core::runtime::{ExecRequest, GroupState};
use aci_core::spec::{Container, ContainerGroup, IpAddress};
use runtime_support::{
    guest_builder, host_http_get, net_gate, net_settings, registry, state_dir, Namespaces, BOOT_WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest on a real network; run by `cargo xtask test`"]
async fn a_public_port_answers_on_the_host_and_the_guest_has_its_address() {
    if !net_gate("a_public_port_answers_on_the_host_and_the_guest_has_its_address") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("net");
    let prefix = format!("acirt{}-", std::process::id() % 100_000);
    let _cleanup = Namespaces(prefix.clone());
    let net = net_settings(state.path(), &prefix, 97, false);
    let rt = guest_builder(&reg.host(), state.path()).networking(net).build().unwrap();

    // A free port, used in the container and published on the host as ACI does.
    let port = runtime_support::free_port();
    let group = ContainerGroup::builder("netgroup")
        .container(
            Container::new("web", &image)
                .command(["/bin/busybox", "httpd", "-f", "-p", &port.to_string(), "-h", "/etc"])
                .port(port)
                .cpu(1.0)
                .memory_gb(0.25),
        )
        .ip_address(IpAddress::public([port]))
        .build()
        .unwrap();
    let status = runtime_support::create(&rt, group).await;
    assert_eq!(status.state, GroupState::Running);
    let ip = status.ip.clone().unwrap();
    assert!(ip.starts_with("10.97.0."), "{ip}");
    assert_eq!(status.published, [format!("127.0.0.1:{port}")]);
    assert_eq!(status.to_container_group().properties.ip_address.unwrap().ip.as_deref(), Some(ip.as_str()));

    // The guest configured eth0 with the leased address; hostname is the group's name.
    let out =
        rt.exec("netgroup", "web", ExecRequest::new(["busybox", "ip", "-4", "addr", "show"])).await.unwrap();
    assert!(out.stdout_text().contains(&format!("inet {ip}/24")), "{out:?}");
    let out = rt.exec("netgroup", "web", ExecRequest::new(["busybox", "hostname"])).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "netgroup");

    // From the host, through the published port, into the guest's httpd.
    let deadline = Instant::now() + BOOT_WAIT;
    let page = loop {
        match tokio::task::spawn_blocking(move || host_http_get(port, "/motd")).await.unwrap() {
            Ok(page) if page.contains("hello from aci") => break page,
            other if Instant::now() > deadline => panic!("no page through 127.0.0.1:{port}: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    println!("network: group {ip}, published 127.0.0.1:{port}: {:?}", page.lines().next());

    // Stop releases the port, the tap and the address.
    let stopped = rt.stop("netgroup").await.unwrap();
    assert!(stopped.published.is_empty() && stopped.network.is_none(), "{stopped:?}");
    // The proxy tasks are aborted at stop; their listener closes as the executor drops them.
    let closed_by = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
        assert!(Instant::now() < closed_by, "port {port} still open 5 s after stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
