//! virtio-net queue logic: pure functions over guest memory, the RX/TX virtqueues and a
//! [`NetBackend`]. Every packet starts with the 12-byte `virtio_net_hdr_v1`. A backend with
//! offloads (a tap with `IFF_VNET_HDR`) takes and gives it whole; otherwise it carries
//! nothing the device needs (TX) or sets (RX, except `num_buffers`). Used entries of one
//! pass are published together ([`UsedRing`]); with `MRG_RXBUF` a received packet spans as
//! many receive buffers as it needs.

use std::io::{self, Read, Write};
use std::sync::Arc;

use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;
use crate::virtio::net::used::{UsedError, UsedRing};

/// Length of `virtio_net_hdr_v1`.
pub const VNET_HDR_LEN: usize = 12;
/// Offset of `num_buffers` in `virtio_net_hdr_v1`.
const NUM_BUFFERS_AT: usize = 10;
/// Largest frame handled: a 64 KiB TCP segment with its headers, with room to spare.
pub const MAX_FRAME: usize = 65_536 + 4_096;

/// Where frames go to and come from (a tap device, or memory in tests).
pub trait NetBackend: Send {
    /// Sends one Ethernet frame. A frame the backend cannot take now may be dropped.
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Receives one frame into `buf`; `Ok(None)` when none is waiting.
    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Sends one packet: the `virtio_net_hdr_v1`, then the frame. This default drops the
    /// header (a backend without offloads).
    fn send_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        self.send_frame(packet.get(VNET_HDR_LEN..).unwrap_or_default())
    }

    /// Receives one packet (header, then frame) into `buf`, at least [`VNET_HDR_LEN`] long;
    /// returns its length. This default writes an empty header before the frame.
    fn recv_packet(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some((hdr, frame)) = buf.split_at_mut_checked(VNET_HDR_LEN) else {
            return Ok(None);
        };
        hdr.fill(0);
        Ok(self.recv_frame(frame)?.map(|n| n + VNET_HDR_LEN))
    }
}

