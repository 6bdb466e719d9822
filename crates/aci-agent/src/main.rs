//! # aci-agent — PID 1 inside an aci microVM
//!
//! The agent is the guest's init. It first moves `/` from the initramfs onto a tmpfs (so
//! container runtimes can pivot_root; see `tmpfs_root`), then mounts the kernel filesystems
//! (/proc, /sys, /dev, /dev/pts, /dev/shm, /run, cgroup2 with the cpu, memory, pids and io
//! controllers enabled for children), seeds the random pool from the VM's virtio-rng when
//! there is one (`sandbox::entropy`), sets the hostname from `aci.hostname=`, prints a ready
//! line with its version and the guest's uptime on the console, and powers the VM off when
//! asked: either by a `poweroff` line on the console or, for boot measurements, by
//! `aci.poweroff=ready` on the kernel command line. When the VM has a vsock device it serves
//! the host protocol (`aci-proto`) on vsock port 1024: sandbox set-up (`sandbox`: clock,
//! network, DNS, storage mounts) and the containers. Before powering off it stops the
//! containers, syncs, and unmounts the sandbox's storage newest first.
//!
//! The same binary is every container's init shim (`init_shim`): bound read-only into each
//! container at `/.aci/init` and started as `/.aci/init init --status-fd=3 -- CMD...`.
//!
//! It is built as a fully static binary (`cargo xtask guest`) and packed as `/init` of the
//! guest initramfs.

mod containers;
mod init_shim;
mod mounts;
mod power;
mod probes;
mod sandbox;
mod session;
mod tmpfs_root;
mod vsock;

use std::sync::Arc;

/// Everything the agent serves, shared by all host connections.
#[derive(Debug)]
pub struct Agent {
    /// Sandbox-wide set-up and storage.
    pub sandbox: sandbox::Sandbox,
    /// The containers.
    pub containers: containers::Engine,
    /// Liveness and readiness probes.
    pub probes: probes::Prober,
}

impl Agent {
    fn new(is_init: bool) -> Self {
        Self {
            sandbox: sandbox::Sandbox::new(is_init),
            containers: containers::Engine::new(is_init),
            probes: probes::Prober::default(),
        }
    }

    /// An agent that is not PID 1 (unit tests).
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self::new(false)
    }
}

use std::io::{self, BufRead, Write};

/// The line prefix the host looks for; the version and uptime follow it.
const READY_PREFIX: &str = "aci-agent ready";

fn main() {
    // As a container's init shim (`/.aci/init init -- CMD...`): nothing of the agent runs.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // (The guest's own init is `/init`: a stray `init` word on the kernel command line does
    // not turn it into a shim.)
    if args.len() > 2 && args[0] != "/init" && args[1] == init_shim::SUBCOMMAND {
        init_shim::main(&args[2..]);
    }
    let is_init = std::process::id() == 1;
    let mut controllers = Vec::new();
    if is_init && tmpfs_root::root_is_initramfs() {
        // Containers need a root mount with a parent (see tmpfs_root); not fatal without.
        if let Err(err) = tmpfs_root::switch() {
            eprintln!("aci-agent: {}", sandbox::error_chain(&err));
        }
    }
    if is_init {
        match mounts::mount_kernel_filesystems() {
            Ok(enabled) => controllers = enabled,
            Err(err) => {
                eprintln!("aci-agent: {err}");
                power::power_off();
            }
        }
    }
    // Read after /proc is mounted.
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if is_init {
        let hostname = cmdline_value(&cmdline, "aci.hostname").unwrap_or("aci");
        if let Err(err) = mounts::set_hostname(hostname) {
            eprintln!("aci-agent: setting the hostname to {hostname:?} failed: {err}");
        }
    }
    if is_init {
        println!("aci-agent: entropy: {}", sandbox::entropy::seed_at_boot());
    }
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    println!(
        "{READY_PREFIX} version={} uptime={uptime}s cgroup-controllers={}",
        env!("CARGO_PKG_VERSION"),
        controllers.join(",")
    );
    let _ = io::stdout().flush();

    let agent = Arc::new(Agent::new(is_init));
    containers::wire_probes(&agent);
    start_vsock_service(is_init, Arc::clone(&agent));
    if cmdline.split_whitespace().any(|w| w == "aci.poweroff=ready") {
        finish(is_init, &agent);
    }
    for line in io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("poweroff") => finish(is_init, &agent),
            Ok("") => {}
            Ok(other) => println!("aci-agent: unknown command {other:?} (known: poweroff)"),
            Err(err) => {
                eprintln!("aci-agent: console read failed: {err}");
                break;
            }
        }
    }
    // The console closed: with nobody left to ask, stop the VM.
    finish(is_init, &agent);
}

/// The value of `key=value` on the kernel command line.
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// Serves the host over vsock (when the VM has a vsock device) on a background thread;
/// a `Shutdown` call powers the VM off.
///
/// Not as PID 1, `ACI_AGENT_LISTEN_UNIX=<path>` serves on that Unix socket instead (the
/// container engine's fast tests drive a real agent that way).
fn start_vsock_service(is_init: bool, agent: Arc<Agent>) {
    let listener = match std::env::var_os("ACI_AGENT_LISTEN_UNIX").filter(|_| !is_init) {
        Some(path) => std::os::unix::net::UnixListener::bind(path).map(std::os::fd::OwnedFd::from),
        None => vsock::listen(aci_proto::AGENT_VSOCK_PORT),
    };
    let listener = match listener {
        Ok(listener) => listener,
        Err(err) => {
            println!("aci-agent: no vsock service ({err})");
            return;
        }
    };
    // One thread per connection: the host may hold several (calls, log follows, exec I/O).
    std::thread::spawn(move || loop {
        let stream = match vsock::accept(&listener) {
            Ok(stream) => stream,
            Err(err) => {
                eprintln!("aci-agent: vsock accept failed: {err}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let agent = Arc::clone(&agent);
        std::thread::spawn(move || match session::serve(stream, &agent) {
            Ok(session::After::PowerOff) => finish(is_init, &agent),
            Ok(session::After::Continue) => {}
            Err(err) => eprintln!("aci-agent: host connection failed: {err}"),
        });
    });
}

/// Stops the containers, syncs and unmounts the sandbox's storage, and powers off.
fn finish(is_init: bool, agent: &Agent) -> ! {
    agent.containers.stop_all();
    for line in agent.sandbox.release() {
        println!("aci-agent: {line}");
    }
    println!("aci-agent: powering off");
    let _ = io::stdout().flush();
    if is_init {
        power::power_off();
    }
    std::process::exit(0);
}
