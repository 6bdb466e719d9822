//! KVM tier: large directories on a virtio-fs share, listed and removed by the real guest
//! kernel (a busybox `/init` mounts the share by tag; no agent).
//!
//! One share holds a host-made tree of 3010 entries (2000 files, 10 directories of 100 files,
//! names of varying length). The guest:
//!
//! 1. lists the host-made tree (`ls -a`, `find`): its counts must be the host's (READDIR
//!    completeness, host to guest);
//! 2. makes its own tree of the same shape; the guest's counts and, while the guest waits,
//!    the host's counts must agree (guest to host);
//! 3. `rm -rf`s both trees: both must be gone on the host and in the guest's `ls`.
//!
//! The share lives under `std::env::temp_dir()` (tmpfs in L1, whose directory offsets on
//! Linux 6.1 are positions in the list and shift when entries are removed; removing while
//! reading is what `rm -rf` does). `ACI_TEST_VIRTIOFS_ROOT` puts it on another filesystem
//! (e.g. a loop-mounted ext4, whose offsets are name hashes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
#[allow(dead_code)]
mod virtio_guest;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aci_vmm::{ExitReason, SerialOutput, ShareConfig, Vm, VmConfig, DEFAULT_CMDLINE};
use virtio_guest::{build_initramfs, guest_kernel, work_dir, Console};

/// Files directly in a tree.
const TOP_FILES: usize = 2000;
/// Subdirectories in a tree, and files in each.
const SUBDIRS: usize = 10;
const SUB_FILES: usize = 100;
/// Entries below a tree's root (what `find` prints, minus the root itself).
const ENTRIES: usize = TOP_FILES + SUBDIRS + SUBDIRS * SUB_FILES;
/// Guest steps under TCG are slow: creating 3000 files takes a while.
const TIMEOUT: Duration = Duration::from_secs(300);
const DONE: &str = "ACI-TEST-DONE";
/// The guest prints this once its tree is made, then waits for [`HOST_CHECKED`].
const GUEST_TREE_MADE: &str = "guest-tree-made";
const HOST_CHECKED: &str = "host-checked";

/// A top-level file name: the index and 0..40 bytes of padding, so entries pack unevenly.
fn top_name(i: usize) -> String {
    format!("file-{i}-{}", "x".repeat(i % 41))
}

/// Makes the tree at `root` on the host.
fn host_tree(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..TOP_FILES {
        std::fs::write(root.join(top_name(i)), b"").unwrap();
    }
    for d in 0..SUBDIRS {
        let sub = root.join(format!("sub-{d}"));
        std::fs::create_dir(&sub).unwrap();
        for i in 0..SUB_FILES {
            std::fs::write(sub.join(format!("nested-{i}")), b"").unwrap();
        }
    }
}

/// Entries below `root` on the host (recursively), and directly in it.
fn host_counts(root: &Path) -> (usize, usize) {
    let mut all = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            all += 1;
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (std::fs::read_dir(root).unwrap().count(), all)
}

/// The guest's script: the same tree shape made with shell builtins (no fork per file; `echo`,
/// not `:`, whose failed redirection would end the shell, PID 1).
fn guest_script() -> String {
    format!(
        "mkdir -p /mnt && mount -t virtiofs vol /mnt || echo 'mount failed'\n\
         count() {{ echo \"$1 top=$(ls -A \"$2\" | wc -l) all=$(find \"$2\" -mindepth 1 | wc -l)\"; }}\n\
         count host-tree /mnt/host-tree\n\
         t0=$(date +%s)\n\
         mkdir /mnt/guest-tree && cd /mnt/guest-tree || echo 'mkdir failed'\n\
         i=0; pad=''; while [ $i -lt {TOP_FILES} ]; do\n\
           echo -n > \"file-$i-$pad\"; i=$((i + 1)); pad=\"${{pad}}x\"; [ ${{#pad}} -gt 40 ] && pad=''\n\
         done\n\
         d=0; while [ $d -lt {SUBDIRS} ]; do\n\
           mkdir sub-$d; i=0; while [ $i -lt {SUB_FILES} ]; do echo -n > sub-$d/nested-$i; i=$((i + 1)); done\n\
           d=$((d + 1))\n\
         done\n\
         cd /\n\
         echo \"made in $(( $(date +%s) - t0 )) s\"\n\
         count guest-tree /mnt/guest-tree\n\
         echo {GUEST_TREE_MADE}\n\
         while [ ! -e /mnt/{HOST_CHECKED} ]; do sleep 0.2; done\n\
         t0=$(date +%s)\n\
         rm -rf /mnt/guest-tree 2>&1 | head -n 3\n\
         rm -rf /mnt/host-tree 2>&1 | head -n 3\n\
         echo \"removed in $(( $(date +%s) - t0 )) s\"\n\
         echo \"left: $(ls -A /mnt | tr '\\n' ' ')\"\n\
         for t in guest-tree host-tree; do\n\
           if [ -e /mnt/$t ]; then echo \"$t remains: $(find /mnt/$t -mindepth 1 | wc -l)\"; else echo \"$t remains: none\"; fi\n\
         done\n\
         umount /mnt"
    )
}

