//! Live output of a container's main process for `Attach`: the log readers publish every
//! chunk they read to the container's [`OutputHub`], which hands it to each attach
//! subscribed to that run; the exit of the run is published last. A subscriber that falls
//! [`QUEUE`] chunks behind is dropped (its attach ends saying so) rather than slowing the
//! container or its logs down.
//!
//! Also the shared write end of a `stdin: true` container's stdin pipe ([`StdinSlot`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use aci_proto::container::{ExitStatus, LogStream};

/// How many undelivered items a subscriber may have before it is dropped.
pub const QUEUE: usize = 128;

/// What a subscriber receives, all of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes the process wrote.
    Chunk(LogStream, Arc<[u8]>),
    /// The stream's pipe reached its end (every writer closed it).
    End(LogStream),
    /// The run ended.
    Exited(ExitStatus),
}

#[derive(Debug)]
struct Subscriber {
    run: u32,
    tx: SyncSender<Output>,
    lagged: Arc<AtomicBool>,
}

/// One container's live output, shared by its log readers, its exit handler and its
/// attaches; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OutputHub {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

/// An attach's end of the hub.
#[derive(Debug)]
pub struct Subscription {
    /// The items, in the order they were published.
    pub rx: Receiver<Output>,
    lagged: Arc<AtomicBool>,
}

impl Subscription {
    /// True when the hub dropped this subscriber for falling behind (rather than because
    /// the container was removed).
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::SeqCst)
    }
}

impl OutputHub {
    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to what run `run` publishes from now on.
    pub fn subscribe(&self, run: u32) -> Subscription {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let lagged = Arc::new(AtomicBool::new(false));
        self.lock().push(Subscriber { run, tx, lagged: Arc::clone(&lagged) });
        Subscription { rx, lagged }
    }

