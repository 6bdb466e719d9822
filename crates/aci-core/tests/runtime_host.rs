//! Host tier: the runtime's checks and failures that need no VM: builder errors, one
//! runtime per state directory, invalid specs, and deployments that fail before boot (an
//! unreachable registry, a volume that cannot be prepared) against a real loopback registry, with
//! their state, reason, events and meter recorded and kept on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aci_core::runtime::{EventName, GroupState, Runtime, RuntimeError, Step, StepError};
use aci_core::spec::{Container, ContainerGroup, Volume};

/// Placeholder guest files: these tests never boot (they fail before the boot step).
fn runtime(state: &Path, registry: Option<&str>) -> Result<Runtime, RuntimeError> {
    let guest = state.join("guest");
    std::fs::create_dir_all(&guest).unwrap();
    std::fs::write(guest.join("vmlinux"), b"not booted").unwrap();
    std::fs::write(guest.join("initramfs"), b"not booted").unwrap();
    let mut b = Runtime::builder()
        .state_dir(state.join("state"))
        .guest_kernel(guest.join("vmlinux"))
        .guest_initrd(guest.join("initramfs"));
    if let Some(r) = registry {
        b = b.insecure_registry(r);
    }
    b.build()
}

#[test]
fn the_builder_names_what_is_missing() {
    let err = Runtime::builder().guest_kernel("/k").guest_initrd("/i").build().unwrap_err();
    assert!(err.to_string().contains("state_dir"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = Runtime::builder()
        .state_dir(dir.path())
        .guest_kernel(dir.path().join("no-vmlinux"))
        .guest_initrd(dir.path().join("no-initrd"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no-vmlinux"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runtime_per_state_dir_and_invalid_groups_leave_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None).unwrap();
    assert!(matches!(runtime(dir.path(), None), Err(RuntimeError::Locked { .. })));
    let bad =
        ContainerGroup::builder("Bad_Name").container(Container::new("app", "busybox")).build_unchecked();
    let err = rt.create(bad).await.unwrap_err();
    assert!(matches!(&err, RuntimeError::Invalid { name, .. } if name == "Bad_Name"), "{err:?}");
    assert!(rt.list().is_empty());
    assert!(matches!(rt.get("nope"), Err(RuntimeError::NotFound(_))));
    assert!(matches!(rt.stop("nope").await, Err(RuntimeError::NotFound(_))));
    drop(rt);
    runtime(dir.path(), None).expect("the lock is released with the runtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_fails_the_pull_step_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused.
    let rt = runtime(dir.path(), Some("127.0.0.1:1")).unwrap();
    let group = ContainerGroup::builder("unpullable")
        .container(Container::new("app", "127.0.0.1:1/nothing:1").cpu(1.0).memory_gb(1.0))
        .build()
        .unwrap();
    let err = rt.create(group).await.unwrap_err();
    match &err {
        RuntimeError::Deploy { step: Step::PullImages, source, .. } => {
            assert!(
                matches!(**source, StepError::Image { ref image, .. } if image == "127.0.0.1:1/nothing:1")
            )
        }
        other => panic!("{other:?}"),
    }
    let s = rt.get("unpullable").unwrap();
    assert_eq!(s.state, GroupState::Failed);
    assert!(s.reason.as_deref().unwrap().contains("pull images"), "{:?}", s.reason);
    let app = s.container("app").unwrap();
    assert!(app.has_event(EventName::Pulling) && app.has_event(EventName::Failed), "{app:?}");
    // The meter ran from the pull to the failure.
    let u = s.current_usage().unwrap();
    assert!(u.meter.stopped_at_ms.is_some() && u.meter.stopped_at_ms >= Some(u.meter.started_at_ms));
    assert!(matches!(
        rt.exec("unpullable", "app", Default::default()).await,
        Err(RuntimeError::NotRunning(_))
    ));
    drop(rt);
    // Kept on disk.
    let again = runtime(dir.path(), Some("127.0.0.1:1")).unwrap();
    let s = again.get("unpullable").unwrap();
    assert_eq!((s.state, s.deployment), (GroupState::Failed, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_cannot_be_prepared_fails_the_volumes_step() {
    if !aci_testkit::require_tools("volumes_refused", &["docker-registry", "skopeo", "umoci", "mkfs.erofs"]) {
        return;
    }
    let reg = aci_testkit::Registry::start();
    aci_testkit::busybox_image(&reg, "busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), Some(&reg.host())).unwrap();
    let group = ContainerGroup::builder("with-volume")
        .container(
            Container::new("app", format!("{}/busybox:1", reg.host()))
                .volume_mount("scratch", "/scratch")
                .cpu(1.0)
                .memory_gb(1.0),
        )
        .volume(Volume::host_path("scratch", dir.path().join("missing").to_str().unwrap()))
        .build()
        .unwrap();
    let err = rt.create(group).await.unwrap_err();
    assert!(matches!(&err, RuntimeError::Deploy { step: Step::Volumes, .. }), "{err:?}");
    let s = rt.get("with-volume").unwrap();
    assert!(s.container("app").unwrap().has_event(EventName::Pulled));
    assert!(s.reason.as_deref().unwrap().contains("scratch"), "{:?}", s.reason);
    assert!(!dir.path().join("volumes").join("with-volume.1").exists());
}
