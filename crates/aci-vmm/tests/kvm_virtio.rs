//! KVM tier: virtio-blk and virtio-vsock against the real guest kernel, with a test initramfs
//! of static busybox and small static C helpers (`tests/guest/*.c`) built at test time under
//! `target/kvm_virtio/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod virtio_guest;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aci_vmm::{
    DiskConfig, ExitReason, NetConfig, SerialOutput, TapSource, Vm, VmConfig, VsockConfig, DEFAULT_CMDLINE,
};
use virtio_guest::{build_initramfs, compile_helper, guest_kernel, socket_dir, work_dir, Console};

const TIMEOUT: Duration = Duration::from_secs(60);
const DONE: &str = "ACI-TEST-DONE";
/// Bytes sent through the guest's vsock echo server (and back).
const ECHO_BYTES: u32 = 4 << 20;

fn config(initrd: &Path, console: &Console) -> VmConfig {
    let mut config = VmConfig::new(guest_kernel());
    config.initrd = Some(initrd.to_path_buf());
    config.memory_mib = 256;
    config.cmdline = DEFAULT_CMDLINE.to_string();
    config.serial_output = SerialOutput::Writer(Box::new(console.clone()));
    config
}

fn finish(test: &str, vm: &mut Vm, console: &Console, started: Instant) {
    let exit = vm.wait_timeout(TIMEOUT).unwrap_or_else(|| vm.stop());
    let stats = vm.stats();
    println!(
        "{test}: exit {:?} after {:?} (wall {:?}), {stats:?}",
        exit.reason,
        exit.elapsed,
        started.elapsed()
    );
    let text = console.text();
    assert!(text.contains(DONE), "{test}: guest did not finish:\n{text}");
    assert_eq!(exit.reason, ExitReason::GuestReset, "{test}: console:\n{text}");
    assert_eq!(stats.mmio_unhandled_reads, 0, "{test}: the guest read unmapped MMIO");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn virtio_blk_reads_rejects_read_only_writes_and_persists_writes() {
    let test = "virtio_blk_reads_rejects_read_only_writes_and_persists_writes";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = work_dir("blk");
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.join("data.img"), &data).unwrap();
    std::fs::write(dir.join("ro.img"), vec![0u8; 64 << 10]).unwrap();
    std::fs::write(dir.join("rw.img"), vec![0u8; 64 << 10]).unwrap();
    let expected = sha256(&dir.join("data.img"));
    let body = "\
        echo \"vda size $(cat /sys/block/vda/size) serial $(cat /sys/block/vda/serial)\"\n\
        echo \"vda sha256 $(sha256sum /dev/vda)\"\n\
        if dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null; then echo 'ro-write: succeeded'; else echo 'ro-write: failed'; fi\n\
        echo \"vdb ro $(cat /sys/block/vdb/ro)\"\n\
        printf written-by-guest | dd of=/dev/vdc bs=512 seek=1 conv=sync 2>/dev/null && sync && echo 'rw-write: done'";
    let initrd = build_initramfs(&dir, &[], body);

    let console = Console::default();
    let mut config = config(&initrd, &console);
    let disk = |name: &str, read_only, serial: &str| DiskConfig {
        path: dir.join(name),
        read_only,
        serial: Some(serial.to_string()),
    };
    config.disks = vec![
        disk("data.img", true, "aci-data"),
        disk("ro.img", true, "aci-ro"),
        disk("rw.img", false, "aci-rw"),
    ];
    let started = Instant::now();
    let mut vm = Vm::build(config).unwrap();
    console.wait_for(DONE, TIMEOUT);
    let guest_done = started.elapsed();
    finish(test, &mut vm, &console, started);

    let size = console.line_after("vda size ").unwrap();
    assert_eq!(size, format!("{} serial aci-data", data.len() / 512));
    let sum = console.line_after("vda sha256 ").unwrap();
    assert!(sum.starts_with(&expected), "{test}: checksum {sum} != {expected}");
    assert_eq!(console.line_after("ro-write: ").as_deref(), Some("failed"));
    assert_eq!(console.line_after("vdb ro ").as_deref(), Some("1"));
    assert_eq!(console.line_after("rw-write: ").as_deref(), Some("done"));
    let rw = std::fs::read(dir.join("rw.img")).unwrap();
    assert_eq!(&rw[512..528], b"written-by-guest");
    let metrics = vm.metrics();
    println!("{test}: devices {:?}", metrics.devices);
    let vda = metrics.device("vda").unwrap();
    assert!(vda.bytes_to_guest >= data.len() as u64, "{test}: vda read bytes {vda:?}");
    assert_eq!(vda.bytes_from_guest, 0, "{test}: vda is read-only");
    let vdc = metrics.device("vdc").unwrap();
    assert!(vdc.bytes_from_guest >= 512, "{test}: vdc written bytes {vdc:?}");
    assert!(vdc.requests >= 2, "{test}: vdc requests (write and flush) {vdc:?}");
    assert!(rw[..512].iter().all(|b| *b == 0) && rw[1024..].iter().all(|b| *b == 0));
    let mib = data.len() as f64 / f64::from(1 << 20);
    println!("{test}: guest read {mib} MiB, checked, wrote and synced in {guest_done:?} from build");
}

