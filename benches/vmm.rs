//! VMM benchmark (`cargo xtask bench vmm`): for one 1-vCPU / 128 MiB guest, aci's VMM against
//! QEMU (`-M microvm -accel kvm`) booting the same kernel and initramfs in the same run:
//!
//! - boot to the agent's ready line, with aci's phases (`Vm::boot_times`);
//! - host memory of one idle VM (agent ready, then idle for a moment): how much guest RAM
//!   the guest touched, and the VMM's own RSS/PSS beyond that;
//! - virtio-blk sequential read throughput: `dd` of a whole disk to `/dev/null` in the guest;
//! - virtio-vsock: echo throughput and 1-byte round-trip time through a guest echo server
//!   (aci only: QEMU's vsock is vhost-vsock, which the nested runner's kernel does not load).
//!
//! Reports, does not assert. Needs hardware KVM: run it with `cargo xtask bench vmm`
//! (through the nested runner when the host has none). `ACI_BENCH_BOOT_RUNS` sets the idle
//! boots per side (default 10), `ACI_BENCH_RUNS` the throughput runs per side (default 3),
//! `ACI_BENCH_DISK_MIB` the disk size (default 128).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aci::storage::initramfs::Archive;
use aci::vmm::host::KvmHost;
use aci::vmm::{DiskConfig, SerialOutput, Vm, VmConfig, VsockConfig, DEFAULT_CMDLINE};

const READY: &str = "aci-agent ready";
const MEM_MIB: u32 = 128;
const TIMEOUT: Duration = Duration::from_secs(120);
/// How long an idle VM sits after its ready line before memory is measured.
const SETTLE: Duration = Duration::from_secs(2);
const DD_START: &str = "bench-dd-start";
const DD_END: &str = "bench-dd-end";
const ECHO_PORT: u32 = 5000;
/// Bytes pushed through the vsock echo server per run (and echoed back).
const ECHO_BYTES: usize = 32 << 20;
/// 1-byte round trips per run.
const ROUND_TRIPS: usize = 500;

// ---------------------------------------------------------------- console with timestamps

/// The line being received, and the complete lines with the time each newline arrived.
type LineLog = (Vec<u8>, Vec<(Instant, String)>);

/// Guest console lines, each with the time its newline arrived.
#[derive(Clone, Default)]
struct Lines {
    inner: Arc<Mutex<LineLog>>,
}

impl Lines {
    fn push_bytes(&self, bytes: &[u8]) {
        let now = Instant::now();
        let mut guard = self.inner.lock().unwrap();
        let (partial, lines) = &mut *guard;
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(partial).trim_end_matches('\r').to_string();
                lines.push((now, line));
                partial.clear();
            } else {
                partial.push(b);
            }
        }
    }

    /// When a line containing `marker` arrived; waits up to [`TIMEOUT`].
    fn wait_for(&self, marker: &str) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(at) = self.find(marker) {
                return at;
            }
            if Instant::now() > deadline {
                let text: Vec<String> = self.inner.lock().unwrap().1.iter().map(|l| l.1.clone()).collect();
                panic!("no {marker:?} on the console:\n{}", text.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn find(&self, marker: &str) -> Option<Instant> {
        self.inner.lock().unwrap().1.iter().find(|(_, l)| l.contains(marker)).map(|(at, _)| *at)
    }

    /// Feeds a child's stdout into the lines on a thread.
    fn follow(&self, mut out: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lines.push_bytes(&buf[..n]);
            }
        });
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- memory from /proc

/// `(Rss, Pss)` in KiB of a process (`/proc/<pid>/smaps_rollup`).
fn rss_pss(pid: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    (field_kib(&text, "Rss:"), field_kib(&text, "Pss:"))
}

fn field_kib(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Each mapping of `/proc/<pid>/smaps` as `(address range, Rss KiB)`.
fn mappings(pid: &str) -> Vec<(Range<usize>, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out: Vec<(Range<usize>, u64)> = Vec::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                out.push((start..end, 0));
                continue;
            }
        }
        if let (Some(rss), Some(last)) = (line.strip_prefix("Rss:"), out.last_mut()) {
            last.1 = rss.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    out
}

