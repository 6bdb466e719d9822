//! Plain-data description of a microVM: what the caller asks for, nothing running yet.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The kernel command line used when the caller has no opinion.
///
/// `reboot=t` makes the guest's reboot a triple fault (a shutdown exit), `panic=-1` turns a
/// panic into an immediate reboot, `quiet` keeps console traffic (one VM exit per byte) low,
/// `noxsave` works around nested XSETBV trouble, and the `i8042.*` options stop the keyboard
/// controller driver from probing for devices this VMM does not have (with a keyboard port,
/// the kernel's keyboard probe waits ~0.5 s for replies and holds up reboot).
/// `8250.nr_uarts=1` stops the serial driver from probing COM2-COM4.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=t panic=-1 quiet noxsave \
     i8042.noaux i8042.nomux i8042.nopnp i8042.nokbd 8250.nr_uarts=1";

/// Where the guest's serial console (COM1) output goes.
pub enum SerialOutput {
    /// Discard everything the guest prints.
    Sink,
    /// The VMM process's standard output.
    Stdout,
    /// A file, created (or truncated) when the VM is built.
    File(PathBuf),
    /// Any writer the caller provides, e.g. one that forwards to a channel.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for SerialOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sink => f.write_str("Sink"),
            Self::Stdout => f.write_str("Stdout"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

/// A source of bytes for the guest's serial console input.
pub struct SerialInput(pub Box<dyn Read + Send>);

impl fmt::Debug for SerialInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SerialInput(..)")
    }
}

/// Everything needed to build and boot one microVM.
#[derive(Debug)]
pub struct VmConfig {
    /// Number of vCPUs (1..=[`MAX_VCPUS`]).
    pub vcpus: u8,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Guest kernel: an ELF `vmlinux` or a `bzImage`; the format is detected.
    pub kernel: PathBuf,
    /// Optional initramfs, loaded at the top of low memory.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub cmdline: String,
    /// Where COM1 output goes.
    pub serial_output: SerialOutput,
    /// Optional source of COM1 input.
    pub serial_input: Option<SerialInput>,
    /// virtio-blk disks, in order: the guest sees them as `/dev/vda`, `/dev/vdb`, ...
    pub disks: Vec<DiskConfig>,
    /// virtio-net devices, in order: the guest sees them as `eth0`, `eth1`, ...
    pub nets: Vec<NetConfig>,
    /// The virtio-vsock device, if any.
    pub vsock: Option<VsockConfig>,
    /// A virtio-rng device fed by the host's getrandom (the guest's `/dev/hwrng`).
    pub rng: bool,
    /// Host directories shared with the guest over virtio-fs, one device each, in order
    /// (the guest mounts each by its tag: `mount -t virtiofs <tag> <dir>`).
    pub shares: Vec<ShareConfig>,
}

/// Where a network device's tap comes from.
#[derive(Debug)]
pub enum TapSource {
    /// An open tap fd (`IFF_TAP | IFF_NO_PI`; with `IFF_VNET_HDR` the device offers checksum and
    /// segmentation offloads); the VMM uses a duplicate.
    Fd(OwnedFd),
    /// A tap interface name, opened (and created if missing) with `TUNSETIFF` at build, with
    /// `IFF_VNET_HDR`.
    Name(String),
}

/// One virtio-net device over a host tap (offloads when the tap has `IFF_VNET_HDR`).
#[derive(Debug)]
pub struct NetConfig {
    /// The tap.
    pub tap: TapSource,
    /// The guest's MAC address.
    pub mac: [u8; 6],
}

/// One virtio-blk disk backed by a host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The disk image (raw). Its size, rounded down to 512 bytes, is the disk's size.
    pub path: PathBuf,
    /// Offer the disk read-only (`VIRTIO_BLK_F_RO`); the file is opened read-only.
    pub read_only: bool,
    /// The serial the guest reads with `GET_ID` (at most 20 bytes are used), shown in
    /// `/sys/block/vdX/serial`.
    pub serial: Option<String>,
}

/// The virtio-vsock device and its host side of Unix sockets (Firecracker's convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context id (3 or more).
    pub guest_cid: u64,
    /// Host-initiated connections: connect here, send `CONNECT <port>\n`, read
    /// `OK <host_port>\n`. Guest connections to host port P go to `<uds_path>_P`.
    pub uds_path: PathBuf,
}

/// One host directory shared with the guest over virtio-fs.
///
/// The directory is the root of what the guest sees: `..` at the top and absolute symlinks
/// resolve inside the guest, never on the host. Files the guest creates belong to the guest
/// caller's uid/gid on the host (no id mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// The name the guest mounts it by: 1 to 36 bytes, no NUL.
    pub tag: String,
    /// The host directory.
    pub path: PathBuf,
    /// Refuse every change (writes, creation, removal, attribute changes) with `EROFS`,
    /// whatever the guest's mount options say.
    pub read_only: bool,
}

/// The largest vCPU count the MP table layout supports.
pub const MAX_VCPUS: u8 = 32;

impl VmConfig {
    /// A configuration with 1 vCPU, 256 MiB, no initrd, [`DEFAULT_CMDLINE`] and serial output
    /// to stdout.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        Self {
            vcpus: 1,
            memory_mib: 256,
            kernel: kernel.into(),
            initrd: None,
            cmdline: DEFAULT_CMDLINE.to_string(),
            serial_output: SerialOutput::Stdout,
            serial_input: None,
            disks: Vec::new(),
            nets: Vec::new(),
            vsock: None,
            rng: false,
            shares: Vec::new(),
        }
    }

    /// Guest RAM in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory_mib) << 20
    }
}
