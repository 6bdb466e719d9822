//! KVM tier: boots the real guest kernel and initramfs to the agent and back out.
//!
//! The guest comes from `ACI_GUEST_DIR` (default `<workspace>/target/guest`, as built by
//! `cargo xtask guest`): `vmlinux`, `bzImage` and `initramfs.cpio.gz`. With
//! `aci.poweroff=ready` the agent reboots as soon as it is up, which `reboot=t` turns into a
//! triple fault: the VM must end with a guest reset after printing `aci-agent ready`.

mod support;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aci_vmm::{ExitReason, SerialOutput, Vm, VmConfig, DEFAULT_CMDLINE};

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
