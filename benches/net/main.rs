//! Network benchmark (`cargo xtask bench net`): guest↔host TCP throughput and 1-byte TCP round
//! trips for a networked group, against the same transfers between two plain network
//! namespaces joined by a veth pair, in the same run.
//!
//! One `aci-nettool` binary (static; built by `cargo xtask bench net`) is both ends of every
//! transfer. Servers: `tcp-echo`, `tcp-sink` and `tcp-serve` — in the guest (the network test
//! image, one container) or in the reference's server namespace. Clients, per path:
//! - **published**: on the host, to the published ports at `127.0.0.1` (aci-net's userspace
//!   proxy, then the bridge);
//! - **bridge**: inside the runtime's network namespace, to the guest's IP over the bridge
//!   and the tap (no proxy);
//! - **veth reference**: in the reference's client namespace, to the server namespace;
//! - **aci-vmm vs QEMU** ([`vmm_pair`]): the same kernel and a busybox guest running the
//!   servers under aci-vmm and under QEMU (`-M microvm -accel kvm`), each on a tap in a bridge,
//!   clients in that bridge's namespace; plus aci-vmm's VM exits and packets per MiB.
//!
//! Figures: client→server and server→client throughput (`tcp-source` → `tcp-sink`,
//! `tcp-serve` → `tcp-fetch`; for the guest paths, host→guest and guest→host) and the median
//! and p99 of 1-byte round trips (`tcp-rr` against `tcp-echo`). Each is the median of
//! `ACI_BENCH_RUNS` runs (default 3); `ACI_BENCH_NET_MIB` MiB per transfer (default 32);
//! `ACI_BENCH_NET_RR` round trips per latency run (default 500). Reports, does not assert.
//! Needs hardware KVM and root: run it with `cargo xtask bench net` (through the nested
//! runner when the host has no hardware KVM).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reference;
mod tool;
mod vmm_pair;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aci::core::runtime::{BackoffPolicy, NetworkSettings, Runtime, SizingPolicy};
use aci::core::spec::{Container, ContainerGroup, IpAddress, ACI_RESERVED_PORTS};
use aci::vmm::host::KvmHost;
use reference::Reference;
use tool::{client, wait_for_echo, Place};

/// How long the servers may take to answer after the group is running (nested TCG is slow).
const START_WAIT: Duration = Duration::from_secs(120);

