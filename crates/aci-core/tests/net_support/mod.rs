//! Shared set-up of the runtime's networking KVM tests: the root/tools gate, a runtime with
//! networking under a test-unique namespace prefix (removed, with aci's host table, when the
//! guard drops), busybox commands in a guest, a raw DNS query, host snapshots.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

#[allow(unused_imports)] // not every test binary uses both
pub use crate::runtime_support::{free_port, free_udp_port};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aci_core::runtime::{ExecRequest, NetworkSettings, Runtime, SizingPolicy};
use aci_core::spec::Container;

/// KVM, the registry's tools, root and the networking tools.
pub use crate::runtime_support::net_gate as gate;

/// Deletes every namespace with the test's prefix and aci's host table for it, even when the
/// test fails.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        drop(crate::runtime_support::Namespaces(self.0.clone()));
        let table = self.0.trim_end_matches('-');
        if let Ok(out) = Command::new("nft").args(["list", "table", "inet", table]).output() {
            if out.status.success() {
                let del = Command::new("nft").args(["delete", "table", "inet", table]).output();
                eprintln!("cleanup: deleted nft table inet {table}: {del:?}");
            }
        }
    }
}

/// A namespace prefix unique to this process and `tag` (short: it names namespaces).
pub fn prefix(tag: &str) -> String {
    format!("a{tag}{}-", std::process::id() % 100_000)
}

/// Network settings under `state` with the default network on `10.<octet>.0.0/24`.
pub use crate::runtime_support::net_settings as settings;

/// A runtime over `state` with `net`, pulling from `registry` (fast back-off, 1 vCPU VMs).
pub fn runtime(registry: &str, state: &Path, net: NetworkSettings) -> Runtime {
    crate::runtime_support::test_builder(registry, state)
        .sizing(SizingPolicy { overhead_mib: 128, max_vcpus: 1 })
        .networking(net)
        .build()
        .expect("building the runtime")
}

/// A container serving `/etc` with busybox httpd on `port`.
pub fn httpd(image: &str, port: u16) -> Container {
    Container::new("web", image)
        .command(["/bin/busybox", "httpd", "-f", "-p", &port.to_string(), "-h", "/etc"])
        .port(port)
        .cpu(1.0)
        .memory_gb(0.25)
}

/// A container that only sleeps (to exec network clients in).
pub fn idler(image: &str) -> Container {
    Container::new("web", image).command(["/bin/busybox", "sleep", "100000"]).cpu(1.0).memory_gb(0.25)
}

/// Runs busybox `args` in `group`'s container `web`; (exit code, stdout + stderr).
pub async fn busybox(rt: &Runtime, group: &str, args: &[&str]) -> (i32, String) {
    let argv: Vec<String> =
        std::iter::once("busybox").chain(args.iter().copied()).map(String::from).collect();
    let out = match rt.exec(group, "web", ExecRequest::new(argv)).await {
        Ok(out) => out,
        Err(err) => panic!(
            "exec {args:?} in {group}: {}\nguest console:\n{}",
            chain(&err),
            crate::runtime_support::console(rt, group)
        ),
    };
    let text = format!("{}{}", out.stdout_text(), String::from_utf8_lossy(&out.stderr));
    (out.exit_code, text)
}

/// `GET path` from `group` to `host:port` with busybox `nc` (4 s connect timeout; the test
/// image's static busybox `wget` crashes in glibc, also on the host); the response on
/// success (exit 0 and an HTTP status line).
pub async fn http_get(
    rt: &Runtime,
    group: &str,
    host: &str,
    port: u16,
    path: &str,
) -> Result<String, String> {
    let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 4 {host} {port}");
    let (code, text) = busybox(rt, group, &["sh", "-c", &script]).await;
    if code == 0 && text.starts_with("HTTP/1") {
        Ok(text)
    } else {
        Err(format!("exit {code}: {text}"))
    }
}

