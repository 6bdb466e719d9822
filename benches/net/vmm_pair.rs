//! aci-vmm against QEMU (`-M microvm -accel kvm`, userspace virtio-net, no vhost) on the same
//! network path: the same kernel (the bzImage, which both can boot) and a busybox initramfs
//! that runs the `aci-nettool` servers, one vCPU each, a virtio-net device on a tap (with
//! `IFF_VNET_HDR`) enslaved to a bridge in a namespace of the bench's own; the clients run in
//! that namespace. Only the VMM differs between the two rows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aci::storage::initramfs::Archive;
use aci::vmm::{ExitStats, NetConfig, SerialOutput, TapSource, Vm, VmConfig, DEFAULT_CMDLINE};

use crate::tool::{client, wait_for_echo, Place};
use crate::{measure, PathFigures, Workload};

const GUEST_IP: &str = "10.253.0.2";
const BRIDGE_IP: &str = "10.253.0.1/24";
const TAP: &str = "nbtap0";
const MEM_MIB: u32 = 256;
const MAC: [u8; 6] = [0x02, 0xac, 0x1d, 0xbe, 0, 2];
/// How long a guest may take to answer (boot included).
const START_WAIT: Duration = Duration::from_secs(120);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A namespace with bridge `br0` at [`BRIDGE_IP`]; deleted (with its tap) when dropped.
struct Lan {
    ns: String,
}

impl Lan {
    fn new(ns: &str) -> Self {
        ip(&["netns", "add", ns]);
        let lan = Self { ns: ns.to_owned() };
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", ns, "addr", "add", BRIDGE_IP, "dev", "br0"]);
        ip(&["-n", ns, "link", "set", "br0", "up"]);
        lan
    }

