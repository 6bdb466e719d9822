//! The tap backend: an `IFF_TAP | IFF_NO_PI` device, non-blocking, one packet per read or
//! write. With `IFF_VNET_HDR` (always when opened by name; when the caller's fd has it) every
//! packet carries the guest's 12-byte `virtio_net_hdr_v1`, which is what makes checksum and
//! segmentation offloads possible ([`Tap::set_offloads`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::virtio::net::handler::{NetBackend, VNET_HDR_LEN};

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `TUNGETIFF` = `_IOR('T', 210, unsigned int)`.
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
/// `TUNSETOFFLOAD` = `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUNSETVNETHDRSZ` = `_IOW('T', 216, int)`.
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
/// `IFF_VNET_HDR`: packets carry a `virtio_net_hdr`.
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// `struct ifreq` as `TUNSETIFF` reads it: the name and the flags, padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Why a tap could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The name is empty, too long (15 bytes at most) or contains NUL.
    #[error("invalid interface name {0:?}")]
    InvalidName(String),
    /// `/dev/net/tun` could not be opened.
    #[error("could not open /dev/net/tun")]
    OpenTunDevice(#[source] io::Error),
    /// `TUNSETIFF` failed (no permission, or the name is a non-tap interface).
    #[error("could not attach to tap interface {name}")]
    SetInterface {
        /// The name.
        name: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The fd could not be made non-blocking.
    #[error("could not make the tap fd non-blocking")]
    SetNonBlocking(#[source] io::Error),
    /// `TUNGETIFF`, `TUNSETVNETHDRSZ` or `TUNSETOFFLOAD` failed.
    #[error("could not configure the tap's virtio-net header ({what})")]
    VnetHdr {
        /// The ioctl.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A tap device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    /// Whether packets carry the 12-byte virtio-net header (`IFF_VNET_HDR`).
    vnet_hdr: bool,
}

/// `TUNSETVNETHDRSZ`: the header length, passed through a pointer.
fn set_vnet_hdr_len(fd: RawFd) -> Result<(), TapError> {
    let len = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, TUNSETVNETHDRSZ, &len as *const libc::c_int) };
    if rc < 0 {
        let source = io::Error::last_os_error();
        return Err(TapError::VnetHdr { what: "TUNSETVNETHDRSZ", source });
    }
    Ok(())
}

/// `TUNSETOFFLOAD`: the `TUN_F_*` flags, passed by value (not through a pointer).
fn set_offload_flags(fd: RawFd, flags: u32) -> Result<(), TapError> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no user memory.
    let rc = unsafe { libc::ioctl(fd, TUNSETOFFLOAD, libc::c_ulong::from(flags)) };
    if rc < 0 {
        return Err(TapError::VnetHdr { what: "TUNSETOFFLOAD", source: io::Error::last_os_error() });
    }
    Ok(())
}

impl Tap {
    /// Opens (creating if needed) the tap interface `name`; it lasts while the fd is open
    /// unless made persistent elsewhere.
    pub fn open(name: &str) -> Result<Self, TapError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(TapError::InvalidName(name.to_string()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(TapError::OpenTunDevice)?;
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
        for (dst, src) in req.name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short | IFF_VNET_HDR;
        // SAFETY: `file` is an open /dev/net/tun fd and `req` a live, correctly sized ifreq
        // that the kernel only reads and writes within its 40 bytes.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            let source = io::Error::last_os_error();
            return Err(TapError::SetInterface { name: name.to_string(), source });
        }
        Self::from_fd(OwnedFd::from(file))
    }

