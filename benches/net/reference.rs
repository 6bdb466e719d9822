//! The reference: two plain network namespaces joined by a veth pair, `aci-nettool` servers in
//! one and clients in the other. Removed when dropped.

use std::process::Command;

use crate::tool::Servers;

/// The server's address on the veth link.
pub const SERVER_IP: &str = "10.254.77.1";
const CLIENT_IP: &str = "10.254.77.2";

/// The two namespaces (servers stop before the namespaces go).
pub struct Reference {
    servers: Servers,
    server_ns: String,
    /// Where the clients run.
    pub client_ns: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Reference {
    /// Creates `<tag>s` (servers) and `<tag>c` (clients), a veth pair between them, and starts
    /// `tcp-echo`, `tcp-sink` and `tcp-serve <mib>` on `ports` in the server namespace.
    pub fn new(tag: &str, ports: [u16; 3], mib: u64) -> Self {
        let (server_ns, client_ns) = (format!("{tag}s"), format!("{tag}c"));
        let mut r = Self { servers: Servers::default(), server_ns, client_ns };
        ip(&["netns", "add", &r.server_ns]);
        ip(&["netns", "add", &r.client_ns]);
        ip(&[
            "-n",
            &r.server_ns,
            "link",
            "add",
            "veth0",
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "netns",
            &r.client_ns,
        ]);
        for (ns, dev, addr) in [(&r.server_ns, "veth0", SERVER_IP), (&r.client_ns, "veth1", CLIENT_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let [echo, sink, serve] = ports.map(|p| p.to_string());
        let mib = mib.to_string();
        r.servers.start(&r.server_ns, &["tcp-echo", &echo]);
        r.servers.start(&r.server_ns, &["tcp-sink", &sink]);
        r.servers.start(&r.server_ns, &["tcp-serve", &serve, &mib]);
        r
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        std::mem::take(&mut self.servers);
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
