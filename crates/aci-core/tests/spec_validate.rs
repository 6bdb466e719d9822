//! Host tier: each validation rule has a failing case that names the right field, and every
//! violation is reported at once. Group, names, counts, resources, containers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use aci_core::spec::{
    Container, EnvironmentVariable, Gpu, InitContainer, Limits, OsType, Port, Secret, Volume,
};
use spec_support::{base, errors, fails_at, C0, P0};

#[test]
fn the_base_group_is_valid() {
    base().validate().unwrap();
}

#[test]
fn names() {
    fails_at("name", "not a valid name", |g| g.name = "My_Group".into());
    fails_at("name", "not a valid name", |g| g.name = "-demo".into());
    fails_at("name", "not a valid name", |g| g.name = "x".repeat(64));
    fails_at(&format!("{C0}.name"), "not a valid name", |g| g.properties.containers[0].name = "App".into());
    fails_at("properties.volumes[0].name", "not a valid name", |g| {
        g.properties.volumes[0].name = "data-".into()
    });
    fails_at("properties.containers[1].name", "already used by properties.containers[0]", |g| {
        g.properties.containers[1].name = "app".into();
    });
    fails_at("properties.initContainers[0].name", "already used", |g| {
        g.properties.init_containers.push(InitContainer::new("side", "busybox"));
    });
    fails_at("properties.volumes[1].name", "already used", |g| {
        g.properties.volumes.push(Volume::empty_dir("data"))
    });
    fails_at("type", "not a container group", |g| g.resource_type = Some("Microsoft.Web/sites".into()));
}

#[test]
fn counts() {
    fails_at("properties.containers", "at least one", |g| g.properties.containers.clear());
    fails_at("properties.containers", "at most 60", |g| {
        g.properties.containers =
            (0..61).map(|i| Container::new(format!("c{i}"), "busybox").cpu(0.01).memory_gb(0.1)).collect();
        g.properties.ip_address = None;
        g.properties.volumes.clear();
    });
    fails_at("properties.volumes", "at most 20", |g| {
        g.properties.volumes.extend((0..20).map(|i| Volume::empty_dir(format!("v{i}"))));
    });
}

#[test]
fn windows_is_unsupported() {
    fails_at("properties.osType", "Linux containers only", |g| g.properties.os_type = OsType::Windows);
}

#[test]
fn resources() {
    fails_at(&format!("{P0}.resources.requests.cpu"), "greater than 0", |g| {
        g.properties.containers[0].properties.resources.requests.cpu = 0.0;
    });
    fails_at(&format!("{P0}.resources.requests.memoryInGB"), "greater than 0", |g| {
        g.properties.containers[0].properties.resources.requests.memory_in_gb = -1.0;
    });
    // Group total request: 1.5 CPU, 2 GB.
    fails_at(&format!("{P0}.resources.limits.cpu"), "above the group's total request 1.5", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().cpu_limit(2.0);
    });
    fails_at(&format!("{P0}.resources.limits.memoryInGB"), "above the group's total request 2", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().memory_limit_gb(2.5);
    });
    fails_at(&format!("{P0}.resources.limits.cpu"), "below the request", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().cpu_limit(0.5);
    });
    fails_at(&format!("{P0}.resources.limits.cpu"), "greater than 0", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().cpu_limit(0.0);
    });
    fails_at(&format!("{P0}.resources.requests.gpu"), "not supported", |g| {
        g.properties.containers[0].properties.resources.requests.gpu =
            Some(Gpu { count: 1, sku: "V100".into() });
    });
    fails_at("properties.containers", "request 5 CPU in total; a group may have at most 4", |g| {
        g.properties.containers[1] = g.properties.containers[1].clone().cpu(4.0);
    });
    fails_at("properties.containers", "request 17 GB in total; a group may have at most 16", |g| {
        g.properties.containers[1] = g.properties.containers[1].clone().memory_gb(15.5);
    });
}

#[test]
fn limits_within_the_group_total_are_fine_and_limits_are_configurable() {
    let mut group = base();
    group.properties.containers[0] =
        group.properties.containers[0].clone().cpu_limit(1.5).memory_limit_gb(2.0);
    group.validate().unwrap();

    group.properties.containers[1] = group.properties.containers[1].clone().cpu(6.0).memory_gb(30.0);
    assert!(group.validate().is_err());
    let big = Limits { max_cpu: 8.0, max_memory_in_gb: 32.0, ..Limits::default() };
    group.validate_with(&big).unwrap();
}

#[test]
fn containers_environment_and_mounts() {
    fails_at(&format!("{P0}.image"), "image is required", |g| {
        g.properties.containers[0].properties.image = " ".into()
    });
    fails_at(&format!("{P0}.environmentVariables[0]"), "not both", |g| {
        let mut var = EnvironmentVariable::new("A", "1");
        var.secure_value = Some(Secret::new("2"));
        g.properties.containers[0].properties.environment_variables.push(var);
    });
    fails_at(&format!("{P0}.environmentVariables[1].name"), "already set", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().env("A", "1").env("A", "2");
    });
    fails_at(&format!("{P0}.environmentVariables[0].name"), "not a valid variable name", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().env("A=B", "1");
    });
    fails_at(&format!("{P0}.volumeMounts[0].mountPath"), "must not contain ':'", |g| {
        g.properties.containers[0].properties.volume_mounts[0].mount_path = "/data:ro".into();
    });
    fails_at(&format!("{P0}.volumeMounts[0].mountPath"), "absolute", |g| {
        g.properties.containers[0].properties.volume_mounts[0].mount_path = "data".into();
    });
    fails_at(&format!("{P0}.volumeMounts[1].mountPath"), "already mounted", |g| {
        g.properties.containers[0] = g.properties.containers[0].clone().volume_mount("data", "/data");
    });
    fails_at(&format!("{P0}.volumeMounts[0].name"), "no volume named 'nope'", |g| {
        g.properties.containers[0].properties.volume_mounts[0].name = "nope".into();
    });
    fails_at("properties.initContainers[0].properties.volumeMounts[0].name", "no volume named", |g| {
        g.properties.init_containers.push(InitContainer::new("init", "busybox").volume_mount("other", "/x"));
    });
}

#[test]
fn every_violation_is_reported_with_a_readable_display() {
    let errors = errors(|g| {
        g.name = "Bad".into();
        g.properties.os_type = OsType::Windows;
        g.properties.containers[0].properties.volume_mounts[0].mount_path = "c:/data".into();
        g.properties.ip_address.as_mut().unwrap().ports.push(Port::tcp(22));
    });
    for path in [
        "name",
        "properties.osType",
        "properties.containers[0].properties.volumeMounts[0].mountPath",
        "properties.ipAddress.ports[1].port",
        "properties.ipAddress.ports[1]",
    ] {
        assert!(errors.has_path(path), "{path} missing from:\n{errors}");
    }
    assert!(errors.violations().len() >= 6, "{errors}");
    let text = errors.to_string();
    assert!(
        text.starts_with(&format!("the container group is invalid ({} problems)", errors.violations().len())),
        "{text}"
    );
    assert!(text.contains("\n  - name: 'Bad' is not a valid name"), "{text}");
}