/// The workload's sizes.
#[derive(Clone, Copy)]
struct Workload {
    runs: usize,
    mib: u64,
    round_trips: u64,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The medians of one path's runs.
struct PathFigures {
    up: f64,
    down: f64,
    rr_median: f64,
    rr_p99: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the workload from `place` against servers at `host` on `ports` (echo, sink, serve).
fn measure(place: &Place, host: &str, ports: [u16; 3], w: Workload) -> PathFigures {
    let [echo, sink, serve] = ports.map(|p| format!("{host}:{p}"));
    let (mib, rr) = (w.mib.to_string(), w.round_trips.to_string());
    let (mut up, mut down, mut med, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..w.runs {
        let run = |args: &[&str]| client(place, args).unwrap_or_else(|e| panic!("{e}"));
        up.push(run(&["tcp-source", &sink, &mib]).get("mib_per_s"));
        down.push(run(&["tcp-fetch", &serve]).get("mib_per_s"));
        let f = run(&["tcp-rr", &echo, &rr]);
        med.push(f.get("median_us"));
        p99.push(f.get("p99_us"));
    }
    PathFigures { up: median(up), down: median(down), rr_median: median(med), rr_p99: median(p99) }
}

/// Three different free TCP ports a group may publish (not in ACI's reserved ranges).
fn free_ports() -> [u16; 3] {
    let mut held = Vec::new(); // held open so the three differ
    while held.len() < 3 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if !ACI_RESERVED_PORTS.iter().any(|r| r.contains(&l.local_addr().unwrap().port())) {
            held.push(l);
        }
    }
    [0, 1, 2].map(|i| held[i].local_addr().unwrap().port())
}

/// Removes the bench's namespaces, aci's host table for its prefix and its state directory.
struct Cleanup {
    prefix: String,
    state: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in aci::net::netns::list(&self.prefix).unwrap_or_default() {
            let _ = aci::net::netns::delete(&ns);
        }
        let table = self.prefix.trim_end_matches('-');
        let _ = std::process::Command::new("nft").args(["delete", "table", "inet", table]).output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn runtime(registry: &str, state: &Path, prefix: &str) -> Runtime {
    let mut net = NetworkSettings::new(state.join("net"));
    net.manager.name_prefix = prefix.to_owned();
    net.manager.default_network.subnet = Ipv4Addr::new(10, 99, 0, 0);
    net.manager.default_network.prefix = 24;
    net.manager.default_network.outbound_nat = false;
    let guest = aci_testkit::guest_dir();
    Runtime::builder()
        .state_dir(state)
        .guest_kernel(guest.join("vmlinux"))
        .guest_initrd(guest.join("initramfs.cpio.gz"))
        .insecure_registry(registry)
        .backoff(BackoffPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            reset_after: Duration::from_secs(600),
        })
        .sizing(SizingPolicy { overhead_mib: 128, max_vcpus: 1 })
        .networking(net)
        .build()
        .expect("building the runtime")
}

/// Boots the group with the servers and measures the published and bridge paths.
async fn aci_paths(ports: [u16; 3], w: Workload) -> (PathFigures, PathFigures) {
    let registry = aci_testkit::Registry::start();
    aci_testkit::nettool_image(&registry, "nettool:1");
    let image = format!("{}/nettool:1", registry.host());
    let prefix = format!("anb{}-", std::process::id() % 100_000);
    let state = std::env::temp_dir().join(format!("aci-bench-net-{}", std::process::id()));
    let _cleanup = Cleanup { prefix: prefix.clone(), state: state.clone() };
    let rt = runtime(&registry.host(), &state, &prefix);

    let [echo, sink, serve] = ports;
    let servers = format!(
        "/bin/aci-nettool tcp-echo {echo} & /bin/aci-nettool tcp-sink {sink} & \
         exec /bin/aci-nettool tcp-serve {serve} {}",
        w.mib
    );
    let group = ContainerGroup::builder("netbench")
        .container(
            Container::new("servers", &image)
                .command(["/bin/sh", "-c", &servers])
                .port(echo)
                .port(sink)
                .port(serve)
                .cpu(1.0)
                .memory_gb(0.5),
        )
        .ip_address(IpAddress::public(ports))
        .build()
        .unwrap();
    let status = match rt.create(group).await {
        Ok(s) => s,
        Err(e) => panic!("create: {e:?}"),
    };
    let guest_ip = status.ip.clone().expect("the group has an IP");
    let network = status.network.clone().expect("the group is on a network");
    let bridge = Place::Netns(format!("{prefix}{network}"));
    println!("net bench: group at {guest_ip} on {network}, published {:?}", status.published);

    let figures = tokio::task::spawn_blocking(move || {
        if let Err(e) = wait_for_echo(&Place::Here, &format!("127.0.0.1:{echo}"), START_WAIT) {
            panic!("the guest's servers never answered: {e}");
        }
        let published = measure(&Place::Here, "127.0.0.1", ports, w);
        let bridged = measure(&bridge, &guest_ip, ports, w);
        (published, bridged)
    })
    .await;
    let _ = rt.delete("netbench").await;
    match figures {
        Ok(f) => f,
        Err(e) => panic!("measuring: {e}"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility: nothing to list.
    }
    if let Some(reason) = KvmHost::detect().unusable_reason() {
        eprintln!("net bench needs hardware KVM ({reason}); run `cargo xtask bench net`");
        std::process::exit(2);
    }
    let w = Workload {
        runs: env_number("ACI_BENCH_RUNS", 3usize).max(1),
        mib: env_number("ACI_BENCH_NET_MIB", 32u64).max(1),
        round_trips: env_number("ACI_BENCH_NET_RR", 500u64).max(1),
    };
    println!(
        "net bench: {} runs per figure (medians), {} MiB per transfer, {} round trips per latency run",
        w.runs, w.mib, w.round_trips
    );
    let ports = free_ports();

    let reference = Reference::new(&format!("anbr{}", std::process::id() % 100_000), ports, w.mib);
    let place = Place::Netns(reference.client_ns.clone());
    wait_for_echo(&place, &format!("{}:{}", reference::SERVER_IP, ports[0]), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the reference servers never answered: {e}"));
    let veth = measure(&place, reference::SERVER_IP, ports, w);
    drop(reference);

    let pair = vmm_pair::run(&format!("anbv{}", std::process::id() % 100_000), ports, w);
    for (name, f) in [("aci-vmm", &pair.aci), ("qemu", &pair.qemu)] {
        println!(
            "net bench: {name} busybox guest: up {:.1} MiB/s, down {:.1} MiB/s, RR median {:.0} µs",
            f.up, f.down, f.rr_median
        );
    }

    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (published, bridged) = tokio.block_on(aci_paths(ports, w));

    println!();
    println!("path                          client→server   server→client   1-byte RR median    p99");
    println!("                                (MiB/s)         (MiB/s)         (µs)              (µs)");
    for (name, f) in [
        ("veth pair (reference)", &veth),
        ("bridge: netns → guest IP", &bridged),
        ("published: host → 127.0.0.1", &published),
        ("aci-vmm: netns → busybox guest", &pair.aci),
        ("qemu: netns → busybox guest", &pair.qemu),
    ] {
        println!("{name:<30}{:>10.1}{:>16.1}{:>16.0}{:>18.0}", f.up, f.down, f.rr_median, f.rr_p99);
    }
    println!();
    println!("ratios to the reference (throughput: path/reference; latency: path/reference):");
    for (name, f) in [("bridge", &bridged), ("published", &published)] {
        println!(
            "  {name:<10} host→guest {:.2}x   guest→host {:.2}x   RR median {:.1}x   RR p99 {:.1}x",
            f.up / veth.up,
            f.down / veth.down,
            f.rr_median / veth.rr_median,
            f.rr_p99 / veth.rr_p99
        );
    }
    println!(
        "  aci-vmm/qemu  host→guest {:.2}x   guest→host {:.2}x   RR median {:.1}x   RR p99 {:.1}x",
        pair.aci.up / pair.qemu.up,
        pair.aci.down / pair.qemu.down,
        pair.aci.rr_median / pair.qemu.rr_median,
        pair.aci.rr_p99 / pair.qemu.rr_p99
    );
    let e = &pair.exits;
    println!();
    println!("aci-vmm per MiB (one transfer each way): MMIO writes (queue notifies + acks), MMIO reads (≈ interrupts), all exits, packets");
    println!("  host→guest  {:>8.0} {:>8.0} {:>8.0} {:>8.0}", e.up.0, e.up.1, e.up.2, e.packets.0);
    println!("  guest→host  {:>8.0} {:>8.0} {:>8.0} {:>8.0}", e.down.0, e.down.1, e.down.2, e.packets.1);
}
