//! The quickstart: a two-container group in one microVM. `web` is busybox httpd serving
//! `/etc`; `sidecar` fetches `/motd` from it over 127.0.0.1 every second and logs the
//! result. The program waits for a successful fetch, prints both containers' logs with
//! timestamps, runs an exec, stops the group and prints its ACI-style bill.
//!
//! ```text
//! cargo xtask demo                      # builds everything, runs this in L1 where needed
//! cargo run --example quickstart -- [--registry HOST:PORT] [--state DIR] [--guest-dir DIR]
//! ```
//! Without `--registry`, it starts a loopback `docker-registry` and pushes a busybox image
//! to it (`aci-testkit`; needs docker-registry, umoci, skopeo, busybox-static). The guest
//! kernel and initramfs come from `--guest-dir`, else `$ACI_GUEST_DIR`, else
//! `target/guest` (`cargo xtask guest`). Needs hardware KVM.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aci::core::runtime::{ExecRequest, LogOptions, Runtime};
use aci::core::spec::{Container, ContainerGroup};
use futures_util::StreamExt;

struct Args {
    registry: Option<String>,
    state: Option<PathBuf>,
    guest_dir: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut out = Args { registry: None, state: None, guest_dir: aci_testkit::guest_dir() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--registry" => out.registry = Some(value()?),
            "--state" => out.state = Some(value()?.into()),
            "--guest-dir" => out.guest_dir = value()?.into(),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: quickstart [--registry HOST:PORT] [--state DIR] [--guest-dir DIR]"
                ))
            }
        }
    }
    Ok(out)
}

/// The group: httpd, and a sidecar fetching from it over loopback.
fn quickstart(image: &str) -> Result<ContainerGroup, Box<dyn Error>> {
    let fetch = "while true; do busybox wget -q -O - http://127.0.0.1:8080/motd && echo fetched-ok; \
                 busybox sleep 1; done";
    Ok(ContainerGroup::builder("quickstart")
        .container(
            Container::new("web", image)
                .command(["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/etc"])
                .port(8080)
                .cpu(0.5)
                .memory_gb(0.25),
        )
        .container(
            Container::new("sidecar", image).command(["/bin/sh", "-c", fetch]).cpu(0.5).memory_gb(0.25),
        )
        .build()?)
}

async fn print_logs(runtime: &Runtime, container: &str) -> Result<Vec<String>, Box<dyn Error>> {
    let options = LogOptions { tail: Some(20), timestamps: true, follow: false };
    let mut lines = runtime.logs("quickstart", container, options).await?;
    let mut seen = Vec::new();
    println!("--- logs of {container} (last 20 lines)");
    while let Some(line) = lines.next().await {
        let line = line?.to_string();
        println!("{line}");
        seen.push(line);
    }
    Ok(seen)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    // A local registry with busybox unless one was given (kept alive until the end).
    let (_registry, host) = match args.registry {
        Some(host) => (None, host),
        None => {
            println!("starting a loopback registry and pushing busybox:1 ...");
            let registry = aci_testkit::Registry::start();
            aci_testkit::busybox_image(&registry, "busybox:1");
            let host = registry.host();
            (Some(registry), host)
        }
    };
    let scratch = tempfile_dir()?;
    let state = args.state.unwrap_or_else(|| scratch.clone());
    let runtime = Runtime::builder()
        .state_dir(&state)
        .guest_kernel(args.guest_dir.join("vmlinux"))
        .guest_initrd(args.guest_dir.join("initramfs.cpio.gz"))
        .insecure_registry(&host)
        .build()?;
    let mut events = runtime.subscribe();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            let who = e.container.as_deref().unwrap_or("(group)");
            println!("event {:<8} {:<9} {}", who, e.name.as_str(), e.message);
        }
    });

    let started = Instant::now();
    let status = runtime.create(quickstart(&format!("{host}/busybox:1"))?).await?;
    println!("group {:?} is {} after {:.2?}", status.name, status.state.as_str(), started.elapsed());
    let phases: Vec<String> =
        status.deploy_phases.iter().map(|p| format!("{} {:.0} ms", p.step, p.ms)).collect();
    println!("deploy phases: {}", phases.join(", "));

    // Wait for the sidecar's first successful fetch (up to a minute: nested VMs are slow).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let options = LogOptions { tail: None, timestamps: false, follow: false };
        let mut lines = runtime.logs("quickstart", "sidecar", options).await?;
        let mut fetched = false;
        while let Some(line) = lines.next().await {
            fetched |= line?.line == "fetched-ok";
        }
        if fetched || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    print_logs(&runtime, "web").await?;
    let sidecar = print_logs(&runtime, "sidecar").await?;

    let out = runtime.exec("quickstart", "web", ExecRequest::new(["cat", "/etc/motd"])).await?;
    println!("--- exec `cat /etc/motd` in web: exit code {}, output {:?}", out.exit_code, out.stdout_text());

    let stopped = runtime.stop("quickstart").await?;
    println!("group {:?} is {}", stopped.name, stopped.state.as_str());
    if let Some(usage) = stopped.current_usage() {
        println!("--- bill\n{usage}");
    }
    if scratch == state {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if !sidecar.iter().any(|l| l.ends_with("fetched-ok")) {
        return Err("the sidecar never fetched the page from httpd".into());
    }
    Ok(())
}

/// A fresh directory under the temp dir (a local filesystem).
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("aci-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
