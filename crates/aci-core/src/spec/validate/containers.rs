//! Per container and init container: image, environment variables, volume mounts.

use std::collections::{HashMap, HashSet};

use super::{workloads, Report};
use crate::spec::group::ContainerGroup;

pub(super) fn check(group: &ContainerGroup, report: &mut Report) {
    let volumes: HashSet<&str> = group.properties.volumes.iter().map(|v| v.name.as_str()).collect();

    for workload in workloads(group) {
        let path = format!("{}.properties", workload.path);
        if workload.image.trim().is_empty() {
            report.add(format!("{path}.image"), "an image is required");
        }

        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, var) in workload.env.iter().enumerate() {
            let at = format!("{path}.environmentVariables[{i}]");
            if var.name.is_empty() || var.name.contains('=') || var.name.contains('\0') {
                report.add(format!("{at}.name"), format!("'{}' is not a valid variable name", var.name));
            }
            if var.value.is_some() && var.secure_value.is_some() {
                report.add(&at, "give either value or secureValue, not both");
            }
            if let Some(first) = names.insert(&var.name, i) {
                report.add(
                    format!("{at}.name"),
                    format!("'{}' is already set by environmentVariables[{first}]", var.name),
                );
            }
        }

        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (i, mount) in workload.mounts.iter().enumerate() {
            let at = format!("{path}.volumeMounts[{i}]");
            if !volumes.contains(mount.name.as_str()) {
                report.add(
                    format!("{at}.name"),
                    format!("no volume named '{}' in properties.volumes", mount.name),
                );
            }
            let mount_path = &mount.mount_path;
            if mount_path.contains(':') {
                report.add(format!("{at}.mountPath"), format!("'{mount_path}' must not contain ':'"));
            }
            if !mount_path.starts_with('/') {
                report.add(format!("{at}.mountPath"), format!("'{mount_path}' must be an absolute path"));
            }
            if let Some(first) = paths.insert(mount_path, i) {
                report.add(
                    format!("{at}.mountPath"),
                    format!("'{mount_path}' is already mounted by volumeMounts[{first}]"),
                );
            }
        }
    }
}
