//! Tap devices opened through `/dev/net/tun` inside a namespace; the returned fd belongs to the
//! caller (the VMM's virtio-net), the device disappears when the last fd closes.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::netns::{self, NetnsError};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// `struct ifreq` as TUNSETIFF reads it: name, then flags, padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Errors of tap operations.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The interface name does not fit `IFNAMSIZ`.
    #[error("tap name {0:?} is empty or longer than 15 bytes")]
    Name(String),
    /// Entering the namespace failed.
    #[error("cannot open a tap in the namespace")]
    Namespace(#[source] NetnsError),
    /// Opening `/dev/net/tun` failed.
    #[error("cannot open /dev/net/tun")]
    OpenTun(#[source] std::io::Error),
    /// `TUNSETIFF` failed (name taken, no permission).
    #[error("cannot create tap {name}")]
    SetIff {
        /// Tap name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Creates tap `name` inside namespace `ns` and returns its fd (`IFF_TAP | IFF_NO_PI`, plus
/// `IFF_VNET_HDR` when `vnet_hdr`).
pub fn open_in(ns: &str, name: &str, vnet_hdr: bool) -> Result<OwnedFd, TapError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(TapError::Name(name.to_owned()));
    }
    let owned = name.to_owned();
    netns::run_in(ns, move || open_here(&owned, vnet_hdr)).map_err(TapError::Namespace)?
}

fn open_here(name: &str, vnet_hdr: bool) -> Result<OwnedFd, TapError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(TapError::OpenTun)?;
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI, _pad: [0; 22] };
    if vnet_hdr {
        req.flags |= IFF_VNET_HDR;
    }
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq`; `req` is a properly sized, initialised one that
    // outlives the call, and `file` is an open tun fd.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
    if rc != 0 {
        let source = std::io::Error::last_os_error();
        return Err(TapError::SetIff { name: name.to_owned(), source });
    }
    Ok(file.into())
}
