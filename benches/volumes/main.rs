//! Volume benchmark (`cargo xtask bench volumes`): a virtio-fs share and an SMB share
//! (`azureFile`, CIFS `vers=3.1.1` against a real `smbd`), each against references measured
//! in the same run.
//!
//! The workload (static busybox, the same script everywhere): sequential write of
//! `ACI_BENCH_MB` MiB (default 32) with `dd ... conv=fsync`, sequential read of it back,
//! and creation of `ACI_BENCH_FILES` (default 1500) small files. Each guest boots a busybox
//! initramfs whose `/init` mounts the share, runs the script and prints a marker around each
//! phase; phases are timed on the host from the console lines. Before the read the guest
//! drops its page cache (`/proc/sys/vm/drop_caches`), so the data comes from the server.
//!
//! Sides, per run (interleaved; `ACI_BENCH_RUNS`, default 3, medians printed):
//! - guest on a virtio-fs share of a host directory, and the script on a host directory next
//!   to it (same filesystem);
//! - guest on an SMB share: its virtio-net device's tap lives in a network namespace where
//!   `aci_testkit::Smbd` listens; the CIFS source and options are what the `azureFile`
//!   driver gives the agent. References: `smbclient` (SMB 3.1.1) in that namespace against
//!   the same share (`put` of an equal local file, `get` to `/dev/null`, `mput` of as many
//!   small files), and the script on a directory inside the share's host directory.
//!
//! Why a bare busybox guest rather than the runtime with an `azureFile` volume and
//! `Runtime::exec`: the data path under test is the same (the guest kernel's CIFS client
//! with the driver's options, virtio-net, a tap, smbd), while here the guest is root and can
//! drop its page cache between write and read (a container cannot), phases are timed from
//! console markers rather than through exec round trips (0.1-0.5 s each in the nested
//! runner), and both shares run under one harness so their guest columns compare directly.
//! Not measured: the runtime's bridge and veth hop between tap and server, and the agent's
//! mount call (a one-off, not throughput).
//!
//! Reports, does not assert (it checks only that each side did the whole workload). Needs
//! hardware KVM and root: run it with `cargo xtask bench volumes` (through the nested runner
//! when the host has none). `ACI_BENCH_CONSOLE=1` prints the guests' consoles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod guest;
mod host;
mod lines;
mod smb;
mod workload;

use std::time::Duration;

use aci::vmm::host::KvmHost;

use workload::PHASES;

/// Per phase, the samples of one side.
type Samples = [Vec<Duration>; 3];

