//! A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs.
//!
//! Entries are written in order with root ownership and zero timestamps (reproducible
//! output); device nodes need no privileges to create, unlike `mknod` in a staging tree.
//!
//! ```
//! let mut archive = aci_storage::initramfs::Archive::new();
//! archive.dir("/dev", 0o755);
//! archive.char_dev("/dev/console", 0o600, 5, 1);
//! archive.file("/init", 0o755, b"#!/bin/sh\n");
//! let bytes = archive.finish();
//! assert!(bytes.starts_with(b"070701"));
//! ```

use std::io::{self, Write};

/// Builds a newc archive in memory; entries are added in order.
#[derive(Debug)]
pub struct Archive {
    out: Vec<u8>,
    ino: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self { out: Vec::new(), ino: 1 }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) {
        self.entry(path, S_IFDIR | mode, 0, &[]);
    }

    /// Adds a regular file with the given contents.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, S_IFREG | mode, 0, data);
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | mode, (major << 8) | minor, &[]);
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 0, &[]);
        self.out
    }

    /// Ends the archive and writes it gzip-compressed to `w`.
    pub fn finish_gzip(self, w: impl Write) -> io::Result<()> {
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
        gz.write_all(&self.finish())?;
        gz.finish()?;
        Ok(())
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: u32, data: &[u8]) {
        let name = path.trim_start_matches('/');
        let ino = self.ino;
        self.ino += 1;
        let (rmaj, rmin) = (rdev >> 8, rdev & 0xff);
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
             {dmaj:08x}{dmin:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            nlink = if mode & S_IFDIR != 0 { 2 } else { 1 },
            mtime = 0,
            size = data.len(),
            dmaj = 0,
            dmin = 0,
            namesize = name.len() + 1,
            check = 0,
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_tool_lists_what_we_wrote() {
        let mut a = Archive::new();
        a.dir("/dev", 0o755);
        a.char_dev("/dev/console", 0o600, 5, 1);
        a.file("/init", 0o755, b"#!/bin/sh\n");
        let bytes = a.finish();
        assert_eq!(bytes.len() % 4, 0);
        if !aci_testkit::require_tools("cpio_tool_lists_what_we_wrote", &["cpio"]) {
            return;
        }
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cpio is installed by `cargo xtask setup`");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{listing}");
        assert!(listing.contains("dev/console"), "{listing}");
        assert!(
            listing.lines().any(|l| l.starts_with("crw") && l.contains("5,") && l.contains("dev/console")),
            "{listing}"
        );
        assert!(listing.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("init")), "{listing}");
    }
}
