//! Layer unpacking against real tars: whiteouts, links, modes, compression, and hostile
//! layers that must not write outside the target directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aci_storage::rootfs::{
    unpack_layers, DevicePolicy, LayerSource, RootfsError, SetuidPolicy, UnpackPolicy, WarningKind,
};
use aci_testkit::{LayerBlob, TarLayer};

struct Scene {
    base: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("root")).unwrap();
        std::fs::create_dir(base.path().join("outside")).unwrap();
        std::fs::write(base.path().join("outside/keep"), "host file").unwrap();
        Self { base }
    }

    fn root(&self) -> PathBuf {
        self.base.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.base.path().join("outside")
    }

    fn layers(&self, blobs: Vec<LayerBlob>) -> Vec<LayerSource> {
        blobs
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let path = self.base.path().join(format!("layer{i}"));
                std::fs::write(&path, &b.data).unwrap();
                LayerSource { path, media_type: b.media_type, name: format!("layer{i}") }
            })
            .collect()
    }

    /// Everything under the base dir except the root, with contents.
    fn outside_snapshot(&self) -> BTreeSet<(PathBuf, Vec<u8>)> {
        let mut out = BTreeSet::new();
        walk(self.base.path(), &self.root(), &mut out);
        out
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut BTreeSet<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let is_layer = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("layer"));
        if p == skip || is_layer {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            walk(&p, skip, out);
        }
        let data = if meta.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
        out.insert((p, data));
    }
}

#[test]
fn whiteouts_links_modes_and_compressions() {
    let s = Scene::new();
    let l1 = TarLayer::new()
        .dir("a")
        .file("a/x", b"x", 0o644)
        .file("a/y", b"y", 0o640)
        .dir("b")
        .file("b/z", b"z", 0o644)
        .file("c", b"c", 0o755)
        .file_owned("owned", b"o", 1000, 2000)
        .file("f", b"shared inode", 0o600)
        .hardlink("g", "f")
        .symlink("s", "f")
        .file_with_xattr("xa", b"attr", "user.aci", "yes")
        .gzip();
    let l2 = TarLayer::new()
        .whiteout("a", "x")
        .whiteout("", "c")
        .dir("b")
        .opaque("b")
        .file("b/new", b"new", 0o644)
        .zstd();
    let l3 = TarLayer::new().file("plain", b"uncompressed", 0o644).plain();
    let warnings = unpack_layers(&s.layers(vec![l1, l2, l3]), &s.root(), &UnpackPolicy::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let r = s.root();
    assert!(!r.join("a/x").exists() && r.join("a/y").exists());
    assert!(!r.join("c").exists());
    assert!(!r.join("b/z").exists());
    assert_eq!(std::fs::read(r.join("b/new")).unwrap(), b"new");
    assert_eq!(std::fs::read(r.join("plain")).unwrap(), b"uncompressed");
    let mode = |p: &str| std::fs::symlink_metadata(r.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode("a/y"), mode("f")), (0o640, 0o600));
    let f = std::fs::metadata(r.join("f")).unwrap();
    assert_eq!(f.ino(), std::fs::metadata(r.join("g")).unwrap().ino());
    assert_eq!(std::fs::read_link(r.join("s")).unwrap(), Path::new("f"));
    assert_eq!(get_xattr(&r.join("xa"), "user.aci").as_deref(), Some(&b"yes"[..]));
    if is_root() {
        let o = std::fs::metadata(r.join("owned")).unwrap();
        assert_eq!((o.uid(), o.gid()), (1000, 2000));
    }
}

