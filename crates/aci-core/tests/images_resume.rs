//! Resuming downloads from partial files a killed pull left, against a real registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aci_core::images::{BlobError, ImageError, ImageStore, ImageStoreConfig, PullPolicy};
use aci_testkit::{require_tools, OciLayout, PlatformSpec, Registry, TarLayer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_files_are_resumed_or_rejected() {
    if !require_tools("resume", &["docker-registry", "skopeo", "zstd"]) {
        return;
    }
    let reg = Registry::start();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(40_503) >> 5) as u8).collect();
    let layer = TarLayer::new().file("data", &data, 0o644).zstd();
    let mut layout = OciLayout::new();
    let m = layout.add_image(json!({}), std::slice::from_ref(&layer), &PlatformSpec::new("linux", "amd64"));
    layout.tag("t", &m);
    reg.push_oci(layout.path(), "t", "resume/img:1");
    let digest = aci_testkit::sha256_digest(&layer.data);
    let hex = digest.trim_start_matches("sha256:").to_string();
    let reference = format!("{}/resume/img:1", reg.host());
    let gets = || reg.requests_matching(&format!("\"GET /v2/resume/img/blobs/{digest}"));

    let state = tempfile::tempdir().unwrap();
    let mut config = ImageStoreConfig::new(state.path());
    config.insecure_registries.push(reg.host());
    let store = ImageStore::open(config).unwrap();
    let partial = state.path().join("tmp").join(format!("{hex}.partial"));

    // Complete but uncommitted (killed between the last byte and the rename): no request.
    std::fs::write(&partial, &layer.data).unwrap();
    store.pull(&reference, &[], PullPolicy::Always).await.unwrap();
    assert_eq!(gets(), 0);
    assert!(store.remove(&reference).await.unwrap());
    store.gc().await.unwrap();

    // Complete length, wrong bytes: a digest mismatch that discards the partial file...
    let mut bad = layer.data.clone();
    bad[10] ^= 1;
    std::fs::write(&partial, &bad).unwrap();
    let err = store.pull(&reference, &[], PullPolicy::Always).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::Blob(BlobError::DigestMismatch { digest: d, .. }) if *d == digest),
        "{err:?}"
    );
    assert!(!partial.exists());
    // ...so the next pull starts over and succeeds.
    store.pull(&reference, &[], PullPolicy::Always).await.unwrap();
    assert_eq!(gets(), 1);
    assert!(reg.log().contains(&format!("{digest} HTTP/1.1\" 206 {}", layer.data.len())));
}
