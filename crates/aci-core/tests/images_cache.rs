//! Crafted images pushed to a real registry: digest mismatch, index platform selection,
//! concurrent pulls, zstd and hostile layers, interrupted pulls, list/remove/gc.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aci_core::images::{
    BlobError, ImageError, ImageStore, ImageStoreConfig, Platform, ProgressKind, PullPolicy, RegistryError,
};
use aci_storage::rootfs::WarningKind;
use aci_testkit::{extract_erofs, require_tools, Descriptor, OciLayout, PlatformSpec, Registry, TarLayer};
use serde_json::json;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "mkfs.erofs", "fsck.erofs", "zstd"];

fn store_with(reg: &Registry, state: &std::path::Path, platform: Platform) -> ImageStore {
    let mut config = ImageStoreConfig::new(state);
    config.insecure_registries.push(reg.host());
    config.platform = platform;
    ImageStore::open(config).unwrap()
}

fn store(reg: &Registry, state: &std::path::Path) -> ImageStore {
    store_with(reg, state, Platform::default())
}

/// Pushes a one-platform image made of `layers` as `repo:tag`; returns the layer digests.
fn push(reg: &Registry, dest: &str, layers: Vec<aci_testkit::LayerBlob>) -> Vec<String> {
    let mut layout = OciLayout::new();
    let digests = layers.iter().map(|l| aci_testkit::sha256_digest(&l.data)).collect();
    let m = layout.add_image(json!({"Cmd": ["/app"]}), &layers, &PlatformSpec::new("linux", "amd64"));
    layout.tag("t", &m);
    reg.push_oci(layout.path(), "t", dest);
    digests
}

