//! The manager's state dir: one `<network>.json` spec per network (its config plus the transit
//! slot of its uplink) and one `<network>.leases.json` per network (see [`crate::ipam`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;

/// Errors of state-dir access.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or listing failed.
    #[error("cannot access network state {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A spec file is not valid JSON for this format.
    #[error("network spec {path} is corrupt")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// What is stored per network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNetwork {
    /// The caller's config.
    pub config: NetworkConfig,
    /// Transit slot of the uplink (NAT networks only).
    pub uplink_slot: Option<u16>,
}

/// The `networks/` directory of a state dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating) `<root>/networks`.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|source| StateError::Io { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    fn spec_path(&self, network: &str) -> PathBuf {
        self.dir.join(format!("{network}.json"))
    }

    /// The lease file of `network`.
    pub fn leases_path(&self, network: &str) -> PathBuf {
        self.dir.join(format!("{network}.leases.json"))
    }

    /// The stored spec of `network`, if any.
    pub fn load(&self, network: &str) -> Result<Option<StoredNetwork>, StateError> {
        let path = self.spec_path(network);
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map(Some).map_err(|source| StateError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Writes the spec of `net` (atomically).
    pub fn store(&self, net: &StoredNetwork) -> Result<(), StateError> {
        let path = self.spec_path(&net.config.name);
        let bytes = serde_json::to_vec_pretty(net)
            .map_err(|source| StateError::Parse { path: path.clone(), source })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|source| StateError::Io { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| StateError::Io { path, source })
    }

    /// Removes the spec and leases of `network` (missing files are fine).
    pub fn remove(&self, network: &str) -> Result<(), StateError> {
        for path in [self.spec_path(network), self.leases_path(network)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StateError::Io { path, source }),
            }
        }
        Ok(())
    }

    /// All stored networks, by name.
    pub fn all(&self) -> Result<Vec<StoredNetwork>, StateError> {
        let err = |source| StateError::Io { path: self.dir.clone(), source };
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(err)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
            .filter(|n| !n.ends_with(".leases"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(s) = self.load(&n)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The first transit slot from `preferred` on (wrapping at 8192) that no stored network
    /// uses. Callers prefer a hash of prefix and name so separate managers rarely collide.
    pub fn free_slot(&self, preferred: u16) -> Result<u16, StateError> {
        let used: Vec<u16> = self.all()?.iter().filter_map(|n| n.uplink_slot).collect();
        let start = preferred % 8192;
        Ok((0..8192u16).map(|i| (start + i) % 8192).find(|s| !used.contains(s)).unwrap_or(start))
    }
}