fn push(samples: &mut Samples, times: Vec<Duration>) {
    for (i, t) in times.into_iter().enumerate() {
        samples[i].push(t);
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Prints one table: a row per phase, a column per side (MiB/s or files/s), then the time
/// ratio of the first side to each of the others.
fn table(sides: &[(&str, &Samples)], mib: usize, files: usize) {
    let first = sides[0].0;
    let mut headers: Vec<String> = sides.iter().map(|(name, _)| name.to_string()).collect();
    headers.extend(sides[1..].iter().map(|(name, _)| format!("{first} / {name}")));
    let widths: Vec<usize> = headers.iter().map(|h| h.len().max(16)).collect();
    let cells = |label: &str, values: &[String]| {
        let mut row = format!("| {label:<28} |");
        for (v, w) in values.iter().zip(&widths) {
            row += &format!(" {v:>w$} |");
        }
        row
    };
    println!("{}", cells("phase", &headers));
    let rule: String = widths.iter().map(|w| format!("{:-<1$}|", "", w + 2)).collect();
    println!("|{:-<30}|{rule}", "");
    for (i, phase) in PHASES.iter().enumerate() {
        let medians: Vec<Duration> = sides.iter().map(|(_, s)| median(&s[i])).collect();
        let (label, mut values): (String, Vec<String>) = if *phase == "create" {
            let rate = |d: &Duration| format!("{:.0} files/s", files as f64 / d.as_secs_f64());
            (format!("create {files} small files"), medians.iter().map(rate).collect())
        } else {
            let rate = |d: &Duration| format!("{:.1} MiB/s", mib as f64 / d.as_secs_f64());
            (format!("sequential {phase} {mib} MiB"), medians.iter().map(rate).collect())
        };
        let ratio = |m: &Duration| format!("{:.1}x", medians[0].as_secs_f64() / m.as_secs_f64().max(1e-9));
        values.extend(medians[1..].iter().map(ratio));
        println!("{}", cells(&label, &values));
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility: nothing to list.
    }
    if let Some(reason) = KvmHost::detect().unusable_reason() {
        eprintln!("volumes bench needs hardware KVM ({reason}); run `cargo xtask bench volumes`");
        std::process::exit(2);
    }
    let env =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let runs = env("ACI_BENCH_RUNS", 3).max(1);
    let mib = env("ACI_BENCH_MB", 32).max(1);
    let files = env("ACI_BENCH_FILES", 1500).max(1);
    let kernel = aci_testkit::guest_dir().join("vmlinux");
    // The temp dir: a tmpfs in L1, like the share itself.
    let work = std::env::temp_dir().join(format!("aci-bench-volumes-{}", std::process::id()));
    let (share, host_dir) = (work.join("share"), work.join("host"));
    std::fs::create_dir_all(&share).unwrap();
    let script = workload::script(mib, files);
    let fs_initrd = guest::initramfs(&work.join("virtiofs.cpio"), &guest::virtiofs_setup("bench"), &script);

    // SMB: root (a namespace, a tap) and Samba's tools; skipped with a reason when missing
    // outside CI.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let smb_gate = "volumes bench (SMB side)";
    let smb = (aci_testkit::requirement(smb_gate, (!root).then_some("needs root (a namespace, a tap)"))
        && aci_testkit::require_tools(smb_gate, &["ip", "smbd", "smbpasswd", "smbclient"]))
    .then(smb::SmbSide::start);
    let smb_initrd =
        smb.as_ref().map(|s| guest::initramfs(&work.join("smb.cpio"), &s.guest_setup(&work), &script));
    let local = work.join("smbclient");
    if smb.is_some() {
        smb::smbclient_sources(&local, mib, files);
    }

    let [mut fs_guest, mut fs_host, mut smb_guest, mut smb_client, mut smb_host]: [Samples; 5] =
        Default::default();
    for run in 0..runs {
        eprintln!("volumes bench: run {} of {runs}", run + 1);
        // Every side starts from an empty directory, emptied from the host.
        for dir in [&share, &host_dir] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).unwrap();
        }
        let (times, info) = guest::run(&kernel, &fs_initrd, guest::Device::Share(share.clone()), files);
        eprintln!("  guest virtio-fs {times:?}: {info}");
        push(&mut fs_guest, times);
        let times = host::run(&script, &host_dir);
        eprintln!("  host dir {times:?}");
        push(&mut fs_host, times);
        if let (Some(side), Some(initrd)) = (&smb, &smb_initrd) {
            side.clear();
            let (times, info) = guest::run(&kernel, initrd, guest::Device::Net(side.net()), files);
            eprintln!("  guest SMB {times:?}: {info}");
            push(&mut smb_guest, times);
            side.clear();
            let times = side.smbclient_run(&local, mib, files);
            eprintln!("  smbclient {times:?}");
            push(&mut smb_client, times);
            side.clear();
            let times = host::run(&script, &side.share_dir().join("host"));
            eprintln!("  share's host dir {times:?}");
            push(&mut smb_host, times);
        }
    }
    drop(smb);
    let _ = std::fs::remove_dir_all(&work);

    println!("\nvirtio-fs vs the host directory ({mib} MiB, {files} files, median of {runs}):\n");
    table(&[("guest virtio-fs", &fs_guest), ("host dir", &fs_host)], mib, files);
    if !smb_guest[0].is_empty() {
        println!("\nSMB 3.1.1 (CIFS) vs smbclient and the share's host directory (same run):\n");
        table(
            &[("guest SMB", &smb_guest), ("smbclient", &smb_client), ("share's host dir", &smb_host)],
            mib,
            files,
        );
    }
    println!("\n(a / b is the time ratio: how many times longer side a took than side b.)");
}
