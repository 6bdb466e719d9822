//! A small synchronous rtnetlink client: the three requests the sandbox needs (link up with
//! an MTU, add an address, add a default route), each sent with `NLM_F_ACK` and answered by
//! the kernel's error/ack message.
//!
//! Message layout (all host byte order): `nlmsghdr` (16 bytes), the family header
//! (`ifinfomsg` 16, `ifaddrmsg` 8, `rtmsg` 12), then attributes, each `rtattr` (4 bytes:
//! length, type) plus its value padded to 4 bytes.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const RECEIVE_TIMEOUT_SECS: libc::time_t = 5;

/// One rtnetlink request being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set by `Netlink::request`
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        Self { buf }
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    fn finish(mut self) -> Self {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// `RTM_NEWLINK` on an existing link: set `IFF_UP`, and the MTU when given.
    pub fn link_up(index: u32, mtu: Option<u32>) -> Self {
        let mut m = Self::new(libc::RTM_NEWLINK, 0);
        m.buf.push(libc::AF_UNSPEC as u8); // ifi_family
        m.buf.push(0); // padding
        m.buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
        m.buf.extend_from_slice(&(index as i32).to_ne_bytes());
        m.buf.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes()); // ifi_flags
        m.buf.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes()); // ifi_change
        if let Some(mtu) = mtu {
            m = m.attr(libc::IFLA_MTU, &mtu.to_ne_bytes());
        }
        m.finish()
    }

    /// `RTM_NEWADDR`: `ip/prefix` on link `index` (replacing an equal one; IPv6 without DAD).
    pub fn address_add(index: u32, ip: IpAddr, prefix: u8) -> Self {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
        let mut m = Self::new(libc::RTM_NEWADDR, flags);
        m.buf.push(family(ip));
        m.buf.push(prefix);
        m.buf.push(if ip.is_ipv6() { IFA_F_NODAD } else { 0 });
        m.buf.push(libc::RT_SCOPE_UNIVERSE);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        let bytes = octets(ip);
        m = m.attr(libc::IFA_LOCAL, &bytes).attr(libc::IFA_ADDRESS, &bytes);
        m.finish()
    }

    /// `RTM_NEWROUTE`: the default route of `gateway`'s family via `gateway` on link `index`.
    pub fn default_route(index: u32, gateway: IpAddr) -> Self {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
        let mut m = Self::new(libc::RTM_NEWROUTE, flags);
        m.buf.push(family(gateway));
        m.buf.extend_from_slice(&[0, 0, 0]); // dst_len, src_len, tos
        m.buf.push(libc::RT_TABLE_MAIN);
        m.buf.push(libc::RTPROT_BOOT);
        m.buf.push(libc::RT_SCOPE_UNIVERSE);
        m.buf.push(libc::RTN_UNICAST);
        m.buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
        m = m.attr(libc::RTA_GATEWAY, &octets(gateway)).attr(libc::RTA_OIF, &index.to_ne_bytes());
        m.finish()
    }

    /// The encoded message.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    }
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Reads the answer to request `seq` out of a received datagram: `Ok(Some(()))` for an ack,
/// `Some(Err)` for a kernel error, `None` when the datagram holds no answer to `seq`.
pub fn parse_ack(datagram: &[u8], seq: u32) -> Option<io::Result<()>> {
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(rest[4..6].try_into().ok()?);
        let got_seq = u32::from_ne_bytes(rest[8..12].try_into().ok()?);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Some(Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message")));
        }
        if kind == NLMSG_ERROR && got_seq == seq && len >= NLMSG_HDRLEN + 4 {
            let code = i32::from_ne_bytes(rest[16..20].try_into().ok()?);
            return Some(if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-code)) });
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    None
}

