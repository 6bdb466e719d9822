//! Shared set-up of the KVM-tier tests that boot the guest directly (no runtime) and talk to
//! its agent: the console, a VM config with the built guest and a vsock, a busybox root
//! filesystem, a finished container's logs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aci_core::agent::connect;
use aci_proto::container::LogsRequest;
use aci_proto::message::{AgentEvent, Call, Reply};
use aci_vmm::{SerialOutput, VmConfig, VsockConfig};

/// How long the agent has to answer (nested TCG is slow).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The guest's console, kept for assertions and echoed to stdout.
#[derive(Clone, Default)]
pub struct Console(Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stdout().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl Console {
    /// What the guest wrote so far, without carriage returns.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).replace('\r', "")
    }
}

/// A VM config booting the guest of [`aci_testkit::guest_dir`] with its serial console on
/// the returned [`Console`] and the agent's vsock on the returned `dir/agent.vsock`.
pub fn vm_config(dir: &Path) -> (VmConfig, Console, PathBuf) {
    let guest = aci_testkit::guest_dir();
    let console = Console::default();
    let mut config = VmConfig::new(guest.join("vmlinux"));
    config.initrd = Some(guest.join("initramfs.cpio.gz"));
    config.serial_output = SerialOutput::Writer(Box::new(console.clone()));
    let uds = dir.join("agent.vsock");
    config.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
    (config, console, uds)
}

/// The output of a command (panics when it cannot run or fails).
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox root filesystem under `tree`: the directories `bin`, `etc` and `dirs`,
/// `/bin/busybox` with a link per applet, root's passwd and group entries.
pub fn busybox_tree(tree: &Path, dirs: &[&str]) {
    for d in ["bin", "etc"].iter().chain(dirs) {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).unwrap();
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).unwrap();
    }
    std::fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(tree.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The log lines of a finished container, read on a connection of their own.
pub fn logs(uds: &Path, name: &str) -> Vec<String> {
    let (mut ch, _) = connect(uds, TIMEOUT).unwrap();
    let request = LogsRequest { container: name.into(), tail: None, follow: false };
    assert_eq!(ch.call(Call::Logs(request)).unwrap(), Reply::Streaming);
    let mut lines = Vec::new();
    loop {
        match ch.next_event().unwrap() {
            Some(AgentEvent::Log(entry)) => lines.push(entry.line),
            Some(AgentEvent::LogEnd) | None => return lines,
            Some(other) => panic!("unexpected event {other:?}"),
        }
    }
}
