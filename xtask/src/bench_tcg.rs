//! The reference line of `cargo xtask bench vmm`: the same kernel and initramfs booted by
//! QEMU with TCG (no KVM) on the host, timed to the agent's ready line. It shows what the
//! guest costs without any hardware virtualization, measured in the same run as the L1
//! figures.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::guest::GuestArtifacts;

/// The agent's ready line.
const READY: &str = "aci-agent ready";
/// A TCG boot that takes longer than this is reported as failed.
const LIMIT: Duration = Duration::from_secs(300);

/// Boots the guest `runs` times under `qemu-system-x86_64 -accel tcg` and prints the median
/// time to the agent's ready line.
pub fn reference(guest: &GuestArtifacts, runs: usize) -> Result<()> {
    let mut times = Vec::new();
    for run in 0..runs.max(1) {
        let took = boot_once(guest).with_context(|| format!("QEMU TCG reference boot {}", run + 1))?;
        eprintln!("  qemu tcg reference: run {} ready after {} ms", run + 1, took.as_millis());
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "reference (QEMU TCG on the host, no KVM; same bzImage + initramfs, 1 vCPU, 128 MiB): boot to \
         agent ready, median of {}: {} ms (min {} ms, max {} ms)",
        times.len(),
        median.as_millis(),
        times[0].as_millis(),
        times[times.len() - 1].as_millis()
    );
    Ok(())
}

fn boot_once(guest: &GuestArtifacts) -> Result<Duration> {
    let cmdline = format!("{} aci.poweroff=ready", aci_vmm::DEFAULT_CMDLINE);
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=on,acpi=off"])
        .args(["-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "128"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(&guest.bzimage)
        .arg("-initrd")
        .arg(&guest.initramfs)
        .arg("-append")
        .arg(cmdline)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let stdout = child.stdout.take().context("QEMU's serial output")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(READY) {
                let _ = tx.send(Instant::now());
                return;
            }
        }
    });
    let ready = rx.recv_timeout(LIMIT);
    let _ = child.kill();
    let _ = child.wait();
    match ready {
        Ok(at) => Ok(at.duration_since(started)),
        Err(_) => bail!("no {READY:?} line within {LIMIT:?}"),
    }
}
