//! The host's copy of each container's log, written while the deployment runs, so the logs
//! survive a VM that dies unexpectedly (guest panic, VMM failure, the VM killed) and the
//! process that ran it.
//!
//! For each container, right after the agent created it (before it starts), a thread
//! follows the agent's `Logs` stream from its first kept line and appends every entry to
//! `<state_dir>/logs/<group>/<container>.jsonl` (JSON lines, one `write` per line: a line
//! is in the host's page cache as soon as the host received it). The agent keeps one log
//! per container across its restarts, so one follow sees every run (`run` tells them
//! apart). A follow that breaks while the deployment is still up is reopened and resumes
//! after the last line written (no duplicates).
//!
//! Bounds: when a file reaches half of the cap it becomes `<container>.jsonl.1` (replacing
//! the previous one) and a new file starts, so a container keeps between half the cap and
//! the cap of its most recent lines
//! ([`RuntimeBuilder::log_file_cap`](super::RuntimeBuilder::log_file_cap), default
//! [`DEFAULT_LOG_FILE_CAP`]).
//!
//! Durability: a file that changed is `fsync`ed within [`SYNC_EVERY`], at a rotation,
//! and when the deployment ends (stop, the group ending, the VM dying); a host crash may
//! lose the lines of the last few seconds, nothing else does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aci_proto::container::{LogEntry, LogsRequest};
use aci_proto::message::{AgentEvent, Call, Reply};

use super::group::lock;
use super::kept_logs;
use crate::agent::{connect, Channel, ConnectError};

/// The default cap of one container's kept log files: 16 MiB.
pub const DEFAULT_LOG_FILE_CAP: u64 = 16 << 20;
/// How often written lines are `fsync`ed.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How long a broken follow may take to reconnect.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a broken follow is reopened.
const RECONNECTS: u32 = 3;
/// How long the followers get to drain their streams once the VM is gone.
const DRAIN: Duration = Duration::from_secs(5);
/// How long [`LogSink::finish`] lets the VMM hand over what it still holds before it shuts
/// the read side of the follows.
const SETTLE: Duration = Duration::from_millis(300);

/// A container's log could not be followed or kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogSinkError {
    /// The agent could not be reached.
    #[error("cannot connect to the agent to follow the logs of {container:?}")]
    Connect {
        /// The container.
        container: String,
        /// Why.
        #[source]
        source: ConnectError,
    },
    /// The agent refused or failed the `Logs` call.
    #[error("the agent failed the logs call of {container:?}: {detail}")]
    Call {
        /// The container.
        container: String,
        /// What happened.
        detail: String,
    },
    /// A log file could not be opened, written or synced.
    #[error("cannot write the log file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The follower thread could not be started or ended before it was ready.
    #[error("cannot start following the logs of {container:?}: {detail}")]
    Thread {
        /// The container.
        container: String,
        /// What happened.
        detail: String,
    },
}

/// One container's kept log file, rotated at half the cap.
struct LogFile {
    path: PathBuf,
    file: File,
    len: u64,
    half: u64,
    dirty: bool,
}

impl LogFile {
    fn open(path: PathBuf, cap: u64) -> Result<Self, LogSinkError> {
        let fail = |source| LogSinkError::File { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        Ok(Self { path, file, len, half: (cap / 2).max(1), dirty: false })
    }

    /// Appends one entry as a JSON line (one write), rotating first when it would not fit.
    fn append(&mut self, entry: &LogEntry) -> Result<(), LogSinkError> {
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| LogSinkError::File { path: self.path.clone(), source: e.into() })?;
        line.push(b'\n');
        if self.len > 0 && self.len + line.len() as u64 > self.half {
            self.rotate()?;
        }
        self.file
            .write_all(&line)
            .map_err(|source| LogSinkError::File { path: self.path.clone(), source })?;
        self.len += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// The current file becomes the `.1` file; a new one starts.
    fn rotate(&mut self) -> Result<(), LogSinkError> {
        let fail = |source| LogSinkError::File { path: self.path.clone(), source };
        self.file.sync_data().map_err(fail)?;
        std::fs::rename(&self.path, kept_logs::rotated(&self.path)).map_err(fail)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path).map_err(fail)?;
        self.len = 0;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogSinkError> {
        if self.dirty {
            self.file.sync_data().map_err(|source| LogSinkError::File { path: self.path.clone(), source })?;
            self.dirty = false;
        }
        Ok(())
    }
}

type Shared<T> = Arc<Mutex<T>>;

/// One follower thread and the connection it reads (to cut it if it does not end).
struct Follower {
    thread: JoinHandle<()>,
    stream: Shared<Option<UnixStream>>,
}

struct Inner {
    group: String,
    dir: PathBuf,
    cap: u64,
    /// Set once the deployment ends: a broken follow is not reopened.
    ending: Arc<AtomicBool>,
    files: Shared<Vec<Shared<LogFile>>>,
    followers: Mutex<Vec<Follower>>,
    /// Dropping it ends the sync thread.
    _sync: Option<mpsc::Sender<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ending.store(true, Ordering::Release);
    }
}

