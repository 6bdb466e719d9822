//! `cargo xtask bench [boot|vmm|images|volumes|create|net|all]`: build the benchmark binaries and run them.
//!
//! - `boot` (aci's `benches/boot.rs`): guest boot time, aci-vmm against QEMU; needs real KVM,
//!   so it runs through the L1 runner.
//! - `vmm` (aci's `benches/vmm.rs`): boot phases, idle memory overhead, virtio-blk read and
//!   vsock throughput, aci-vmm against QEMU in one table; through the L1 runner. First, on
//!   the host, the reference line: the same guest under QEMU TCG (no KVM), `bench_tcg.rs`.
//! - `volumes` (aci's `benches/volumes/`): sequential write/read and small-file creation
//!   in the guest on a virtio-fs share and on an SMB share (CIFS 3.1.1, a real smbd),
//!   against the same workload on the host directory and `smbclient`; through the L1 runner.
//! - `images` (`crates/aci-core/benches/images.rs`): pull, unpack and disk build from a
//!   loopback registry against `skopeo copy` + `umoci unpack`; runs on the host.
//! - `create` (`crates/aci-core/benches/create.rs`): `Runtime::create` to the container
//!   running with a cached image, by phase, against the same VM booted alone; through the L1
//!   runner.
//! - `net` (`bench_net.rs`, aci's `benches/net/`): guest↔host TCP throughput and round trips
//!   through a published port and over the bridge, against two plain network namespaces.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::{bench_tcg, guest, l1, paths, setup};

/// Runs the named benchmarks (default: all).
pub fn run(args: &[String]) -> Result<ExitCode> {
    let which = args.first().map(String::as_str).unwrap_or("all");
    let create = matches!(which, "create" | "all");
    let (boot, vmm, images, volumes) = match which {
        "boot" => (true, false, false, false),
        "vmm" => (false, true, false, false),
        "images" => (false, false, true, false),
        "volumes" => (false, false, false, true),
        "create" => (false, false, false, false),
        "all" => (true, true, true, true),
        "net" => return crate::bench_net::run(build_bench),
        other => bail!("unknown benchmark {other:?}; known: boot, vmm, images, volumes, create, net, all"),
    };
    setup::ensure()?;
    let mut failed = false;
    if images {
        let exe = build_bench("aci-core", "images")?;
        let status = Command::new(&exe).arg("--bench").status().context("running the images bench")?;
        failed |= !status.success();
    }
    if boot {
        guest::build()?;
        let exe = build_bench("aci", "boot")?;
        let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
        failed |= status != 0;
    }
    if vmm {
        let artifacts = guest::build()?;
        let runs = std::env::var("ACI_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        bench_tcg::reference(&artifacts, runs)?;
        let exe = build_bench("aci", "vmm")?;
        let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
        failed |= status != 0;
    }
    if volumes {
        guest::build()?;
        let exe = build_bench("aci", "volumes")?;
        let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
        failed |= status != 0;
    }
    if create {
        guest::build()?;
        let exe = build_bench("aci-core", "create")?;
        let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
        failed |= status != 0;
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Builds one bench target and returns its executable.
fn build_bench(package: &str, bench: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(paths::workspace())
        .args([
            "bench",
            "--package",
            package,
            "--bench",
            bench,
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("building the {bench} bench"))?;
    if !out.status.success() {
        bail!("building the {bench} bench failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bench)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no {bench} bench executable"))
}
