//! Host tier: probe handling that needs no VM. A probe the guest agent cannot run
//! (`httpGet` over https) fails the deployment at the validate step, before anything is
//! pulled or billed, naming the container and the probe; `wait_ready` on a group that is
//! not running says so at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aci_core::runtime::{GroupState, Runtime, RuntimeError, Step, StepError};
use aci_core::spec::{Container, ContainerGroup, Probe, Scheme};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_probe_is_refused_before_the_pull_naming_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let guest = dir.path().join("guest");
    std::fs::create_dir_all(&guest).unwrap();
    std::fs::write(guest.join("vmlinux"), b"never booted").unwrap();
    std::fs::write(guest.join("initramfs"), b"never booted").unwrap();
    let rt = Runtime::builder()
        .state_dir(dir.path().join("state"))
        .guest_kernel(guest.join("vmlinux"))
        .guest_initrd(guest.join("initramfs"))
        .build()
        .unwrap();
    let mut https = Probe::http_get("/healthz", 8443);
    https.http_get.as_mut().unwrap().scheme = Some(Scheme::Https);
    // The image is never pulled: nothing listens at this registry.
    let group = ContainerGroup::builder("tls")
        .container(Container::new("plain", "127.0.0.1:9/busybox:1").cpu(0.5).memory_gb(0.25))
        .container(
            Container::new("web", "127.0.0.1:9/busybox:1").cpu(0.5).memory_gb(0.25).liveness_probe(https),
        )
        .build()
        .unwrap();

    let err = rt.create(group).await.unwrap_err();
    let RuntimeError::Deploy { step, source, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*step, Step::Validate);
    let StepError::Probe(probe) = source.as_ref() else { panic!("{source:?}") };
    assert_eq!((probe.container.as_str(), probe.field), ("web", "livenessProbe"));
    let chain = format!("{}: {}", source, std::error::Error::source(probe).unwrap());
    assert!(chain.contains("scheme https are not supported"), "{chain}");

    let s = rt.get("tls").unwrap();
    assert_eq!(s.state, GroupState::Failed);
    assert!(s.reason.as_deref().unwrap().contains("\"web\": livenessProbe"), "{:?}", s.reason);
    assert!(s.usage.is_empty(), "nothing was billed: the meter starts with the pull");

    let started = Instant::now();
    let err = rt.wait_ready("tls", Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(&err, RuntimeError::NotRunning(name) if name == "tls"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "an ended group is not waited for");
    assert!(matches!(rt.wait_ready("nope", Duration::from_secs(1)).await, Err(RuntimeError::NotFound(_))));
}
