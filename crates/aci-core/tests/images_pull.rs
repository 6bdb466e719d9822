//! Pulls from a real `docker-registry` on loopback: anonymous and basic auth, busybox built by
//! umoci, warm pulls without HTTP, rootfs disks read back by `fsck.erofs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aci_core::images::{
    ImageError, ImageStore, ImageStoreConfig, ProgressKind, PullPolicy, RegistryCredential, RegistryError,
};
use aci_testkit::{busybox_image, extract_erofs, require_tools, Registry};

const TOOLS: &[&str] =
    &["docker-registry", "skopeo", "umoci", "mkfs.erofs", "fsck.erofs", "htpasswd", "zstd"];

fn store(reg: &Registry, state: &std::path::Path) -> ImageStore {
    let mut config = ImageStoreConfig::new(state);
    config.insecure_registries.push(reg.host());
    ImageStore::open(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_busybox_build_disk_then_warm_hit_without_http() {
    if !require_tools("pull_busybox", TOOLS) {
        return;
    }
    let reg = Registry::start();
    busybox_image(&reg, "tools/busybox:1");
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let mut progress = store.subscribe();
    let reference = format!("{}/tools/busybox:1", reg.host());
    let disk = store.prepare(&reference, &[], PullPolicy::IfNotPresent).await.unwrap();

    let c = &disk.config;
    assert_eq!(c.entrypoint, ["/bin/sh"]);
    assert_eq!(c.cmd, ["-c", "echo hi"]);
    assert!(c.env.contains(&"FOO=bar".to_string()), "{:?}", c.env);
    assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/srv", "1000:1000"));
    assert_eq!(c.exposed_ports, ["80/tcp"]);
    assert_eq!((c.os.as_str(), c.architecture.as_str()), ("linux", "amd64"));

    let out = extract_erofs(&disk.path);
    let root = out.path().join("root");
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap().to_str(), Some("busybox"));
    assert_eq!(std::fs::read_to_string(root.join("etc/motd")).unwrap(), "hello from aci\n");
    assert!(root.join("etc/second").is_file());
    assert!(!root.join("etc/doomed").exists(), "umoci's whiteout was not applied");

    let mut events = Vec::new();
    while let Ok(e) = progress.try_recv() {
        events.push(e);
    }
    let done: Vec<_> = events.iter().filter(|e| e.kind == ProgressKind::Done).collect();
    assert_eq!(done.len(), 3, "config + 2 layers: {events:?}");
    assert!(done.iter().all(|e| e.done == e.total && e.image == reference));

    // Warm: neither prepare nor pull talks to the registry.
    let before = reg.request_count();
    let again = store.prepare(&reference, &[], PullPolicy::IfNotPresent).await.unwrap();
    assert_eq!((again.path, reg.request_count()), (disk.path.clone(), before));

    // By digest, forced to the registry: same image, no blob downloaded again.
    let by_digest = format!("{}/tools/busybox@{}", reg.host(), disk.manifest_digest);
    let blob_gets = reg.requests_matching("/blobs/sha256:");
    let rec = store.pull(&by_digest, &[], PullPolicy::Always).await.unwrap();
    assert_eq!(rec.manifest_digest, disk.manifest_digest);
    assert_eq!(reg.requests_matching("/blobs/sha256:"), blob_gets);
    assert!(reg.requests_matching("\"GET /v2/tools/busybox/manifests/sha256:") >= 1);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].references.contains(&by_digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_success_and_typed_failures() {
    if !require_tools("basic_auth", TOOLS) {
        return;
    }
    let reg = Registry::start_with_auth("alice", "s3cret");
    busybox_image(&reg, "private/app:v1");
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let reference = format!("{}/private/app:v1", reg.host());
    let cred = |password: &str| RegistryCredential {
        server: format!("http://{}/", reg.host()),
        username: "alice".into(),
        password: password.into(),
    };

    for creds in [vec![cred("wrong")], vec![]] {
        let err = store.pull(&reference, &creds, PullPolicy::Always).await.unwrap_err();
        match &err {
            ImageError::Registry(RegistryError::Unauthorized { registry, .. }) => {
                assert_eq!(registry, &reg.host())
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        assert!(err.to_string().contains(&reg.host()), "{err}");
    }
    assert!(store.list().unwrap().is_empty());

    let rec = store.pull(&reference, &[cred("s3cret")], PullPolicy::Always).await.unwrap();
    assert_eq!(rec.layers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_during_a_pull_keeps_what_the_pull_needs() {
    if !require_tools("gc_during_pull", TOOLS) {
        return;
    }
    let reg = Registry::start();
    busybox_image(&reg, "tools/busybox:gc");
    let state = tempfile::tempdir().unwrap();
    let store = store(&reg, state.path());
    let reference = format!("{}/tools/busybox:gc", reg.host());
    let (disk, report) = tokio::join!(store.prepare(&reference, &[], PullPolicy::Always), async {
        tokio::task::yield_now().await;
        store.gc().await
    },);
    let (disk, _report) = (disk.unwrap(), report.unwrap());
    assert!(disk.path.is_file());
    // Whichever ran first, the image is complete afterwards and served without HTTP.
    assert_eq!(store.gc().await.unwrap(), Default::default());
    let before = reg.request_count();
    let again = store.prepare(&reference, &[], PullPolicy::IfNotPresent).await.unwrap();
    assert_eq!((again.path, reg.request_count()), (disk.path, before));
}
