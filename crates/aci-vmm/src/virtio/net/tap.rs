//! The tap backend: an `IFF_TAP | IFF_NO_PI` device (no `IFF_VNET_HDR`), non-blocking, one
//! Ethernet frame per read or write.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::virtio::net::handler::NetBackend;

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

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
}

/// A tap device.
#[derive(Debug)]
pub struct Tap(File);

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
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: `file` is an open /dev/net/tun fd and `req` a live, correctly sized ifreq
        // that the kernel only reads and writes within its 40 bytes.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            let source = io::Error::last_os_error();
            return Err(TapError::SetInterface { name: name.to_string(), source });
        }
        Self::from_fd(OwnedFd::from(file))
    }

    /// Uses a tap fd the caller opened (`IFF_TAP | IFF_NO_PI`, without `IFF_VNET_HDR`).
    pub fn from_fd(fd: OwnedFd) -> Result<Self, TapError> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own; F_GETFL/F_SETFL touch only its status flags.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(TapError::SetNonBlocking(io::Error::last_os_error()));
        }
        Ok(Self(File::from(fd)))
    }

    /// A duplicate of the tap fd.
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.0.try_clone().map(OwnedFd::from)
    }

    /// The fd to poll for incoming frames.
    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl NetBackend for Tap {
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        match self.0.write(frame) {
            Ok(_) => Ok(()),
            // The tap queue is full: drop, as a NIC would.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.0.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
