//! Guest-side fixtures for the virtio KVM tests: a work directory under `target/`, static C
//! helpers compiled with `gcc -static`, a newc initramfs (static busybox, the helpers and an
//! `/init` script) written directly (so `/dev/console` exists without `mknod`), and a console
//! that tests can wait on.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// The guest kernel from `ACI_GUEST_DIR` (default `target/guest`).
pub fn guest_kernel() -> PathBuf {
    let dir = aci_testkit::guest_dir();
    let kernel = dir.join("vmlinux");
    assert!(kernel.exists(), "no guest kernel at {} (run `cargo xtask guest`)", kernel.display());
    kernel
}

/// A fresh work directory `target/kvm_virtio/<test>`.
pub fn work_dir(test: &str) -> PathBuf {
    let dir = target_dir().join("kvm_virtio").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A directory for Unix sockets: they cannot live on the 9p-shared `target/` inside L1, so
/// they go to the (per-run tmpfs) temp dir.
pub fn socket_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aci-kvm-virtio-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `tests/guest/<name>.c` statically into `target/kvm_virtio/bin/` unless the
/// binary there is newer than the source (gcc is slow under L1's emulated CPU).
pub fn compile_helper(name: &str) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guest").join(format!("{name}.c"));
    let bin_dir = target_dir().join("kvm_virtio/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let out = bin_dir.join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if matches!((modified(&out), modified(&src)), (Some(o), Some(s)) if o > s) {
        return out;
    }
    let started = Instant::now();
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on {}", src.display());
    println!("compiled {name} in {:?}", started.elapsed());
    out
}

/// Writes `dir/initramfs.cpio` with busybox, the `helpers` (into `/bin`) and an `/init` that
/// mounts the pseudo filesystems, runs `body`, prints `ACI-TEST-DONE` and reboots.
pub fn build_initramfs(dir: &Path, helpers: &[PathBuf], body: &str) -> PathBuf {
    let mut cpio = aci_storage::initramfs::Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox").expect("static busybox at /bin/busybox"));
    for helper in helpers {
        let name = helper.file_name().unwrap().to_str().unwrap();
        cpio.file(&format!("bin/{name}"), 0o755, &std::fs::read(helper).unwrap());
    }
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t devtmpfs dev /dev\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         {body}\n\
         echo ACI-TEST-DONE\n\
         reboot -f\n"
    );
    cpio.file("init", 0o755, init.as_bytes());
    let path = dir.join("initramfs.cpio");
    std::fs::write(&path, cpio.finish()).unwrap();
    path
}

/// Collects the guest console; tests wait for markers in it.
#[derive(Clone, Default)]
pub struct Console(Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Console {
    /// Everything printed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits until `marker` appears; panics with the console after `timeout`.
    pub fn wait_for(&self, marker: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(marker) {
            assert!(Instant::now() < deadline, "no '{marker}' on the console:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The rest of the first line that starts with `prefix`.
    pub fn line_after(&self, prefix: &str) -> Option<String> {
        self.text().lines().find_map(|l| l.trim_end_matches('\r').strip_prefix(prefix).map(str::to_string))
    }
}
