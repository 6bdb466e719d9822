//! Output lines timestamped on arrival: the guest's console or a host command's stdout,
//! with the phase markers the workload prints.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::workload::{FAILED, PHASES};

/// How long one marker may take to arrive.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The line being received, and the complete lines with the time each newline arrived.
type LineLog = (Vec<u8>, Vec<(Instant, String)>);

/// Output lines, each with the time its newline arrived.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<LineLog>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = Instant::now();
        let mut guard = self.0.lock().unwrap();
        let (partial, lines) = &mut *guard;
        for &b in buf {
            if b == b'\n' {
                lines.push((now, String::from_utf8_lossy(partial).trim_end_matches('\r').to_string()));
                partial.clear();
            } else {
                partial.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Every complete line so far.
    pub fn text(&self) -> Vec<String> {
        self.0.lock().unwrap().1.iter().map(|l| l.1.clone()).collect()
    }

    /// The first line starting with `prefix`.
    pub fn find(&self, prefix: &str) -> Option<String> {
        self.text().into_iter().find(|l| l.starts_with(prefix))
    }

    /// Copies `reader` into the log until it ends.
    pub fn copy_from(&mut self, mut reader: impl io::Read) {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.write_all(&buf[..n]).unwrap(),
            }
        }
    }

    /// When the line `marker` arrived; waits up to [`TIMEOUT`] and stops early on a line
    /// starting with [`FAILED`]. `progress` describes the device's state when the wait fails.
    pub fn wait_for(&self, marker: &str, progress: &dyn Fn() -> String) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (found, failed) = {
                let log = self.0.lock().unwrap();
                let found = log.1.iter().find(|(_, l)| l.trim() == marker).map(|(at, _)| *at);
                (found, log.1.iter().any(|(_, l)| l.starts_with(FAILED)))
            };
            if let Some(at) = found {
                return at;
            }
            if failed || Instant::now() > deadline {
                let why = if failed { "the workload failed".to_owned() } else { progress() };
                panic!("no {marker:?} in the output ({why}):\n{}", self.text().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The duration of every phase of [`PHASES`], from its start to its end marker.
    pub fn phases(&self, progress: &dyn Fn() -> String) -> Vec<Duration> {
        PHASES
            .iter()
            .map(|p| {
                let start = self.wait_for(&format!("bench-{p}-start"), progress);
                self.wait_for(&format!("bench-{p}-end"), progress) - start
            })
            .collect()
    }
}
