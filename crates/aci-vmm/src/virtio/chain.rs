//! Checks a descriptor chain before a device touches it.
//!
//! virtio-queue's chain iterator is safe but forgiving: a loop, a chain longer than the queue
//! or an unreadable descriptor simply ends the iteration early, so a device would serve a
//! truncated request as if it were whole. [`validate_chain`] walks the chain from its head
//! first and refuses it, with a typed error, when it
//!
//! - reads a descriptor outside the descriptor table or outside guest memory,
//! - has a `next` index past the queue, or visits more descriptors than the queue holds
//!   (a loop, or a chain too long to be real),
//! - has a zero-length buffer, or a buffer outside guest memory,
//! - uses an indirect table (no device offers `VIRTIO_RING_F_INDIRECT_DESC`),
//! - adds up to more than 4 GiB (the used ring's length is 32 bits).
//!
//! The devices complete a refused chain with nothing written (used length 0) and count it as
//! an error; the queue keeps working for the chains that follow.

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::memory::GuestMem;

/// Size of one split-ring descriptor.
const DESC_SIZE: u64 = 16;

/// Why a chain was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A descriptor's own address is outside guest memory.
    #[error("descriptor {index} lies outside guest memory")]
    DescriptorOutOfRange {
        /// The descriptor index.
        index: u16,
    },
    /// A `next` index is past the end of the descriptor table.
    #[error("descriptor {index} continues at {next}, past the queue of {size}")]
    NextOutOfRange {
        /// The descriptor index.
        index: u16,
        /// Its `next`.
        next: u16,
        /// The queue size.
        size: u16,
    },
    /// More descriptors than the queue holds: a loop.
    #[error("the chain from descriptor {head} is longer than the queue ({size}): a loop")]
    TooLong {
        /// The head.
        head: u16,
        /// The queue size.
        size: u16,
    },
    /// A buffer of zero bytes.
    #[error("descriptor {index} has a zero-length buffer")]
    ZeroLength {
        /// The descriptor index.
        index: u16,
    },
    /// A buffer outside guest memory.
    #[error("descriptor {index} points outside guest memory ({addr:#x}, {len} bytes)")]
    BufferOutOfRange {
        /// The descriptor index.
        index: u16,
        /// The buffer address.
        addr: u64,
        /// The buffer length.
        len: u32,
    },
    /// An indirect descriptor table, which no device here negotiates.
    #[error("descriptor {index} refers to an indirect table, which was not negotiated")]
    Indirect {
        /// The descriptor index.
        index: u16,
    },
    /// The buffers add up to more than `u32::MAX` bytes.
    #[error("the chain from descriptor {head} is larger than 4 GiB")]
    TooLarge {
        /// The head.
        head: u16,
    },
}

/// Walks the chain starting at `head` in `queue`'s descriptor table and checks it (see the
/// module documentation). Visits at most `queue.size()` descriptors.
pub fn validate_chain(mem: &GuestMem, queue: &Queue, head: u16) -> Result<(), ChainError> {
    let size = queue.size();
    let table = queue.desc_table();
    let mut index = head;
    let mut total: u64 = 0;
    for _ in 0..size {
        let desc: Descriptor = table
            .checked_add(u64::from(index) * DESC_SIZE)
            .and_then(|at| mem.read_obj(GuestAddress(at)).ok())
            .ok_or(ChainError::DescriptorOutOfRange { index })?;
        if desc.refers_to_indirect_table() {
            return Err(ChainError::Indirect { index });
        }
        let len = desc.len();
        if len == 0 {
            return Err(ChainError::ZeroLength { index });
        }
        let buffer_ok = usize::try_from(len).is_ok_and(|n| mem.check_range(desc.addr(), n));
        if !buffer_ok {
            return Err(ChainError::BufferOutOfRange { index, addr: desc.addr().0, len });
        }
        total += u64::from(len);
        if total > u64::from(u32::MAX) {
            return Err(ChainError::TooLarge { head });
        }
        if !desc.has_next() {
            return Ok(());
        }
        let next = desc.next();
        if next >= size {
            return Err(ChainError::NextOutOfRange { index, next, size });
        }
        index = next;
    }
    Err(ChainError::TooLong { head, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

    fn check(bufs: &[crate::virtio::test_utils::Buf], looped: bool) -> Result<(), ChainError> {
        let mem = memory();
        let mut tq = TestQueue::new(&mem, 0x10000, 8);
        let head = tq.add_chain(&mem, bufs);
        if looped {
            tq.link(&mem, head + u16::try_from(bufs.len()).unwrap() - 1, head);
        }
        validate_chain(&mem, &tq.queue(), head)
    }

    #[test]
    fn good_chains_pass_and_each_fault_is_named() {
        assert_eq!(check(&[rd(0x40000, 16), wr(0x41000, 512), wr(0x42000, 1)], false), Ok(()));
        assert_eq!(
            check(&[rd(0x40000, 16), wr(0x41000, 0)], false),
            Err(ChainError::ZeroLength { index: 1 })
        );
        assert_eq!(
            check(&[rd(0xfff0_0000, 16)], false),
            Err(ChainError::BufferOutOfRange { index: 0, addr: 0xfff0_0000, len: 16 })
        );
        assert_eq!(
            check(&[rd(0xff000, 0x2000)], false),
            Err(ChainError::BufferOutOfRange { index: 0, addr: 0xff000, len: 0x2000 })
        );
        assert_eq!(
            check(&[rd(0x40000, 16), wr(0x41000, 16)], true),
            Err(ChainError::TooLong { head: 0, size: 8 })
        );
    }

    #[test]
    fn indirect_tables_and_wild_next_indexes_are_refused() {
        let mem = memory();
        let mut tq = TestQueue::new(&mem, 0x10000, 8);
        let head = tq.add_indirect(&mem, 0x30000, 32);
        assert_eq!(validate_chain(&mem, &tq.queue(), head), Err(ChainError::Indirect { index: head }));
        let head = tq.add_chain(&mem, &[rd(0x40000, 16), wr(0x41000, 16)]);
        tq.link(&mem, head, 200);
        assert_eq!(
            validate_chain(&mem, &tq.queue(), head),
            Err(ChainError::NextOutOfRange { index: head, next: 200, size: 8 })
        );
    }
}
