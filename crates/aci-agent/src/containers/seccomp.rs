//! The seccomp profile every container gets: allow by default, refuse (EPERM) the system
//! calls that reach kernel-global state a container has no business touching. The list
//! follows the spirit of the usual container-runtime denylists; names the kernel or
//! libseccomp does not know on this architecture are skipped by the runtime.

use libcontainer::oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};
use libcontainer::oci_spec::OciSpecError;

/// Refused with EPERM, grouped by what they would give access to.
pub const DENIED: &[&str] = &[
    // Kernel modules, kexec, reboot, swap, accounting, quotas.
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "nfsservctl",
    // The clock and other machine-wide settings.
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "_sysctl",
    "sysfs",
    "ustat",
    "uselib",
    "lookup_dcookie",
    // Keyrings (not namespaced).
    "add_key",
    "request_key",
    "keyctl",
    // Namespaces and mounts (the container's are set up before the filter applies).
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "setns",
    "unshare",
    "open_by_handle_at",
    "name_to_handle_at",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    // Inspecting or tracing other processes and the kernel.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    // NUMA policy and raw I/O ports.
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "move_pages",
    "migrate_pages",
    "ioperm",
    "iopl",
    "vm86",
    "vm86old",
];

/// The profile: default allow, [`DENIED`] answered with EPERM, for x86-64 and its 32-bit
/// ABIs.
pub fn profile() -> Result<LinuxSeccomp, OciSpecError> {
    let denied = LinuxSyscallBuilder::default()
        .names(DENIED.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32])
        .syscalls(vec![denied])
        .build()
}
