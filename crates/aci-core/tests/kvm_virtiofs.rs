//! KVM tier: virtio-fs host directory shares (the VMM's device) against the real guest.
//!
//! Two shares of host directories are attached to a booted guest; the agent mounts them by
//! tag (`StorageSource::Virtiofs`) and a busybox container (the agent's engine) uses them:
//!
//! - both directions: a file the host wrote before the container ran is read in the guest;
//!   files and a directory the container writes appear on the host;
//! - a read-only share (mounted read-write in the guest, so the refusal is the VMM's) refuses
//!   creation, appending and removal with "Read-only file system" and is unchanged after;
//! - escapes: `..` from the share's mount, a symlink to `../..`, an absolute symlink to the
//!   host directory around the share and one to `/etc` show no host file outside the share
//!   (a marker file next to the share never appears; `/etc/passwd` is the image's);
//! - the device's counters (`fs0`, `fs1`) saw the traffic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod guest_support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use aci_core::agent::{connect, Channel, ChannelError};
use aci_proto::container::{BindMount, ContainerConfig};
use aci_proto::message::{Call, Reply};
use aci_proto::sandbox::{SandboxConfig, StorageMount, StorageSource};
use aci_storage::rootfs::{mkfs_erofs, ErofsCompression};
use aci_vmm::{DiskConfig, ExitReason, ShareConfig, Vm, VmConfig};
use guest_support::{busybox_tree, logs, TIMEOUT};

/// Written next to the share on the host; the guest must never see it.
const MARKER: &str = "host-only-marker-5d1c";

fn mount(agent: &mut Channel<std::os::unix::net::UnixStream>, id: &str, source: StorageSource) {
    let mount = StorageMount {
        id: id.into(),
        mount_point: format!("/run/aci/volumes/{id}"),
        source,
        read_only: false,
    };
    match agent.call(Call::MountStorage(mount)) {
        Ok(Reply::Done) => {}
        Ok(other) => panic!("mount {id}: unexpected reply {other:?}"),
        Err(ChannelError::Remote(err)) => panic!("mount {id}: {}", err.message),
        Err(err) => panic!("mount {id}: {err}"),
    }
}

const SCRIPT: &str = "\
    echo from-host=$(cat /data/from-host.txt); \
    echo from the guest > /data/from-guest.txt; \
    mkdir /data/made-in-guest && echo nested > /data/made-in-guest/file; \
    dd if=/dev/zero of=/data/big bs=64k count=32 2>/dev/null; \
    echo big=$(wc -c < /data/big); \
    echo ro-read=$(cat /ro/readme.txt); \
    echo ro-create=$(touch /ro/new 2>&1 || true); \
    echo ro-append=$(sh -c 'echo more >> /ro/readme.txt' 2>&1 || true); \
    echo ro-remove=$(rm /ro/readme.txt 2>&1 || true); \
    echo ro-mkdir=$(mkdir /ro/dir 2>&1 || true); \
    echo escape-dotdot=$(cat /data/../outside.txt 2>&1; ls /data/.. 2>&1 | tr '\\n' ' '); \
    echo escape-up=$(cat /data/up/outside.txt /data/up/share/../outside.txt 2>&1); \
    echo escape-abs=$(cat /data/abs/outside.txt 2>&1); \
    echo escape-etc=$(cat /data/etc-link/passwd 2>&1 | tr '\\n' ' '); \
    echo end";

