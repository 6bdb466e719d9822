//! Volume benchmark (`cargo xtask bench volumes`): a virtio-fs share against the same
//! workload run directly on the shared host directory, in the same run.
//!
//! The workload (static busybox, the same script on both sides): sequential write of
//! `ACI_BENCH_MB` MiB (default 32) with `dd ... conv=fsync`, sequential read of it back
//! (the guest's page cache is dropped by FUSE's close-to-open `OPEN`), and creation of
//! `ACI_BENCH_FILES` (default 1500) small files. The guest boots a busybox initramfs that
//! mounts the share (`mount -t virtiofs`) and prints a marker around each phase; phases are
//! timed on the host from the console lines. The host side runs `/bin/busybox sh` on a
//! directory next to the share (same filesystem).
//!
//! Reports, does not assert. Needs hardware KVM: run it with `cargo xtask bench volumes`
//! (through the nested runner when the host has none). `ACI_BENCH_RUNS` sets the runs per
//! side (default 3; medians printed); `ACI_BENCH_CONSOLE=1` prints the guest's console.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aci::storage::initramfs::Archive;
use aci::vmm::host::KvmHost;
use aci::vmm::{SerialOutput, ShareConfig, Vm, VmConfig};

const TIMEOUT: Duration = Duration::from_secs(300);
const PHASES: [&str; 3] = ["write", "read", "create"];

/// The line being received, and the complete lines with the time each newline arrived.
type LineLog = (Vec<u8>, Vec<(Instant, String)>);

