//! One vsock stream connection between a guest port and a host stream: the connection state
//! machine and credit-based flow control (virtio 1.x, 5.10.6.3), independent of any fd or
//! event loop. The stream is any [`HostStream`]; the muxer tells the connection when it is
//! readable or writable.
//!
//! Flow control, both ways:
//! - guest → host: we advertise `buf_alloc` = [`CONN_BUF_SIZE`] and `fwd_cnt` = bytes written
//!   to the host stream. The guest never has more than `buf_alloc` bytes in flight, so the
//!   bytes buffered here (host stream full) stay below it. A `CREDIT_UPDATE` goes out once
//!   `fwd_cnt` moved [`CREDIT_UPDATE_THRESHOLD`] past what the guest last saw.
//! - host → guest: we read from the host stream only as much as the guest's advertised free
//!   space (`buf_alloc - (rx_cnt - fwd_cnt)`), so nothing is ever dropped.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::num::Wrapping;

use crate::virtio::vsock::handler::MAX_PKT_DATA;
use crate::virtio::vsock::packet::{op, Header, Packet, HOST_CID, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM};

/// Receive buffer we advertise per connection.
pub const CONN_BUF_SIZE: u32 = 256 << 10;
/// Forwarded bytes after which we tell the guest about its new credit.
pub const CREDIT_UPDATE_THRESHOLD: u32 = CONN_BUF_SIZE / 4;

/// The host end of a connection.
pub trait HostStream: Read + Write {
    /// Shuts down the write half: the host reader sees end of file.
    fn shutdown_write(&self);
}

impl HostStream for std::os::unix::net::UnixStream {
    fn shutdown_write(&self) {
        // Failing means the peer is gone already; the next read or write will say so.
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Host-initiated: `REQUEST` sent, waiting for the guest's `RESPONSE`.
    Connecting,
    /// Data flows.
    Established,
    /// Over; the muxer drops the connection once its last packets went out.
    Closed,
}

/// A vsock connection.
#[derive(Debug)]
pub struct Conn<S> {
    stream: S,
    guest_cid: u64,
    local_port: u32,
    peer_port: u32,
    state: State,
    /// Bytes from the guest the host stream has not taken yet.
    to_host: VecDeque<u8>,
    fwd_cnt: Wrapping<u32>,
    last_fwd_cnt_sent: Wrapping<u32>,
    rx_cnt: Wrapping<u32>,
    peer_buf_alloc: u32,
    peer_fwd_cnt: Wrapping<u32>,
    readable: bool,
    host_eof: bool,
    peer_shut_send: bool,
    peer_shut_rcv: bool,
    /// The host stream's write half is shut down (done once: each shutdown wakes its poll).
    host_write_shut: bool,
    /// Control operations owed to the guest: `(op, flags)`.
    pending: VecDeque<(u16, u32)>,
}

impl<S: HostStream> Conn<S> {
    fn new(stream: S, guest_cid: u64, local_port: u32, peer_port: u32, state: State) -> Self {
        Self {
            stream,
            guest_cid,
            local_port,
            peer_port,
            state,
            to_host: VecDeque::new(),
            fwd_cnt: Wrapping(0),
            last_fwd_cnt_sent: Wrapping(0),
            rx_cnt: Wrapping(0),
            peer_buf_alloc: 0,
            peer_fwd_cnt: Wrapping(0),
            readable: false,
            host_eof: false,
            peer_shut_send: false,
            peer_shut_rcv: false,
            host_write_shut: false,
            pending: VecDeque::new(),
        }
    }

    /// A connection the host asked for: a `REQUEST` to guest port `peer_port` is queued.
    pub fn host_initiated(stream: S, guest_cid: u64, local_port: u32, peer_port: u32) -> Self {
        let mut conn = Self::new(stream, guest_cid, local_port, peer_port, State::Connecting);
        conn.pending.push_back((op::REQUEST, 0));
        conn
    }

