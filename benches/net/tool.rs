//! Running `aci-nettool` clients (on the host or inside a namespace) and servers (inside a
//! namespace), and reading their `RESULT` lines.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a client runs: the bench's own namespace, or a named one (`ip netns exec`).
#[derive(Clone, Debug)]
pub enum Place {
    /// The bench process's namespace (the host, for published ports).
    Here,
    /// A named network namespace.
    Netns(String),
}

fn command(place: &Place, args: &[&str]) -> Command {
    let tool = aci_testkit::nettool_binary();
    match place {
        Place::Here => {
            let mut c = Command::new(tool);
            c.args(args);
            c
        }
        Place::Netns(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(tool).args(args);
            c
        }
    }
}

/// Runs a client; `Err` carries its output when it fails.
pub fn client(place: &Place, args: &[&str]) -> Result<Figures, String> {
    let out = command(place, args).output().map_err(|e| format!("cannot run aci-nettool: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "aci-nettool {args:?} in {place:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(Figures::parse)
        .ok_or_else(|| format!("aci-nettool {args:?}: no RESULT line in {stdout:?}"))
}

/// Retries `tcp-rr <addr> 1` until it answers (servers start asynchronously).
pub fn wait_for_echo(place: &Place, addr: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match client(place, &["tcp-rr", addr, "1"]) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The `key=value` figures of one `RESULT` line.
pub struct Figures(Vec<(String, String)>);

impl Figures {
    fn parse(line: &str) -> Self {
        Self(
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The number named `key` (panics when the tool did not print it: a bench bug).
    pub fn get(&self, key: &str) -> f64 {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
    }
}

/// Server processes; killed when dropped.
#[derive(Default)]
pub struct Servers(Vec<Child>);

impl Servers {
    /// Starts `aci-nettool args` in namespace `ns`.
    pub fn start(&mut self, ns: &str, args: &[&str]) {
        let child = command(&Place::Netns(ns.to_owned()), args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting an aci-nettool server");
        self.0.push(child);
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