/// An index of two one-layer images with `config`, for linux/arm64 then linux/amd64 (the
/// file `arch` holds the architecture), tagged `multi`: the layout, the (manifest,
/// platform) entries in that order, and the index.
fn two_arch_layout(config: serde_json::Value) -> (OciLayout, Vec<(Descriptor, PlatformSpec)>, Descriptor) {
    let mut layout = OciLayout::new();
    let mut entries = Vec::new();
    for arch in ["arm64", "amd64"] {
        let p = PlatformSpec::new("linux", arch);
        let layer = TarLayer::new().file("arch", arch.as_bytes(), 0o644).gzip();
        entries.push((layout.add_image(config.clone(), &[layer], &p), p));
    }
    let index = layout.add_index(&entries);
    layout.tag("multi", &index);
    (layout, entries, index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_blob_is_a_digest_mismatch_and_nothing_is_kept() {
    if !require_tools("digest_mismatch", TOOLS) {
        return;
    }
    let reg = Registry::start();
    let digests = push(&reg, "bad/img:1", vec![TarLayer::new().file("f", &[7u8; 4096], 0o644).gzip()]);
    let data_path = reg.blob_data_path(&digests[0]);
    let mut data = std::fs::read(&data_path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&data_path, data).unwrap();

    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let err = store.pull(&format!("{}/bad/img:1", reg.host()), &[], PullPolicy::Always).await.unwrap_err();
    match &err {
        ImageError::Blob(BlobError::DigestMismatch { digest, actual }) => {
            assert_eq!(digest, &digests[0]);
            assert_ne!(actual, &digests[0]);
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(&digests[0]));
    let blob = state.path().join("blobs/sha256").join(digests[0].trim_start_matches("sha256:"));
    assert!(!blob.exists());
    let partial = format!("{}.partial", digests[0].trim_start_matches("sha256:"));
    assert!(!state.path().join("tmp").join(partial).exists());
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_selects_the_platform() {
    if !require_tools("index_platform", TOOLS) {
        return;
    }
    let reg = Registry::start();
    let (layout, entries, index) = two_arch_layout(json!({}));
    reg.push_oci(layout.path(), "multi", "multi/arch:1");
    let reference = format!("{}/multi/arch:1", reg.host());

    for (arch, wanted) in [("amd64", &entries[1].0), ("arm64", &entries[0].0)] {
        let state = tempfile::tempdir().unwrap();
        let platform = Platform { os: "linux".into(), architecture: arch.into() };
        let store = store_with(&reg, state.path(), platform);
        let disk = store.prepare(&reference, &[], PullPolicy::Always).await.unwrap();
        assert_eq!(disk.manifest_digest, wanted.digest);
        assert_eq!(disk.config.architecture, arch);
        let out = extract_erofs(&disk.path);
        assert_eq!(std::fs::read_to_string(out.path().join("root/arch")).unwrap(), arch);
        let rec = &store.list().unwrap()[0];
        assert_eq!(rec.index_digest.as_deref(), Some(index.digest.as_str()));
    }
    let state = tempfile::tempdir().unwrap();
    let s390 = Platform { os: "linux".into(), architecture: "s390x".into() };
    let err = store_with(&reg, state.path(), s390).pull(&reference, &[], PullPolicy::Always).await;
    assert!(matches!(err, Err(ImageError::Registry(RegistryError::NoMatchingPlatform { .. }))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_schema2_manifest_list() {
    if !require_tools("docker_schema2", TOOLS) {
        return;
    }
    let reg = Registry::start();
    let (layout, _, _) = two_arch_layout(json!({"Env": ["A=1"]}));
    reg.push_oci_as_docker(layout.path(), "multi", "docker/list:1");
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let reference = format!("{}/docker/list:1", reg.host());
    let disk = store.prepare(&reference, &[], PullPolicy::Always).await.unwrap();
    let rec = &store.list().unwrap()[0];
    assert!(rec.index_digest.is_some());
    let docker_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    assert!(rec.layers.iter().all(|l| l.media_type == docker_gzip), "{rec:?}");
    assert_eq!(
        (disk.config.architecture.as_str(), disk.config.env.as_slice()),
        ("amd64", &["A=1".to_string()][..])
    );
    let out = extract_erofs(&disk.path);
    assert_eq!(std::fs::read_to_string(out.path().join("root/arch")).unwrap(), "amd64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_download_each_blob_once() {
    if !require_tools("concurrent_pulls", TOOLS) {
        return;
    }
    let reg = Registry::start();
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let digests = push(
        &reg,
        "conc/img:1",
        vec![
            TarLayer::new().file("a", &big, 0o644).gzip(),
            TarLayer::new().file("b", &big[..1_000_000], 0o644).zstd(),
            TarLayer::new().file("c", b"plain", 0o644).plain(),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let reference = format!("{}/conc/img:1", reg.host());
    let (a, b, c) = tokio::join!(
        store.prepare(&reference, &[], PullPolicy::Always),
        store.prepare(&reference, &[], PullPolicy::Always),
        store.pull(&reference, &[], PullPolicy::Always),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.path, b.path);
    assert_eq!(c.unwrap().manifest_digest, a.manifest_digest);
    for d in &digests {
        assert_eq!(reg.requests_matching(&format!("\"GET /v2/conc/img/blobs/{d}")), 1, "{d}");
    }
    let out = extract_erofs(&a.path);
    assert_eq!(std::fs::read(out.path().join("root/a")).unwrap(), big);
    assert_eq!(std::fs::read(out.path().join("root/b")).unwrap(), &big[..1_000_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_image_is_contained() {
    if !require_tools("hostile_image", TOOLS) {
        return;
    }
    let reg = Registry::start();
    push(
        &reg,
        "evil/img:1",
        vec![
            TarLayer::new()
                .file("../../../../tmp/aci-escape", b"x", 0o644)
                .symlink("etc", "/../../../../../host-etc")
                .char_device("dev/mem")
                .gzip(),
            TarLayer::new().file("etc/aci-hostile-canary", b"inside", 0o644).plain(),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let disk = store.prepare(&format!("{}/evil/img:1", reg.host()), &[], PullPolicy::Always).await.unwrap();
    assert!(!std::path::Path::new("/etc/aci-hostile-canary").exists());
    assert!(!std::path::Path::new("/tmp/aci-escape").exists());
    let kinds: Vec<_> = disk.warnings.iter().map(|w| w.kind.clone()).collect();
    assert!(kinds.contains(&WarningKind::ParentComponent) && kinds.contains(&WarningKind::DeviceSkipped));
    let out = extract_erofs(&disk.path);
    assert_eq!(std::fs::read(out.path().join("root/host-etc/aci-hostile-canary")).unwrap(), b"inside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_pull_then_list_remove_gc() {
    if !require_tools("cache_management", TOOLS) {
        return;
    }
    let reg = Registry::start();
    let big: Vec<u8> = (0..24_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let big_layer = TarLayer::new().file("big", &big, 0o644).plain();
    let big_layer_size = big_layer.data.len() as u64;
    let layer_digest = push(&reg, "cache/big:1", vec![big_layer]).remove(0);
    let layer_hex = layer_digest.trim_start_matches("sha256:");
    push(&reg, "cache/small:1", vec![TarLayer::new().file("s", b"small", 0o644).gzip()]);
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let (big_ref, small_ref) =
        (format!("{}/cache/big:1", reg.host()), format!("{}/cache/small:1", reg.host()));

    // Kill a pull mid-download: no blob becomes visible, the partial download is kept.
    let mut progress = store.subscribe();
    let task = tokio::spawn({
        let (store, r) = (store.clone(), big_ref.clone());
        async move { store.pull(&r, &[], PullPolicy::Always).await }
    });
    loop {
        let e = progress.recv().await.unwrap();
        if e.kind == ProgressKind::Downloading {
            break;
        }
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(store.list().unwrap().is_empty());
    let partial = state.path().join("tmp").join(format!("{layer_hex}.partial"));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept <= big_layer_size, "partial kept: {kept}");
    // Loopback may finish the blob before the abort lands: cut it to a prefix, as a kill
    // at that point would have left it.
    let kept = kept.min(big_layer_size / 2);
    let file = std::fs::OpenOptions::new().write(true).open(&partial).unwrap();
    file.set_len(kept).unwrap();

    // The next pull resumes with a range request for the rest only.
    store.prepare(&big_ref, &[], PullPolicy::IfNotPresent).await.unwrap();
    let needle = format!("GET /v2/cache/big/blobs/sha256:{layer_hex}");
    let log = reg.log();
    let gets: Vec<&str> = log.lines().filter(|l| l.contains(&needle)).collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let sent = gets[1].split("\" 206 ").nth(1).and_then(|r| r.split(' ').next());
    assert_eq!(sent, Some((big_layer_size - kept).to_string().as_str()), "{gets:?}");
    assert!(!partial.exists());
    let small = store.prepare(&small_ref, &[], PullPolicy::IfNotPresent).await.unwrap();
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|i| i.disk.is_some()));

    assert!(store.remove(&big_ref).await.unwrap());
    assert!(!store.remove(&big_ref).await.unwrap());
    assert_eq!(store.list().unwrap().len(), 1);
    let report = store.gc().await.unwrap();
    assert_eq!(report.blobs_removed, 3, "{report:?}"); // manifest, config, layer
    assert!(report.bytes_freed > 24_000_000, "{report:?}");
    assert_eq!(report.temp_files_removed, 0, "{report:?}");
    assert_eq!(store.gc().await.unwrap(), Default::default());

    // The kept image is still warm.
    let before = reg.request_count();
    let again = store.prepare(&small_ref, &[], PullPolicy::IfNotPresent).await.unwrap();
    assert_eq!((again.path, reg.request_count()), (small.path, before));
}
