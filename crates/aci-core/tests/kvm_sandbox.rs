//! KVM tier: the agent's sandbox set-up against the real guest.
//!
//! - storage: an erofs and an ext4 disk found by serial, tmpfs, secret files, the errors of a
//!   wrong serial / filesystem / busy mount point / bad file path / missing virtio-fs tag;
//!   the guest clock set through `ConfigureSandbox` (read back from the ext4 superblock's
//!   last mount time); shutdown unmounts (the ext4 superblock says "clean" afterwards);
//!   boot-time entropy from virtio-rng (the agent's console line).
//! - network: an interface configured by MAC over a real tap, reached from the host (TCP
//!   answered with a reset, ping), its counters in `Stats`; an unknown MAC is named.
//! - CIFS: a real `smbd` on the host side of the tap; the share mounts with the right
//!   password (the server named through `/etc/hosts` written by `ConfigureSandbox`) and a
//!   wrong one gives `MountFailed` naming the share and not the password.
//!
//! - a container (the agent's engine) sees what was mounted and configured: disk, secret
//!   and tmpfs contents, the share, the hostname, `/etc/hosts`, `/etc/resolv.conf`, the clock;
//!   its writes reach the ext4 image and the smbd share.
//!
//! Mounting a real virtio-fs share is covered by `kvm_virtiofs.rs` and `kvm_runtime_volumes.rs`;
//! here only the error for a tag no device has is checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod guest_support;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::agent::{connect, Channel, ChannelError};
use aci_proto::message::{Call, RemoteErrorKind, Reply};
use aci_proto::sandbox::{
    HostEntry, InterfaceConfig, SandboxConfig, SecretFile, StorageMount, StorageSource,
};
use aci_proto::secret::Secret;
use aci_storage::rootfs::{mkfs_erofs, ErofsCompression};
use aci_vmm::{DiskConfig, ExitReason, NetConfig, TapSource, Vm};
use guest_support::{busybox_tree, logs, run, Console, TIMEOUT};

/// 2030-01-01T00:00:00Z: far from the guest's own idea of the time.
const CLOCK_2030_MS: u64 = 1_893_456_000_000;

fn kvm_gate(test: &str) -> bool {
    aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
}

struct Guest {
    vm: Vm,
    agent: Channel<std::os::unix::net::UnixStream>,
    console: Console,
    uds: PathBuf,
}