    /// Uses a tap fd the caller opened (`IFF_TAP | IFF_NO_PI`, with or without
    /// `IFF_VNET_HDR`; with it, the header length is set to 12 and offloads start off).
    pub fn from_fd(fd: OwnedFd) -> Result<Self, TapError> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own; F_GETFL/F_SETFL touch only its status flags.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(TapError::SetNonBlocking(io::Error::last_os_error()));
        }
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
        // SAFETY: TUNGETIFF writes one `struct ifreq` (40 bytes) into the live `req`.
        let rc = unsafe { libc::ioctl(raw, TUNGETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(TapError::VnetHdr { what: "TUNGETIFF", source: io::Error::last_os_error() });
        }
        let vnet_hdr = req.flags & IFF_VNET_HDR != 0;
        if vnet_hdr {
            set_vnet_hdr_len(raw)?;
            set_offload_flags(raw, 0)?;
        }
        Ok(Self { file: File::from(fd), vnet_hdr })
    }

    /// Whether packets carry the virtio-net header (offloads are possible).
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Sets which offloads (`TUN_F_*`) the tap may use on packets it hands out; a no-op
    /// without the virtio-net header.
    pub fn set_offloads(&self, flags: u32) -> Result<(), TapError> {
        if !self.vnet_hdr {
            return Ok(());
        }
        set_offload_flags(self.file.as_raw_fd(), flags)
    }

    /// A duplicate of the tap fd.
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.file.try_clone().map(OwnedFd::from)
    }

    /// The fd to poll for incoming frames.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// A write the tap cannot take now (its queue is full) drops the packet, as a NIC would.
fn dropped_when_full(result: io::Result<usize>) -> io::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// `Ok(None)` for an empty tap.
fn none_when_empty(result: io::Result<usize>) -> io::Result<Option<usize>> {
    match result {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

impl NetBackend for Tap {
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.vnet_hdr {
            let mut packet = vec![0u8; VNET_HDR_LEN];
            packet.extend_from_slice(frame);
            return dropped_when_full(self.file.write(&packet));
        }
        dropped_when_full(self.file.write(frame))
    }

    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.vnet_hdr {
            let mut packet = vec![0u8; VNET_HDR_LEN + buf.len()];
            let n = none_when_empty(self.file.read(&mut packet))?;
            return Ok(n.map(|n| {
                let frame = packet.get(VNET_HDR_LEN..n).unwrap_or_default();
                buf[..frame.len()].copy_from_slice(frame);
                frame.len()
            }));
        }
        none_when_empty(self.file.read(buf))
    }

    fn send_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        if self.vnet_hdr {
            return dropped_when_full(self.file.write(packet));
        }
        self.send_frame(packet.get(VNET_HDR_LEN..).unwrap_or_default())
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.vnet_hdr {
            return none_when_empty(self.file.read(buf));
        }
        let Some((hdr, frame)) = buf.split_at_mut_checked(VNET_HDR_LEN) else {
            return Ok(None);
        };
        hdr.fill(0);
        Ok(none_when_empty(self.file.read(frame))?.map(|n| n + VNET_HDR_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::net::features::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6};

    fn unusable() -> Option<&'static str> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            Some("not root")
        } else if !std::path::Path::new("/dev/net/tun").exists() {
            Some("no /dev/net/tun")
        } else {
            None
        }
    }

    #[test]
    fn a_tap_opened_by_name_carries_the_header_and_takes_offloads() {
        let test = "a_tap_opened_by_name_carries_the_header_and_takes_offloads";
        if !aci_testkit::requirement(test, unusable()) {
            return;
        }
        // A transient interface: it goes away with the last fd.
        let tap = Tap::open(&format!("acivt{}", std::process::id() % 100_000)).unwrap();
        assert!(tap.vnet_hdr());
        tap.set_offloads(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).unwrap();
        tap.set_offloads(0).unwrap();
        let again = Tap::from_fd(tap.try_clone_fd().unwrap()).unwrap();
        assert!(again.vnet_hdr(), "a duplicate fd sees the same flags");
        let err = tap.set_offloads(0x8000_0000).unwrap_err();
        assert!(matches!(err, TapError::VnetHdr { what: "TUNSETOFFLOAD", .. }), "{err:?}");
    }
}
