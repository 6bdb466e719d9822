//! Boot benchmark: time from "build the VM" to the guest agent's ready line, for aci's VMM
//! and, as the reference measured in the same run, QEMU (`-M microvm -accel kvm`) booting the
//! same kernel and initramfs. Prints medians and the ratio; absolute times mean little on
//! nested machines, the ratio and the exit counts are what to track.
//!
//! Needs hardware KVM: run it with `cargo xtask bench` (through the nested runner when the
//! host has none). `ACI_BENCH_RUNS` sets the runs per side (default 7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aci::vmm::host::KvmHost;
use aci::vmm::{SerialOutput, Vm, VmConfig, DEFAULT_CMDLINE};

const READY: &str = "aci-agent ready";

/// Records when the ready marker first appears on the serial console.
struct ReadyWatch {
    started: Instant,
    buffer: Vec<u8>,
    ready: Arc<Mutex<Option<Duration>>>,
}

impl Write for ReadyWatch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        let mut ready = self.ready.lock().unwrap();
        if ready.is_none() && String::from_utf8_lossy(&self.buffer).contains(READY) {
            *ready = Some(self.started.elapsed());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn cmdline() -> String {
    format!("{DEFAULT_CMDLINE} aci.poweroff=ready")
}

/// One aci-vmm boot, its phases measured from the start of `Vm::build`.
struct AciBoot {
    /// `Vm::build` returned (vCPUs running).
    built: Duration,
    /// The guest's first console byte.
    first_byte: Duration,
    /// The agent's ready line.
    ready: Duration,
    /// VM exits in the whole boot.
    exits: u64,
}

fn boot_aci(kernel: &Path, initrd: &Path) -> AciBoot {
    let ready = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let mut config = VmConfig::new(kernel);
    config.initrd = Some(initrd.to_path_buf());
    config.cmdline = cmdline();
    config.serial_output =
        SerialOutput::Writer(Box::new(ReadyWatch { started, buffer: Vec::new(), ready: ready.clone() }));
    let mut vm = Vm::build(config).expect("building the VM");
    let built = started.elapsed();
    let exit = vm.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| vm.stop());
    let at = ready.lock().unwrap().unwrap_or_else(|| panic!("aci-vmm: no ready line; exit {exit:?}"));
    let first_byte = vm.first_console_byte().unwrap_or(at);
    AciBoot { built, first_byte, ready: at, exits: vm.stats().total() }
}

/// One QEMU boot of the same guest: time to ready.
fn boot_qemu(kernel: &Path, initrd: &Path) -> Duration {
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=on"])
        .args(["-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "256"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(cmdline())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting qemu-system-x86_64");
    let mut at = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        if at.is_none() && line.contains(READY) {
            at = Some(started.elapsed());
        }
    }
    let _ = child.wait();
    at.expect("qemu: no ready line")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility: nothing to list.
    }
    let host = KvmHost::detect();
    if let Some(reason) = host.unusable_reason() {
        eprintln!("boot bench needs hardware KVM ({reason}); run `cargo xtask bench`");
        std::process::exit(2);
    }
    let runs: usize = std::env::var("ACI_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let dir = aci_testkit::guest_dir();
    let (vmlinux, bzimage, initrd) =
        (dir.join("vmlinux"), dir.join("bzImage"), dir.join("initramfs.cpio.gz"));

    let (mut elf_built, mut elf_first, mut aci_elf) = (Vec::new(), Vec::new(), Vec::new());
    let mut aci_bz = Vec::new();
    let mut qemu = Vec::new();
    let mut exits = 0;
    for _ in 0..runs {
        let elf = boot_aci(&vmlinux, &initrd);
        elf_built.push(elf.built);
        elf_first.push(elf.first_byte);
        aci_elf.push(elf.ready);
        exits = elf.exits;
        aci_bz.push(boot_aci(&bzimage, &initrd).ready);
        qemu.push(boot_qemu(&bzimage, &initrd));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (elf, bz, q) = (median(aci_elf), median(aci_bz), median(qemu));
    println!("boot to agent ready, median of {runs} (interleaved runs):");
    println!("  aci-vmm vmlinux  {:>8.1} ms  ({exits} VM exits)", ms(elf));
    println!(
        "    phases: VM built {:.1} ms, first console byte {:.1} ms, agent ready {:.1} ms",
        ms(median(elf_built)),
        ms(median(elf_first)),
        ms(elf)
    );
    println!("  aci-vmm bzImage  {:>8.1} ms", ms(bz));
    println!("  qemu microvm     {:>8.1} ms  (reference, same bzImage and initramfs)", ms(q));
    println!("  ratio aci-vmm(vmlinux)/qemu = {:.2}", elf.as_secs_f64() / q.as_secs_f64());
}
