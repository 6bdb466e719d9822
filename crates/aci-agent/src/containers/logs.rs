//! Container output: lines read from the stdout/stderr pipes into a bounded per-container
//! ring (oldest dropped), with live followers.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use aci_proto::container::{LogEntry, LogStream};

/// The longest line kept as one entry; longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;
/// At most this many lines are kept per container.
pub const MAX_LINES: usize = 10_000;
/// At most this many bytes of line text are kept per container.
pub const MAX_BYTES: usize = 4 << 20;

/// Cuts a byte stream into lines: no newline, at most [`MAX_LINE`] bytes each (split on a
/// UTF-8 character boundary where possible), invalid UTF-8 replaced.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                lines.push(take_line(&mut self.pending, usize::MAX));
                continue;
            }
            self.pending.push(b);
            if self.pending.len() > MAX_LINE {
                let at = split_point(&self.pending);
                lines.push(take_line(&mut self.pending, at));
            }
        }
        lines
    }

    /// The unterminated rest at end of stream, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| take_line(&mut self.pending, usize::MAX))
    }
}

/// Where to cut a too-long line: at [`MAX_LINE`], moved back over UTF-8 continuation bytes
/// (at most 3) so a character is not cut in two.
fn split_point(line: &[u8]) -> usize {
    let mut at = MAX_LINE;
    for _ in 0..3 {
        if at > 0 && line.get(at).is_some_and(|b| b & 0xC0 == 0x80) {
            at -= 1;
        }
    }
    if at == 0 {
        MAX_LINE
    } else {
        at
    }
}

fn take_line(pending: &mut Vec<u8>, at: usize) -> String {
    let at = at.min(pending.len());
    let rest = pending.split_off(at);
    let line = std::mem::replace(pending, rest);
    String::from_utf8_lossy(&line).into_owned()
}

/// The kept lines of one container.
#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<LogEntry>,
    bytes: usize,
    /// Sequence number of the next entry pushed; the oldest kept is `next - entries.len()`.
    next: u64,
    /// The container was removed: followers stop.
    closed: bool,
}

/// A bounded, shared log of one container; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogBook {
    inner: Arc<(Mutex<Ring>, Condvar)>,
    max_lines: usize,
    max_bytes: usize,
}

impl Default for LogBook {
    fn default() -> Self {
        Self::with_bounds(MAX_LINES, MAX_BYTES)
    }
}

