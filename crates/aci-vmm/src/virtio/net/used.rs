//! Publishing used-ring entries in batches, and deciding whether the driver wants an
//! interrupt for them (`used_event` with `EVENT_IDX`, `VRING_AVAIL_F_NO_INTERRUPT` without).
//!
//! A mergeable received packet spans several used entries that the driver must see at once:
//! all of them are written first and `used.idx` moves once, which `Queue::add_used` (one
//! index store per entry) cannot do.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use crate::memory::GuestMem;

/// `VRING_AVAIL_F_NO_INTERRUPT`.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Why used entries could not be published (the guest placed its rings badly).
#[derive(Debug, thiserror::Error)]
pub enum UsedError {
    /// A head index is outside the queue.
    #[error("descriptor head {0} is outside the queue")]
    HeadOutOfRange(u16),
    /// The used ring or the avail ring is outside guest memory.
    #[error("the ring at {0:#x} is outside guest memory")]
    Ring(u64),
    /// Notification suppression could not be updated.
    #[error("could not update notification suppression")]
    Notification(#[from] virtio_queue::Error),
}

/// Used-ring bookkeeping for one queue: where the last interrupt decision was made.
#[derive(Debug, Default)]
pub struct UsedRing {
    /// `used.idx` when the driver was last considered for an interrupt.
    checked: Wrapping<u16>,
}

impl UsedRing {
    /// Writes `(head, written length)` entries, then moves `used.idx` past all of them.
    pub fn publish(
        &mut self,
        mem: &GuestMem,
        queue: &mut Queue,
        entries: &[(u16, u32)],
    ) -> Result<(), UsedError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (size, ring) = (queue.size(), queue.used_ring());
        let mut next = Wrapping(queue.next_used());
        for &(head, len) in entries {
            if head >= size {
                return Err(UsedError::HeadOutOfRange(head));
            }
            let slot = u64::from(next.0 % size);
            let addr = ring.checked_add(4 + slot * 8).ok_or(UsedError::Ring(ring))?;
            let mut elem = [0u8; 8];
            elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
            elem[4..].copy_from_slice(&len.to_le_bytes());
            mem.write_slice(&elem, GuestAddress(addr)).map_err(|_| UsedError::Ring(ring))?;
            next += Wrapping(1);
        }
        queue.set_next_used(next.0);
        let idx = ring.checked_add(2).ok_or(UsedError::Ring(ring))?;
        mem.store(next.0.to_le(), GuestAddress(idx), Ordering::Release).map_err(|_| UsedError::Ring(ring))
    }

    /// Whether entries were published since the last call and the driver asked to be
    /// interrupted for them.
    pub fn needs_interrupt(&mut self, mem: &GuestMem, queue: &Queue) -> Result<bool, UsedError> {
        let new = Wrapping(queue.next_used());
        let old = std::mem::replace(&mut self.checked, new);
        if new == old {
            return Ok(false);
        }
        // The used entries must be visible before the driver's suppression state is read.
        fence(Ordering::SeqCst);
        let avail = queue.avail_ring();
        if queue.event_idx_enabled() {
            let at = avail.checked_add(4 + 2 * u64::from(queue.size())).ok_or(UsedError::Ring(avail))?;
            let event: u16 =
                mem.load(GuestAddress(at), Ordering::Relaxed).map_err(|_| UsedError::Ring(avail))?;
            let event = Wrapping(u16::from_le(event));
            Ok(new - event - Wrapping(1) < new - old)
        } else {
            let flags: u16 =
                mem.load(GuestAddress(avail), Ordering::Relaxed).map_err(|_| UsedError::Ring(avail))?;
            Ok(u16::from_le(flags) & AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

/// Asks the driver to notify as soon as it makes any further buffer available (`avail_event`
/// set to the current `avail.idx` with `EVENT_IDX`, `VRING_USED_F_NO_NOTIFY` cleared without),
/// then returns whether buffers arrived meanwhile. For a packet waiting for more buffers than
/// the ring holds: `Queue::enable_notification` would ask for a notification only past the
/// device's position, which the driver may already have passed.
pub fn notify_on_next_buffer(mem: &GuestMem, queue: &mut Queue) -> Result<bool, UsedError> {
    let avail = queue.avail_ring();
    let idx_at = GuestAddress(avail.checked_add(2).ok_or(UsedError::Ring(avail))?);
    let seen: u16 = mem.load(idx_at, Ordering::Acquire).map_err(|_| UsedError::Ring(avail))?;
    if queue.event_idx_enabled() {
        let used = queue.used_ring();
        let at = used.checked_add(4 + 8 * u64::from(queue.size())).ok_or(UsedError::Ring(used))?;
        mem.store(seen, GuestAddress(at), Ordering::Relaxed).map_err(|_| UsedError::Ring(used))?;
    } else {
        queue.enable_notification(mem)?;
    }
    // The request must be visible before `avail.idx` is read again.
    fence(Ordering::SeqCst);
    let now: u16 = mem.load(idx_at, Ordering::Acquire).map_err(|_| UsedError::Ring(avail))?;
    Ok(now != seen)
}

#[cfg(test)]
mod tests {
    use vm_memory::Bytes;

    use super::*;
    use crate::virtio::test_utils::{memory, wr, TestQueue};

    #[test]
    fn a_packet_short_of_buffers_asks_for_the_very_next_one() {
        let mem = memory();
        let mut tq = TestQueue::new(&mem, 0x10000, 16);
        let (_, _, used) = tq.addresses();
        let mut queue = tq.queue();
        queue.set_event_idx(true);
        tq.add_chain(&mem, &[wr(0x40000, 1500)]);
        tq.add_chain(&mem, &[wr(0x41000, 1500)]);
        // The device looked at both buffers, found them too few and gave them back: its
        // position is 0 while the driver's avail.idx is 2.
        assert!(!notify_on_next_buffer(&mem, &mut queue).unwrap());
        let avail_event: u16 = mem.read_obj(GuestAddress(used + 4 + 8 * 16)).unwrap();
        assert_eq!(avail_event, 2, "the next buffer the driver adds must notify");
        assert_eq!(queue.next_avail(), 0);
    }
}
