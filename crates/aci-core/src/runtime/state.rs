//! The state directory: one JSON record per group (`groups/<name>.json`, written to a
//! temporary file, synced and renamed, so a crash leaves the old or the new record, never
//! half of one), and a lock so one process at a time runs a state directory.
//!
//! ```text
//! <state_dir>/lock             flock(2)ed by the runtime that owns the directory
//! <state_dir>/groups/<name>.json
//! <state_dir>/consoles/<name>-<deployment>.log   guest serial consoles
//! <state_dir>/images/          the image store (blobs, catalog, erofs disks)
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::RuntimeError;
use super::status::GroupStatus;

/// The group records of a state directory.
#[derive(Debug, Clone)]
pub struct RecordStore {
    dir: PathBuf,
}

impl RecordStore {
    /// Opens (creating) `<state_dir>/groups`.
    pub fn open(state_dir: &Path) -> Result<Self, RuntimeError> {
        let dir = state_dir.join("groups");
        std::fs::create_dir_all(&dir)
            .map_err(|source| RuntimeError::StateDir { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes `record` atomically.
    pub fn save(&self, record: &GroupStatus) -> Result<(), RuntimeError> {
        let path = self.path(&record.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", record.name));
        let err = |source| RuntimeError::Record { path: path.clone(), source };
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let mut file = File::create(&tmp).map_err(err)?;
        file.write_all(&json).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// Every record; a record that does not read is reported with its path.
    pub fn load_all(&self) -> Result<Vec<GroupStatus>, RuntimeError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|source| RuntimeError::StateDir { path: self.dir.clone(), source })?;
        let mut records = Vec::new();
        for entry in entries {
            let path =
                entry.map_err(|source| RuntimeError::StateDir { path: self.dir.clone(), source })?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes =
                std::fs::read(&path).map_err(|source| RuntimeError::Record { path: path.clone(), source })?;
            let record = serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Record {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            records.push(record);
        }
        records.sort_by(|a: &GroupStatus, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// Removes a group's record (absent is fine).
    pub fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::Record { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

/// How long [`StateLock::acquire`] retries a lock held by someone else.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// An exclusive `flock(2)` on `<state_dir>/lock`, held while the runtime lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock, or fails with [`RuntimeError::Locked`] when another runtime holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, RuntimeError> {
        let path = state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| RuntimeError::StateDir { path: path.clone(), source })?;
        // A child forked by this process between fork and exec holds a copy of a released
        // lock's descriptor for a moment: retry briefly before calling the directory taken.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            // SAFETY: flock on a file descriptor this function owns; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Self { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(RuntimeError::StateDir { path, source: err });
            }
            if std::time::Instant::now() >= deadline {
                return Err(RuntimeError::Locked { path });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
