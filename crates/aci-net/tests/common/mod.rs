//! Test support: root/tool checks, unique names, a manager that cleans up on drop, and a
//! *fake guest* — a network namespace with its own tap, its frames pumped to and from the tap fd
//! the manager handed out, standing in for the VM that does not exist yet.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use aci_net::{netns, tap, Attachment, ManagerConfig, NetworkManager};

/// True when the test can use real kernel networking; otherwise prints why (or panics in CI).
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tool =
        |t: &str, flag: &str| Command::new(t).arg(flag).output().map(|o| o.status.success()).unwrap_or(false);
    let reason = if !root {
        Some("not root")
    } else if !tool("ip", "-V") {
        Some("`ip` (iproute2) missing")
    } else if !tool("nft", "--version") {
        Some("`nft` (nftables) missing")
    } else {
        None
    };
    aci_testkit::requirement(test, reason)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique per process and call, e.g. `t1234x3`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
}

/// A manager on a temp state dir with a unique namespace prefix; deletes every namespace with
/// that prefix (and the fake guests' prefix) on drop, even when the test failed.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub guest_prefix: String,
    pub mgr: NetworkManager,
}

impl Env {
    pub fn new(tag: &str) -> Self {
        let id = unique(tag);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ManagerConfig::new(dir.path());
        cfg.name_prefix = format!("acit-{id}-");
        let mgr = NetworkManager::open(cfg.clone()).unwrap();
        Self { dir, prefix: cfg.name_prefix, guest_prefix: format!("acifg-{id}-"), mgr }
    }

    /// A second manager on the same state dir (a restarted process).
    pub fn reopen(&self) -> NetworkManager {
        let mut cfg = ManagerConfig::new(self.dir.path());
        cfg.name_prefix = self.prefix.clone();
        NetworkManager::open(cfg).unwrap()
    }

    /// Names of namespaces this test created that still exist.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v = netns::list(&self.prefix).unwrap();
        v.extend(netns::list(&self.guest_prefix).unwrap());
        v
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for ns in self.leftovers() {
            let _ = netns::delete(&ns);
        }
        // A NAT test that failed midway may leave aci's host table of this prefix.
        let _ = aci_net::nft::apply_host(&self.mgr.host_table(), &[]);
    }
}

/// A fake guest: namespace `<guest prefix><name>` with tap `eth0` configured as the agent would
/// configure the VM's NIC, frames pumped to and from the attachment's tap fd by two threads.
pub struct FakeGuest {
    pub ns: String,
    pub address: Ipv4Addr,
    stop: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<()>>,
}

impl FakeGuest {
    pub fn start(env: &Env, name: &str, att: Attachment) -> Self {
        let ns = format!("{}{name}", env.guest_prefix);
        netns::create(&ns).unwrap();
        let inner = File::from(tap::open_in(&ns, "eth0", false).unwrap());
        let g = &att.guest;
        let mac = g.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "address", &mac, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{}/{}", g.address, g.prefix), "dev", "eth0"]);
        ip(&["-n", &ns, "route", "add", "default", "via", &g.gateway.to_string()]);
        let outer = Arc::new(File::from(att.tap));
        let inner = Arc::new(inner);
        let stop = Arc::new(AtomicBool::new(false));
        let pumps = vec![pump(inner.clone(), outer.clone(), stop.clone()), pump(outer, inner, stop.clone())];
        Self { ns, address: g.address, stop, pumps }
    }

    /// Runs `f` inside the fake guest's namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netns::run_in(&self.ns, f).unwrap()
    }
}

impl Drop for FakeGuest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
        let _ = netns::delete(&self.ns);
    }
}

/// Copies frames from `from` to `to` until `stop`; polls with a 50 ms timeout.
fn pump(from: Arc<File>, to: Arc<File>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd { fd: from.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 50) };
            if n <= 0 {
                continue;
            }
            match (&*from).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(len) => {
                    let _ = (&*to).write(&buf[..len]);
                }
            }
        }
    })
}

/// Runs `ip args…`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// stdout of a command.
pub fn stdout(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free port on 127.0.0.1 for `tcp` (or UDP), as the kernel picks it right now.
pub fn free_port(tcp: bool) -> u16 {
    if tcp {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    } else {
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }
}
