//! Crafting layer tars entry by entry, including entries no honest tool would write.

use std::io::Write;
use std::process::{Command, Stdio};

use tar::{EntryType, Header};

/// A finished layer blob: compressed bytes, media type and the uncompressed digest.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The blob as pushed.
    pub data: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// `sha256` of the uncompressed tar.
    pub diff_id: String,
}

/// A layer tar built entry by entry. Names and link targets are written verbatim into the
/// header (so `../x` and `/etc/x` are possible); every name must fit the 100-byte field.
pub struct TarLayer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for TarLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TarLayer {
    /// An empty layer.
    pub fn new() -> Self {
        Self { builder: tar::Builder::new(Vec::new()) }
    }

    fn put(&mut self, kind: EntryType, name: &str, link: &str, mode: u32, data: &[u8]) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        assert!(name.len() < 100 && link.len() < 100, "name too long for a crafted entry");
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.put(EntryType::Directory, name, "", 0o755, b"")
    }

    /// A regular file with `mode`.
    pub fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.put(EntryType::Regular, name, "", mode, data)
    }

    /// A file owned by `uid:gid`.
    pub fn file_owned(&mut self, name: &str, data: &[u8], uid: u64, gid: u64) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_mode(0o640);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    /// A regular file with one extended attribute, carried in a PAX `SCHILY.xattr` record.
    pub fn file_with_xattr(&mut self, name: &str, data: &[u8], key: &str, value: &str) -> &mut Self {
        let body = format!(" SCHILY.xattr.{key}={value}\n");
        let mut len = body.len();
        while format!("{len}{body}").len() != len {
            len = format!("{len}{body}").len();
        }
        let record = format!("{len}{body}");
        self.put(EntryType::XHeader, "PaxHeader", "", 0o644, record.as_bytes());
        self.put(EntryType::Regular, name, "", 0o644, data)
    }

    /// A symlink.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.put(EntryType::Symlink, name, target, 0o777, b"")
    }

    /// A hard link to `target` (a path in the layer).
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.put(EntryType::Link, name, target, 0o644, b"")
    }

    /// A character device node.
    pub fn char_device(&mut self, name: &str) -> &mut Self {
        self.put(EntryType::Char, name, "", 0o666, b"")
    }

    /// A whiteout hiding `dir/name` from lower layers.
    pub fn whiteout(&mut self, dir: &str, name: &str) -> &mut Self {
        let path = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
        self.put(EntryType::Regular, &path, "", 0o644, b"")
    }

    /// An opaque-directory marker for `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.put(EntryType::Regular, &format!("{dir}/.wh..wh..opq"), "", 0o644, b"")
    }

    /// The uncompressed tar.
    pub fn tar(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }

    /// A plain-tar layer blob.
    pub fn plain(&mut self) -> LayerBlob {
        let tar = self.tar();
        let diff_id = crate::sha256_digest(&tar);
        LayerBlob { data: tar, media_type: "application/vnd.oci.image.layer.v1.tar".into(), diff_id }
    }

    /// A gzip layer blob.
    pub fn gzip(&mut self) -> LayerBlob {
        let tar = self.tar();
        let diff_id = crate::sha256_digest(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let data = gz.finish().unwrap();
        LayerBlob { data, media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(), diff_id }
    }

    /// A zstd layer blob (compressed by the `zstd` tool).
    pub fn zstd(&mut self) -> LayerBlob {
        let tar = self.tar();
        let diff_id = crate::sha256_digest(&tar);
        let mut child = Command::new("zstd")
            .args(["-q", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn zstd");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&tar).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        LayerBlob {
            data: out.stdout,
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            diff_id,
        }
    }
}
