//! Liveness and readiness probes: one action each, Kubernetes' ranges for the timing.

use super::Report;
use crate::spec::group::ContainerGroup;
use crate::spec::probe::Probe;

pub(super) fn check(group: &ContainerGroup, report: &mut Report) {
    for (i, container) in group.properties.containers.iter().enumerate() {
        let path = format!("properties.containers[{i}].properties");
        if let Some(probe) = &container.properties.liveness_probe {
            check_probe(probe, &format!("{path}.livenessProbe"), true, report);
        }
        if let Some(probe) = &container.properties.readiness_probe {
            check_probe(probe, &format!("{path}.readinessProbe"), false, report);
        }
    }
}

fn check_probe(probe: &Probe, path: &str, liveness: bool, report: &mut Report) {
    let actions = [
        probe.exec.is_some().then_some("exec"),
        probe.http_get.is_some().then_some("httpGet"),
        probe.tcp_socket.is_some().then_some("tcpSocket"),
    ];
    let actions: Vec<&str> = actions.into_iter().flatten().collect();
    match actions.as_slice() {
        [_] => {}
        [] => report.add(path, "a probe needs one of exec, httpGet or tcpSocket"),
        several => report.add(path, format!("a probe takes one action, found {}", several.join(", "))),
    }

    if let Some(exec) = &probe.exec {
        if exec.command.is_empty() {
            report.add(format!("{path}.exec.command"), "the command is empty");
        }
    }
    if let Some(get) = &probe.http_get {
        if get.port == 0 {
            report.add(format!("{path}.httpGet.port"), "must be from 1 to 65535");
        }
        if let Some(p) = &get.path {
            if !p.starts_with('/') {
                report.add(format!("{path}.httpGet.path"), format!("'{p}' must start with '/'"));
            }
        }
        for (i, header) in get.http_headers.iter().enumerate() {
            let bad =
                header.name.is_empty() || !header.name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if bad {
                report.add(
                    format!("{path}.httpGet.httpHeaders[{i}].name"),
                    format!("'{}' is not a valid header name", header.name),
                );
            }
        }
    }
    if let Some(tcp) = &probe.tcp_socket {
        if tcp.port == 0 {
            report.add(format!("{path}.tcpSocket.port"), "must be from 1 to 65535");
        }
    }

    at_least(report, path, "initialDelaySeconds", probe.initial_delay_seconds, 0);
    at_least(report, path, "periodSeconds", probe.period_seconds, 1);
    at_least(report, path, "timeoutSeconds", probe.timeout_seconds, 1);
    at_least(report, path, "failureThreshold", probe.failure_threshold, 1);
    at_least(report, path, "successThreshold", probe.success_threshold, 1);
    if liveness {
        if let Some(n) = probe.success_threshold.filter(|n| *n > 1) {
            report.add(
                format!("{path}.successThreshold"),
                format!("must be 1 for a liveness probe, found {n}"),
            );
        }
    }
}

fn at_least(report: &mut Report, path: &str, field: &str, value: Option<i32>, min: i32) {
    if let Some(v) = value.filter(|v| *v < min) {
        report.add(format!("{path}.{field}"), format!("must be at least {min}, found {v}"));
    }
}
