//! KVM tier: the host library talks to the real guest agent over the VMM's virtio-vsock.
//!
//! Boots the guest (kernel + agent initramfs from `ACI_GUEST_DIR`, default
//! `<workspace>/target/guest`) with a vsock device, connects through the Unix socket with
//! the `CONNECT` handshake, and checks hello (version), ping, a version mismatch, and that
//! `shutdown` ends the VM with a guest reset.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aci_core::agent::{connect, Channel, ChannelError};
use aci_proto::message::{Call, Reply};
use aci_proto::PROTOCOL_VERSION;
use aci_vmm::{ExitReason, SerialOutput, Vm, VmConfig, VsockConfig};

fn kvm_gate(test: &str) -> bool {
    aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
}

fn boot_with_vsock(name: &str) -> (Vm, PathBuf) {
    let dir = aci_testkit::guest_dir();
    // A Unix socket needs a local filesystem (in the nested runner the workspace is 9p).
    let scratch = std::env::temp_dir().join("aci-kvm-agent");
    std::fs::create_dir_all(&scratch).unwrap();
    let uds = scratch.join(format!("{name}-{}.vsock", std::process::id()));
    let _ = std::fs::remove_file(&uds);
    let mut config = VmConfig::new(dir.join("vmlinux"));
    config.initrd = Some(dir.join("initramfs.cpio.gz"));
    config.serial_output = SerialOutput::Stdout;
    config.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
    (Vm::build(config).expect("building the VM"), uds)
}

#[test]
#[ignore = "KVM tier: boots the guest; run by `cargo xtask test`"]
fn host_talks_to_agent_over_vsock_and_shuts_it_down() {
    if !kvm_gate("host_talks_to_agent_over_vsock_and_shuts_it_down") {
        return;
    }
    let started = Instant::now();
    let (mut vm, uds) = boot_with_vsock("hello");
    let (mut channel, info) = connect(&uds, Duration::from_secs(30)).expect("agent hello");
    let connected = started.elapsed();
    assert_eq!(info.agent, env!("CARGO_PKG_VERSION"));
    assert!(info.uptime_ms > 0);
    let ping_start = Instant::now();
    assert_eq!(channel.call(Call::Ping).unwrap(), Reply::Pong);
    let ping = ping_start.elapsed();
    assert_eq!(channel.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
    let exit = vm.wait_timeout(Duration::from_secs(30)).unwrap_or_else(|| vm.stop());
    assert_eq!(exit.reason, ExitReason::GuestReset, "{exit:?}");
    println!(
        "kvm_agent: agent hello after {connected:?} (guest uptime {} ms), ping round trip {ping:?}, \
         VM ended {:?} after shutdown",
        info.uptime_ms, exit.reason
    );
}

#[test]
#[ignore = "KVM tier: boots the guest; run by `cargo xtask test`"]
fn agent_refuses_another_protocol_version_by_name() {
    if !kvm_gate("agent_refuses_another_protocol_version_by_name") {
        return;
    }
    let (mut vm, uds) = boot_with_vsock("mismatch");
    // Wait until the agent answers, then open a second connection speaking a future version.
    let (mut good, _) = connect(&uds, Duration::from_secs(30)).expect("agent hello");
    let mut stream = std::os::unix::net::UnixStream::connect(&uds).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::io::Write::write_all(&mut stream, b"CONNECT 1024\n").unwrap();
    let mut ok = [0u8; 64];
    let mut n = 0;
    while n == 0 || ok[n - 1] != b'\n' {
        n += std::io::Read::read(&mut stream, &mut ok[n..]).unwrap();
    }
    let mut future = Channel::new(stream);
    let err = future.call(Call::Hello { protocol: PROTOCOL_VERSION + 1, host: "future".into() }).unwrap_err();
    assert!(matches!(err, ChannelError::VersionMismatch(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains(&PROTOCOL_VERSION.to_string()), "{message}");
    println!("kvm_agent: mismatch reported as: {message}");
    assert_eq!(good.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
    let exit = vm.wait_timeout(Duration::from_secs(30)).unwrap_or_else(|| vm.stop());
    assert_eq!(exit.reason, ExitReason::GuestReset);
}
