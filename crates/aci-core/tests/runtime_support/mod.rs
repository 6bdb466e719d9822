//! Shared set-up of the runtime's KVM-tier tests: the gate, a loopback registry with the
//! busybox test image, and a runtime over a fresh state directory with a fast back-off.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use aci_core::runtime::{BackoffPolicy, NetworkSettings, Runtime, RuntimeBuilder, SizingPolicy};
use aci_testkit::{busybox_image, Registry};

/// Tools the loopback registry and the test image need.
pub const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "mkfs.erofs"];

/// The KVM gate, then the tools gate.
pub fn gate(test: &str) -> bool {
    aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
        && aci_testkit::require_tools(test, TOOLS)
}

/// A registry holding `busybox:1` (busybox-static; Entrypoint `/bin/sh`, User 1000:1000).
pub fn registry() -> (Registry, String) {
    let reg = Registry::start();
    busybox_image(&reg, "busybox:1");
    let image = format!("{}/busybox:1", reg.host());
    (reg, image)
}

/// A runtime over `state` pulling from `reg`, with a 200 ms back-off base (nested
/// virtualisation is slow; production uses 10 s).
pub fn runtime(reg: &Registry, state: &Path) -> Runtime {
    runtime_at(&reg.host(), state)
}

/// [`runtime`] for a registry given by its `host:port`.
pub fn runtime_at(registry_host: &str, state: &Path) -> Runtime {
    test_builder(registry_host, state).build().expect("building the runtime")
}

/// A runtime builder over `state` with the guest artifacts of [`aci_testkit::guest_dir`],
/// pulling from `registry_host` over plain HTTP; the production defaults otherwise.
pub fn guest_builder(registry_host: &str, state: &Path) -> RuntimeBuilder {
    let guest = aci_testkit::guest_dir();
    Runtime::builder()
        .state_dir(state)
        .guest_kernel(guest.join("vmlinux"))
        .guest_initrd(guest.join("initramfs.cpio.gz"))
        .insecure_registry(registry_host)
}

/// [`guest_builder`] with the tests' settings: a 200 ms back-off base, 2 vCPUs at most,
/// 500 ms stats, a 2 s stop grace.
pub fn test_builder(registry_host: &str, state: &Path) -> RuntimeBuilder {
    guest_builder(registry_host, state)
        .backoff(BackoffPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            reset_after: Duration::from_secs(600),
        })
        .sizing(SizingPolicy { overhead_mib: 128, max_vcpus: 2 })
        .stats_interval(Duration::from_millis(500))
        .stop_grace(Duration::from_secs(2))
}

/// A fresh state directory on a local filesystem (the workspace may be 9p in L1).
pub fn state_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aci-rt-{name}-")).tempdir_in(std::env::temp_dir()).unwrap()
}

/// How long a test waits for a state that needs a boot (nested TCG is ~10x slower).
pub const BOOT_WAIT: Duration = Duration::from_secs(120);

/// The guest console of `group`'s current deployment (for failure messages).
pub fn console(rt: &Runtime, group: &str) -> String {
    rt.get(group)
        .ok()
        .and_then(|s| s.console_log)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| "(no console log)".into())
}

/// Creates `group` or panics with the error and the guest console.
pub async fn create(rt: &Runtime, group: aci_core::spec::ContainerGroup) -> aci_core::runtime::GroupStatus {
    let name = group.name.clone();
    match rt.create(group).await {
        Ok(status) => status,
        Err(err) => panic!("create {name}: {err:?}\nguest console:\n{}", console(rt, &name)),
    }
}

/// True when ACI forbids publishing `port` (an ephemeral port often falls in those ranges:
/// 49152-65534 is one of them).
fn reserved(port: u16) -> bool {
    aci_core::spec::ACI_RESERVED_PORTS.iter().any(|r| r.contains(&port))
}

/// A TCP port free on the host's loopback that a group may publish.
pub fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !reserved(port) {
            return port;
        }
    }
}

/// A UDP port free on the host's loopback that a group may publish.
pub fn free_udp_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !reserved(port) {
            return port;
        }
    }
}

/// [`gate`], then root and `tools`.
pub fn root_gate(test: &str, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    gate(test)
        && aci_testkit::requirement(test, (!root).then_some("needs root (namespaces, bridges, taps)"))
        && aci_testkit::require_tools(test, tools)
}

/// [`gate`], then root and the networking tools (namespaces, bridges, taps, nft).
pub fn net_gate(test: &str) -> bool {
    root_gate(test, &["ip", "nft"])
}

/// Network settings under `state` with the default network on `10.<octet>.0.0/24`, its
/// namespaces and links named with `prefix`.
pub fn net_settings(state: &Path, prefix: &str, octet: u8, nat: bool) -> NetworkSettings {
    let mut net = NetworkSettings::new(state.join("net"));
    net.manager.name_prefix = prefix.to_string();
    net.manager.default_network.subnet = Ipv4Addr::new(10, octet, 0, 0);
    net.manager.default_network.prefix = 24;
    net.manager.default_network.outbound_nat = nat;
    net
}

/// Deletes every network namespace whose name starts with the prefix, even when the test
/// fails.
pub struct Namespaces(pub String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in aci_net::netns::list(&self.0).unwrap_or_default() {
            let _ = aci_net::netns::delete(&ns);
        }
    }
}

/// `GET path` on 127.0.0.1:`port` from the host: the response, or why there was none.
pub fn host_http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
