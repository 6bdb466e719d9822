//! A content-keyed artifact cache: entries are directories named by a hash of their inputs,
//! written under a temporary name and renamed into place only when complete.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Hashes the given input parts into a short hex key (16 hex digits).
pub fn key(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A cache entry `<root>/<kind>/<key>/`.
pub struct Entry {
    /// The final directory; present only when complete.
    pub dir: PathBuf,
    kind_dir: PathBuf,
    key: String,
}

impl Entry {
    /// Names the entry for `kind` and `key` under the cache `root`.
    pub fn new(root: &Path, kind: &str, key: &str) -> Self {
        let kind_dir = root.join(kind);
        Self { dir: kind_dir.join(key), kind_dir, key: key.to_owned() }
    }

    /// True when the entry exists and holds every file in `files`.
    pub fn is_complete(&self, files: &[&str]) -> bool {
        files.iter().all(|f| self.dir.join(f).is_file())
    }

    /// Creates the entry by calling `fill` on an empty staging directory, then renames the
    /// staging directory into place. On error the staging directory is removed.
    pub fn create(&self, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        fs::create_dir_all(&self.kind_dir)
            .with_context(|| format!("creating {}", self.kind_dir.display()))?;
        let staging = self.kind_dir.join(format!(".staging-{}-{}", self.key, std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)?;
        if let Err(err) = fill(&staging) {
            let _ = fs::remove_dir_all(&staging);
            return Err(err);
        }
        let _ = fs::remove_dir_all(&self.dir);
        fs::rename(&staging, &self.dir).with_context(|| format!("publishing {}", self.dir.display()))?;
        Ok(())
    }
}

/// An exclusive advisory lock on a file, released when dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock at `path` is held by this process.
    pub fn acquire(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            bail!("locking {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_part_and_its_boundaries() {
        let a = key(&[b"ab", b"c"]);
        assert_eq!(a.len(), 16);
        assert_ne!(a, key(&[b"a", b"bc"]));
        assert_ne!(a, key(&[b"ab", b"d"]));
        assert_eq!(a, key(&[b"ab", b"c"]));
    }

    #[test]
    fn failed_fill_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("xtask-cache-test-{}", std::process::id()));
        let entry = Entry::new(&root, "k", "abc");
        let err = entry.create(|dir| {
            fs::write(dir.join("half"), b"x")?;
            bail!("boom")
        });
        assert!(err.is_err());
        assert!(!entry.dir.exists());
        let leftovers: Vec<_> = fs::read_dir(root.join("k")).unwrap().collect();
        assert!(leftovers.is_empty(), "staging dir left behind");
        entry.create(|dir| Ok(fs::write(dir.join("f"), b"y")?)).unwrap();
        assert!(entry.is_complete(&["f"]));
        fs::remove_dir_all(&root).unwrap();
    }
}
