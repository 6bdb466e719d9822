//! virtio-vsock queue logic: pure functions over guest memory, the rx/tx virtqueues and a
//! [`VsockBackend`]. The TX queue carries the guest's packets to the backend; the RX queue
//! receives the backend's packets, each fitted to the buffer the guest provided. No fds,
//! no event loop.

use std::io::{Read, Write};

use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;
use crate::virtio::vsock::packet::{op, Header, Packet, HDR_LEN};

/// Largest payload accepted from the guest in one packet (Linux sends at most 64 KiB).
pub const MAX_PKT_DATA: usize = 64 << 10;

/// The host side of the device, as the queue logic sees it.
pub trait VsockBackend {
    /// A packet the guest sent.
    fn send_to_host(&mut self, pkt: Packet);
    /// Whether the backend has a packet for the guest.
    fn has_rx(&self) -> bool;
    /// The next packet for the guest, with at most `max_data` payload bytes (the room in the
    /// guest's buffer); `None` if there is nothing after all.
    fn next_rx(&mut self, max_data: usize) -> Option<Packet>;
}

/// Why a queue could not be processed (the guest broke the ring).
#[derive(Debug, thiserror::Error)]
pub enum VsockQueueError {
    /// A used-ring update failed.
    #[error("could not add a used-ring entry")]
    AddUsed(#[source] virtio_queue::Error),
}

/// Counts one packet that crossed the device: its stream bytes, or a new connection.
fn count_packet(counters: &DeviceCounters, pkt: &Packet, to_guest: bool) {
    counters.request();
    match pkt.hdr.op {
        op::RW if to_guest => counters.to_guest(pkt.data.len()),
        op::RW => counters.from_guest(pkt.data.len()),
        op::RESPONSE => counters.connection(),
        _ => {}
    }
}

/// Hands every packet on the TX queue to `backend`; returns whether any were consumed.
/// Malformed chains (short header, payload past the buffers) are consumed, dropped and
/// counted as errors in `counters`.
pub fn process_tx(
    mem: &GuestMem,
    queue: &mut Queue,
    backend: &mut impl VsockBackend,
    counters: &DeviceCounters,
) -> Result<bool, VsockQueueError> {
    let mut used = false;
    while let Some(chain) = queue.pop_descriptor_chain(mem) {
        let head = chain.head_index();
        let valid = validate_chain(mem, queue, head).ok();
        match valid.and_then(|()| Reader::new(mem, chain).ok()).and_then(|r| read_packet(r)) {
            Some(pkt) => {
                count_packet(counters, &pkt, false);
                backend.send_to_host(pkt);
            }
            None => counters.error(),
        }
        queue.add_used(mem, head, 0).map_err(VsockQueueError::AddUsed)?;
        used = true;
    }
    Ok(used)
}

fn read_packet(mut reader: Reader<'_>) -> Option<Packet> {
    let mut raw = [0u8; HDR_LEN];
    reader.read_exact(&mut raw).ok()?;
    let hdr = Header::from_bytes(&raw);
    let len = usize::try_from(hdr.len).ok()?;
    if len > MAX_PKT_DATA || len > reader.available_bytes() {
        return None;
    }
    let mut data = vec![0u8; len];
    reader.read_exact(&mut data).ok()?;
    Some(Packet { hdr, data })
}

/// Moves the backend's packets into the guest's RX buffers while both last; returns whether
/// any buffer was used.
pub fn process_rx(
    mem: &GuestMem,
    queue: &mut Queue,
    backend: &mut impl VsockBackend,
    counters: &DeviceCounters,
) -> Result<bool, VsockQueueError> {
    let mut used = false;
    while backend.has_rx() {
        let Some(chain) = queue.pop_descriptor_chain(mem) else {
            break;
        };
        let head = chain.head_index();
        let valid = validate_chain(mem, queue, head).ok();
        let writer =
            valid.and_then(|()| Writer::new(mem, chain).ok()).filter(|w| w.available_bytes() >= HDR_LEN);
        let Some(mut writer) = writer else {
            // A broken buffer, or one too small for a header: give it back empty.
            counters.error();
            queue.add_used(mem, head, 0).map_err(VsockQueueError::AddUsed)?;
            used = true;
            continue;
        };
        let Some(pkt) = backend.next_rx(writer.available_bytes() - HDR_LEN) else {
            queue.go_to_previous_position();
            break;
        };
        let mut hdr = pkt.hdr;
        hdr.len = u32::try_from(pkt.data.len()).unwrap_or(u32::MAX);
        let written = writer
            .write_all(&hdr.to_bytes())
            .and_then(|()| writer.write_all(&pkt.data))
            .map_or(0, |()| HDR_LEN + pkt.data.len());
        if written == 0 {
            counters.error();
        } else {
            count_packet(counters, &pkt, true);
        }
        queue.add_used(mem, head, u32::try_from(written).unwrap_or(0)).map_err(VsockQueueError::AddUsed)?;
        used = true;
    }
    Ok(used)
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
