//! KVM tier: bad input gives a typed error that names the input, and nothing leaks — neither
//! from failed builds nor from many boots in a row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aci_vmm::{DiskConfig, ExitReason, SerialOutput, Vm, VmConfig};

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/kvm_bad_input");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The error and all its sources, joined.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn config(kernel: &Path) -> VmConfig {
    let mut config = VmConfig::new(kernel);
    config.initrd = Some(aci_testkit::guest_dir().join("initramfs.cpio.gz"));
    config.serial_output = SerialOutput::Sink;
    config
}

fn build_err(config: VmConfig) -> String {
    match Vm::build(config) {
        Ok(mut vm) => {
            vm.stop();
            panic!("the VM was built from bad input");
        }
        Err(err) => chain(&err),
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
#[ignore = "KVM tier: needs /dev/kvm with hardware semantics; run by `cargo xtask test`"]
fn bad_input_errors_name_the_input_and_leak_nothing() {
    if !support::require_hardware_kvm("bad_input_errors_name_the_input_and_leak_nothing") {
        return;
    }
    let dir = scratch();
    let vmlinux = aci_testkit::guest_dir().join("vmlinux");
    let (fds, tasks) = (open_fds(), threads());

    let garbage = dir.join("garbage-kernel");
    std::fs::write(&garbage, vec![0x41u8; 64 << 10]).unwrap();
    let err = build_err(config(&garbage));
    assert!(err.contains("garbage-kernel") && err.contains("neither an ELF"), "{err}");

    let missing = dir.join("no-such-kernel");
    let err = build_err(config(&missing));
    assert!(err.contains("no-such-kernel"), "{err}");

    let mut long = config(&vmlinux);
    long.cmdline = "x".repeat(64 << 10);
    let err = build_err(long);
    assert!(err.contains("command line"), "{err}");

    let big_initrd = dir.join("big-initrd");
    std::fs::File::create(&big_initrd).unwrap().set_len(96 << 20).unwrap();
    let mut small = config(&vmlinux);
    small.memory_mib = 64;
    small.initrd = Some(big_initrd);
    let err = build_err(small);
    assert!(err.contains("initrd") && err.contains("does not fit"), "{err}");

    let mut no_disk = config(&vmlinux);
    no_disk.disks = vec![DiskConfig { path: dir.join("no-such-disk.img"), read_only: true, serial: None }];
    let err = build_err(no_disk);
    assert!(err.contains("no-such-disk.img"), "{err}");

    let links: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| format!("{:?}->{:?}", e.file_name(), std::fs::read_link(e.path()).ok()))
        .collect();
    assert_eq!(open_fds(), fds, "failed builds leaked file descriptors: {links:?}");
    assert_eq!(threads(), tasks, "failed builds leaked threads");
}

#[test]
#[ignore = "KVM tier: boots the guest 20 times; run by `cargo xtask test`"]
fn twenty_boots_leak_no_fds_or_threads() {
    if !support::require_hardware_kvm("twenty_boots_leak_no_fds_or_threads") {
        return;
    }
    let vmlinux = aci_testkit::guest_dir().join("vmlinux");
    let boot = || {
        let mut config = config(&vmlinux);
        config.cmdline = format!("{} aci.poweroff=ready", config.cmdline);
        let mut vm = Vm::build(config).unwrap();
        let exit = vm.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| vm.stop());
        assert_eq!(exit.reason, ExitReason::GuestReset, "{exit:?}");
    };
    boot(); // the first boot may set up process-wide state (the vCPU kick signal handler)
    let (fds, tasks) = (open_fds(), threads());
    let started = Instant::now();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        boot();
        times.push(t.elapsed());
    }
    // Device threads exit asynchronously after the VM is dropped; give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (open_fds() != fds || threads() != tasks) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_fds(), fds, "20 boots leaked file descriptors");
    assert_eq!(threads(), tasks, "20 boots leaked threads");
    times.sort();
    println!(
        "twenty_boots: 20 boots in {:?}; median {:?}, min {:?}, max {:?}; fds {fds}, threads {tasks} before and after",
        started.elapsed(),
        times[10],
        times[0],
        times[19]
    );
}
