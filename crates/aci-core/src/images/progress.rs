//! Pull progress events, one stream per image store, that callers subscribe to.

use tokio::sync::broadcast;

/// What happened to one blob of a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// The blob was already in the cache; nothing is downloaded.
    Cached,
    /// A download started.
    Started,
    /// Bytes arrived (sent about every 256 KiB).
    Downloading,
    /// The blob was downloaded and verified.
    Done,
}

/// One progress event for one blob (the config or a layer) of an image being pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The image as requested (normalised).
    pub image: String,
    /// The blob digest.
    pub digest: String,
    /// What happened.
    pub kind: ProgressKind,
    /// Bytes downloaded so far.
    pub done: u64,
    /// The blob size from the manifest.
    pub total: u64,
}

/// The sending side, shared by all pulls of a store. Receivers that fall behind lose events
/// (`RecvError::Lagged`), never slow a pull down.
#[derive(Debug, Clone)]
pub(crate) struct ProgressHub {
    tx: broadcast::Sender<PullProgress>,
}

impl ProgressHub {
    pub fn new() -> Self {
        Self { tx: broadcast::channel(1024).0 }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PullProgress> {
        self.tx.subscribe()
    }

    pub fn send(&self, image: &str, digest: &str, kind: ProgressKind, done: u64, total: u64) {
        // No receivers is fine.
        let _ = self.tx.send(PullProgress {
            image: image.to_string(),
            digest: digest.to_string(),
            kind,
            done,
            total,
        });
    }
}
