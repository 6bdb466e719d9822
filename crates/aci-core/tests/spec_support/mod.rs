//! Shared by the `spec_validate*` tests: a valid base group and assertion helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aci_core::spec::{Container, ContainerGroup, ValidationErrors, Volume};

pub const C0: &str = "properties.containers[0]";
pub const P0: &str = "properties.containers[0].properties";

/// A valid group: two containers, an emptyDir volume, port 80 published.
pub fn base() -> ContainerGroup {
    ContainerGroup::builder("demo")
        .container(Container::new("app", "nginx").port(80).volume_mount("data", "/data"))
        .container(Container::new("side", "busybox").cpu(0.5).memory_gb(0.5))
        .volume(Volume::empty_dir("data"))
        .public_port(80)
        .build()
        .unwrap()
}

/// Applies `change` to the base group and returns its violations.
pub fn errors(change: impl FnOnce(&mut ContainerGroup)) -> ValidationErrors {
    let mut group = base();
    change(&mut group);
    group.validate().unwrap_err()
}

/// Asserts that `change` breaks the rule at `path` with a message containing `needle`.
#[track_caller]
pub fn fails_at(path: &str, needle: &str, change: impl FnOnce(&mut ContainerGroup)) {
    let errors = errors(change);
    let hit = errors.violations().iter().any(|v| v.path == path && v.message.contains(needle));
    assert!(hit, "expected `{path}: ...{needle}...` in:\n{errors}");
}
