//! virtio-fs request processing: pure queue logic over guest memory, a virtqueue and a
//! [`FuseServer`]. No fds, no event loop.
//!
//! A request is a FUSE message: driver-readable buffers (header and arguments) followed by
//! device-writable buffers for the reply. Each chain is checked ([`validate_chain`]), its
//! header read and judged by [`policy::check`]; a refused request is answered with an error
//! header written here, an accepted one goes to the server. The used length is the reply's
//! length (0 for `FORGET`-like requests, and for chains that are refused as malformed).

use std::io::{Read, Write};
use std::sync::Arc;

use fuse_backend_rs::transport::{Reader as FuseReader, VirtioFsWriter, Writer as FuseWriter};
use virtio_queue::{DescriptorChain, Queue, QueueT, Reader, Writer};
use vm_memory::Bytes;

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;
use crate::virtio::fs::backend::FuseServer;
use crate::virtio::fs::init;
use crate::virtio::fs::policy::{self, RequestHead, Verdict, IN_HEADER_LEN};

/// Body bytes read ahead for the policy (the longest field it looks at is a `..\0` name).
const PEEK_BODY: usize = 16;

/// Why the queue could not be processed (the guest broke the ring; the device stops).
#[derive(Debug, thiserror::Error)]
pub enum FsQueueError {
    /// A used-ring update failed.
    #[error("could not add a used-ring entry")]
    AddUsed(#[source] virtio_queue::Error),
}

/// Serves FUSE requests from the device's queues.
pub struct FsHandler<S> {
    server: S,
    read_only: bool,
    counters: Arc<DeviceCounters>,
}

impl<S: FuseServer> FsHandler<S> {
    /// A handler answering with `server`; a `read_only` share refuses changes.
    pub fn new(server: S, read_only: bool) -> Self {
        Self { server, read_only, counters: Arc::default() }
    }

    /// Counts into `counters` (requests, request and reply bytes, refused or failed requests).
    pub fn with_counters(mut self, counters: Arc<DeviceCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The counters.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// The server (tests look at what reached it).
    pub fn server(&self) -> &S {
        &self.server
    }

    /// Serves every available request; returns whether any used entry was added.
    pub fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, FsQueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            self.counters.request();
            let len = if validate_chain(mem, queue, head).is_ok() {
                self.execute(mem, chain)
            } else {
                self.counters.error();
                0
            };
            queue.add_used(mem, head, len).map_err(FsQueueError::AddUsed)?;
            used = true;
        }
        Ok(used)
    }

    /// Runs one request; returns the reply's length.
    fn execute(&mut self, mem: &GuestMem, chain: DescriptorChain<&GuestMem>) -> u32 {
        let Ok(mut peek) = Reader::new(mem, chain.clone()) else {
            self.counters.error();
            return 0;
        };
        let request_len = peek.available_bytes();
        let mut bytes = [0u8; IN_HEADER_LEN + PEEK_BODY];
        let n = request_len.min(bytes.len());
        let Some(head) = peek.read_exact(&mut bytes[..n]).ok().and_then(|()| RequestHead::parse(&bytes[..n]))
        else {
            self.counters.error();
            return 0;
        };
        self.counters.from_guest(request_len);
        let (reply_len, refused) = match policy::check(&head, self.read_only) {
            Verdict::Refuse(errno) => {
                let reply = Writer::new(mem, chain)
                    .ok()
                    .and_then(|mut w| w.write_all(&policy::error_reply(head.unique, errno)).ok())
                    .map(|()| policy::OUT_HEADER_LEN);
                (reply, true)
            }
            Verdict::Serve if head.opcode == policy::opcode::INIT => {
                let offered = init::request_flags(head.body).unwrap_or(0);
                let reply = self.serve(mem, chain.clone());
                if reply.is_some_and(|len| len >= init::REPLY_PREFIX) {
                    widen_init_reply(mem, &chain, offered);
                }
                (reply, false)
            }
            Verdict::Serve => (self.serve(mem, chain), false),
        };
        if refused || reply_len.is_none() {
            self.counters.error();
        }
        let len = reply_len.unwrap_or(0);
        self.counters.to_guest(len);
        u32::try_from(len).unwrap_or(0)
    }

    fn serve(&mut self, mem: &GuestMem, chain: DescriptorChain<&GuestMem>) -> Option<usize> {
        let reader = FuseReader::from_descriptor_chain(mem, chain.clone()).ok()?;
        let writer: FuseWriter<'_> = VirtioFsWriter::new(mem, chain).ok()?.into();
        self.server.serve(reader, writer).ok()
    }
}

/// Rewrites the start of the `INIT` reply the server wrote into the chain's writable
/// buffers ([`init::widen`]).
fn widen_init_reply(mem: &GuestMem, chain: &DescriptorChain<&GuestMem>, offered: u32) {
    let mut reply = [0u8; init::REPLY_PREFIX];
    if copy_writable(mem, chain, &mut reply, false) && init::widen(offered, &mut reply) {
        copy_writable(mem, chain, &mut reply, true);
    }
}

/// Reads (or, with `write`, writes) the first `buf.len()` bytes of the chain's writable
/// buffers; false if they are shorter or outside guest memory.
fn copy_writable(mem: &GuestMem, chain: &DescriptorChain<&GuestMem>, buf: &mut [u8], write: bool) -> bool {
    let mut done = 0;
    for desc in chain.clone().writable() {
        if done == buf.len() {
            break;
        }
        let n = (buf.len() - done).min(desc.len() as usize);
        let part = &mut buf[done..done + n];
        let ok = if write {
            mem.write_slice(part, desc.addr()).is_ok()
        } else {
            mem.read_slice(part, desc.addr()).is_ok()
        };
        if !ok {
            return false;
        }
        done += n;
    }
    done == buf.len()
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
