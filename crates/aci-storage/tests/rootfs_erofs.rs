//! Building an erofs image from layers with the real `mkfs.erofs`, read back by `fsck.erofs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aci_storage::rootfs::{build_erofs_image, BuildOptions, ErofsCompression, LayerSource};
use aci_testkit::{extract_erofs, require_tools, TarLayer};

#[test]
fn erofs_image_holds_the_merged_tree() {
    if !require_tools("erofs_image_holds_the_merged_tree", &["mkfs.erofs", "fsck.erofs", "zstd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let blobs = [
        TarLayer::new().file("etc/motd", b"hi", 0o644).file("etc/gone", b"x", 0o644).gzip(),
        TarLayer::new().whiteout("etc", "gone").symlink("bin/sh", "busybox").zstd(),
    ];
    let layers: Vec<LayerSource> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let path = dir.path().join(format!("l{i}"));
            std::fs::write(&path, &b.data).unwrap();
            LayerSource { path, media_type: b.media_type.clone(), name: format!("l{i}") }
        })
        .collect();
    for compression in [ErofsCompression::None, ErofsCompression::Lz4] {
        let dest = dir.path().join(format!("out/{compression:?}.erofs"));
        let options = BuildOptions { compression, ..BuildOptions::default() };
        let warnings = build_erofs_image(&layers, &dir.path().join("work"), &dest, &options).unwrap();
        assert!(warnings.is_empty());
        let out = extract_erofs(&dest);
        let root = out.path().join("root");
        assert_eq!(std::fs::read(root.join("etc/motd")).unwrap(), b"hi");
        let mtime = std::fs::metadata(root.join("etc/motd")).unwrap().modified().unwrap();
        let secs = mtime.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_700_000_000, "the layer's mtime is kept");
        assert!(!root.join("etc/gone").exists());
        assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap().to_str(), Some("busybox"));
        // The scratch tree is gone; only the image is left.
        assert_eq!(std::fs::read_dir(dir.path().join("work")).unwrap().count(), 0);
    }
}
