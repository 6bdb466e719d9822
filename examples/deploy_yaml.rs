//! Deploys an ACI container group file (YAML, JSON resource or ARM template), lets it run,
//! prints each container's state and logs, stops it and prints the bill.
//!
//! ```text
//! cargo run --example deploy_yaml -- examples/groups/web-and-sidecar.yaml \
//!     [--registry HOST:PORT | --local-registry] [--seconds N] [--state DIR] [--guest-dir DIR]
//! ```
//! `REGISTRY` at the start of an image name is replaced by the `--registry` host (plain
//! HTTP); `--local-registry` starts a loopback registry with `busybox:1` (`aci-testkit`).
//! Needs hardware KVM and the guest artifacts (`cargo xtask guest`).

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use aci::core::runtime::{LogOptions, Runtime};
use aci::core::spec::ContainerGroup;
use futures_util::StreamExt;

const USAGE: &str = "usage: deploy_yaml FILE [--registry HOST:PORT | --local-registry] [--seconds N] \
                     [--state DIR] [--guest-dir DIR]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut file = None;
    let (mut registry, mut local, mut seconds) = (None, false, 10u64);
    let mut state = std::env::temp_dir().join(format!("aci-deploy-yaml-{}", std::process::id()));
    let mut guest_dir = aci_testkit::guest_dir();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(USAGE);
        match arg.as_str() {
            "--registry" => registry = Some(value()?),
            "--local-registry" => local = true,
            "--seconds" => seconds = value()?.parse()?,
            "--state" => state = value()?.into(),
            "--guest-dir" => guest_dir = value()?.into(),
            _ if file.is_none() && !arg.starts_with("--") => file = Some(PathBuf::from(arg)),
            _ => return Err(USAGE.into()),
        }
    }
    let file = file.ok_or(USAGE)?;
    let _local_registry = if local {
        let reg = aci_testkit::Registry::start();
        aci_testkit::busybox_image(&reg, "busybox:1");
        registry = Some(reg.host());
        Some(reg)
    } else {
        None
    };

    let mut group = ContainerGroup::from_path(&file)?;
    let mut builder = Runtime::builder()
        .state_dir(&state)
        .guest_kernel(guest_dir.join("vmlinux"))
        .guest_initrd(guest_dir.join("initramfs.cpio.gz"));
    if let Some(host) = &registry {
        builder = builder.insecure_registry(host);
        for c in &mut group.properties.containers {
            if let Some(rest) = c.properties.image.strip_prefix("REGISTRY/") {
                c.properties.image = format!("{host}/{rest}");
            }
        }
        for c in &mut group.properties.init_containers {
            if let Some(rest) = c.properties.image.strip_prefix("REGISTRY/") {
                c.properties.image = format!("{host}/{rest}");
            }
        }
    }
    let runtime = builder.build()?;
    let name = group.name.clone();
    let status = runtime.create(group).await?;
    println!("{}: {} (deployment {})", name, status.state.as_str(), status.deployment);
    tokio::time::sleep(Duration::from_secs(seconds)).await;

    let status = runtime.get(&name)?;
    for c in &status.containers {
        println!("--- {} {}: restarts {}, exit code {:?}", c.name, c.state(), c.restart_count, c.exit_code());
        if status.state.is_active() {
            let options = LogOptions { tail: Some(10), timestamps: true, follow: false };
            let mut lines = runtime.logs(&name, &c.name, options).await?;
            while let Some(line) = lines.next().await {
                println!("{}", line?);
            }
        }
    }
    let stopped = runtime.stop(&name).await?;
    // What `az container show` would print (secure values shown as <redacted>).
    println!("--- instance view\n{}", stopped.to_container_group().to_yaml_string()?);
    if let Some(usage) = stopped.current_usage() {
        println!("--- bill\n{usage}");
    }
    Ok(())
}