/// Waits for `marker` on the console; panics with the console on a guest kernel panic or
/// after [`TIMEOUT`].
fn wait_for(console: &Console, marker: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = console.text();
        if text.contains(marker) {
            return;
        }
        assert!(!text.contains("Kernel panic") && Instant::now() < deadline, "no '{marker}':\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The share's parent: `ACI_TEST_VIRTIOFS_ROOT`, or the temp dir (tmpfs in L1).
fn share_parent() -> PathBuf {
    std::env::var_os("ACI_TEST_VIRTIOFS_ROOT").map_or_else(std::env::temp_dir, PathBuf::from)
}

#[test]
#[ignore = "KVM tier: boots the guest (needs `cargo xtask guest`); run by `cargo xtask test`"]
fn virtiofs_large_directories_list_completely_and_rm_rf_removes_everything() {
    let test = "virtiofs_large_directories_list_completely_and_rm_rf_removes_everything";
    if !support::require_hardware_kvm(test) {
        return;
    }
    let dir = work_dir("fs_dirs");
    let share = share_parent().join(format!("aci-kvm-virtiofs-dirs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share).unwrap();
    host_tree(&share.join("host-tree"));
    assert_eq!(host_counts(&share.join("host-tree")), (TOP_FILES + SUBDIRS, ENTRIES));

    let initrd = build_initramfs(&dir, &[], &guest_script());
    let console = Console::default();
    let mut config = VmConfig::new(guest_kernel());
    config.initrd = Some(initrd);
    config.memory_mib = 256;
    config.cmdline = DEFAULT_CMDLINE.to_string();
    config.serial_output = SerialOutput::Writer(Box::new(console.clone()));
    config.shares = vec![ShareConfig { tag: "vol".into(), path: share.clone(), read_only: false }];
    let started = Instant::now();
    let mut vm = Vm::build(config).unwrap();

    wait_for(&console, GUEST_TREE_MADE);
    let made = started.elapsed();
    let guest_tree = host_counts(&share.join("guest-tree"));
    std::fs::write(share.join(HOST_CHECKED), b"").unwrap();
    wait_for(&console, DONE);
    let exit = vm.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| vm.stop());
    let text = console.text();
    println!("{test}: guest console:\n{text}");
    assert_eq!(exit.reason, ExitReason::GuestReset, "{test}: {exit:?}");

    let counts = |top: usize, all: usize| format!("top={top} all={all}");
    let expected = counts(TOP_FILES + SUBDIRS, ENTRIES);
    // Host to guest: the guest lists every entry the host made.
    assert_eq!(console.line_after("host-tree ").as_deref(), Some(&*expected), "{test}: guest listing");
    // Guest to host: the host sees every entry the guest made, and so does the guest.
    assert_eq!(guest_tree, (TOP_FILES + SUBDIRS, ENTRIES), "{test}: the guest's tree on the host");
    assert_eq!(console.line_after("guest-tree ").as_deref(), Some(&*expected), "{test}: guest's own tree");
    // rm -rf removes everything, as the host and the guest see it.
    for tree in ["guest-tree", "host-tree"] {
        assert_eq!(
            console.line_after(&format!("{tree} remains: ")).as_deref(),
            Some("none"),
            "{test}: the guest's view after rm -rf {tree}"
        );
        let path = share.join(tree);
        let left = path.exists().then(|| host_counts(&path));
        assert_eq!(left, None, "{test}: {tree} on the host after rm -rf (directly in it, below it)");
    }
    let listed = std::fs::read_dir(&share).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(listed, vec![std::ffi::OsString::from(HOST_CHECKED)], "{test}: the share after rm -rf");
    assert_eq!(console.line_after("left: ").as_deref().map(str::trim), Some(HOST_CHECKED));
    let fs = *vm.metrics().device("fs0").unwrap();
    println!(
        "{test}: guest tree made {made:?} after build, done after {:?}; {}; {}; fs0 {fs:?}",
        started.elapsed(),
        console.line_after("made in ").unwrap_or_default(),
        console.line_after("removed in ").unwrap_or_default()
    );
    std::fs::remove_dir_all(&share).unwrap();
}