    /// Hands `item` of run `run` to its subscribers; drops those gone or too far behind.
    pub fn publish(&self, run: u32, item: &Output) {
        self.lock().retain(|sub| {
            if sub.run != run {
                return true;
            }
            match sub.tx.try_send(item.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    sub.lagged.store(true, Ordering::SeqCst);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }

    /// Drops every subscriber (the container is being removed): their attaches end.
    pub fn close(&self) {
        self.lock().clear();
    }

    /// How many subscribers are registered.
    #[cfg(test)]
    pub fn subscribers(&self) -> usize {
        self.lock().len()
    }

    /// Wraps `reader` (an output pipe of run `run`) so every chunk read from it is also
    /// published, and its end is published when the wrapper is dropped.
    pub fn tee<R: Read>(&self, reader: R, stream: LogStream, run: u32) -> Tee<R> {
        Tee { reader, hub: self.clone(), stream, run }
    }
}

/// See [`OutputHub::tee`].
#[derive(Debug)]
pub struct Tee<R> {
    reader: R,
    hub: OutputHub,
    stream: LogStream,
    run: u32,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n > 0 {
            self.hub.publish(self.run, &Output::Chunk(self.stream, Arc::from(&buf[..n])));
        }
        Ok(n)
    }
}

impl<R> Drop for Tee<R> {
    fn drop(&mut self) {
        self.hub.publish(self.run, &Output::End(self.stream));
    }
}

/// The write end of a `stdin: true` container's stdin pipe for one run, shared by its
/// attaches. Closing it (any attach's end of input) gives the process end of file.
#[derive(Debug, Clone)]
pub struct StdinSlot(Arc<Mutex<Option<File>>>);

/// Writing to a container's stdin failed.
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    /// An attach already closed it.
    #[error("its stdin was closed")]
    Closed,
    /// The write failed (the process closed its end or ended).
    #[error("writing to its stdin failed")]
    Io(#[source] io::Error),
}

impl StdinSlot {
    /// A slot holding `writer`.
    pub fn new(writer: File) -> Self {
        Self(Arc::new(Mutex::new(Some(writer))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<File>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True while no attach closed it.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Writes all of `bytes` (blocking while the pipe is full).
    pub fn write(&self, bytes: &[u8]) -> Result<(), StdinError> {
        let mut slot = self.lock();
        let writer = slot.as_mut().ok_or(StdinError::Closed)?;
        writer.write_all(bytes).map_err(StdinError::Io)
    }

    /// Closes the write end; the process reads end of file once the pipe is drained.
    pub fn close(&self) {
        self.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stream: LogStream, text: &str) -> Output {
        Output::Chunk(stream, Arc::from(text.as_bytes()))
    }

    #[test]
    fn every_subscriber_of_the_run_gets_every_item_in_order() {
        let hub = OutputHub::default();
        let a = hub.subscribe(1);
        let b = hub.subscribe(1);
        let other_run = hub.subscribe(2);
        hub.publish(1, &chunk(LogStream::Stdout, "one"));
        hub.publish(1, &chunk(LogStream::Stderr, "two"));
        hub.publish(1, &Output::Exited(ExitStatus { code: 4, ..Default::default() }));
        for sub in [&a, &b] {
            let got: Vec<Output> = sub.rx.try_iter().collect();
            assert_eq!(
                got,
                vec![
                    chunk(LogStream::Stdout, "one"),
                    chunk(LogStream::Stderr, "two"),
                    Output::Exited(ExitStatus { code: 4, ..Default::default() }),
                ]
            );
        }
        assert!(other_run.rx.try_recv().is_err(), "run 2 saw nothing of run 1");
    }

    #[test]
    fn gone_subscribers_are_pruned_and_laggards_dropped_with_a_flag() {
        let hub = OutputHub::default();
        let gone = hub.subscribe(0);
        drop(gone);
        let slow = hub.subscribe(0);
        let fast = hub.subscribe(0);
        for i in 0..QUEUE {
            hub.publish(0, &chunk(LogStream::Stdout, &i.to_string()));
            assert_eq!(fast.rx.try_recv().unwrap(), chunk(LogStream::Stdout, &i.to_string()));
        }
        assert_eq!(hub.subscribers(), 2, "the dropped receiver was pruned");
        hub.publish(0, &chunk(LogStream::Stdout, "overflow"));
        assert_eq!(hub.subscribers(), 1, "the full one was dropped");
        assert!(slow.lagged() && !fast.lagged());
        assert_eq!(slow.rx.try_iter().count(), QUEUE, "what was queued is still delivered");
        assert!(matches!(slow.rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
        assert_eq!(fast.rx.try_recv().unwrap(), chunk(LogStream::Stdout, "overflow"));

        hub.close();
        assert!(matches!(fast.rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
        assert!(!fast.lagged(), "closing is not lagging");
    }

    #[test]
    fn a_tee_publishes_what_it_reads_and_its_end() {
        let hub = OutputHub::default();
        let sub = hub.subscribe(3);
        let mut text = String::new();
        let mut tee = hub.tee(&b"hello\nworld\n"[..], LogStream::Stderr, 3);
        tee.read_to_string(&mut text).unwrap();
        drop(tee);
        assert_eq!(text, "hello\nworld\n");
        let mut bytes = Vec::new();
        let mut ended = false;
        for item in sub.rx.try_iter() {
            match item {
                Output::Chunk(LogStream::Stderr, b) => bytes.extend_from_slice(&b),
                Output::End(LogStream::Stderr) => ended = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(bytes, b"hello\nworld\n");
        assert!(ended);
    }

    #[test]
    fn the_stdin_slot_writes_and_closing_gives_end_of_file() {
        let (r, w) = super::super::runtime::pipe().unwrap();
        let slot = StdinSlot::new(File::from(w));
        let attach_copy = slot.clone();
        attach_copy.write(b"line\n").unwrap();
        assert!(slot.is_open());
        attach_copy.close();
        assert!(!slot.is_open());
        assert!(matches!(slot.write(b"late"), Err(StdinError::Closed)));
        let mut read = String::new();
        File::from(r).read_to_string(&mut read).unwrap();
        assert_eq!(read, "line\n", "end of file came although a clone of the slot lives");
    }
}