/// A `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Opens and binds the socket.
    pub fn open() -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let fd = unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; all-zero (kernel-assigned port) is valid.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_nl of `len` bytes that outlives the call.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&addr).cast(), len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval { tv_sec: RECEIVE_TIMEOUT_SECS, tv_usec: 0 };
        let size = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
        // SAFETY: SO_RCVTIMEO reads a timeval of `size` bytes from a valid pointer.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::from_ref(&timeout).cast(),
                size,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, seq: 0 })
    }

    /// Sends `message` and waits for the kernel's answer.
    pub fn request(&mut self, message: Message) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut buf = message.buf;
        buf[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: `buf` is valid for `buf.len()` bytes; the kernel is the destination
        // because the socket is unconnected and send(2) on netlink defaults to it.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut answer = vec![0u8; 8192];
        loop {
            // SAFETY: `answer` is valid for writes of `answer.len()` bytes.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), answer.as_mut_ptr().cast(), answer.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(result) = parse_ack(&answer[..n as usize], self.seq) {
                return result;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn link_up_sets_the_up_flag_and_the_mtu() {
        let m = Message::link_up(7, Some(1400));
        let b = m.bytes();
        assert_eq!(b.len(), 16 + 16 + 8);
        assert_eq!(u32_at(b, 0) as usize, b.len());
        assert_eq!(u16_at(b, 4), libc::RTM_NEWLINK);
        assert_eq!(u16_at(b, 6), (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16);
        assert_eq!(u32_at(b, 20), 7); // ifi_index
        assert_eq!(u32_at(b, 24), libc::IFF_UP as u32);
        assert_eq!(u32_at(b, 28), libc::IFF_UP as u32);
        assert_eq!((u16_at(b, 32), u16_at(b, 34), u32_at(b, 36)), (8, libc::IFLA_MTU, 1400));
        assert_eq!(Message::link_up(1, None).bytes().len(), 32);
    }

    #[test]
    fn addresses_carry_local_and_address_attributes() {
        let m = Message::address_add(2, "10.92.0.5".parse().unwrap(), 24);
        let b = m.bytes();
        assert_eq!(u16_at(b, 4), libc::RTM_NEWADDR);
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
        assert_eq!(u16_at(b, 6), flags);
        assert_eq!(&b[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32_at(b, 20), 2);
        assert_eq!((u16_at(b, 24), u16_at(b, 26)), (8, libc::IFA_LOCAL));
        assert_eq!(&b[28..32], &[10, 92, 0, 5]);
        assert_eq!((u16_at(b, 32), u16_at(b, 34)), (8, libc::IFA_ADDRESS));
        assert_eq!(b.len(), 40);
        let v6 = Message::address_add(2, "fd00::5".parse().unwrap(), 64);
        assert_eq!(&v6.bytes()[16..19], &[libc::AF_INET6 as u8, 64, IFA_F_NODAD]);
        assert_eq!(v6.bytes().len(), 16 + 8 + 20 + 20);
    }

    #[test]
    fn default_routes_name_gateway_and_interface() {
        let m = Message::default_route(3, "10.92.0.1".parse().unwrap());
        let b = m.bytes();
        assert_eq!(u16_at(b, 4), libc::RTM_NEWROUTE);
        assert_eq!(
            &b[16..24],
            &[libc::AF_INET as u8, 0, 0, 0, libc::RT_TABLE_MAIN, libc::RTPROT_BOOT, 0, libc::RTN_UNICAST]
        );
        assert_eq!((u16_at(b, 28), u16_at(b, 30)), (8, libc::RTA_GATEWAY));
        assert_eq!(&b[32..36], &[10, 92, 0, 1]);
        assert_eq!((u16_at(b, 36), u16_at(b, 38), u32_at(b, 40)), (8, libc::RTA_OIF, 3));
    }

    #[test]
    fn acks_and_errors_are_matched_by_sequence() {
        let answer = |seq: u32, code: i32| {
            let mut b = Vec::new();
            b.extend_from_slice(&36u32.to_ne_bytes());
            b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            b.extend_from_slice(&0u16.to_ne_bytes());
            b.extend_from_slice(&seq.to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(&code.to_ne_bytes());
            b.extend_from_slice(&[0u8; 16]); // the request's header
            b
        };
        assert!(parse_ack(&answer(4, 0), 4).unwrap().is_ok());
        let err = parse_ack(&answer(4, -libc::EEXIST), 4).unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert!(parse_ack(&answer(3, 0), 4).is_none());
        let mut two = answer(3, 0);
        two.extend(answer(4, -libc::ENODEV));
        assert_eq!(parse_ack(&two, 4).unwrap().unwrap_err().raw_os_error(), Some(libc::ENODEV));
    }
}