/// Resident KiB of the mappings inside `ranges`.
fn resident_within(pid: &str, ranges: &[Range<usize>]) -> u64 {
    mappings(pid)
        .into_iter()
        .filter(|(m, _)| ranges.iter().any(|r| r.start <= m.start && m.end <= r.end))
        .map(|(_, rss)| rss)
        .sum()
}

/// Resident KiB of the mappings at least as large as guest RAM (QEMU's guest RAM block).
fn resident_guest_sized(pid: &str) -> u64 {
    let guest = (MEM_MIB as usize) << 20;
    mappings(pid).into_iter().filter(|(m, _)| m.len() >= guest).map(|(_, rss)| rss).sum()
}

/// Memory of one idle VM, KiB.
#[derive(Clone, Copy, Debug, Default)]
struct IdleMemory {
    /// Guest RAM the host had to back.
    guest_touched: u64,
    /// VMM RSS beyond guest RAM.
    rss_overhead: u64,
    /// VMM PSS beyond guest RAM.
    pss_overhead: u64,
    /// aci only: growth of the process's RSS beyond guest RAM while its first VM exists.
    growth: u64,
}

// ---------------------------------------------------------------- guest images

fn cmdline() -> String {
    DEFAULT_CMDLINE.to_string()
}

/// A test initramfs: static busybox, `helpers` in /bin, an `/init` that runs `body` and
/// reboots (which ends both VMMs: `reboot=t` / `-no-reboot`).
fn bench_initramfs(dir: &Path, name: &str, helpers: &[PathBuf], body: &str) -> PathBuf {
    let mut cpio = Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox").expect("static busybox at /bin/busybox"));
    for helper in helpers {
        let file = helper.file_name().unwrap().to_str().unwrap();
        cpio.file(&format!("bin/{file}"), 0o755, &std::fs::read(helper).unwrap());
    }
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t devtmpfs dev /dev\n\
         mount -t proc proc /proc\nmount -t sysfs sys /sys\n{body}\nreboot -f\n"
    );
    cpio.file("init", 0o755, init.as_bytes());
    let path = dir.join(name);
    std::fs::write(&path, cpio.finish()).unwrap();
    path
}

/// Compiles the guest's vsock echo server (tests/guest/vsock_echo.c) statically, once.
fn vsock_echo(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/aci-vmm/tests/guest/vsock_echo.c");
    let out = dir.join("vsock_echo");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if !matches!((modified(&out), modified(&src)), (Some(o), Some(s)) if o > s) {
        let ok = Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&out).arg(&src).status().unwrap();
        assert!(ok.success(), "gcc failed on {}", src.display());
    }
    out
}

// ---------------------------------------------------------------- aci-vmm side

fn aci_config(kernel: &Path, initrd: &Path, lines: &Lines) -> VmConfig {
    let mut config = VmConfig::new(kernel);
    config.initrd = Some(initrd.to_path_buf());
    config.memory_mib = MEM_MIB;
    config.cmdline = cmdline();
    config.serial_output = SerialOutput::Writer(Box::new(lines.clone()));
    config
}

/// One aci boot to the ready line, then idle: (time to ready, phases, memory).
fn aci_idle(kernel: &Path, initrd: &Path) -> (Duration, aci::vmm::BootTimes, IdleMemory) {
    let lines = Lines::default();
    let (rss0, pss0) = rss_pss("self");
    let started = Instant::now();
    let mut vm = Vm::build(aci_config(kernel, initrd, &lines)).expect("building the VM");
    let ready = lines.wait_for(READY).duration_since(started);
    std::thread::sleep(SETTLE);
    let guest_touched = resident_within("self", &vm.guest_memory_host_ranges());
    let (rss, pss) = rss_pss("self");
    let boot = vm.boot_times();
    vm.stop();
    eprintln!("  aci idle: process RSS {rss0} -> {rss} KiB, PSS {pss0} -> {pss} KiB, guest RAM resident {guest_touched} KiB");
    let memory = IdleMemory {
        guest_touched,
        rss_overhead: rss.saturating_sub(guest_touched),
        pss_overhead: pss.saturating_sub(guest_touched),
        growth: rss.saturating_sub(rss0).saturating_sub(guest_touched),
    };
    (ready, boot, memory)
}

