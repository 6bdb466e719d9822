//! Create benchmark (`cargo xtask bench create`): `Runtime::create` of a one-container group
//! to its container running, with the image cached, as a median of `ACI_BENCH_RUNS` (default
//! 10) and broken down by the runtime's own phase timings (`GroupStatus::deploy_phases`:
//! pull/cache, disk, network, VM boot, agent, container start); next to it, the same VM
//! (kernel, initramfs, size, image disk, vsock, rng) booted by aci-vmm alone until the agent
//! answers its hello, as the reference ratio.
//!
//! The image comes from a loopback registry (`aci-testkit`'s busybox); one create before the
//! timed runs fills the cache. Each group is deleted after its run (not timed). Reports, does
//! not assert. Needs usable KVM: run it through the nested runner (`cargo xtask bench
//! create`), where everything is ~10x slower than on hardware.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aci_core::images::PullPolicy;
use aci_core::runtime::{size_vm, BackoffPolicy, Runtime, SizingPolicy};
use aci_core::spec::{Container, ContainerGroup};
use aci_vmm::{DiskConfig, SerialOutput, Vm, VmConfig, VsockConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn group(name: &str, image: &str) -> ContainerGroup {
    ContainerGroup::builder(name)
        .container(
            Container::new("app", image)
                .command(["/bin/busybox", "sleep", "100000"])
                .cpu(1.0)
                .memory_gb(0.25),
        )
        .build()
        .unwrap()
}

/// The reference: the same VM booted by aci-vmm alone, until the agent's hello; ms, or why
/// it failed (nested TCG occasionally wedges a guest in early boot).
fn vm_alone(config: VmConfig, uds: &std::path::Path) -> Result<f64, String> {
    let started = Instant::now();
    let mut vm = Vm::build(config).map_err(|e| format!("building the VM: {e}"))?;
    let hello = aci_core::agent::connect(uds, Duration::from_secs(60));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    vm.stop();
    hello.map(|_| ms).map_err(|e| format!("the agent's hello: {e}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Some(reason) = aci_vmm::host::KvmHost::detect().unusable_reason() {
        eprintln!("bench create: KVM is not usable here ({reason}); run `cargo xtask bench create`");
        std::process::exit(2);
    }
    let runs: usize = std::env::var("ACI_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let reg = aci_testkit::Registry::start();
    aci_testkit::busybox_image(&reg, "busybox:1");
    let image = format!("{}/busybox:1", reg.host());
    let state =
        tempfile::Builder::new().prefix("aci-bench-create-").tempdir_in(std::env::temp_dir()).unwrap();
    let guest = aci_testkit::guest_dir();
    let sizing = SizingPolicy { overhead_mib: 128, max_vcpus: 1 };
    let rt = Runtime::builder()
        .state_dir(state.path())
        .guest_kernel(guest.join("vmlinux"))
        .guest_initrd(guest.join("initramfs.cpio.gz"))
        .insecure_registry(reg.host())
        .sizing(sizing)
        .backoff(BackoffPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            reset_after: Duration::from_secs(600),
        })
        .build()
        .unwrap();

    // Warm-up: pulls the image and builds its disk.
    let started = Instant::now();
    rt.create(group("warm", &image)).await.unwrap();
    println!("warm-up create (pull + disk + boot): {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    rt.delete("warm").await.unwrap();

    let mut failures = 0;
    let mut totals = Vec::new();
    // The runtime's own "boot the VM" + "agent hello": what the reference measures alone.
    let mut boot_hello = Vec::new();
    let mut phases: BTreeMap<usize, (String, Vec<f64>)> = BTreeMap::new();
    for i in 0..runs {
        let name = format!("g{i}");
        let started = Instant::now();
        let status = match rt.create(group(&name, &image)).await {
            Ok(status) => status,
            Err(err) => {
                println!("run {i}: create failed (not counted): {err}");
                failures += 1;
                let _ = rt.delete(&name).await;
                continue;
            }
        };
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status.container("app").map(|c| c.state().to_string()).as_deref(), Some("Running"));
        boot_hello.push(
            status
                .deploy_phases
                .iter()
                .filter(|p| p.step == "boot the VM" || p.step == "agent hello")
                .map(|p| p.ms)
                .sum::<f64>(),
        );
        for (k, p) in status.deploy_phases.iter().enumerate() {
            phases.entry(k).or_insert_with(|| (p.step.clone(), Vec::new())).1.push(p.ms);
        }
        rt.delete(&name).await.unwrap();
    }

    // The same VM, alone.
    let disk = rt.images().prepare(&image, &[], PullPolicy::IfNotPresent).await.unwrap();
    let size = size_vm(&group("ref", &image), &sizing).unwrap();
    let mut alone = Vec::new();
    for i in 0..runs {
        let uds = state.path().join(format!("ref-{i}.vsock"));
        let mut vm = VmConfig::new(guest.join("vmlinux"));
        vm.vcpus = size.vcpus;
        vm.memory_mib = size.memory_mib;
        vm.initrd = Some(guest.join("initramfs.cpio.gz"));
        vm.serial_output = SerialOutput::File(state.path().join(format!("ref-{i}.log")));
        vm.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
        vm.rng = true;
        vm.disks.push(DiskConfig { path: disk.path.clone(), read_only: true, serial: Some("img0".into()) });
        match tokio::task::spawn_blocking(move || vm_alone(vm, &uds)).await.unwrap() {
            Ok(ms) => alone.push(ms),
            Err(why) => {
                println!("reference run {i} failed (not counted): {why}");
                failures += 1;
            }
        }
    }

    let total = median(totals.clone());
    let reference = median(alone.clone());
    println!();
    println!(
        "create → container running, image cached: median of {} ({} reference boots; {} vCPU, {} MiB)",
        totals.len(),
        alone.len(),
        size.vcpus,
        size.memory_mib
    );
    if failures > 0 {
        println!("  {failures} run(s) failed and are not counted (see above)");
    }
    println!("  {:<34} {:>10}", "phase (ends with step)", "median ms");
    for (step, v) in phases.values() {
        println!("  {:<34} {:>10.1}", step, median(v.clone()));
    }
    println!("  {:<34} {:>10.1}", "total (Runtime::create)", total);
    println!(
        "  {:<34} {:>10.1}   (min {:.1}, max {:.1})",
        "reference: aci-vmm boot → agent hello",
        reference,
        alone.iter().copied().fold(f64::INFINITY, f64::min),
        alone.iter().copied().fold(0.0, f64::max)
    );
    let in_runtime = median(boot_hello);
    println!("  {:<34} {:>10.1}", "runtime: boot the VM + agent hello", in_runtime);
    println!("  ratio create / VM boot alone: {:.2}", total / reference);
    println!("  ratio runtime boot+hello / VM boot alone: {:.2}", in_runtime / reference);
    println!(
        "  create min {:.1} ms, max {:.1} ms",
        totals.iter().copied().fold(f64::INFINITY, f64::min),
        totals.iter().copied().fold(0.0, f64::max)
    );
    rt.shutdown().await;
}
