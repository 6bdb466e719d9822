//! KVM tier: boots the real guest kernel and initramfs to the agent and back out.
//!
//! The guest comes from `ACI_GUEST_DIR` (default `<workspace>/target/guest`, as built by
//! `cargo xtask guest`): `vmlinux`, `bzImage` and `initramfs.cpio.gz`. With
//! `aci.poweroff=ready` the agent reboots as soon as it is up, which `reboot=t` turns into a
//! triple fault: the VM must end with a guest reset after printing `aci-agent ready`. A
//! guest whose init exits must end with a guest panic instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
#[allow(dead_code)]
mod virtio_guest;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aci_vmm::{ExitReason, SerialOutput, Vm, VmConfig, DEFAULT_CMDLINE};
use virtio_guest::{build_initramfs, work_dir};

const READY: &str = "aci-agent ready";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects the console into a shared buffer.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut out) = self.0.lock() {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Console {
    fn text(&self) -> String {
        self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

fn boot_to_ready_and_reset(test: &str, kernel_file: &str, vcpus: u8) {
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = aci_testkit::guest_dir();
    let (kernel, initrd) = (dir.join(kernel_file), dir.join("initramfs.cpio.gz"));
    assert!(kernel.exists(), "{test}: no guest kernel at {} (run `cargo xtask guest`)", kernel.display());
    assert!(initrd.exists(), "{test}: no initramfs at {}", initrd.display());

    let console = Console::default();
    let mut config = VmConfig::new(&kernel);
    config.initrd = Some(initrd);
    config.vcpus = vcpus;
    config.memory_mib = 256;
    config.cmdline = format!("{DEFAULT_CMDLINE} aci.poweroff=ready");
    config.serial_output = SerialOutput::Writer(Box::new(console.clone()));

    let started = Instant::now();
    let mut vm = match Vm::build(config) {
        Ok(vm) => vm,
        Err(e) => panic!("{test}: the VM does not build: {e:?}"),
    };
    let built = started.elapsed();
    let exit = vm.wait_timeout(BOOT_TIMEOUT).unwrap_or_else(|| vm.stop());
    let wall = started.elapsed();
    let output = console.text();
    let stats = vm.stats();
    println!(
        "{test}: {kernel_file} {vcpus} vCPU(s): build {built:?}, exit {:?} after {:?}, wall \
         {wall:?}, {} exits ({stats:?})",
        exit.reason,
        exit.elapsed,
        stats.total()
    );
    assert!(output.contains(READY), "{test}: no '{READY}' on the console:\n{output}");
    assert_eq!(exit.reason, ExitReason::GuestReset, "{test}: console:\n{output}");
    assert_eq!(vm.panic_message(), None);
    let boot = vm.boot_times();
    println!("{test}: boot milestones {boot:?}");
    let entry = boot.kernel_entry.expect("kernel entry recorded");
    let first = boot.first_console_byte.expect("first console byte recorded");
    let ready = boot.agent_ready.expect("agent ready line recorded");
    assert!(entry <= boot.built + Duration::from_secs(1), "{test}: {boot:?}");
    assert!(
        entry < first && first < ready && ready <= exit.elapsed,
        "{test}: milestones out of order {boot:?}"
    );
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn vmlinux_boots_to_agent_and_resets() {
    boot_to_ready_and_reset("vmlinux_boots_to_agent_and_resets", "vmlinux", 1);
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn bzimage_boots_to_agent_and_resets() {
    boot_to_ready_and_reset("bzimage_boots_to_agent_and_resets", "bzImage", 1);
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn smp_guest_boots_and_all_vcpus_stop() {
    boot_to_ready_and_reset("smp_guest_boots_and_all_vcpus_stop", "vmlinux", 2);
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn stop_ends_a_running_guest() {
    let test = "stop_ends_a_running_guest";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = aci_testkit::guest_dir();
    let mut config = VmConfig::new(dir.join("vmlinux"));
    config.initrd = Some(dir.join("initramfs.cpio.gz"));
    config.vcpus = 2;
    config.serial_output = SerialOutput::Sink;
    let mut vm = Vm::build(config).expect("the VM builds");
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let exit = vm.stop();
    println!("{test}: stopped after {:?} with {:?}", asked.elapsed(), exit.reason);
    assert!(matches!(exit.reason, ExitReason::Stopped | ExitReason::GuestReset));
    assert!(asked.elapsed() < Duration::from_secs(5));
}

/// Boots an initramfs whose `/init` exits, which makes the kernel panic ("Attempted to kill
/// init!"), with `cmdline` appended to the default command line.
fn boot_panicking_init(test: &str, extra: &str) -> (Vm, Console) {
    let dir = work_dir(test);
    let initrd = build_initramfs(&dir, &[], "echo init-exits-now\nexit 3");
    let console = Console::default();
    let mut config = VmConfig::new(aci_testkit::guest_dir().join("vmlinux"));
    config.initrd = Some(initrd);
    config.cmdline = format!("{DEFAULT_CMDLINE} {extra}");
    config.serial_output = SerialOutput::Writer(Box::new(console.clone()));
    (Vm::build(config).expect("the VM builds"), console)
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn guest_panic_is_reported_as_a_panic_not_a_reset() {
    let test = "guest_panic_is_reported_as_a_panic_not_a_reset";
    if !support::require_hardware_kvm(test) {
        return;
    }
    // panic=-1 (the default command line): the kernel resets right after the panic message.
    let (mut vm, console) = boot_panicking_init(test, "");
    let exit = vm.wait_timeout(BOOT_TIMEOUT).unwrap_or_else(|| vm.stop());
    let output = console.text();
    println!("{test}: panic=-1: exit {:?} after {:?}; {:?}", exit.reason, exit.elapsed, vm.panic_message());
    assert!(output.contains("init-exits-now"), "{test}: the init never ran:\n{output}");
    assert_eq!(exit.reason, ExitReason::GuestPanic, "{test}: console:\n{output}");
    let message = vm.panic_message().unwrap_or_default();
    assert!(
        message.starts_with("Kernel panic - not syncing: Attempted to kill init!"),
        "{test}: panic message {message:?}"
    );
    drop(vm);

    // panic=0: the kernel hangs after the message; stopping it still reports the panic.
    let (mut vm, console) = boot_panicking_init(&format!("{test}-hang"), "panic=0");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while vm.panic_message().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(vm.wait_timeout(Duration::from_millis(500)).is_none(), "{test}: panic=0 should hang");
    let exit = vm.stop();
    println!("{test}: panic=0: stopped with {:?}", exit.reason);
    assert_eq!(exit.reason, ExitReason::GuestPanic, "{test}: console:\n{}", console.text());
}
