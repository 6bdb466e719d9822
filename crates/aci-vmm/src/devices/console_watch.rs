//! Watches the guest's serial output on its way to the caller's sink: the time of the first
//! byte, of the agent's ready line, and of a kernel panic (with the panic's message).
//!
//! Guest panics are detected here: Linux prints `Kernel panic - not syncing: <reason>` at
//! `KERN_EMERG` (shown even with `quiet`) before it acts on `panic=`; with `panic=-1` it then
//! resets at once, which the vCPU sees as an ordinary reset. [`crate::exit::RunState`] asks
//! [`ConsoleMarks::panicked`] when it records the exit and reports a panic instead.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// What the kernel prints first when it panics.
pub const PANIC_MARKER: &[u8] = b"Kernel panic - not syncing";
/// What the aci agent prints when it is ready to serve (the line continues with details).
pub const READY_MARKER: &[u8] = b"aci-agent ready";
/// The longest panic line kept.
const MAX_PANIC_LINE: usize = 240;

/// Console milestones, shared between the serial device and the `Vm` handle.
#[derive(Debug, Default)]
pub struct ConsoleMarks {
    first_byte: OnceLock<Instant>,
    ready: OnceLock<Instant>,
    panic: OnceLock<Instant>,
    panic_line: Mutex<Vec<u8>>,
}

impl ConsoleMarks {
    /// When the guest first transmitted a byte.
    pub fn first_byte(&self) -> Option<Instant> {
        self.first_byte.get().copied()
    }

    /// When the agent's ready line appeared (or [`ConsoleMarks::mark_ready`] was called).
    pub fn ready(&self) -> Option<Instant> {
        self.ready.get().copied()
    }

    /// Records the agent as ready now, unless it already was.
    pub fn mark_ready(&self) {
        let _ = self.ready.set(Instant::now());
    }

    /// When the guest kernel started printing a panic.
    pub fn panicked(&self) -> Option<Instant> {
        self.panic.get().copied()
    }

    /// The panic line, from `Kernel panic` to the end of the line (or as much as arrived).
    pub fn panic_message(&self) -> Option<String> {
        self.panicked()?;
        let line = self.panic_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(String::from_utf8_lossy(&line).trim_end().to_string())
    }
}

/// The last bytes seen, enough to hold the longest marker.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    const LEN: usize =
        if PANIC_MARKER.len() > READY_MARKER.len() { PANIC_MARKER.len() } else { READY_MARKER.len() };

    fn push(&mut self, byte: u8) {
        if self.bytes.len() == Self::LEN {
            self.bytes.remove(0);
        }
        self.bytes.push(byte);
    }

    fn ends_with(&self, marker: &[u8]) -> bool {
        self.bytes.ends_with(marker)
    }
}

/// The writer between the UART and the caller's sink.
pub struct ConsoleWatch {
    inner: Box<dyn Write + Send>,
    marks: Arc<ConsoleMarks>,
    tail: Tail,
    /// Collecting the rest of the panic line.
    in_panic_line: bool,
}

impl ConsoleWatch {
    /// Passes everything on to `inner`, noting milestones in `marks`.
    pub fn new(inner: Box<dyn Write + Send>, marks: Arc<ConsoleMarks>) -> Self {
        Self { inner, marks, tail: Tail::default(), in_panic_line: false }
    }

    fn scan(&mut self, buf: &[u8]) {
        let now = Instant::now();
        let _ = self.marks.first_byte.set(now);
        for &byte in buf {
            if self.in_panic_line {
                let mut line =
                    self.marks.panic_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if byte == b'\n' || line.len() >= MAX_PANIC_LINE {
                    self.in_panic_line = false;
                } else {
                    line.push(byte);
                }
                continue;
            }
            self.tail.push(byte);
            if self.marks.ready.get().is_none() && self.tail.ends_with(READY_MARKER) {
                let _ = self.marks.ready.set(now);
            }
            if self.marks.panic.get().is_none() && self.tail.ends_with(PANIC_MARKER) {
                let mut line =
                    self.marks.panic_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                line.clear();
                line.extend_from_slice(PANIC_MARKER);
                self.in_panic_line = true;
                let _ = self.marks.panic.set(now);
            }
        }
    }
}

impl Write for ConsoleWatch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.scan(buf);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Discard;

    impl Write for Discard {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn byte_by_byte(watch: &mut ConsoleWatch, text: &[u8]) {
        for b in text {
            watch.write_all(std::slice::from_ref(b)).unwrap();
        }
    }

    #[test]
    fn markers_are_found_across_single_byte_writes() {
        let marks = Arc::new(ConsoleMarks::default());
        let mut watch = ConsoleWatch::new(Box::new(Discard), marks.clone());
        assert!(marks.first_byte().is_none());
        byte_by_byte(&mut watch, b"booting\r\naci-aci-agent read");
        assert!(marks.first_byte().is_some());
        assert!(marks.ready().is_none(), "a partial marker is not a match");
        byte_by_byte(&mut watch, b"y protocol=2\r\n");
        assert!(marks.ready().is_some());
        assert!(marks.panicked().is_none());
        byte_by_byte(
            &mut watch,
            b"[ 1.0] KKernel panic - not syncing: Attempted to kill init! exitcode=0x00000300\r\n",
        );
        watch.write_all(b"CPU: 0 PID: 1\r\n").unwrap();
        assert!(marks.panicked().is_some());
        assert_eq!(
            marks.panic_message().as_deref(),
            Some("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300")
        );
    }

    #[test]
    fn no_panic_without_the_marker_and_mark_ready_keeps_the_first_time() {
        let marks = Arc::new(ConsoleMarks::default());
        let mut watch = ConsoleWatch::new(Box::new(Discard), marks.clone());
        watch.write_all(b"Kernel panic - not sync\r\nKernel oops\r\n").unwrap();
        assert!(marks.panicked().is_none());
        assert!(marks.panic_message().is_none());
        marks.mark_ready();
        let first = marks.ready();
        marks.mark_ready();
        assert_eq!(marks.ready(), first);
    }

    #[test]
    fn an_overlong_panic_line_is_cut() {
        let marks = Arc::new(ConsoleMarks::default());
        let mut watch = ConsoleWatch::new(Box::new(Discard), marks.clone());
        let mut text = b"Kernel panic - not syncing: ".to_vec();
        text.extend(std::iter::repeat_n(b'x', 1000));
        watch.write_all(&text).unwrap();
        assert_eq!(marks.panic_message().map(|m| m.len()), Some(MAX_PANIC_LINE));
    }
}