/// aci: MiB/s of `dd` reading the whole disk in the guest.
fn aci_dd(kernel: &Path, initrd: &Path, disk: &Path) -> f64 {
    let lines = Lines::default();
    let mut config = aci_config(kernel, initrd, &lines);
    config.disks = vec![DiskConfig { path: disk.to_path_buf(), read_only: true, serial: None }];
    let mut vm = Vm::build(config).expect("building the VM");
    let (start, end) = (lines.wait_for(DD_START), lines.wait_for(DD_END));
    eprintln!("  aci dd: thread CPU seconds {}", thread_cpu().join(", "));
    let _ = vm.wait_timeout(TIMEOUT);
    let read = vm.metrics().device("vda").map(|d| d.bytes_to_guest).unwrap_or(0);
    let size = std::fs::metadata(disk).unwrap().len();
    assert!(read >= size, "the guest read {read} bytes of {size}");
    mib_per_s(size as usize, end - start)
}

/// aci: (echo MiB/s each way, median 1-byte round trip).
fn aci_vsock(kernel: &Path, initrd: &Path, sockets: &Path) -> (f64, Duration) {
    let lines = Lines::default();
    let uds = sockets.join("bench.sock");
    let mut config = aci_config(kernel, initrd, &lines);
    config.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
    let mut vm = Vm::build(config).expect("building the VM");
    lines.wait_for("vsock-echo listening");
    let mut stream = UnixStream::connect(&uds).unwrap();
    stream.write_all(format!("CONNECT {ECHO_PORT}\n").as_bytes()).unwrap();
    let mut ok = [0u8; 3];
    stream.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK ", "handshake");
    let mut rest = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        stream.read_exact(&mut byte).unwrap();
        rest.push(byte[0]);
    }
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let at = Instant::now();
        stream.write_all(b"x").unwrap();
        stream.read_exact(&mut byte).unwrap();
        rtts.push(at.elapsed());
    }
    let payload = vec![0x5au8; ECHO_BYTES];
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        writer.write_all(&payload).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        echoed += n;
    }
    let took = started.elapsed();
    sender.join().unwrap();
    assert_eq!(echoed, ECHO_BYTES, "echoed bytes");
    let _ = vm.wait_timeout(TIMEOUT);
    (mib_per_s(ECHO_BYTES, took), median(rtts))
}

/// `name: user+system seconds` of each of this process's threads.
fn thread_cpu() -> Vec<String> {
    let ticks = 100.0; // USER_HZ
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: utime and stime are the 12th and 13th.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let cpu: f64 =
            fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
        out.push(format!("{} {:.2}", comm.trim(), cpu / ticks));
    }
    out
}

// ---------------------------------------------------------------- QEMU side