fn get_xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let k = std::ffi::CString::new(key).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let n = unsafe { libc::getxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(usize::try_from(n).ok()?);
    Some(buf)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[test]
fn hostile_layers_stay_inside_the_root() {
    let s = Scene::new();
    let before = s.outside_snapshot();
    let outside = s.outside().display().to_string();
    let l1 = TarLayer::new()
        .file("../escape-dotdot", b"bad", 0o644)
        .file("a/../../escape-mid", b"bad", 0o644)
        .file("/abs-file", b"made relative", 0o644)
        .symlink("to-root", "/")
        .symlink("to-up", "../../..")
        .symlink("to-host", &outside)
        .symlink("victim", &format!("{outside}/keep"))
        .char_device("dev-null")
        .hardlink("hl-up", "../outside/keep")
        .hardlink("hl-abs", &format!("{outside}/keep"))
        .gzip();
    let l2 = TarLayer::new()
        .file("to-root/through-root", b"contained", 0o644)
        .file("to-up/through-up", b"contained", 0o644)
        .file("to-host/pwned", b"contained", 0o644)
        .file("to-host/keep", b"overwrite attempt", 0o644)
        .file("victim", b"replaces the symlink", 0o644)
        .whiteout("to-host", "keep")
        .whiteout("", "..")
        .plain();
    let warnings = unpack_layers(&s.layers(vec![l1, l2]), &s.root(), &UnpackPolicy::default()).unwrap();
    let after = s.outside_snapshot();
    let changed: Vec<_> = after.symmetric_difference(&before).map(|(p, _)| p).collect();
    assert!(changed.is_empty(), "changed outside the root: {changed:?}");
    let r = s.root();
    assert_eq!(std::fs::read(r.join("abs-file")).unwrap(), b"made relative");
    assert_eq!(std::fs::read(r.join("through-root")).unwrap(), b"contained");
    assert_eq!(std::fs::read(r.join("through-up")).unwrap(), b"contained");
    let inner_host = r.join(outside.trim_start_matches('/'));
    assert_eq!(std::fs::read(inner_host.join("pwned")).unwrap(), b"contained");
    assert!(!inner_host.join("keep").exists(), "whiteout through the symlink acts inside");
    assert!(std::fs::symlink_metadata(r.join("victim")).unwrap().is_file());
    assert!(!r.join("dev-null").exists() && !r.join("hl-up").exists() && !r.join("hl-abs").exists());
    let kinds: Vec<&WarningKind> = warnings.iter().map(|w| &w.kind).collect();
    assert_eq!(kinds.iter().filter(|k| ***k == WarningKind::ParentComponent).count(), 3);
    assert!(kinds.contains(&&WarningKind::AbsolutePath));
    assert!(kinds.contains(&&WarningKind::DeviceSkipped));
    assert_eq!(kinds.iter().filter(|k| matches!(k, WarningKind::BadHardlink(_))).count(), 2);
    assert!(warnings.iter().all(|w| w.to_string().contains(&w.layer)));
}

#[test]
fn policies_reject_devices_and_setuid() {
    let s = Scene::new();
    let layers = s.layers(vec![
        TarLayer::new().char_device("dev/kmsg").plain(),
        TarLayer::new().file("bin/su", b"su", 0o4755).plain(),
    ]);
    let reject = UnpackPolicy { devices: DevicePolicy::Reject, setuid: SetuidPolicy::Reject };
    let err = unpack_layers(&layers[..1], &s.root(), &reject).unwrap_err();
    assert!(matches!(&err, RootfsError::Rejected { path, .. } if path == "dev/kmsg"), "{err}");
    let err = unpack_layers(&layers[1..], &s.root(), &reject).unwrap_err();
    assert!(err.to_string().contains("bin/su") && err.to_string().contains("setuid"), "{err}");
    let strip = UnpackPolicy { setuid: SetuidPolicy::Strip, ..UnpackPolicy::default() };
    let warnings = unpack_layers(&layers[1..], &s.root(), &strip).unwrap();
    assert_eq!(warnings[0].kind, WarningKind::SetuidStripped);
    let mode = std::fs::metadata(s.root().join("bin/su")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755);
    let keep = unpack_layers(&layers[1..], &s.root(), &UnpackPolicy::default()).unwrap();
    assert!(keep.is_empty());
    let mode = std::fs::metadata(s.root().join("bin/su")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o4755);
}