    /// A connection the guest asked for with `request` (the host side is connected): a
    /// `RESPONSE` is queued.
    pub fn guest_initiated(stream: S, guest_cid: u64, request: &Header) -> Self {
        let mut conn = Self::new(stream, guest_cid, request.dst_port, request.src_port, State::Established);
        conn.update_peer_credit(request);
        conn.pending.push_back((op::RESPONSE, 0));
        conn
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The host stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// True once closed with nothing left to send: the muxer may drop it.
    pub fn is_done(&self) -> bool {
        self.state == State::Closed && self.pending.is_empty()
    }

    fn update_peer_credit(&mut self, hdr: &Header) {
        self.peer_buf_alloc = hdr.buf_alloc;
        self.peer_fwd_cnt = Wrapping(hdr.fwd_cnt);
    }

    /// Ends the connection with a reset to the guest.
    fn reset(&mut self) {
        self.state = State::Closed;
        self.pending.clear();
        self.pending.push_back((op::RST, 0));
    }

    /// Handles a packet the guest sent on this connection.
    pub fn on_guest_packet(&mut self, pkt: Packet) {
        if self.state == State::Closed {
            return;
        }
        self.update_peer_credit(&pkt.hdr);
        match (pkt.hdr.op, self.state) {
            (op::RESPONSE, State::Connecting) => {
                let ok = format!("OK {}\n", self.local_port);
                match self.stream.write_all(ok.as_bytes()) {
                    Ok(()) => self.state = State::Established,
                    Err(_) => self.reset(),
                }
            }
            (op::RW, State::Established) if !self.peer_shut_send => {
                if self.to_host.len() + pkt.data.len() > CONN_BUF_SIZE as usize {
                    self.reset(); // the guest ignored our credit
                    return;
                }
                self.to_host.extend(pkt.data.iter());
                self.flush_to_host();
            }
            (op::CREDIT_UPDATE, _) => {}
            (op::CREDIT_REQUEST, _) => self.queue_credit_update(),
            (op::SHUTDOWN, _) => {
                self.peer_shut_send |= pkt.hdr.flags & SHUTDOWN_SEND != 0;
                self.peer_shut_rcv |= pkt.hdr.flags & SHUTDOWN_RCV != 0;
                self.flush_to_host();
            }
            (op::RST, _) => {
                self.state = State::Closed;
                self.pending.clear();
            }
            _ => self.reset(),
        }
    }

    fn queue_credit_update(&mut self) {
        if !self.pending.iter().any(|(o, _)| *o == op::CREDIT_UPDATE) {
            self.pending.push_back((op::CREDIT_UPDATE, 0));
        }
    }

    /// The host stream can take data again.
    pub fn on_host_writable(&mut self) {
        self.flush_to_host();
    }

    /// The host stream has data (or end of file, or an error) to read.
    pub fn on_host_readable(&mut self) {
        self.readable = true;
    }

    fn flush_to_host(&mut self) {
        while self.state != State::Closed && !self.to_host.is_empty() {
            let (front, _) = self.to_host.as_slices();
            match self.stream.write(front) {
                Ok(0) => return self.reset(),
                Ok(n) => {
                    self.to_host.drain(..n);
                    self.fwd_cnt += Wrapping(u32::try_from(n).unwrap_or(u32::MAX));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.reset(),
            }
        }
        if self.state == State::Closed {
            return;
        }
        if (self.fwd_cnt - self.last_fwd_cnt_sent).0 >= CREDIT_UPDATE_THRESHOLD {
            self.queue_credit_update();
        }
        if self.to_host.is_empty() && self.peer_shut_send {
            if !self.host_write_shut {
                self.stream.shutdown_write();
                self.host_write_shut = true;
            }
            if self.peer_shut_rcv || self.host_eof {
                // Both directions are finished: close, and tell the guest it may forget us.
                self.reset();
            }
        }
    }

    /// Free space in the guest's receive buffer.
    pub fn peer_credit(&self) -> u32 {
        let in_flight = (self.rx_cnt - self.peer_fwd_cnt).0;
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    fn can_send_data(&self) -> bool {
        self.state == State::Established
            && self.readable
            && !self.host_eof
            && !self.peer_shut_rcv
            && self.peer_credit() > 0
    }

    /// Whether the connection has a packet for the guest.
    pub fn wants_rx(&self) -> bool {
        !self.pending.is_empty() || self.can_send_data()
    }

    fn header(&mut self, op: u16, flags: u32, len: usize) -> Header {
        self.last_fwd_cnt_sent = self.fwd_cnt;
        Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: self.local_port,
            dst_port: self.peer_port,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            type_: TYPE_STREAM,
            op,
            flags,
            buf_alloc: CONN_BUF_SIZE,
            fwd_cnt: self.fwd_cnt.0,
        }
    }

    /// The next packet for the guest, with at most `max_data` payload bytes: control
    /// packets first, then data read from the host stream within the guest's credit.
    pub fn next_rx(&mut self, max_data: usize) -> Option<Packet> {
        if let Some((op, flags)) = self.pending.pop_front() {
            return Some(Packet { hdr: self.header(op, flags, 0), data: Vec::new() });
        }
        if !self.can_send_data() {
            return None;
        }
        let credit = usize::try_from(self.peer_credit()).unwrap_or(usize::MAX);
        let mut data = vec![0u8; max_data.min(credit).min(MAX_PKT_DATA)];
        if data.is_empty() {
            return None;
        }
        loop {
            match self.stream.read(&mut data) {
                Ok(0) => {
                    self.host_eof = true;
                    self.readable = false;
                    if self.peer_shut_send && self.to_host.is_empty() {
                        self.reset();
                        return self.next_rx(0);
                    }
                    return Some(Packet {
                        hdr: self.header(op::SHUTDOWN, SHUTDOWN_SEND, 0),
                        data: Vec::new(),
                    });
                }
                Ok(n) => {
                    data.truncate(n);
                    self.rx_cnt += Wrapping(u32::try_from(n).unwrap_or(u32::MAX));
                    return Some(Packet { hdr: self.header(op::RW, 0, n), data });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.reset();
                    return self.next_rx(0);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