fn qemu(kernel: &Path, initrd: &Path, extra: &[&str]) -> Child {
    Command::new("qemu-system-x86_64")
        .args(["-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=on,acpi=off"])
        .args(["-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", &MEM_MIB.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(cmdline())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting qemu-system-x86_64")
}

/// One QEMU boot to the ready line, then idle: (time to ready, memory).
fn qemu_idle(kernel: &Path, initrd: &Path) -> (Duration, IdleMemory) {
    let lines = Lines::default();
    let started = Instant::now();
    let mut child = qemu(kernel, initrd, &[]);
    lines.follow(child.stdout.take().unwrap());
    let ready = lines.wait_for(READY).duration_since(started);
    std::thread::sleep(SETTLE);
    let pid = child.id().to_string();
    let guest_touched = resident_guest_sized(&pid);
    let (rss, pss) = rss_pss(&pid);
    let _ = child.kill();
    eprintln!("  qemu idle: process RSS {rss} KiB, PSS {pss} KiB, guest RAM resident {guest_touched} KiB");
    let _ = child.wait();
    let memory = IdleMemory {
        guest_touched,
        rss_overhead: rss.saturating_sub(guest_touched),
        pss_overhead: pss.saturating_sub(guest_touched),
        growth: 0,
    };
    (ready, memory)
}

/// QEMU: MiB/s of `dd` reading the whole disk in the guest.
fn qemu_dd(kernel: &Path, initrd: &Path, disk: &Path) -> f64 {
    let lines = Lines::default();
    let drive = format!("file={},format=raw,if=none,id=d0,readonly=on", disk.display());
    let mut child = qemu(kernel, initrd, &["-drive", &drive, "-device", "virtio-blk-device,drive=d0"]);
    lines.follow(child.stdout.take().unwrap());
    let (start, end) = (lines.wait_for(DD_START), lines.wait_for(DD_END));
    let _ = child.wait();
    mib_per_s(std::fs::metadata(disk).unwrap().len() as usize, end - start)
}

// ---------------------------------------------------------------- figures

fn mib_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / f64::from(1 << 20) / took.as_secs_f64()
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn row(metric: &str, aci: &str, qemu: &str, ratio: &str) {
    println!("| {metric:<44} | {aci:>12} | {qemu:>12} | {ratio:>6} |");
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".to_string()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility: nothing to list.
    }
    if let Some(reason) = KvmHost::detect().unusable_reason() {
        eprintln!("vmm bench needs hardware KVM ({reason}); run `cargo xtask bench vmm`");
        std::process::exit(2);
    }
    let env =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let runs = env("ACI_BENCH_RUNS", 3).max(1);
    let disk_mib = env("ACI_BENCH_DISK_MIB", 128);
    let guest = aci_testkit::guest_dir();
    // Both VMMs boot the same bzImage (QEMU cannot boot an ELF vmlinux without a PVH note).
    let (kernel, agent_initrd) = (guest.join("bzImage"), guest.join("initramfs.cpio.gz"));
    // Unix sockets and the disk live in the temp dir (a tmpfs in L1; sockets cannot be bound
    // on the 9p workspace).
    let work = std::env::temp_dir().join(format!("aci-bench-vmm-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-vmm");
    std::fs::create_dir_all(&build).unwrap();

    let disk = work.join("disk.img");
    let data: Vec<u8> =
        (0..disk_mib << 20).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
    std::fs::write(&disk, &data).unwrap();
    drop(data);
    let dd_body = format!("echo {DD_START}\ndd if=/dev/vda of=/dev/null bs=1M 2>/dev/null\necho {DD_END}");
    let dd_initrd = bench_initramfs(&work, "dd.cpio", &[], &dd_body);
    let echo_body = format!("vsock_echo {ECHO_PORT}");
    let echo_initrd = bench_initramfs(&work, "echo.cpio", &[vsock_echo(&build)], &echo_body);

    let (mut aci_ready, mut qemu_ready, mut phases, mut aci_mem, mut qemu_mem) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut aci_blk, mut qemu_blk, mut vsock_mib, mut vsock_rtt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Boots are cheap: more of them than of the throughput runs (the issue asks for 10).
    let boot_runs = env("ACI_BENCH_BOOT_RUNS", 10).max(1);
    for run in 0..runs.max(boot_runs) {
        eprintln!("vmm bench: run {} of {}", run + 1, runs.max(boot_runs));
        if run < boot_runs {
            let (ready, boot, memory) = aci_idle(&kernel, &agent_initrd);
            aci_ready.push(ready);
            phases.push(boot);
            aci_mem.push(memory);
            let (ready, memory) = qemu_idle(&kernel, &agent_initrd);
            qemu_ready.push(ready);
            qemu_mem.push(memory);
        }
        if run >= runs {
            continue;
        }
        aci_blk.push(aci_dd(&kernel, &dd_initrd, &disk));
        qemu_blk.push(qemu_dd(&kernel, &dd_initrd, &disk));
        let (throughput, rtt) = aci_vsock(&kernel, &echo_initrd, &work);
        vsock_mib.push(throughput);
        vsock_rtt.push(rtt);
    }
    let _ = std::fs::remove_dir_all(&work);

    let secs = |d: Duration| d.as_secs_f64();
    let (ar, qr) = (median(aci_ready.clone()), median(qemu_ready));
    let pick = |f: fn(&aci::vmm::BootTimes) -> Option<Duration>| {
        median(phases.iter().map(|p| f(p).unwrap_or_default()).collect::<Vec<_>>())
    };
    let mem = |v: &[IdleMemory], f: fn(&IdleMemory) -> u64| median(v.iter().map(f).collect::<Vec<_>>());
    let (ab, qb) = (median(aci_blk), median(qemu_blk));
    println!();
    println!(
        "aci-vmm vs QEMU microvm (reference: same bzImage and initramfs, same run), 1 vCPU, {MEM_MIB} MiB;"
    );
    println!(
        "medians: {boot_runs} boots and {runs} throughput runs per side, interleaved; nested (L1) figures, \
         ~10x slower than hardware."
    );
    println!();
    row("metric", "aci-vmm", "qemu (ref)", "ratio");
    row(&"-".repeat(44), &"-".repeat(12), &"-".repeat(12), &"-".repeat(6));
    row("boot to agent ready", &ms(ar), &ms(qr), &ratio(secs(ar), secs(qr)));
    row("  aci phase: Vm::build returned", &ms(median(phases.iter().map(|p| p.built).collect())), "", "");
    row("  aci phase: kernel entry (first KVM_RUN)", &ms(pick(|p| p.kernel_entry)), "", "");
    row("  aci phase: first console byte", &ms(pick(|p| p.first_console_byte)), "", "");
    row("  aci phase: agent ready line", &ms(pick(|p| p.agent_ready)), "", "");
    let (ag, qg) = (mem(&aci_mem, |m| m.guest_touched), mem(&qemu_mem, |m| m.guest_touched));
    row("idle: guest RAM touched (host RSS)", &mib(ag), &mib(qg), &ratio(ag as f64, qg as f64));
    let (ao, qo) = (mem(&aci_mem, |m| m.rss_overhead), mem(&qemu_mem, |m| m.rss_overhead));
    row("idle: VMM process RSS beyond guest RAM (*)", &mib(ao), &mib(qo), &ratio(ao as f64, qo as f64));
    let (ap, qp) = (mem(&aci_mem, |m| m.pss_overhead), mem(&qemu_mem, |m| m.pss_overhead));
    row("idle: VMM process PSS beyond guest RAM (*)", &mib(ap), &mib(qp), &ratio(ap as f64, qp as f64));
    let growth = aci_mem.first().map(|m| m.growth).unwrap_or(0);
    row("idle: aci process growth, first VM (**)", &mib(growth), "", "");
    let dd = format!("virtio-blk sequential read, dd {disk_mib} MiB");
    row(&dd, &format!("{ab:.0} MiB/s"), &format!("{qb:.0} MiB/s"), &ratio(ab, qb));
    let vm = median(vsock_mib);
    let echo = format!("vsock echo, {} MiB each way", ECHO_BYTES >> 20);
    row(&echo, &format!("{vm:.1} MiB/s"), "n/a (***)", "");
    let rtt = format!("{:.0} us", median(vsock_rtt).as_secs_f64() * 1e6);
    row(&format!("vsock 1-byte round trip, median of {ROUND_TRIPS}"), &rtt, "n/a (***)", "");
    println!();
    for note in [
        "(*) the whole VMM process minus the guest RAM it backs: for aci this bench binary, which",
        "    embeds the VMM; for QEMU qemu-system-x86_64 with its shared libraries. Kernel-side KVM",
        "    memory (page tables, vCPU state) is in neither.",
        "(**) RSS the process gained by building and running its first VM, beyond guest RAM (later",
        "    VMs reuse freed heap and thread arenas, so only the first is meaningful).",
        "(***) QEMU's vsock is vhost-vsock (/dev/vhost-vsock, AF_VSOCK on the host); the nested",
        "    runner's kernel does not load vhost_vsock, so there is no reference line for it.",
    ] {
        println!("{note}");
    }
}