/// The log files of one deployment and the threads that fill them; cheap to clone.
#[derive(Clone)]
pub(crate) struct LogSink {
    inner: Arc<Inner>,
}

impl LogSink {
    /// A sink for `group`'s containers under `state_dir`, each capped at `cap` bytes.
    pub fn new(state_dir: &Path, group: &str, cap: u64) -> Self {
        let files: Shared<Vec<Shared<LogFile>>> = Arc::default();
        let (tx, rx) = mpsc::channel::<()>();
        let synced = files.clone();
        let spawned = std::thread::Builder::new().name("aci-logsync".into()).spawn(move || loop {
            let last = !matches!(rx.recv_timeout(SYNC_EVERY), Err(mpsc::RecvTimeoutError::Timeout));
            sync_all(&synced);
            if last {
                return;
            }
        });
        if let Err(err) = &spawned {
            tracing::warn!(%group, error = %err, "no log sync thread; logs are synced at the end");
        }
        Self {
            inner: Arc::new(Inner {
                group: group.to_string(),
                dir: kept_logs::group_dir(state_dir, group),
                cap,
                ending: Arc::default(),
                files,
                followers: Mutex::default(),
                _sync: spawned.ok().map(|_| tx),
            }),
        }
    }

    /// Starts following `container` through the VMM's vsock socket `uds`; returns once the
    /// agent accepted the follow (so no line the container prints afterwards is missed).
    pub async fn follow(&self, uds: &Path, container: &str, timeout: Duration) -> Result<(), LogSinkError> {
        let path = kept_logs::file(&self.inner.dir, container);
        let cap = self.inner.cap;
        let file = tokio::task::spawn_blocking(move || LogFile::open(path, cap))
            .await
            .map_err(|e| LogSinkError::Thread { container: container.into(), detail: e.to_string() })??;
        let file = Arc::new(Mutex::new(file));
        lock(&self.inner.files).push(file.clone());
        let stream: Shared<Option<UnixStream>> = Arc::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let follow = Follow {
            group: self.inner.group.clone(),
            container: container.to_string(),
            uds: uds.to_path_buf(),
            file,
            stream: stream.clone(),
            ending: self.inner.ending.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("aci-logsink".into())
            .spawn(move || follow.run(timeout, ready_tx))
            .map_err(|e| LogSinkError::Thread { container: container.into(), detail: e.to_string() })?;
        lock(&self.inner.followers).push(Follower { thread, stream });
        match ready_rx.await {
            Ok(result) => result,
            Err(_) => Err(LogSinkError::Thread {
                container: container.into(),
                detail: "the follower ended before it was ready".into(),
            }),
        }
    }

    /// The deployment ended and its VM is gone (or going): lets the followers drain their
    /// streams (cutting them after [`DRAIN`]), waits for them and syncs every file.
    pub async fn finish(&self) {
        self.inner.ending.store(true, Ordering::Release);
        let followers: Vec<Follower> = std::mem::take(&mut *lock(&self.inner.followers));
        let running = |followers: &[Follower]| followers.iter().any(|f| !f.thread.is_finished());
        // The VMM need not close the host end of a follow when its VM ends. A short wait lets
        // the VMM hand over what it still holds; then each stream's read side is shut: a Unix
        // socket still returns the bytes it has queued, then end-of-stream, so nothing that
        // reached the host is lost and a stop does not wait out DRAIN.
        let settle = tokio::time::Instant::now() + SETTLE;
        while running(&followers) && tokio::time::Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for f in followers.iter().filter(|f| !f.thread.is_finished()) {
            if let Some(s) = lock(&f.stream).as_ref() {
                let _ = s.shutdown(std::net::Shutdown::Read);
            }
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        while running(&followers) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for f in followers.iter().filter(|f| !f.thread.is_finished()) {
            tracing::warn!(group = %self.inner.group, "a log follow did not end with the VM; cutting it");
            if let Some(s) = lock(&f.stream).as_ref() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        let files = self.inner.files.clone();
        let joined = tokio::task::spawn_blocking(move || {
            for f in followers {
                let _ = f.thread.join();
            }
            sync_all(&files);
        });
        let _ = joined.await;
    }
}

fn sync_all(files: &Shared<Vec<Shared<LogFile>>>) {
    let files: Vec<Shared<LogFile>> = lock(files).clone();
    for file in files {
        if let Err(err) = lock(&file).sync() {
            tracing::warn!(error = %err, "cannot sync a kept log file");
        }
    }
}

/// What one follower thread needs.
struct Follow {
    group: String,
    container: String,
    uds: PathBuf,
    file: Shared<LogFile>,
    stream: Shared<Option<UnixStream>>,
    ending: Arc<AtomicBool>,
}

/// How a follow stream ended.
enum Ended {
    /// The agent said the log is closed (the container was removed).
    Closed,
    /// The connection ended or broke.
    Broken,
}

impl Follow {
    fn run(self, timeout: Duration, ready: tokio::sync::oneshot::Sender<Result<(), LogSinkError>>) {
        let mut channel = match self.open(timeout) {
            Ok(channel) => channel,
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut last: Option<LogEntry> = None;
        let mut resuming = false;
        let mut reconnects = 0;
        loop {
            if let Ended::Closed = self.read(&mut channel, &mut last, &mut resuming) {
                return;
            }
            if self.ending.load(Ordering::Acquire) || reconnects >= RECONNECTS {
                return;
            }
            reconnects += 1;
            std::thread::sleep(Duration::from_millis(200));
            match self.open(RECONNECT_TIMEOUT) {
                Ok(c) => {
                    channel = c;
                    resuming = last.is_some();
                }
                // The VM is gone (or the container): nothing more to follow.
                Err(_) => return,
            }
        }
    }

    /// Opens a follow of the container's whole kept log.
    fn open(&self, timeout: Duration) -> Result<Channel<UnixStream>, LogSinkError> {
        let container = self.container.clone();
        let (mut channel, _) =
            connect(&self.uds, timeout).map_err(|source| LogSinkError::Connect { container, source })?;
        let call_err = |detail: String| LogSinkError::Call { container: self.container.clone(), detail };
        let request = LogsRequest { container: self.container.clone(), tail: None, follow: true };
        match channel.call(Call::Logs(request)) {
            Ok(Reply::Streaming) => {}
            Ok(other) => return Err(call_err(format!("unexpected reply {other:?}"))),
            Err(err) => return Err(call_err(err.to_string())),
        }
        let stream = channel.get_ref();
        stream.set_read_timeout(None).map_err(|e| call_err(format!("clearing the read timeout: {e}")))?;
        *lock(&self.stream) = stream.try_clone().ok();
        Ok(channel)
    }

    /// Reads the stream to its end, appending each new entry. After a reconnect
    /// (`resuming`) the agent resends its kept lines: those up to `last` are skipped.
    fn read(
        &self,
        channel: &mut Channel<UnixStream>,
        last: &mut Option<LogEntry>,
        resuming: &mut bool,
    ) -> Ended {
        loop {
            let entry = match channel.next_event() {
                Ok(Some(AgentEvent::Log(entry))) => entry,
                Ok(Some(AgentEvent::LogEnd)) => return Ended::Closed,
                Ok(Some(_)) => continue,
                Ok(None) => return Ended::Broken,
                Err(err) => {
                    let (group, container) = (&self.group, &self.container);
                    tracing::debug!(%group, %container, error = %err, "log follow ended");
                    return Ended::Broken;
                }
            };
            if *resuming {
                match last {
                    Some(l) if entry == *l => {
                        *resuming = false;
                        continue;
                    }
                    Some(l) if entry.time_unix_ns <= l.time_unix_ns => continue,
                    _ => *resuming = false,
                }
            }
            if let Err(err) = lock(&self.file).append(&entry) {
                let (group, container) = (&self.group, &self.container);
                tracing::warn!(%group, %container, error = %err, "cannot keep a log line");
            }
            *last = Some(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::container::LogStream;

    fn entry(i: u64) -> LogEntry {
        LogEntry {
            time_unix_ns: i,
            stream: LogStream::Stdout,
            line: format!("line {i:05} {}", "x".repeat(60)),
            run: 0,
        }
    }

    #[test]
    fn a_file_rotates_at_half_the_cap_and_keeps_the_latest_lines() {
        let state = tempfile::tempdir().unwrap();
        let cap = 8 * 1024;
        let path = kept_logs::file(&kept_logs::group_dir(state.path(), "g"), "app");
        let mut file = LogFile::open(path.clone(), cap).unwrap();
        for i in 0..2000 {
            file.append(&entry(i)).unwrap();
            let size = std::fs::metadata(&path).unwrap().len()
                + std::fs::metadata(kept_logs::rotated(&path)).map_or(0, |m| m.len());
            assert!(size <= cap, "{size} bytes after line {i}");
        }
        file.sync().unwrap();
        let kept = kept_logs::read(state.path(), "g", "app", None).unwrap();
        assert!(kept.len() > 30, "{} lines", kept.len());
        let first = kept[0].time_unix_ns;
        assert_eq!(kept, (first..2000).map(entry).collect::<Vec<_>>());

        // Reopened (a new follower of the same deployment): appends after what is there.
        let mut again = LogFile::open(path, cap).unwrap();
        again.append(&entry(2000)).unwrap();
        let kept = kept_logs::read(state.path(), "g", "app", Some(2)).unwrap();
        assert_eq!(kept, vec![entry(1999), entry(2000)]);
    }
}
