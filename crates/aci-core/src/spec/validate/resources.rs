//! CPU, memory and GPU: positive requests, limits within the group total, group maximums.

use super::{Limits, Report};
use crate::spec::group::ContainerGroup;

pub(super) fn check(group: &ContainerGroup, limits: &Limits, report: &mut Report) {
    let total_cpu = group.total_cpu();
    let total_memory = group.total_memory_in_gb();

    for (i, container) in group.properties.containers.iter().enumerate() {
        let path = format!("properties.containers[{i}].properties.resources");
        let resources = &container.properties.resources;
        let requests = &resources.requests;
        positive(report, &format!("{path}.requests.cpu"), requests.cpu);
        positive(report, &format!("{path}.requests.memoryInGB"), requests.memory_in_gb);
        if requests.gpu.is_some() {
            report.add(format!("{path}.requests.gpu"), GPU_UNSUPPORTED);
        }
        let Some(limit) = &resources.limits else {
            continue;
        };
        if limit.gpu.is_some() {
            report.add(format!("{path}.limits.gpu"), GPU_UNSUPPORTED);
        }
        if let Some(cpu) = limit.cpu {
            let at = format!("{path}.limits.cpu");
            if positive(report, &at, cpu) {
                within(report, &at, cpu, requests.cpu, total_cpu, "CPU");
            }
        }
        if let Some(memory) = limit.memory_in_gb {
            let at = format!("{path}.limits.memoryInGB");
            if positive(report, &at, memory) {
                within(report, &at, memory, requests.memory_in_gb, total_memory, "GB");
            }
        }
    }

    if total_cpu > limits.max_cpu {
        report.add(
            "properties.containers",
            format!(
                "the containers request {total_cpu} CPU in total; a group may have at most {}",
                limits.max_cpu
            ),
        );
    }
    if total_memory > limits.max_memory_in_gb {
        report.add(
            "properties.containers",
            format!(
                "the containers request {total_memory} GB in total; a group may have at most {}",
                limits.max_memory_in_gb
            ),
        );
    }
}

const GPU_UNSUPPORTED: &str = "GPU resources are not supported by aci";

/// Reports `value` unless it is a finite number above zero; returns whether it is.
fn positive(report: &mut Report, path: &str, value: f64) -> bool {
    let ok = value.is_finite() && value > 0.0;
    if !ok {
        report.add(path, format!("must be greater than 0, found {value}"));
    }
    ok
}

/// Reports a limit below its request or above the group's total request.
fn within(report: &mut Report, path: &str, limit: f64, request: f64, total: f64, unit: &str) {
    if limit < request {
        report.add(path, format!("the limit {limit} {unit} is below the request {request} {unit}"));
    }
    if limit > total {
        report
            .add(path, format!("the limit {limit} {unit} is above the group's total request {total} {unit}"));
    }
}
