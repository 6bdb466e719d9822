//! The host side of the vsock device over Unix sockets, Firecracker's convention:
//!
//! - host-initiated: a client connects to `uds_path`, sends `CONNECT <port>\n`; the muxer
//!   sends the guest a `REQUEST` to that port and, on the guest's `RESPONSE`, answers
//!   `OK <host_port>\n`; then the socket is a byte stream to the guest port.
//! - guest-initiated: a guest connection to host port P is connected to the listener at
//!   `<uds_path>_P`; refused (`RST`) if nothing listens there.
//!
//! The muxer owns every host fd in its own epoll set (connections edge-triggered); the
//! device thread polls that set's fd and calls [`Muxer::process_events`]. Towards the queue
//! logic it is a [`VsockBackend`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use crate::virtio::vsock::conn::Conn;
use crate::virtio::vsock::handler::VsockBackend;
use crate::virtio::vsock::packet::{op, Header, Packet, HOST_CID, TYPE_STREAM};

/// Longest `CONNECT <port>\n` line accepted.
const MAX_CONNECT_LINE: usize = 32;
/// First local port handed to host-initiated connections.
const FIRST_LOCAL_PORT: u32 = 1 << 30;

/// `(host port, guest port)`.
type ConnKey = (u32, u32);

/// Why the muxer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MuxerError {
    /// The Unix listener could not be bound.
    #[error("could not listen on {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The epoll set could not be created or changed.
    #[error("could not set up the muxer's epoll set")]
    Epoll(#[source] io::Error),
}

/// A host client that has not finished its `CONNECT` line.
struct Handshake {
    stream: UnixStream,
    line: Vec<u8>,
}

/// The vsock backend over Unix sockets.
pub struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    epoll: Epoll,
    listener: UnixListener,
    handshakes: HashMap<RawFd, Handshake>,
    conns: HashMap<ConnKey, Conn<UnixStream>>,
    by_fd: HashMap<RawFd, ConnKey>,
    /// Resets for packets that match no connection.
    control: VecDeque<Packet>,
    next_local_port: u32,
    /// Rotates which connection gets the next guest buffer, so one busy stream cannot
    /// starve the others.
    next_turn: usize,
}