#[test]
#[ignore = "KVM tier: boots the guest and runs a container on virtio-fs shares; run by `cargo xtask test`"]
fn virtiofs_shares_carry_files_both_ways_refuse_writes_when_read_only_and_stay_closed() {
    let test = "virtiofs_shares_carry_files_both_ways_refuse_writes_when_read_only_and_stay_closed";
    if !aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
        || !aci_testkit::require_tools(test, &["mkfs.erofs"])
    {
        return;
    }
    let busybox = Path::new("/bin/busybox").is_file().then_some(()).ok_or("no /bin/busybox (busybox-static)");
    if !aci_testkit::requirement(test, busybox.err()) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("aci-kvm-virtiofs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tree = dir.join("tree");
    busybox_tree(&tree, &["proc", "sys", "dev", "tmp", "data", "ro"]);
    let erofs = dir.join("image.erofs");
    mkfs_erofs(&tree, &erofs, ErofsCompression::Lz4).unwrap();

    // outer/outside.txt must stay invisible; outer/share is the writable share.
    let outer = dir.join("outer");
    let share = outer.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(outer.join("outside.txt"), MARKER).unwrap();
    std::os::unix::fs::symlink("../..", share.join("up")).unwrap();
    std::os::unix::fs::symlink(&outer, share.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc", share.join("etc-link")).unwrap();
    let ro = dir.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("readme.txt"), "read me\n").unwrap();

    let (mut config, console, uds) = guest_support::vm_config(&dir);
    config.disks = vec![DiskConfig { path: erofs, read_only: true, serial: Some("aci-image".into()) }];
    config.shares = vec![
        ShareConfig { tag: "vol-data".into(), path: share.clone(), read_only: false },
        ShareConfig { tag: "vol-ro".into(), path: ro.clone(), read_only: true },
    ];
    let mut vm = Vm::build(config).expect("building the VM");
    let (mut agent, _) = connect(&uds, TIMEOUT).expect("agent hello");

    let sandbox = SandboxConfig { hostname: "sbx-fs".into(), ..Default::default() };
    assert_eq!(agent.call(Call::ConfigureSandbox(sandbox)).unwrap(), Reply::Done);
    let image = StorageMount {
        id: "image".into(),
        mount_point: "/run/aci/image".into(),
        source: StorageSource::Block { serial: "aci-image".into(), fs_type: "erofs".into() },
        read_only: true,
    };
    assert_eq!(agent.call(Call::MountStorage(image)).unwrap(), Reply::Done);
    let t = Instant::now();
    mount(&mut agent, "data", StorageSource::Virtiofs { tag: "vol-data".into() });
    // Mounted read-write in the guest: the refusals below come from the VMM.
    mount(&mut agent, "ro", StorageSource::Virtiofs { tag: "vol-ro".into() });
    let mounted = t.elapsed();
    // Written after the guest mounted the share.
    std::fs::write(share.join("from-host.txt"), "hello from the host\n").unwrap();

    let bind = |volume: &str, destination: &str| BindMount {
        source: format!("/run/aci/volumes/{volume}"),
        destination: destination.into(),
        read_only: false,
    };
    let container = ContainerConfig {
        name: "fs".into(),
        image_root: "/run/aci/image".into(),
        args: vec!["sh".into(), "-c".into(), SCRIPT.into()],
        mounts: vec![bind("data", "/data"), bind("ro", "/ro")],
        ..ContainerConfig::default()
    };
    let t = Instant::now();
    assert_eq!(agent.call(Call::CreateContainer(container)).unwrap(), Reply::Done);
    assert!(matches!(agent.call(Call::StartContainer { name: "fs".into() }).unwrap(), Reply::Started { .. }));
    let Reply::Exited(status) = agent.call(Call::WaitContainer { name: "fs".into() }).unwrap() else {
        panic!("wait reply")
    };
    let ran = t.elapsed();
    let lines = logs(&uds, "fs");
    println!("{test}: container output:\n{}", lines.join("\n"));
    assert_eq!(status.code, 0, "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("end"), "{lines:?}");
    let get = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {lines:?}"))
    };

    // Host -> guest and guest -> host.
    assert_eq!(get("from-host"), "hello from the host");
    assert_eq!(get("big"), (32 * 65536).to_string());
    assert_eq!(std::fs::read_to_string(share.join("from-guest.txt")).unwrap(), "from the guest\n");
    assert_eq!(std::fs::read_to_string(share.join("made-in-guest/file")).unwrap(), "nested\n");
    assert_eq!(std::fs::metadata(share.join("big")).unwrap().len(), 32 * 65536);

    // The read-only share: readable, every change refused by the VMM, nothing changed on the host.
    assert_eq!(get("ro-read"), "read me");
    for key in ["ro-create", "ro-append", "ro-remove", "ro-mkdir"] {
        assert!(get(key).contains("Read-only file system"), "{key}: {}", get(key));
    }
    let entries: Vec<_> = std::fs::read_dir(&ro).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("readme.txt")]);
    assert_eq!(std::fs::read_to_string(ro.join("readme.txt")).unwrap(), "read me\n");

    // No way out of the share.
    for line in &lines {
        assert!(!line.contains(MARKER), "a host file outside the share leaked: {line}");
    }
    for key in ["escape-up", "escape-abs"] {
        assert!(get(key).contains("No such file or directory"), "{key}: {}", get(key));
    }
    assert!(get("escape-dotdot").contains("No such file or directory"), "{}", get("escape-dotdot"));
    assert_eq!(get("escape-etc").trim(), "root:x:0:0:root:/root:/bin/sh", "the image's /etc, not the host's");

    let metrics = vm.metrics();
    let data = metrics.device("fs0").expect("fs0 counters");
    let ro_counts = metrics.device("fs1").expect("fs1 counters");
    assert!(data.bytes_from_guest >= 32 * 65536, "{data:?}");
    assert!(ro_counts.errors >= 4, "the refusals are counted: {ro_counts:?}");

    assert_eq!(agent.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
    let exit = vm.wait_timeout(TIMEOUT).unwrap_or_else(|| vm.stop());
    assert_eq!(exit.reason, ExitReason::GuestReset, "{exit:?}");
    let text = console.text();
    assert!(text.contains("unmounted storage \"data\""), "{text}");
    println!(
        "{test}: shares mounted in {mounted:?}; container ran in {ran:?}; fs0 {data:?}; fs1 {ro_counts:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_shares_are_refused_naming_the_tag_and_directory() {
    let dir = std::env::temp_dir().join(format!("aci-virtiofs-bad-{}", std::process::id()));
    let mut config = VmConfig::new(PathBuf::from("/nonexistent/vmlinux"));
    config.shares =
        vec![ShareConfig { tag: "vol-missing".into(), path: dir.join("missing"), read_only: false }];
    let err = aci_vmm::virtio::attach::devices_from_config(&config).err().expect("a missing directory");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("share 0") && chain.contains("\"vol-missing\""), "{chain}");
    assert!(chain.contains(&dir.join("missing").display().to_string()), "{chain}");
    assert!(chain.contains("No such file or directory"), "{chain}");
}
