//! A layer blob on disk and its decompression (gzip, zstd or none).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`+gzip`, Docker `tar.gzip`).
    Gzip,
    /// zstd (`+zstd`).
    Zstd,
}

impl Compression {
    /// From an OCI or Docker layer media type; `None` when the type does not say (then the
    /// content is sniffed).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Self::Gzip)
        } else if media_type.ends_with("+zstd") {
            Some(Self::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Self::None)
        } else {
            None
        }
    }

    fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}

/// A layer to apply: a verified blob file plus what it is called in messages.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// Where the blob is.
    pub path: PathBuf,
    /// Its media type from the manifest (may be empty).
    pub media_type: String,
    /// A name for messages, normally the blob digest.
    pub name: String,
}

impl LayerSource {
    /// Opens the blob and returns a reader of the uncompressed tar stream.
    pub fn open_tar(&self) -> io::Result<Box<dyn Read>> {
        let mut file = File::open(&self.path)?;
        let compression = match Compression::from_media_type(&self.media_type) {
            Some(c) => c,
            None => {
                let mut head = [0u8; 4];
                let n = file.read(&mut head)?;
                file.seek(SeekFrom::Start(0))?;
                Compression::sniff(&head[..n])
            }
        };
        let file = BufReader::with_capacity(256 * 1024, file);
        Ok(match compression {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
            Compression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(file)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
        })
    }
}