impl std::fmt::Debug for Muxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Muxer")
            .field("uds_path", &self.uds_path)
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Muxer {
    /// Listens on `uds_path` (a stale socket file there is replaced).
    pub fn new(guest_cid: u64, uds_path: &Path) -> Result<Self, MuxerError> {
        let bind = |source| MuxerError::Bind { path: uds_path.to_path_buf(), source };
        match std::fs::remove_file(uds_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(bind(e)),
        }
        let listener = UnixListener::bind(uds_path).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let epoll = Epoll::new().map_err(MuxerError::Epoll)?;
        let fd = listener.as_raw_fd();
        epoll
            .ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, fd_token(fd)))
            .map_err(MuxerError::Epoll)?;
        Ok(Self {
            guest_cid,
            uds_path: uds_path.to_path_buf(),
            epoll,
            listener,
            handshakes: HashMap::new(),
            conns: HashMap::new(),
            by_fd: HashMap::new(),
            control: VecDeque::new(),
            next_local_port: FIRST_LOCAL_PORT,
            next_turn: 0,
        })
    }

    /// The fd the device thread polls: readable when a host socket has events.
    pub fn epoll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Handles the pending host-socket events (one batch: if more are ready, the muxer's fd
    /// stays readable and the device thread comes back).
    pub fn process_events(&mut self) {
        let mut events = [EpollEvent::default(); 32];
        let Ok(n) = self.epoll.wait(0, &mut events) else {
            return;
        };
        for event in &events[..n] {
            self.handle_event(event.fd(), event.event_set());
        }
    }

    fn handle_event(&mut self, fd: RawFd, set: EventSet) {
        if fd == self.listener.as_raw_fd() {
            self.accept_all();
        } else if self.handshakes.contains_key(&fd) {
            self.continue_handshake(fd);
        } else if let Some(key) = self.by_fd.get(&fd).copied() {
            if let Some(conn) = self.conns.get_mut(&key) {
                if set.intersects(EventSet::IN | EventSet::READ_HANG_UP | EventSet::HANG_UP | EventSet::ERROR)
                {
                    conn.on_host_readable();
                }
                if set.contains(EventSet::OUT) {
                    conn.on_host_writable();
                }
            }
            self.reap(key);
        }
    }

    fn accept_all(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let fd = stream.as_raw_fd();
            let added = stream.set_nonblocking(true).and_then(|()| {
                self.epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, fd_token(fd)))
            });
            if added.is_ok() {
                self.handshakes.insert(fd, Handshake { stream, line: Vec::new() });
            }
        }
    }

    /// Reads the `CONNECT` line byte by byte, so no stream data is consumed with it.
    fn continue_handshake(&mut self, fd: RawFd) {
        let Some(hs) = self.handshakes.get_mut(&fd) else {
            return;
        };
        let mut byte = [0u8; 1];
        let port = loop {
            match hs.stream.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => break parse_connect(&hs.line),
                Ok(1) if hs.line.len() < MAX_CONNECT_LINE => hs.line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break None, // EOF, error or an overlong line
            }
        };
        let Some(hs) = self.handshakes.remove(&fd) else {
            return;
        };
        let _ = self.epoll.ctl(ControlOperation::Delete, fd, EpollEvent::default());
        if let Some(port) = port {
            let local_port = self.allocate_local_port(port);
            let conn = Conn::host_initiated(hs.stream, self.guest_cid, local_port, port);
            self.add_conn((local_port, port), conn);
        }
    }

    fn allocate_local_port(&mut self, peer_port: u32) -> u32 {
        loop {
            let port = self.next_local_port;
            self.next_local_port = self.next_local_port.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
            if !self.conns.contains_key(&(port, peer_port)) {
                return port;
            }
        }
    }

    fn add_conn(&mut self, key: ConnKey, conn: Conn<UnixStream>) {
        let fd = conn.stream().as_raw_fd();
        let set = EventSet::IN | EventSet::OUT | EventSet::READ_HANG_UP | EventSet::EDGE_TRIGGERED;
        if self.epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(set, fd_token(fd))).is_ok() {
            self.by_fd.insert(fd, key);
            self.conns.insert(key, conn);
        }
    }

    /// Drops `key`'s connection if it is finished.
    fn reap(&mut self, key: ConnKey) {
        if self.conns.get(&key).is_some_and(Conn::is_done) {
            if let Some(conn) = self.conns.remove(&key) {
                let fd = conn.stream().as_raw_fd();
                let _ = self.epoll.ctl(ControlOperation::Delete, fd, EpollEvent::default());
                self.by_fd.remove(&fd);
            }
        }
    }

    fn reset_reply(&mut self, to: &Header) {
        if to.op == op::RST {
            return;
        }
        let hdr = Header {
            src_cid: HOST_CID,
            dst_cid: to.src_cid,
            src_port: to.dst_port,
            dst_port: to.src_port,
            type_: TYPE_STREAM,
            op: op::RST,
            ..Header::default()
        };
        self.control.push_back(Packet { hdr, data: Vec::new() });
    }

    fn guest_connect(&mut self, request: &Header) {
        let path = format!("{}_{}", self.uds_path.display(), request.dst_port);
        let stream = UnixStream::connect(&path).and_then(|s| s.set_nonblocking(true).map(|()| s));
        match stream {
            Ok(stream) => {
                let conn = Conn::guest_initiated(stream, self.guest_cid, request);
                self.add_conn((request.dst_port, request.src_port), conn);
            }
            Err(_) => self.reset_reply(request),
        }
    }
}

fn fd_token(fd: RawFd) -> u64 {
    u64::try_from(fd).unwrap_or(u64::MAX)
}

/// `CONNECT <port>` → the port.
fn parse_connect(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    text.strip_prefix("CONNECT ")?.trim().parse().ok()
}

impl VsockBackend for Muxer {
    fn send_to_host(&mut self, pkt: Packet) {
        let hdr = pkt.hdr;
        if hdr.dst_cid != HOST_CID || hdr.src_cid != self.guest_cid || hdr.type_ != TYPE_STREAM {
            return self.reset_reply(&hdr);
        }
        let key = (hdr.dst_port, hdr.src_port);
        match self.conns.get_mut(&key) {
            Some(conn) => {
                conn.on_guest_packet(pkt);
                self.reap(key);
            }
            None if hdr.op == op::REQUEST => self.guest_connect(&hdr),
            None => self.reset_reply(&hdr),
        }
    }

    fn has_rx(&self) -> bool {
        !self.control.is_empty() || self.conns.values().any(Conn::wants_rx)
    }

    fn next_rx(&mut self, max_data: usize) -> Option<Packet> {
        if let Some(pkt) = self.control.pop_front() {
            return Some(pkt);
        }
        let mut keys: Vec<ConnKey> =
            self.conns.iter().filter(|(_, c)| c.wants_rx()).map(|(k, _)| *k).collect();
        if keys.is_empty() {
            return None;
        }
        keys.sort_unstable();
        self.next_turn = self.next_turn.wrapping_add(1);
        let turn = self.next_turn % keys.len();
        keys.rotate_left(turn);
        for key in keys {
            let pkt = self.conns.get_mut(&key).and_then(|c| c.next_rx(max_data));
            self.reap(key);
            if pkt.is_some() {
                return pkt;
            }
        }
        None
    }
}

impl Drop for Muxer {
    fn drop(&mut self) {
        // Best effort: the socket file is ours.
        let _ = std::fs::remove_file(&self.uds_path);
    }
}

#[cfg(test)]
#[path = "muxer_tests.rs"]
mod tests;