/// Why a queue could not be processed (the guest broke the ring).
#[derive(Debug, thiserror::Error)]
pub enum NetQueueError {
    /// A used-ring update failed.
    #[error("could not update the used ring")]
    Used(#[from] UsedError),
}

/// What happened to one received packet.
enum Delivery {
    /// Written to the guest's buffers.
    Delivered,
    /// Not enough buffers yet: the packet waits.
    NoBuffers,
    /// Refused (a broken or too small buffer).
    Dropped,
}

/// Moves frames between the queues and the backend.
pub struct NetHandler<B> {
    backend: B,
    rx_packet: Vec<u8>,
    /// Length of a received packet still waiting for guest buffers.
    rx_pending: Option<usize>,
    tx_packet: Vec<u8>,
    /// Whether a received packet may span several buffers (`MRG_RXBUF` negotiated).
    mergeable: bool,
    rx_used: UsedRing,
    tx_used: UsedRing,
    used: Vec<(u16, u32)>,
    /// Frames dropped: too large for the guest's buffers, or refused by the backend.
    pub dropped: u64,
    counters: Arc<DeviceCounters>,
}

impl<B: NetBackend> NetHandler<B> {
    /// A handler over `backend` (one receive buffer per packet).
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            rx_packet: vec![0; VNET_HDR_LEN + MAX_FRAME],
            rx_pending: None,
            tx_packet: Vec::new(),
            mergeable: false,
            rx_used: UsedRing::default(),
            tx_used: UsedRing::default(),
            used: Vec::new(),
            dropped: 0,
            counters: Arc::default(),
        }
    }

    /// Counts into `counters` (frames, frame bytes each way, drops).
    pub fn with_counters(mut self, counters: Arc<DeviceCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// Lets a received packet span several receive buffers (`MRG_RXBUF`).
    pub fn with_mergeable(mut self, mergeable: bool) -> Self {
        self.mergeable = mergeable;
        self
    }

    /// The counters.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether a received packet waits for receive buffers.
    pub fn rx_waiting(&self) -> bool {
        self.rx_pending.is_some()
    }

    /// Whether the driver wants an interrupt for the buffers used since the last call.
    pub fn needs_interrupt(&mut self, mem: &GuestMem, rx: &Queue, tx: &Queue) -> Result<bool, NetQueueError> {
        let rx = self.rx_used.needs_interrupt(mem, rx)?;
        let tx = self.tx_used.needs_interrupt(mem, tx)?;
        Ok(rx || tx)
    }

    /// Sends every packet on the TX queue; returns whether any buffer was used.
    pub fn process_tx(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, NetQueueError> {
        self.used.clear();
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let valid = validate_chain(mem, queue, head).ok();
            let sent = valid.and_then(|()| Reader::new(mem, chain).ok()).and_then(|mut reader| {
                let len = reader.available_bytes();
                if !(VNET_HDR_LEN..=VNET_HDR_LEN + MAX_FRAME).contains(&len) {
                    return None;
                }
                self.tx_packet.resize(len, 0);
                reader.read_exact(&mut self.tx_packet).ok()?;
                self.backend.send_packet(&self.tx_packet).ok()?;
                Some(len - VNET_HDR_LEN)
            });
            self.counters.request();
            match sent {
                Some(len) => self.counters.from_guest(len),
                None => {
                    self.dropped += 1;
                    self.counters.error();
                }
            }
            self.used.push((head, 0));
        }
        self.tx_used.publish(mem, queue, &self.used)?;
        Ok(!self.used.is_empty())
    }

    /// Delivers received packets into the guest's RX buffers while both last; a packet
    /// without enough buffers waits for the next call. Returns whether any buffer was used.
    pub fn process_rx(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, NetQueueError> {
        let mut used = false;
        loop {
            let len = match self.rx_pending {
                Some(len) => len,
                None => match self.backend.recv_packet(&mut self.rx_packet) {
                    Ok(Some(len)) if len >= VNET_HDR_LEN => len,
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                },
            };
            self.rx_pending = Some(len);
            match self.deliver(mem, queue, len)? {
                Delivery::NoBuffers => break,
                Delivery::Delivered => self.counters.to_guest(len - VNET_HDR_LEN),
                Delivery::Dropped => {
                    self.dropped += 1;
                    self.counters.error();
                }
            }
            self.counters.request();
            self.rx_pending = None;
            used = true;
        }
        Ok(used)
    }

    /// Writes the received packet (`len` bytes of `rx_packet`) into as many receive buffers
    /// as it needs (one without `MRG_RXBUF`) and publishes them together.
    fn deliver(&mut self, mem: &GuestMem, queue: &mut Queue, len: usize) -> Result<Delivery, NetQueueError> {
        let mut parts: Vec<(u16, Writer<'_>)> = Vec::new();
        let mut room = 0;
        while room < len {
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                // Not enough buffers: hand back the ones taken, in order, for the next try.
                for _ in 0..parts.len() {
                    queue.go_to_previous_position();
                }
                return Ok(Delivery::NoBuffers);
            };
            let head = chain.head_index();
            let writer = validate_chain(mem, queue, head)
                .ok()
                .and_then(|()| Writer::new(mem, chain).ok())
                .filter(|w| w.available_bytes() >= if parts.is_empty() { VNET_HDR_LEN } else { 1 });
            let Some(writer) = writer else {
                self.counters.error();
                if parts.is_empty() {
                    // A broken first buffer goes back unused; the packet waits for the next.
                    self.rx_used.publish(mem, queue, &[(head, 0)])?;
                    continue;
                }
                return self.refuse(mem, queue, parts.iter().map(|p| p.0).chain([head]));
            };
            room += writer.available_bytes();
            parts.push((head, writer));
            if !self.mergeable {
                break;
            }
        }
        if room < len {
            return self.refuse(mem, queue, parts.iter().map(|p| p.0));
        }
        let count = u16::try_from(parts.len()).unwrap_or(u16::MAX);
        self.rx_packet[NUM_BUFFERS_AT..VNET_HDR_LEN].copy_from_slice(&count.to_le_bytes());
        self.used.clear();
        let mut at = 0;
        let mut failed = false;
        for (head, writer) in &mut parts {
            let take = writer.available_bytes().min(len - at);
            failed |= writer.write_all(&self.rx_packet[at..at + take]).is_err();
            at += take;
            self.used.push((*head, u32::try_from(take).unwrap_or(0)));
        }
        if failed {
            return self.refuse(mem, queue, parts.iter().map(|p| p.0));
        }
        self.rx_used.publish(mem, queue, &self.used)?;
        Ok(Delivery::Delivered)
    }

    /// Returns `heads` unused and drops the packet.
    fn refuse(
        &mut self,
        mem: &GuestMem,
        queue: &mut Queue,
        heads: impl Iterator<Item = u16>,
    ) -> Result<Delivery, NetQueueError> {
        self.used.clear();
        self.used.extend(heads.map(|h| (h, 0)));
        self.rx_used.publish(mem, queue, &self.used)?;
        Ok(Delivery::Dropped)
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