    /// Puts the tap on the bridge.
    fn wire(&self) {
        ip(&["-n", &self.ns, "link", "set", TAP, "master", "br0", "up"]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// The busybox + `aci-nettool` initramfs whose `/init` configures `eth0` and starts the
/// servers on `ports` (echo, sink, serve).
fn initramfs(dir: &Path, ports: [u16; 3], mib: u64) -> PathBuf {
    let mut cpio = Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox").expect("static busybox at /bin/busybox"));
    cpio.file("bin/aci-nettool", 0o755, &std::fs::read(aci_testkit::nettool_binary()).unwrap());
    let [echo, sink, serve] = ports;
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t devtmpfs dev /dev\n\
         mount -t proc proc /proc\nmount -t sysfs sys /sys\nip link set lo up\n\
         ip addr add {GUEST_IP}/24 dev eth0\nip link set eth0 up\n\
         aci-nettool tcp-echo {echo} &\naci-nettool tcp-sink {sink} &\n\
         aci-nettool tcp-serve {serve} {mib} &\nwhile true; do sleep 3600; done\n"
    );
    cpio.file("init", 0o755, init.as_bytes());
    let path = dir.join("net-servers.cpio");
    std::fs::write(&path, cpio.finish()).unwrap();
    path
}

/// VM exits per MiB each way, and frames per MiB, for one transfer each way (aci only).
pub struct ExitFigures {
    /// (MMIO writes, MMIO reads, all exits) per MiB, host→guest.
    pub up: (f64, f64, f64),
    /// The same, guest→host.
    pub down: (f64, f64, f64),
    /// virtio-net requests (packets) per MiB, host→guest and guest→host.
    pub packets: (f64, f64),
}

fn per_mib(before: &ExitStats, after: &ExitStats, mib: f64) -> (f64, f64, f64) {
    let d = |a: u64, b: u64| (a - b) as f64 / mib;
    (
        d(after.mmio_writes, before.mmio_writes),
        d(after.mmio_reads, before.mmio_reads),
        d(after.total(), before.total()),
    )
}

/// Counts exits around one transfer each way through `vm`.
fn exit_figures(vm: &Vm, place: &Place, ports: [u16; 3], mib: u64) -> ExitFigures {
    let sink = format!("{GUEST_IP}:{}", ports[1]);
    let serve = format!("{GUEST_IP}:{}", ports[2]);
    let snap = || {
        let m = vm.metrics();
        (m.exits, m.device("eth0").map(|d| d.requests).unwrap_or(0))
    };
    let (e0, r0) = snap();
    client(place, &["tcp-source", &sink, &mib.to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let (e1, r1) = snap();
    client(place, &["tcp-fetch", &serve]).unwrap_or_else(|e| panic!("{e}"));
    let (e2, r2) = snap();
    let m = mib as f64;
    ExitFigures {
        up: per_mib(&e0, &e1, m),
        down: per_mib(&e1, &e2, m),
        packets: ((r1 - r0) as f64 / m, (r2 - r1) as f64 / m),
    }
}

/// The figures of aci-vmm and of QEMU, and aci-vmm's exit counts.
pub struct PairFigures {
    /// aci-vmm.
    pub aci: PathFigures,
    /// QEMU.
    pub qemu: PathFigures,
    /// aci-vmm's exits per MiB.
    pub exits: ExitFigures,
}

/// Boots the servers' guest under aci-vmm, then under QEMU, and measures both.
pub fn run(tag: &str, ports: [u16; 3], w: Workload) -> PairFigures {
    let guest = aci_testkit::guest_dir();
    let kernel = guest.join("bzImage");
    let work = std::env::temp_dir().join(format!("aci-bench-net-vmm-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let initrd = initramfs(&work, ports, w.mib);
    let echo = format!("{GUEST_IP}:{}", ports[0]);

    let (aci, exits) = {
        let lan = Lan::new(&format!("{tag}a"));
        let place = Place::Netns(lan.ns.clone());
        let fd = aci::net::tap::open_in(&lan.ns, TAP, true).expect("creating the tap");
        lan.wire();
        let mut config = VmConfig::new(&kernel);
        config.initrd = Some(initrd.clone());
        config.memory_mib = MEM_MIB;
        config.cmdline = DEFAULT_CMDLINE.to_string();
        config.serial_output = SerialOutput::Sink;
        config.nets = vec![NetConfig { tap: TapSource::Fd(fd), mac: MAC }];
        let mut vm = Vm::build(config).expect("building the VM");
        wait_for_echo(&place, &echo, START_WAIT).unwrap_or_else(|e| panic!("aci-vmm guest: {e}"));
        let figures = measure(&place, GUEST_IP, ports, w);
        let exits = exit_figures(&vm, &place, ports, w.mib);
        vm.stop();
        (figures, exits)
    };

    let qemu = {
        let lan = Lan::new(&format!("{tag}q"));
        let place = Place::Netns(lan.ns.clone());
        ip(&["-n", &lan.ns, "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr"]);
        lan.wire();
        let mut child = qemu(&lan.ns, &kernel, &initrd);
        let ready = wait_for_echo(&place, &echo, START_WAIT);
        let figures = ready.map(|()| measure(&place, GUEST_IP, ports, w));
        let _ = child.kill();
        let _ = child.wait();
        figures.unwrap_or_else(|e| panic!("QEMU guest: {e}"))
    };
    let _ = std::fs::remove_dir_all(&work);
    PairFigures { aci, qemu, exits }
}

/// QEMU in namespace `ns`, its virtio-net device on the tap there.
fn qemu(ns: &str, kernel: &Path, initrd: &Path) -> Child {
    let mac = MAC.map(|b| format!("{b:02x}")).join(":");
    Command::new("ip")
        .args(["netns", "exec", ns, "qemu-system-x86_64"])
        .args(["-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=on,acpi=off"])
        .args(["-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", &MEM_MIB.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "null"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", DEFAULT_CMDLINE])
        .args(["-netdev", &format!("tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off")])
        .args(["-device", &format!("virtio-net-device,netdev=n0,mac={mac}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting qemu-system-x86_64")
}
