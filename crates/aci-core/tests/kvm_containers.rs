//! KVM tier, end to end: containers in the real guest.
//!
//! Boots the guest with a busybox root filesystem as an erofs virtio-blk disk (built with
//! `mkfs.erofs` from the host's static `/bin/busybox`), mounts it with `MountStorage` (found
//! by serial), and runs two containers sharing the guest's network stack: a `busybox httpd`
//! serving a file on 127.0.0.1:8080 and a client fetching it with `wget`. Checks the
//! client's streamed logs carry the body, an exec with arguments (output and exit code),
//! non-zero `Stats`, `Signal`, and that `Shutdown` stops the containers and the VM. Prints
//! the create→started timings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::agent::{connect, Channel};
use aci_proto::container::{ContainerConfig, ContainerState, ExecConfig, LogsRequest};
use aci_proto::frame::FrameKind;
use aci_proto::message::{AgentEvent, Call, Reply, STDOUT};
use aci_proto::sandbox::{SandboxConfig, StorageMount, StorageSource};
use aci_storage::rootfs::{mkfs_erofs, ErofsCompression};
use aci_vmm::{DiskConfig, ExitReason, SerialOutput, Vm, VmConfig, VsockConfig};

const TIMEOUT: Duration = Duration::from_secs(60);
const IMAGE_ROOT: &str = "/run/aci/images/busybox";

fn kvm_gate(test: &str) -> bool {
    aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
        && aci_testkit::require_tools(test, &["mkfs.erofs", "busybox"])
}

/// A busybox root: `/bin/busybox` and a link per applet, `/etc/passwd`, `/www/index.html`.
fn busybox_tree(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "www"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let busybox = aci_testkit::which("busybox").unwrap();
    std::fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "served-by-the-httpd-container\n").unwrap();
}