fn scratch(name: &str) -> PathBuf {
    // Unix sockets need a local filesystem (in the nested runner the workspace is 9p).
    let dir = std::env::temp_dir().join(format!("aci-kvm-sandbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn boot(dir: &Path, disks: Vec<DiskConfig>, nets: Vec<NetConfig>, rng: bool) -> Guest {
    let (mut config, console, uds) = guest_support::vm_config(dir);
    config.disks = disks;
    config.nets = nets;
    config.rng = rng;
    let vm = Vm::build(config).expect("building the VM");
    let (agent, _) = connect(&uds, TIMEOUT).expect("agent hello");
    Guest { vm, agent, console, uds }
}

impl Guest {
    fn call(&mut self, call: Call) -> Result<Reply, ChannelError> {
        self.agent.call(call)
    }

    fn mount(
        &mut self,
        id: &str,
        mount_point: &str,
        source: StorageSource,
        read_only: bool,
    ) -> Result<(), String> {
        let mount = StorageMount { id: id.into(), mount_point: mount_point.into(), source, read_only };
        match self.call(Call::MountStorage(mount)) {
            Ok(Reply::Done) => Ok(()),
            Ok(other) => panic!("mount {id}: unexpected reply {other:?}"),
            Err(ChannelError::Remote(err)) => {
                assert_eq!(err.kind, RemoteErrorKind::MountFailed, "{id}: {}", err.message);
                assert!(err.message.contains(id), "the error names storage {id}: {}", err.message);
                Err(err.message)
            }
            Err(err) => panic!("mount {id}: {err}"),
        }
    }

    /// Shuts the guest down through the agent; returns the console.
    fn shutdown(mut self) -> String {
        assert_eq!(self.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
        let exit = self.vm.wait_timeout(TIMEOUT).unwrap_or_else(|| self.vm.stop());
        assert_eq!(exit.reason, ExitReason::GuestReset, "{exit:?}");
        self.console.text()
    }
}

fn superblock(image: &Path) -> String {
    run(Command::new("dumpe2fs").arg("-h").arg(image).env("TZ", "UTC"))
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
#[ignore = "KVM tier: boots the guest; run by `cargo xtask test`"]
fn storage_mounts_disks_by_serial_tmpfs_and_secret_files() {
    let test = "storage_mounts_disks_by_serial_tmpfs_and_secret_files";
    if !kvm_gate(test) || !aci_testkit::require_tools(test, &["mkfs.erofs", "mkfs.ext4", "dumpe2fs"]) {
        return;
    }
    let dir = scratch("storage");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/greeting"), "hello from the disk\n").unwrap();
    let erofs = dir.join("image.erofs");
    mkfs_erofs(&tree, &erofs, ErofsCompression::Lz4).unwrap();
    let ext4 = dir.join("data.ext4");
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "acidata", "-d"]).arg(&tree).arg(&ext4).arg("16M"));
    assert_eq!(field(&superblock(&ext4), "Mount count:"), "0");
    let disk = |path: &Path, read_only, serial: &str| DiskConfig {
        path: path.to_path_buf(),
        read_only,
        serial: Some(serial.into()),
    };
    let started = Instant::now();
    let mut g =
        boot(&dir, vec![disk(&erofs, true, "aci-image"), disk(&ext4, false, "aci-data")], vec![], true);
    let booted = started.elapsed();

    let config =
        SandboxConfig { hostname: "sbx-storage".into(), clock_unix_ms: CLOCK_2030_MS, ..Default::default() };
    assert_eq!(g.call(Call::ConfigureSandbox(config)).unwrap(), Reply::Done);

    // A supported type that is not what the disk holds: mount(2) refuses, the error names the disk.
    let err = g
        .mount(
            "wrong-fs",
            "/run/aci/wrong",
            StorageSource::Block { serial: "aci-image".into(), fs_type: "ext4".into() },
            true,
        )
        .unwrap_err();
    assert!(err.contains("/dev/vda") && err.contains("aci-image") && err.contains("ext4"), "{err}");
    assert!(err.contains("Invalid argument"), "{err}");

    let t = Instant::now();
    let erofs_src = StorageSource::Block { serial: "aci-image".into(), fs_type: "erofs".into() };
    g.mount("image", "/run/aci/image", erofs_src, true).unwrap();
    let erofs_time = t.elapsed();
    let t = Instant::now();
    let ext4_src = StorageSource::Block { serial: "aci-data".into(), fs_type: "ext4".into() };
    g.mount("data", "/run/aci/volumes/data", ext4_src.clone(), false).unwrap();
    let ext4_time = t.elapsed();

    let err = g.mount("data-again", "/run/aci/volumes/data", ext4_src, false).unwrap_err();
    assert!(err.contains("busy"), "{err}");
    let err = g
        .mount(
            "ghost",
            "/run/aci/ghost",
            StorageSource::Block { serial: "no-such".into(), fs_type: "ext4".into() },
            true,
        )
        .unwrap_err();
    assert!(err.contains("\"no-such\"") && err.contains("aci-image, aci-data"), "{err}");
    let err = g
        .mount(
            "xfs",
            "/run/aci/xfs",
            StorageSource::Block { serial: "aci-image".into(), fs_type: "xfs".into() },
            true,
        )
        .unwrap_err();
    assert!(err.contains("\"xfs\""), "{err}");

    g.mount("scratch", "/run/aci/volumes/scratch", StorageSource::Tmpfs { size_bytes: Some(8 << 20) }, false)
        .unwrap();
    let err = g
        .mount("zero", "/run/aci/volumes/zero", StorageSource::Tmpfs { size_bytes: Some(0) }, false)
        .unwrap_err();
    assert!(err.contains("at least 1 byte"), "{err}");

    let file = |path: &str, contents: &str, mode| SecretFile {
        path: path.into(),
        contents_base64: Secret::new(contents),
        mode,
    };
    let bad = StorageSource::Files { files: vec![file("ok", "aGk=", None), file("../escape", "aGk=", None)] };
    let err = g.mount("bad-secret", "/run/aci/volumes/secret", bad, true).unwrap_err();
    assert!(err.contains("\"../escape\""), "{err}");
    let bad = StorageSource::Files { files: vec![file("key", "not base64!", None)] };
    let err = g.mount("undecodable", "/run/aci/volumes/secret", bad, true).unwrap_err();
    assert!(err.contains("\"key\"") && !err.contains("not base64"), "{err}");
    // The failed attempts left nothing mounted there: the good volume takes the same path.
    let good = StorageSource::Files {
        files: vec![file("token", "c2VjcmV0LXRva2Vu", Some(0o400)), file("tls/ca.pem", "LS0tLS0=", None)],
    };
    g.mount("secret", "/run/aci/volumes/secret", good, true).unwrap();

    let err = g
        .mount("share", "/run/aci/volumes/share", StorageSource::Virtiofs { tag: "vol-share".into() }, false)
        .unwrap_err();
    assert!(err.contains("virtio-fs tag \"vol-share\""), "{err}");
    let err = g.mount("relative", "run/aci/x", StorageSource::Tmpfs { size_bytes: None }, false).unwrap_err();
    assert!(err.contains("\"run/aci/x\""), "{err}");

    let console = g.shutdown();
    assert!(
        console.contains("aci-agent: entropy: hwrng=virtio_rng.0 credited=64 crng=ready"),
        "entropy line missing:\n{console}"
    );
    // Newest first, and nothing else was recorded as mounted.
    let order: Vec<&str> = console.lines().filter(|l| l.contains("unmounted storage")).collect();
    assert_eq!(order.len(), 4, "{console}");
    for (line, id) in order.iter().zip(["secret", "scratch", "data", "image"]) {
        assert!(line.contains(&format!("\"{id}\"")), "{line} (expected {id})\n{console}");
    }
    let sb = superblock(&ext4);
    assert_eq!(field(&sb, "Filesystem state:"), "clean", "the ext4 disk was unmounted before power-off");
    assert_eq!(field(&sb, "Mount count:"), "1");
    let last_mount = field(&sb, "Last mount time:");
    assert!(last_mount.contains("2030"), "the guest clock was set to 2030 before mounting: {last_mount}");
    println!(
        "{test}: agent ready {booted:?} after build; erofs mount {erofs_time:?}, ext4 mount {ext4_time:?}; \
         ext4 last mount time {last_mount}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Builds a VM with one virtio-net device on tap `tap`, gives the host side `host_cidr`.
fn boot_with_tap(dir: &Path, tap: &str, mac: [u8; 6], host_cidr: &str) -> Guest {
    let nets = vec![NetConfig { tap: TapSource::Name(tap.into()), mac }];
    let g = boot(dir, vec![], nets, false);
    ip(&["addr", "add", host_cidr, "dev", tap]);
    ip(&["link", "set", tap, "up"]);
    g
}

fn interface(mac: &str, address: &str, gateway: &str) -> InterfaceConfig {
    InterfaceConfig {
        mac: mac.into(),
        addresses: vec![address.into()],
        gateway: Some(gateway.into()),
        mtu: Some(1400),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
#[ignore = "KVM tier: boots the guest (root for a tap); run by `cargo xtask test`"]
fn network_is_configured_by_mac_and_reached_from_the_host() {
    let test = "network_is_configured_by_mac_and_reached_from_the_host";
    if !kvm_gate(test) || !aci_testkit::require_tools(test, &["ip"]) {
        return;
    }
    let dir = scratch("net");
    let mut g = boot_with_tap(&dir, "acisbx0", [0x02, 0xac, 0x1d, 0, 0, 0x10], "10.79.0.1/24");

    let wrong = SandboxConfig {
        hostname: "sbx-net".into(),
        clock_unix_ms: now_ms(),
        interfaces: vec![interface("02:ac:1d:00:00:99", "10.79.0.2/24", "10.79.0.1")],
        ..Default::default()
    };
    let err = g.call(Call::ConfigureSandbox(wrong.clone())).unwrap_err().to_string();
    assert!(err.contains("02:ac:1d:00:00:99") && err.contains("eth0=02:ac:1d:00:00:10"), "{err}");

    let mut config = wrong;
    config.interfaces = vec![interface("02:AC:1D:00:00:10", "10.79.0.2/24", "10.79.0.1")];
    config.dns.name_servers = vec!["10.79.0.1".into()];
    config.dns.search_domains = vec!["sbx.test".into()];
    config.hosts = vec![HostEntry { ip: "10.79.0.1".into(), names: vec!["gateway.test".into()] }];
    let t = Instant::now();
    assert_eq!(g.call(Call::ConfigureSandbox(config)).unwrap(), Reply::Done);
    let configure_time = t.elapsed();

    // The guest's stack answers a TCP SYN to a closed port with a reset.
    let t = Instant::now();
    let target: SocketAddr = "10.79.0.2:9".parse().unwrap();
    let err = TcpStream::connect_timeout(&target, Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    let refused_time = t.elapsed();
    let ping = aci_testkit::which("ping")
        .map(|p| Command::new(p).args(["-c", "3", "-W", "5", "10.79.0.2"]).output().unwrap())
        .or_else(|| {
            aci_testkit::which("busybox")
                .map(|b| Command::new(b).args(["ping", "-c", "3", "-W", "5", "10.79.0.2"]).output().unwrap())
        });
    let ping_summary = ping.map(|out| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "ping 10.79.0.2 failed:\n{text}");
        text.lines().find(|l| l.contains("packets transmitted")).unwrap_or_default().to_owned()
    });

    let Reply::Stats(stats) = g.call(Call::Stats).unwrap() else { panic!("stats reply") };
    assert_eq!(stats.interfaces.len(), 1, "{stats:?}");
    let eth0 = &stats.interfaces[0];
    assert_eq!(eth0.name, "eth0");
    assert!(eth0.rx_bytes > 0 && eth0.tx_bytes > 0, "{eth0:?}");
    g.shutdown();
    println!(
        "{test}: configure {configure_time:?}; TCP reset from the guest after {refused_time:?}; ping: {}; \
         eth0 rx {} tx {} bytes",
        ping_summary.as_deref().unwrap_or("no ping tool"),
        eth0.rx_bytes,
        eth0.tx_bytes
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "KVM tier: boots the guest, runs smbd (root for a tap); run by `cargo xtask test`"]
fn cifs_share_mounts_with_the_right_password_only() {
    let test = "cifs_share_mounts_with_the_right_password_only";
    if !kvm_gate(test) || !aci_testkit::require_tools(test, &["ip", "smbd", "smbpasswd"]) {
        return;
    }
    let dir = scratch("cifs");
    let mut g = boot_with_tap(&dir, "acisbx1", [0x02, 0xac, 0x1d, 0, 0, 0x11], "10.79.1.1/24");
    let password = "s3cret,pw=1";
    let smbd = aci_testkit::Smbd::start("10.79.1.1".parse().unwrap(), 4450, "data", "acitest", password);
    std::fs::write(smbd.share_dir().join("from-host.txt"), "hello over smb\n").unwrap();
    let config = SandboxConfig {
        hostname: "sbx-cifs".into(),
        clock_unix_ms: now_ms(),
        interfaces: vec![interface("02:ac:1d:00:00:11", "10.79.1.2/24", "10.79.1.1")],
        hosts: vec![HostEntry { ip: "10.79.1.1".into(), names: vec!["files.test".into()] }],
        ..Default::default()
    };
    assert_eq!(g.call(Call::ConfigureSandbox(config)).unwrap(), Reply::Done);
    let cifs = |pw: &str| StorageSource::Cifs {
        unc: "//files.test/data".into(),
        username: "acitest".into(),
        password: Secret::new(pw),
        options: vec![
            "vers=3.1.1".into(),
            "port=4450".into(),
            "dir_mode=0777".into(),
            "file_mode=0777".into(),
        ],
    };

    let t = Instant::now();
    let err = g.mount("wrong-key", "/run/aci/volumes/wrong", cifs("not-the-key"), false).unwrap_err();
    let wrong_time = t.elapsed();
    assert!(err.contains("//files.test/data"), "{err}");
    assert!(err.contains("password=<redacted>") && !err.contains("not-the-key"), "{err}");
    assert!(err.contains("Permission denied") || err.contains("os error 13"), "{err}");

    let t = Instant::now();
    g.mount("share", "/run/aci/volumes/share", cifs(password), false)
        .unwrap_or_else(|e| panic!("{e}\nsmbd log:\n{}", smbd.log()));
    let mount_time = t.elapsed();
    let console = g.shutdown();
    assert!(!console.contains(password) && !console.contains("not-the-key"), "a password on the console");
    assert!(console.contains("unmounted storage \"share\""), "{console}");
    println!("{test}: wrong key refused in {wrong_time:?}; share mounted in {mount_time:?}");
    drop(smbd);
    std::fs::remove_dir_all(&dir).unwrap();
}

const CONTAINER_SCRIPT: &str = "\
    echo greeting=$(cat /greeting); \
    echo data=$(cat /data/greeting); \
    echo written by the container > /data/from-container; \
    echo token=$(cat /secret/token); \
    echo modes=$(stat -c %a /secret/token /secret/tls/ca.pem); \
    if touch /secret/new 2>/dev/null; then echo secret=rw; else echo secret=ro; fi; \
    echo scratch > /scratch/a && echo scratch=$(cat /scratch/a); \
    echo share=$(cat /share/from-host.txt); \
    echo from the guest > /share/from-guest.txt; \
    echo hostname=$(hostname); \
    echo year=$(date -u +%Y); \
    echo hosts=$(grep files.test /etc/hosts); \
    echo resolv=$(grep -v '^#' /etc/resolv.conf | tr '\\n' ' ')";

#[test]
#[ignore = "KVM tier: boots the guest, runs smbd and a container (root for a tap); run by `cargo xtask test`"]
fn a_container_sees_the_sandbox_storage_and_names() {
    use aci_proto::container::{BindMount, ContainerConfig};
    let test = "a_container_sees_the_sandbox_storage_and_names";
    let tools = ["mkfs.erofs", "mkfs.ext4", "debugfs", "ip", "smbd", "smbpasswd"];
    if !kvm_gate(test) || !aci_testkit::require_tools(test, &tools) {
        return;
    }
    let busybox = std::path::Path::new("/bin/busybox")
        .is_file()
        .then_some(())
        .ok_or("no /bin/busybox (busybox-static)");
    if !aci_testkit::requirement(test, busybox.err()) {
        return;
    }
    let dir = scratch("container");
    let tree = dir.join("tree");
    busybox_tree(&tree, &["proc", "sys", "dev", "tmp", "data", "secret", "scratch", "share"]);
    std::fs::write(tree.join("greeting"), "hello from the image\n").unwrap();
    let erofs = dir.join("image.erofs");
    mkfs_erofs(&tree, &erofs, ErofsCompression::Lz4).unwrap();
    let data_tree = dir.join("data");
    std::fs::create_dir_all(&data_tree).unwrap();
    std::fs::write(data_tree.join("greeting"), "hello from the data disk\n").unwrap();
    let ext4 = dir.join("data.ext4");
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&data_tree).arg(&ext4).arg("16M"));
    let disks = vec![
        DiskConfig { path: erofs, read_only: true, serial: Some("aci-image".into()) },
        DiskConfig { path: ext4.clone(), read_only: false, serial: Some("aci-data".into()) },
    ];
    let nets =
        vec![NetConfig { tap: TapSource::Name("acisbx2".into()), mac: [0x02, 0xac, 0x1d, 0, 0, 0x12] }];
    let mut g = boot(&dir, disks, nets, true);
    ip(&["addr", "add", "10.79.2.1/24", "dev", "acisbx2"]);
    ip(&["link", "set", "acisbx2", "up"]);
    let smbd = aci_testkit::Smbd::start("10.79.2.1".parse().unwrap(), 4450, "data", "acitest", "pw-2030");
    std::fs::write(smbd.share_dir().join("from-host.txt"), "hello over smb\n").unwrap();

    let mut config = SandboxConfig {
        hostname: "sbx-web".into(),
        clock_unix_ms: CLOCK_2030_MS,
        interfaces: vec![interface("02:ac:1d:00:00:12", "10.79.2.2/24", "10.79.2.1")],
        hosts: vec![HostEntry { ip: "10.79.2.1".into(), names: vec!["files.test".into()] }],
        ..Default::default()
    };
    config.dns.name_servers = vec!["10.79.2.1".into()];
    config.dns.search_domains = vec!["sbx.test".into()];
    config.dns.options = vec!["ndots:2".into()];
    assert_eq!(g.call(Call::ConfigureSandbox(config)).unwrap(), Reply::Done);
    g.mount(
        "image",
        "/run/aci/image",
        StorageSource::Block { serial: "aci-image".into(), fs_type: "erofs".into() },
        true,
    )
    .unwrap();
    g.mount(
        "data",
        "/run/aci/volumes/data",
        StorageSource::Block { serial: "aci-data".into(), fs_type: "ext4".into() },
        false,
    )
    .unwrap();
    let files = vec![
        SecretFile {
            path: "token".into(),
            contents_base64: Secret::new("c2VjcmV0LXRva2Vu"),
            mode: Some(0o400),
        },
        SecretFile { path: "tls/ca.pem".into(), contents_base64: Secret::new("LS0tLS0="), mode: None },
    ];
    g.mount("secret", "/run/aci/volumes/secret", StorageSource::Files { files }, true).unwrap();
    g.mount("scratch", "/run/aci/volumes/scratch", StorageSource::Tmpfs { size_bytes: Some(4 << 20) }, false)
        .unwrap();
    let share = StorageSource::Cifs {
        unc: "//files.test/data".into(),
        username: "acitest".into(),
        password: Secret::new("pw-2030"),
        options: vec!["vers=3.1.1".into(), "port=4450".into()],
    };
    g.mount("share", "/run/aci/volumes/share", share, false)
        .unwrap_or_else(|e| panic!("{e}\n{}", smbd.log()));

    let bind = |volume: &str, destination: &str, read_only| BindMount {
        source: format!("/run/aci/volumes/{volume}"),
        destination: destination.into(),
        read_only,
    };
    let container = ContainerConfig {
        name: "check".into(),
        image_root: "/run/aci/image".into(),
        args: vec!["sh".into(), "-c".into(), CONTAINER_SCRIPT.into()],
        mounts: vec![
            bind("data", "/data", false),
            bind("secret", "/secret", true),
            bind("scratch", "/scratch", false),
            bind("share", "/share", false),
        ],
        ..ContainerConfig::default()
    };
    let t = Instant::now();
    assert_eq!(g.call(Call::CreateContainer(container)).unwrap(), Reply::Done);
    assert!(matches!(g.call(Call::StartContainer { name: "check".into() }).unwrap(), Reply::Started { .. }));
    let Reply::Exited(status) = g.call(Call::WaitContainer { name: "check".into() }).unwrap() else {
        panic!("wait reply")
    };
    let ran = t.elapsed();
    let lines = logs(&g.uds, "check");
    assert_eq!(status.code, 0, "{lines:?}");
    let get = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {lines:?}"))
    };
    assert_eq!(get("greeting"), "hello from the image");
    assert_eq!(get("data"), "hello from the data disk");
    assert_eq!(get("token"), "secret-token");
    assert_eq!(get("modes"), "400 444");
    assert_eq!(get("secret"), "ro");
    assert_eq!(get("scratch"), "scratch");
    assert_eq!(get("share"), "hello over smb");
    assert_eq!(get("hostname"), "sbx-web");
    assert_eq!(get("year"), "2030");
    assert_eq!(get("hosts"), "10.79.2.1 files.test");
    assert_eq!(get("resolv").trim(), "nameserver 10.79.2.1 search sbx.test options ndots:2");
    let console = g.shutdown();
    assert!(console.contains("unmounted storage \"share\""), "{console}");
    assert!(!console.contains("pw-2030"), "the share password reached the console");
    let written = run(Command::new("debugfs").args(["-R", "cat /from-container"]).arg(&ext4));
    assert_eq!(written, "written by the container\n");
    let from_guest = std::fs::read_to_string(smbd.share_dir().join("from-guest.txt")).unwrap();
    assert_eq!(from_guest, "from the guest\n");
    println!("{test}: container created, run and waited in {ran:?}; {} log lines checked", lines.len());
    drop(smbd);
    std::fs::remove_dir_all(&dir).unwrap();
}