/// Console (or shell output) lines, each with the time its newline arrived.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<LineLog>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = Instant::now();
        let mut guard = self.0.lock().unwrap();
        let (partial, lines) = &mut *guard;
        for &b in buf {
            if b == b'\n' {
                lines.push((now, String::from_utf8_lossy(partial).trim_end_matches('\r').to_string()));
                partial.clear();
            } else {
                partial.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// When the line `marker` arrived; waits up to [`TIMEOUT`]. `progress` describes the
    /// device's state when the wait fails.
    fn wait_for(&self, marker: &str, progress: &dyn Fn() -> String) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let found = self.0.lock().unwrap().1.iter().find(|(_, l)| l.trim() == marker).map(|(at, _)| *at);
            if let Some(at) = found {
                return at;
            }
            if Instant::now() > deadline {
                let text: Vec<String> = self.0.lock().unwrap().1.iter().map(|l| l.1.clone()).collect();
                panic!("no {marker:?} on the console ({}):\n{}", progress(), text.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The workload on directory `$D`, with a marker line before and after each phase.
fn workload(mib: usize, files: usize) -> String {
    format!(
        "B=/bin/busybox\n\
         echo bench-write-start\n$B dd if=/dev/zero of=$D/big bs=1M count={mib} conv=fsync 2>/dev/null\n\
         echo bench-write-end\n\
         echo bench-read-start\n$B dd if=$D/big of=/dev/null bs=1M 2>/dev/null\necho bench-read-end\n\
         echo bench-create-start\n$B mkdir $D/small\ni=0\n\
         while [ $i -lt {files} ]; do echo x > $D/small/f$i; i=$((i+1)); done\n\
         echo bench-create-end\n\
         echo bench-files=$($B ls $D/small | $B wc -l) bytes=$($B wc -c < $D/big)\n\
         $B rm -rf $D/big $D/small\n"
    )
}

/// A busybox initramfs whose `/init` mounts the share `bench` at /mnt, runs `script` on it
/// and reboots (which ends the VM: `reboot=t`).
fn guest_initramfs(dir: &Path, script: &str) -> PathBuf {
    let mut cpio = Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "mnt"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox").expect("static busybox at /bin/busybox"));
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t devtmpfs dev /dev\n\
         mount -t proc proc /proc\nmount -t sysfs sys /sys\n\
         mount -t virtiofs bench /mnt || echo bench-mount-failed\nD=/mnt\n{script}reboot -f\n"
    );
    cpio.file("init", 0o755, init.as_bytes());
    let path = dir.join("volumes.cpio");
    std::fs::write(&path, cpio.finish()).unwrap();
    path
}

/// Phase durations in the guest on a virtio-fs share of `share`, and the share's counters.
fn guest_run(
    kernel: &Path,
    initrd: &Path,
    share: &Path,
    files: usize,
) -> (Vec<Duration>, aci::vmm::DeviceCounts) {
    let lines = Lines::default();
    let mut config = VmConfig::new(kernel);
    config.initrd = Some(initrd.to_path_buf());
    config.memory_mib = 256;
    config.serial_output = SerialOutput::Writer(Box::new(lines.clone()));
    config.shares = vec![ShareConfig { tag: "bench".into(), path: share.to_path_buf(), read_only: false }];
    let mut vm = Vm::build(config).expect("building the VM");
    let progress = || {
        let first = vm.metrics().device("fs0").copied();
        std::thread::sleep(Duration::from_secs(5));
        format!("fs0 {first:?}, 5 s later {:?}", vm.metrics().device("fs0"))
    };
    let times: Vec<Duration> = PHASES
        .iter()
        .map(|p| {
            let start = lines.wait_for(&format!("bench-{p}-start"), &progress);
            let took = lines.wait_for(&format!("bench-{p}-end"), &progress) - start;
            eprintln!("  guest {p}: {took:?}");
            took
        })
        .collect();
    let _ = vm.wait_timeout(TIMEOUT);
    let counts = *vm.metrics().device("fs0").expect("fs0 counters");
    let text: Vec<String> = lines.0.lock().unwrap().1.iter().map(|l| l.1.clone()).collect();
    let summary = text.iter().find(|l| l.starts_with("bench-files=")).cloned().unwrap_or_default();
    eprintln!("  guest: {summary}");
    assert!(
        summary.starts_with(&format!("bench-files={files} ")),
        "the guest did not create every file ({summary}):\n{}",
        text.join("\n")
    );
    if std::env::var_os("ACI_BENCH_CONSOLE").is_some() {
        eprintln!("  guest console:\n{}", text.join("\n"));
    }
    (times, counts)
}

/// Phase durations of the same script on the host directory `dir`.
fn host_run(script: &str, dir: &Path) -> Vec<Duration> {
    let mut child = Command::new("/bin/busybox")
        .args(["sh", "-c", script])
        .env("D", dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running /bin/busybox sh");
    let mut lines = Lines::default();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    loop {
        let n = io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        lines.write_all(&buf[..n]).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let progress = String::new;
    PHASES
        .iter()
        .map(|p| {
            let end = lines.wait_for(&format!("bench-{p}-end"), &progress);
            end - lines.wait_for(&format!("bench-{p}-start"), &progress)
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility: nothing to list.
    }
    if let Some(reason) = KvmHost::detect().unusable_reason() {
        eprintln!("volumes bench needs hardware KVM ({reason}); run `cargo xtask bench volumes`");
        std::process::exit(2);
    }
    let env =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let runs = env("ACI_BENCH_RUNS", 3).max(1);
    let mib = env("ACI_BENCH_MB", 32).max(1);
    let files = env("ACI_BENCH_FILES", 1500).max(1);
    let kernel = aci_testkit::guest_dir().join("vmlinux");
    // The temp dir: a tmpfs in L1, like the share itself.
    let work = std::env::temp_dir().join(format!("aci-bench-volumes-{}", std::process::id()));
    let (share, host_dir) = (work.join("share"), work.join("host"));
    std::fs::create_dir_all(&share).unwrap();
    std::fs::create_dir_all(&host_dir).unwrap();
    let script = workload(mib, files);
    let initrd = guest_initramfs(&work, &script);

    let (mut guest, mut host) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    for run in 0..runs {
        eprintln!("volumes bench: run {} of {runs}", run + 1);
        // Emptied from the host: a guest `rm -rf` of a large directory can leave entries
        // behind when the shared directory is on tmpfs (see docs/devices.md).
        for dir in [&share, &host_dir] {
            std::fs::remove_dir_all(dir).unwrap();
            std::fs::create_dir_all(dir).unwrap();
        }
        let (times, counts) = guest_run(&kernel, &initrd, &share, files);
        eprintln!("  guest fs0: {counts:?}");
        for (i, t) in times.into_iter().enumerate() {
            guest[i].push(t);
        }
        for (i, t) in host_run(&script, &host_dir).into_iter().enumerate() {
            host[i].push(t);
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    println!("\nvirtio-fs vs the host directory ({mib} MiB, {files} files, median of {runs}):\n");
    println!("| {:<28} | {:>16} | {:>16} | {:>12} |", "phase", "guest virtio-fs", "host dir", "guest/host");
    println!("|{:-<30}|{:->18}|{:->18}|{:->14}|", "", "", "", "");
    for (i, phase) in PHASES.iter().enumerate() {
        let (g, h) = (median(guest[i].clone()), median(host[i].clone()));
        let (label, gv, hv) = if *phase == "create" {
            let rate = |d: Duration| format!("{:.0} files/s", files as f64 / d.as_secs_f64());
            (format!("create {files} small files"), rate(g), rate(h))
        } else {
            let rate = |d: Duration| format!("{:.1} MiB/s", mib as f64 / d.as_secs_f64());
            (format!("sequential {phase} {mib} MiB"), rate(g), rate(h))
        };
        let ratio = g.as_secs_f64() / h.as_secs_f64().max(1e-9);
        println!("| {label:<28} | {gv:>16} | {hv:>16} | {:>11.1}x |", ratio);
    }
    println!("\n(guest/host is the time ratio: how many times longer the guest took.)");
}