/// The host side of a guest-initiated connection: reads the guest's message, answers.
fn answer_guest(listener: UnixListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = String::new();
        stream.read_to_string(&mut got).unwrap();
        stream.write_all(b"hello-from-host").unwrap();
        got
    })
}

/// Connects to the guest's port through the Firecracker-style handshake.
fn connect_to_guest(uds: &Path, port: u32) -> UnixStream {
    let mut stream = UnixStream::connect(uds).unwrap();
    stream.write_all(format!("CONNECT {port}\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("OK ") && line.ends_with('\n'), "handshake answer {line:?}");
    stream
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn virtio_vsock_echoes_mebibytes_and_reaches_host_listeners() {
    let test = "virtio_vsock_echoes_mebibytes_and_reaches_host_listeners";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = work_dir("vsock");
    let helpers = [compile_helper("vsock_echo"), compile_helper("vsock_client")];
    let body = "\
        vsock_echo 5000 &\n\
        vsock_client 6000 hello-from-guest\n\
        wait";
    let initrd = build_initramfs(&dir, &helpers, body);
    let sockets = socket_dir("vsock");
    let uds = sockets.join("v.sock");
    let host_listener = UnixListener::bind(sockets.join("v.sock_6000")).unwrap();
    let answered = answer_guest(host_listener);

    let console = Console::default();
    let mut config = config(&initrd, &console);
    config.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.clone() });
    let started = Instant::now();
    let mut vm = Vm::build(config).unwrap();

    // The console arrives byte by byte: wait for the whole line before reading it.
    console.wait_for("vsock-client got: hello-from-host\r\n", TIMEOUT);
    assert_eq!(answered.join().unwrap(), "hello-from-guest");
    assert_eq!(console.line_after("vsock-client got: ").as_deref(), Some("hello-from-host"));

    console.wait_for("vsock-echo listening 5000", TIMEOUT);
    // Nothing listens on guest port 5999: the guest resets, the host socket just ends.
    let mut refused = UnixStream::connect(&uds).unwrap();
    refused.write_all(b"CONNECT 5999\n").unwrap();
    let mut rest = Vec::new();
    refused.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{test}: a refused connection got {rest:?}");
    let payload: Vec<u8> = (0..ECHO_BYTES).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let echo_start = Instant::now();
    let stream = connect_to_guest(&uds, 5000);
    let connected = echo_start.elapsed();
    let mut writer = stream.try_clone().unwrap();
    let to_send = payload.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    (&stream).read_to_end(&mut echoed).unwrap();
    sender.join().unwrap();
    let echo_time = echo_start.elapsed();
    assert_eq!(echoed.len(), payload.len(), "{test}: echo length");
    assert!(echoed == payload, "{test}: echoed bytes differ");
    console.wait_for(&format!("vsock-echo done {ECHO_BYTES}"), TIMEOUT);
    finish(test, &mut vm, &console, started);
    let vsock = *vm.metrics().device("vsock").unwrap();
    println!("{test}: vsock counters {vsock:?}");
    let (hello, reply) = ("hello-from-guest".len() as u64, "hello-from-host".len() as u64);
    assert!(vsock.bytes_to_guest >= u64::from(ECHO_BYTES) + reply, "{test}: rx bytes {vsock:?}");
    assert!(vsock.bytes_from_guest >= u64::from(ECHO_BYTES) + hello, "{test}: tx bytes {vsock:?}");
    assert_eq!(vsock.connections, 2, "{test}: one guest-initiated and one echo connection {vsock:?}");
    drop(vm);
    assert!(!uds.exists(), "{test}: the host socket is removed with the VM");
    std::fs::remove_dir_all(&sockets).unwrap();
    let mib = f64::from(ECHO_BYTES) / f64::from(1 << 20);
    let mib_s = 2.0 * mib / echo_time.as_secs_f64();
    println!(
        "{test}: handshake {connected:?}; {mib} MiB echoed in {echo_time:?} ({mib_s:.1} MiB/s, both \
         directions counted)"
    );
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?} failed");
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`, root for a tap); run by `cargo xtask test`"]
fn virtio_net_guest_pings_the_host_over_a_tap() {
    let test = "virtio_net_guest_pings_the_host_over_a_tap";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = work_dir("net");
    let body = "\
        ifconfig eth0 10.77.0.2 netmask 255.255.255.0 up\n\
        echo \"eth0 mac $(cat /sys/class/net/eth0/address)\"\n\
        if ping -c 3 -W 5 10.77.0.1 > /tmp/ping.txt 2>&1; then echo 'ping: ok'; else echo 'ping: failed'; fi\n\
        cat /tmp/ping.txt";
    let initrd = build_initramfs(&dir, &[], body);
    let console = Console::default();
    let mut config = config(&initrd, &console);
    let tap = "acitest0";
    config.nets = vec![NetConfig { tap: TapSource::Name(tap.to_string()), mac: [0x02, 0xac, 0x1d, 0, 0, 2] }];
    let started = Instant::now();
    let mut vm = Vm::build(config).unwrap();
    // The tap exists once the VM is built; give the host side its address.
    ip(&["addr", "add", "10.77.0.1/24", "dev", tap]);
    ip(&["link", "set", tap, "up"]);
    console.wait_for(DONE, TIMEOUT);
    let guest_done = started.elapsed();
    finish(test, &mut vm, &console, started);
    assert_eq!(console.line_after("eth0 mac ").as_deref(), Some("02:ac:1d:00:00:02"));
    assert_eq!(console.line_after("ping: ").as_deref(), Some("ok"), "{test}:\n{}", console.text());
    let eth0 = *vm.metrics().device("eth0").unwrap();
    // Three echo requests and their replies, 98 bytes each, plus ARP.
    assert!(eth0.bytes_from_guest >= 3 * 98 && eth0.bytes_to_guest >= 3 * 98, "{test}: eth0 {eth0:?}");
    let summary = console.line_after("3 packets transmitted, ").unwrap_or_default();
    println!("{test}: guest pinged the host ({summary}) within {guest_done:?} of build");
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn virtio_rng_feeds_the_guest_hwrng() {
    let test = "virtio_rng_feeds_the_guest_hwrng";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = work_dir("rng");
    let body = "\
        echo \"rng current $(cat /sys/class/misc/hw_random/rng_current)\"\n\
        a=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | sha256sum)\n\
        b=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | sha256sum)\n\
        n=$(dd if=/dev/hwrng bs=4096 count=16 2>/dev/null | wc -c)\n\
        echo \"rng bytes $n\"\n\
        [ \"$a\" != \"$b\" ] && echo 'rng differs: yes'";
    let initrd = build_initramfs(&dir, &[], body);
    let console = Console::default();
    let mut config = config(&initrd, &console);
    config.rng = true;
    let started = Instant::now();
    let mut vm = Vm::build(config).unwrap();
    console.wait_for(DONE, TIMEOUT);
    let guest_done = started.elapsed();
    finish(test, &mut vm, &console, started);
    let current = console.line_after("rng current ").unwrap_or_default();
    assert!(current.starts_with("virtio_rng"), "{test}: hw_random uses {current:?}");
    assert_eq!(console.line_after("rng bytes ").as_deref(), Some("65536"));
    assert_eq!(console.line_after("rng differs: ").as_deref(), Some("yes"));
    let rng = *vm.metrics().device("rng").unwrap();
    assert!(rng.bytes_to_guest >= 65536 + 64, "{test}: rng {rng:?}");
    println!("{test}: guest read 64 KiB from /dev/hwrng (virtio) within {guest_done:?} of build");
}
