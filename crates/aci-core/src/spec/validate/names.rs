//! Names, counts, uniqueness, OS type and resource type.

use std::collections::HashMap;

use super::{workloads, Limits, Report};
use crate::spec::group::{ContainerGroup, OsType, RESOURCE_TYPE};

/// Why `name` breaks ACI's naming rule (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, 1 to 63), if it does.
pub(super) fn name_problem(name: &str) -> Option<String> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = (1..=63).contains(&name.len()) && valid_chars && !name.starts_with('-') && !name.ends_with('-');
    (!ok).then(|| {
        format!(
            "'{name}' is not a valid name: use 1 to 63 lowercase letters, digits and '-', \
             not starting or ending with '-'"
        )
    })
}

pub(super) fn check(group: &ContainerGroup, limits: &Limits, report: &mut Report) {
    let props = &group.properties;
    if let Some(problem) = name_problem(&group.name) {
        report.add("name", problem);
    }
    if let Some(kind) = &group.resource_type {
        if !kind.eq_ignore_ascii_case(RESOURCE_TYPE) {
            report.add("type", format!("'{kind}' is not a container group; expected {RESOURCE_TYPE}"));
        }
    }
    if props.os_type == OsType::Windows {
        report.add(
            "properties.osType",
            "Windows container groups are not supported: aci runs Linux containers only",
        );
    }

    let count = props.containers.len();
    if count == 0 {
        report.add("properties.containers", "a container group needs at least one container");
    } else if count > limits.max_containers {
        report.add(
            "properties.containers",
            format!("{count} containers; a group may have at most {}", limits.max_containers),
        );
    }
    let count = props.volumes.len();
    if count > limits.max_volumes {
        report.add(
            "properties.volumes",
            format!("{count} volumes; a group may have at most {}", limits.max_volumes),
        );
    }

    // Containers and init containers share one namespace of names.
    let mut seen: HashMap<&str, String> = HashMap::new();
    for workload in workloads(group) {
        let path = format!("{}.name", workload.path);
        if let Some(problem) = name_problem(workload.name) {
            report.add(&path, problem);
        }
        if let Some(first) = seen.get(workload.name) {
            report.add(&path, format!("the name '{}' is already used by {first}", workload.name));
        } else {
            seen.insert(workload.name, workload.path.clone());
        }
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, volume) in props.volumes.iter().enumerate() {
        let path = format!("properties.volumes[{i}].name");
        if let Some(problem) = name_problem(&volume.name) {
            report.add(&path, problem);
        }
        if let Some(first) = seen.get(volume.name.as_str()) {
            report.add(
                &path,
                format!("the volume name '{}' is already used by properties.volumes[{first}]", volume.name),
            );
        } else {
            seen.insert(&volume.name, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name_problem;

    #[test]
    fn names_follow_acis_rule() {
        for good in ["a", "app-1", "0", &"x".repeat(63)] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in ["", "-a", "a-", "App", "a_b", "a.b", &"x".repeat(64)] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
    }
}
