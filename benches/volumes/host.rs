//! The host-directory reference: the workload script run by `/bin/busybox sh` on a host
//! directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::lines::Lines;

/// Phase durations of `script` on the host directory `dir` (created if missing).
pub fn run(script: &str, dir: &Path) -> Vec<Duration> {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = Command::new("/bin/busybox")
        .args(["sh", "-c", script])
        .env("D", dir)
        .env_remove("DROP_CACHES")
        .stdout(Stdio::piped())
        .spawn()
        .expect("running /bin/busybox sh");
    let mut lines = Lines::default();
    lines.copy_from(child.stdout.take().unwrap());
    assert!(child.wait().unwrap().success());
    lines.phases(&String::new)
}
