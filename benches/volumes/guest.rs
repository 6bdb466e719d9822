//! The guest side: a busybox initramfs whose `/init` mounts the share at /mnt, runs the
//! workload on it and powers off; the VM that boots it; the phase times from its console.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aci::storage::initramfs::Archive;
use aci::vmm::{NetConfig, SerialOutput, ShareConfig, Vm, VmConfig};

use crate::lines::{Lines, TIMEOUT};
use crate::workload::FAILED;

/// A busybox initramfs whose `/init` runs `setup` (network, mount of the share at /mnt),
/// then `script` on `D=/mnt` with `DROP_CACHES` set, and reboots (which ends the VM:
/// `reboot=t`). `setup` must print a line starting with [`FAILED`] when it fails.
pub fn initramfs(path: &Path, setup: &str, script: &str) -> PathBuf {
    let mut cpio = Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "mnt"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox").expect("static busybox at /bin/busybox"));
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t devtmpfs dev /dev\n\
         mount -t proc proc /proc\nmount -t sysfs sys /sys\n\
         {setup}\nD=/mnt\nDROP_CACHES=1\n{script}reboot -f\n"
    );
    cpio.file("init", 0o755, init.as_bytes());
    std::fs::write(path, cpio.finish()).unwrap();
    path.to_path_buf()
}

/// The `/init` setup line of a virtio-fs share tagged `tag`.
pub fn virtiofs_setup(tag: &str) -> String {
    format!("mount -t virtiofs {tag} /mnt || {{ echo {FAILED}: mount; reboot -f; }}")
}

/// What the guest is given besides the initramfs.
pub enum Device {
    /// A virtio-fs share of this host directory, tag `bench`.
    Share(PathBuf),
    /// A virtio-net device on this tap.
    Net(NetConfig),
}

impl Device {
    /// The name of the device's counters in `Vm::metrics()`.
    fn counters(&self) -> &'static str {
        match self {
            Self::Share(_) => "fs0",
            Self::Net(_) => "eth0",
        }
    }
}

/// Boots `initrd` with `device`; returns the phase durations and the device's counters.
/// Checks the guest's summary line (`files` files created).
pub fn run(kernel: &Path, initrd: &Path, device: Device, files: usize) -> (Vec<Duration>, String) {
    let lines = Lines::default();
    let mut config = VmConfig::new(kernel);
    config.initrd = Some(initrd.to_path_buf());
    config.memory_mib = 256;
    config.serial_output = SerialOutput::Writer(Box::new(lines.clone()));
    let counters = device.counters();
    match device {
        Device::Share(path) => {
            config.shares = vec![ShareConfig { tag: "bench".into(), path, read_only: false }];
        }
        Device::Net(net) => config.nets = vec![net],
    }
    let mut vm = Vm::build(config).expect("building the VM");
    let progress = || {
        let first = vm.metrics().device(counters).copied();
        std::thread::sleep(Duration::from_secs(5));
        format!("{counters} {first:?}, 5 s later {:?}", vm.metrics().device(counters))
    };
    let times = lines.phases(&progress);
    let _ = vm.wait_timeout(TIMEOUT);
    let counts = format!("{counters} {:?}", vm.metrics().device(counters));
    let summary = lines.find("bench-files=").unwrap_or_default();
    if let Some(mount) = lines.find("bench-mount: ") {
        eprintln!("  guest {mount}");
    }
    if std::env::var_os("ACI_BENCH_CONSOLE").is_some() {
        eprintln!("  guest console:\n{}", lines.text().join("\n"));
    }
    assert!(
        summary.starts_with(&format!("bench-files={files} ")),
        "the guest did not create every file ({summary}):\n{}",
        lines.text().join("\n")
    );
    (times, format!("{summary}; {counts}"))
}