/// Retries [`http_get`] until it succeeds or `tries` are spent (servers start
/// asynchronously).
pub async fn http_get_eventually(
    rt: &Runtime,
    group: &str,
    host: &str,
    port: u16,
    path: &str,
    tries: u32,
) -> Result<String, String> {
    let mut last = Err(String::new());
    for _ in 0..tries {
        last = http_get(rt, group, host, port, path).await;
        if last.is_ok() {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// The answer to an A query: (response code, addresses).
pub fn dns_query(server: SocketAddr, name: &str) -> (u8, Vec<Ipv4Addr>) {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&q, server).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let r = &buf[..n];
    assert_eq!(&r[..2], &[0x12, 0x34], "reply id");
    let rcode = r[3] & 0x0f;
    let answers = u16::from_be_bytes([r[6], r[7]]);
    // Skip the question (same bytes as ours), then read A records (name is a pointer).
    let mut at = q.len();
    let mut addrs = Vec::new();
    for _ in 0..answers {
        while r[at] != 0 && r[at] & 0xc0 != 0xc0 {
            at += usize::from(r[at]) + 1;
        }
        at += if r[at] == 0 { 1 } else { 2 };
        let kind = u16::from_be_bytes([r[at], r[at + 1]]);
        let len = usize::from(u16::from_be_bytes([r[at + 8], r[at + 9]]));
        at += 10;
        if kind == 1 && len == 4 {
            addrs.push(Ipv4Addr::new(r[at], r[at + 1], r[at + 2], r[at + 3]));
        }
        at += len;
    }
    (rcode, addrs)
}

/// The output of a command (panics when it fails).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Link names in namespace `ns` (the host's with `None`).
pub fn links(ns: Option<&str>) -> Vec<String> {
    let out = match ns {
        Some(ns) => run("ip", &["-n", ns, "-o", "link", "show"]),
        None => run("ip", &["-o", "link", "show"]),
    };
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

/// The host's networking as a test sees it: links, routes, namespaces, the nft ruleset.
#[derive(Debug, PartialEq, Eq)]
pub struct HostSnapshot {
    /// Link names.
    pub links: Vec<String>,
    /// Routes of every table, IPv4 and IPv6 (`ip -o route show table all`), lifetimes cut.
    pub routes: Vec<String>,
    /// Namespace names.
    pub namespaces: Vec<String>,
    /// `nft list ruleset`, counters zeroed.
    pub ruleset: String,
}

/// Snapshots the host.
pub fn host_snapshot() -> HostSnapshot {
    let mut namespaces: Vec<String> = run("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    namespaces.sort();
    let ruleset = run("nft", &["list", "ruleset"])
        .lines()
        .map(|l| match l.find("counter packets") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    HostSnapshot { links: links(None), routes: routes(), namespaces, ruleset }
}

/// The host's routes in every table, sorted; `expires <n>sec` (a countdown) is cut.
fn routes() -> Vec<String> {
    let mut routes: Vec<String> = ["-4", "-6"]
        .iter()
        .flat_map(|family| {
            run("ip", &["-o", family, "route", "show", "table", "all"])
                .lines()
                .map(|l| match l.find(" expires ") {
                    Some(i) => l[..i].to_string(),
                    None => l.trim_end().to_string(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    routes.sort();
    routes
}

/// An error and its sources, `: `-separated.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Resolves `name` in `group` with busybox `nslookup` (its own DNS client, reading the
/// guest's `/etc/resolv.conf`): the A addresses answered. The test image's static busybox
/// cannot resolve through libc (its `getaddrinfo` crashes in a static glibc build, also on
/// the host), so guests resolve with nslookup and then connect to the address.
pub async fn resolve(rt: &Runtime, group: &str, name: &str) -> Result<Vec<Ipv4Addr>, String> {
    let (code, text) = busybox(rt, group, &["nslookup", "-type=a", name]).await;
    let answers: Vec<Ipv4Addr> = text
        .split("Name:")
        .skip(1)
        .flat_map(|block| block.lines().skip(1))
        .filter_map(|l| l.strip_prefix("Address:"))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    // (The exit code is 1 when any search domain has no answer, even if another had.)
    if !answers.is_empty() {
        Ok(answers)
    } else {
        Err(format!("nslookup {name}: exit {code}: {text}"))
    }
}