fn scratch() -> PathBuf {
    // Unix sockets need a local filesystem (in the nested runner the workspace is 9p).
    let dir = std::env::temp_dir().join(format!("aci-kvm-containers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(name: &str, args: &[&str]) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        image_root: IMAGE_ROOT.into(),
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..ContainerConfig::default()
    }
}

fn started(ch: &mut Channel<std::os::unix::net::UnixStream>, name: &str) -> (u32, Duration) {
    let t = Instant::now();
    ch.call(Call::CreateContainer(config_for(name))).unwrap();
    let Reply::Started { pid } = ch.call(Call::StartContainer { name: name.into() }).unwrap() else {
        panic!()
    };
    (pid, t.elapsed())
}

fn config_for(name: &str) -> ContainerConfig {
    match name {
        "web" => config("web", &["httpd", "-f", "-p", "8080", "-h", "/www"]),
        "client" => config(
            "client",
            &[
                "sh",
                "-c",
                "for i in $(seq 1 100); do wget -q -O- http://127.0.0.1:8080/index.html && break; sleep 0.2; done; \
                 echo client-done; exec sleep 1000",
            ],
        ),
        other => panic!("no config for {other}"),
    }
}

#[test]
#[ignore = "KVM tier: boots the guest; run by `cargo xtask test`"]
fn two_containers_share_localhost_and_are_driven_end_to_end() {
    if !kvm_gate("two_containers_share_localhost_and_are_driven_end_to_end") {
        return;
    }
    let dir = scratch();
    let tree = dir.join("tree");
    busybox_tree(&tree);
    let disk = dir.join("busybox.erofs");
    mkfs_erofs(&tree, &disk, ErofsCompression::None).unwrap();

    let guest = aci_testkit::guest_dir();
    let mut vm_config = VmConfig::new(guest.join("vmlinux"));
    vm_config.initrd = Some(guest.join("initramfs.cpio.gz"));
    vm_config.serial_output = SerialOutput::Stdout;
    vm_config.memory_mib = 512;
    let uds = dir.join("agent.vsock");
    vm_config.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
    vm_config.disks =
        vec![DiskConfig { path: disk.clone(), read_only: true, serial: Some("image-busybox".into()) }];
    let boot = Instant::now();
    let mut vm = Vm::build(vm_config).expect("building the VM");
    let (mut ch, _) = connect(&uds, TIMEOUT).expect("agent hello");
    let booted = boot.elapsed();

    let clock_unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let sandbox = SandboxConfig { hostname: "group-e2e".into(), clock_unix_ms, ..SandboxConfig::default() };
    ch.call(Call::ConfigureSandbox(sandbox)).unwrap();
    let mount = StorageMount {
        id: "busybox".into(),
        mount_point: IMAGE_ROOT.into(),
        source: StorageSource::Block { serial: "image-busybox".into(), fs_type: "erofs".into() },
        read_only: true,
    };
    ch.call(Call::MountStorage(mount)).unwrap();

    let mut events = connect(&uds, TIMEOUT).unwrap().0;
    assert_eq!(events.call(Call::Events).unwrap(), Reply::Streaming);

    let (web_pid, web_start) = started(&mut ch, "web");
    let (client_pid, client_start) = started(&mut ch, "client");
    for (name, pid) in [("web", web_pid), ("client", client_pid)] {
        assert_eq!(
            events.next_event().unwrap(),
            Some(AgentEvent::ContainerStarted { name: name.into(), pid })
        );
    }

    // The client's logs, followed: the body served by the other container over localhost.
    let mut logs = connect(&uds, TIMEOUT).unwrap().0;
    logs.call(Call::Logs(LogsRequest { container: "client".into(), tail: None, follow: true })).unwrap();
    let t = Instant::now();
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l == "client-done") {
        match logs.next_event().unwrap() {
            Some(AgentEvent::Log(entry)) => {
                assert!(entry.time_unix_ns / 1_000_000 >= clock_unix_ms - 60_000, "{entry:?}");
                lines.push(entry.line);
            }
            other => panic!("unexpected {other:?} after {lines:?}"),
        }
    }
    let fetched = t.elapsed();
    assert!(lines.contains(&"served-by-the-httpd-container".to_string()), "{lines:?}");
    drop(logs);

    // Exec with arguments in the web container: output and exit code.
    let mut exec = connect(&uds, TIMEOUT).unwrap().0;
    let call = Call::Exec(ExecConfig {
        container: "web".into(),
        args: ["sh", "-c", "echo $1 $(hostname) $(cat /www/index.html); exit 7", "sh", "arg-one"]
            .map(String::from)
            .to_vec(),
        ..ExecConfig::default()
    });
    let t = Instant::now();
    assert!(matches!(exec.call(call).unwrap(), Reply::ExecStarted { .. }));
    let mut out = Vec::new();
    let status = loop {
        let frame = exec.next_frame().unwrap();
        match (frame.kind, frame.stream) {
            (FrameKind::Data, STDOUT) => out.extend(frame.payload),
            (FrameKind::Event, _) => match serde_json::from_slice(&frame.payload).unwrap() {
                AgentEvent::ExecExited(status) => break status,
                other => panic!("{other:?}"),
            },
            _ => {}
        }
    };
    let exec_time = t.elapsed();
    assert_eq!(String::from_utf8_lossy(&out), "arg-one group-e2e served-by-the-httpd-container\n");
    assert_eq!(status.code, 7);

    // Stats from the guest's cgroups.
    let Reply::Stats(stats) = ch.call(Call::Stats).unwrap() else { panic!() };
    for s in &stats.containers {
        println!("kvm_containers: stats {s:?}");
        assert!(s.cpu_usage_usec > 0 && s.memory_current_bytes > 0 && s.pids_current > 0, "{s:?}");
    }
    assert_eq!(stats.containers.len(), 2);

    // Signal ends the client; the web container keeps running.
    ch.call(Call::Signal { name: "client".into(), signal: 9 }).unwrap();
    let Reply::Exited(exit) = ch.call(Call::WaitContainer { name: "client".into() }).unwrap() else {
        panic!()
    };
    assert_eq!(exit.signal, Some(9));
    match events.next_event().unwrap() {
        Some(AgentEvent::ContainerExited { name, status }) => {
            assert_eq!((name.as_str(), status), ("client", exit))
        }
        other => panic!("{other:?}"),
    }
    let Reply::Containers { containers } = ch.call(Call::ListContainers).unwrap() else { panic!() };
    let web = containers.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.state, ContainerState::Running);

    // Shutdown stops the web container (SIGTERM, then SIGKILL after the grace) and the VM.
    let t = Instant::now();
    assert_eq!(ch.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
    let end = vm.wait_timeout(Duration::from_secs(120)).unwrap_or_else(|| vm.stop());
    assert_eq!(end.reason, ExitReason::GuestReset, "{end:?}");
    println!(
        "kvm_containers: boot to agent {booted:?}; create→started web {web_start:?}, client {client_start:?}; \
         body in the client's logs {fetched:?} after following; exec round trip {exec_time:?}; \
         shutdown with a running container {:?}",
        t.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