impl LogBook {
    /// A log keeping at most `max_lines` lines and `max_bytes` bytes of text.
    pub fn with_bounds(max_lines: usize, max_bytes: usize) -> Self {
        Self { inner: Arc::new((Mutex::new(Ring::default()), Condvar::new())), max_lines, max_bytes }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.inner.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a line now, dropping the oldest lines beyond the bounds, and wakes followers.
    pub fn push(&self, stream: LogStream, line: String, run: u32) {
        let entry = LogEntry { time_unix_ns: now_unix_ns(), stream, line, run };
        let mut ring = self.ring();
        ring.bytes += entry.line.len();
        ring.entries.push_back(entry);
        ring.next += 1;
        while ring.entries.len() > self.max_lines || (ring.bytes > self.max_bytes && ring.entries.len() > 1) {
            if let Some(old) = ring.entries.pop_front() {
                ring.bytes -= old.line.len();
            }
        }
        drop(ring);
        self.inner.1.notify_all();
    }

    /// The last `tail` kept lines (all when `None`) and the cursor after them.
    pub fn tail(&self, tail: Option<usize>) -> (Vec<LogEntry>, u64) {
        let ring = self.ring();
        let skip = tail.map_or(0, |n| ring.entries.len().saturating_sub(n));
        (ring.entries.iter().skip(skip).cloned().collect(), ring.next)
    }

    /// Waits up to `timeout` for lines after `cursor`; returns them and the new cursor.
    /// Lines dropped from the ring before being read are skipped. `None` once the log is
    /// closed.
    pub fn wait_after(&self, cursor: u64, timeout: Duration) -> Option<(Vec<LogEntry>, u64)> {
        let mut ring = self.ring();
        if ring.next == cursor && !ring.closed {
            ring = self
                .inner
                .1
                .wait_timeout(ring, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if ring.closed {
            return None;
        }
        let oldest = ring.next - ring.entries.len() as u64;
        let skip = cursor.saturating_sub(oldest) as usize;
        Some((ring.entries.iter().skip(skip).cloned().collect(), ring.next))
    }

    /// Ends every follow (the container is being removed).
    pub fn close(&self) {
        self.ring().closed = true;
        self.inner.1.notify_all();
    }

    /// Reads `pipe` to its end on the calling thread, pushing each line as `stream` of `run`.
    /// From a `terminal`, the `\r` its line discipline puts before each newline is dropped.
    pub fn capture(&self, mut pipe: impl Read, stream: LogStream, run: u32, terminal: bool) {
        let mut splitter = LineSplitter::default();
        let tidy = |mut line: String| {
            if terminal && line.ends_with('\r') {
                line.pop();
            }
            line
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for line in splitter.push(&buf[..n]) {
                        self.push(stream, tidy(line), run);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO is how a terminal's master reports that the last slave closed.
                Err(_) => break,
            }
        }
        if let Some(line) = splitter.finish() {
            self.push(stream, tidy(line), run);
        }
    }
}

/// Now, guest wall clock, in nanoseconds since the Unix epoch.
pub fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_on_newlines_long_lines_and_end_of_stream() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), vec!["one"]);
        assert_eq!(s.push(b"o\n\nthree"), vec!["two", ""]);
        assert_eq!(s.finish().as_deref(), Some("three"));
        assert_eq!(s.finish(), None);

        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let mut lines = s.push(&long);
        lines.extend(s.finish());
        assert_eq!(lines.iter().map(String::len).collect::<Vec<_>>(), vec![MAX_LINE, MAX_LINE, 5]);
    }

    #[test]
    fn long_lines_are_not_cut_inside_a_character_and_bad_utf8_is_replaced() {
        let mut s = LineSplitter::default();
        let mut bytes = vec![b'a'; MAX_LINE - 1];
        bytes.extend_from_slice("é".as_bytes()); // 2 bytes straddling the limit
        bytes.extend_from_slice(b"z\n");
        let lines = s.push(&bytes);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE - 1);
        assert_eq!(lines[1], "éz");
        assert_eq!(s.push(b"bad \xff byte\n"), vec!["bad \u{fffd} byte"]);
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_its_bounds() {
        let book = LogBook::with_bounds(3, 1000);
        for i in 0..5 {
            book.push(LogStream::Stdout, format!("line {i}"), 0);
        }
        let (all, cursor) = book.tail(None);
        assert_eq!(all.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), ["line 2", "line 3", "line 4"]);
        assert_eq!(cursor, 5);
        let (last, _) = book.tail(Some(1));
        assert_eq!(last[0].line, "line 4");
        assert!(last[0].time_unix_ns > 1_600_000_000_000_000_000);

        let small = LogBook::with_bounds(100, 10);
        small.push(LogStream::Stderr, "123456".into(), 0);
        small.push(LogStream::Stderr, "abcdef".into(), 1);
        let (kept, _) = small.tail(None);
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].line.as_str(), kept[0].run, kept[0].stream), ("abcdef", 1, LogStream::Stderr));
    }

    #[test]
    fn followers_get_new_lines_and_stop_when_closed() {
        let book = LogBook::default();
        book.push(LogStream::Stdout, "old".into(), 0);
        let (_, cursor) = book.tail(Some(0));
        let writer = book.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.push(LogStream::Stdout, "new".into(), 1);
        });
        let mut got = Vec::new();
        let mut cursor = cursor;
        while got.is_empty() {
            let (lines, next) = book.wait_after(cursor, Duration::from_secs(5)).unwrap();
            got.extend(lines);
            cursor = next;
        }
        t.join().unwrap();
        assert_eq!((got[0].line.as_str(), got[0].run), ("new", 1));
        book.close();
        assert!(book.wait_after(cursor, Duration::from_secs(5)).is_none());
    }

    #[test]
    fn capture_reads_a_pipe_to_its_end() {
        let book = LogBook::default();
        book.capture(&b"a\nb\r\nc"[..], LogStream::Stdout, 2, false);
        let (lines, _) = book.tail(None);
        assert_eq!(lines.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), ["a", "b\r", "c"]);
        let tty = LogBook::default();
        tty.capture(&b"x\r\ny\r\n"[..], LogStream::Stdout, 0, true);
        assert_eq!(tty.tail(None).0.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert!(lines.iter().all(|e| e.run == 2));
    }
}
