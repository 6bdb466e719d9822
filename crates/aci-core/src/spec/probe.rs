//! `livenessProbe` / `readinessProbe`: how the runtime checks a container's health.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::serde_util::{self, ci_enum};

/// A liveness or readiness probe: one action (`exec`, `httpGet`, or the aci extension
/// `tcpSocket`) and its timing. Timing fields left out take Kubernetes' defaults, see
/// [`Probe::timing`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// Run a command in the container; exit code 0 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET; a status from 200 to 399 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// **aci extension, not in ACI**: a TCP connect; an accepted connection is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Seconds after the container starts before the first probe (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes (default 10, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub period_seconds: Option<i32>,
    /// Consecutive failures that make the container unhealthy/not ready (default 3, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub failure_threshold: Option<i32>,
    /// Consecutive successes that make it healthy/ready again (default 1; must be 1 for
    /// liveness).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub success_threshold: Option<i32>,
    /// Seconds before one probe attempt counts as failed (default 1, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_int")]
    pub timeout_seconds: Option<i32>,
}

/// A probe's timing with defaults applied; what the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// Wait before the first probe.
    pub initial_delay: Duration,
    /// Time between probes.
    pub period: Duration,
    /// Time one attempt may take.
    pub timeout: Duration,
    /// Consecutive successes needed.
    pub success_threshold: u32,
    /// Consecutive failures needed.
    pub failure_threshold: u32,
}

impl Probe {
    /// Kubernetes' default `initialDelaySeconds`.
    pub const DEFAULT_INITIAL_DELAY_SECONDS: i32 = 0;
    /// Kubernetes' default `periodSeconds`.
    pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
    /// Kubernetes' default `timeoutSeconds`.
    pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
    /// Kubernetes' default `successThreshold`.
    pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
    /// Kubernetes' default `failureThreshold`.
    pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

    /// A probe running `command` in the container.
    pub fn exec<S: Into<String>>(command: impl IntoIterator<Item = S>) -> Self {
        let command = command.into_iter().map(Into::into).collect();
        Self { exec: Some(ExecAction { command }), ..Self::default() }
    }

    /// A probe doing `GET path` on `port` over HTTP.
    pub fn http_get(path: impl Into<String>, port: u16) -> Self {
        let get = HttpGetAction { path: Some(path.into()), port, scheme: None, http_headers: Vec::new() };
        Self { http_get: Some(get), ..Self::default() }
    }

    /// A probe connecting to TCP `port` (aci extension).
    pub fn tcp_socket(port: u16) -> Self {
        Self { tcp_socket: Some(TcpSocketAction { port }), ..Self::default() }
    }

    /// Sets `periodSeconds`.
    pub fn period_seconds(mut self, seconds: i32) -> Self {
        self.period_seconds = Some(seconds);
        self
    }

    /// Sets `initialDelaySeconds`.
    pub fn initial_delay_seconds(mut self, seconds: i32) -> Self {
        self.initial_delay_seconds = Some(seconds);
        self
    }

    /// Sets `timeoutSeconds`.
    pub fn timeout_seconds(mut self, seconds: i32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// Sets `failureThreshold`.
    pub fn failure_threshold(mut self, count: i32) -> Self {
        self.failure_threshold = Some(count);
        self
    }

    /// Sets `successThreshold`.
    pub fn success_threshold(mut self, count: i32) -> Self {
        self.success_threshold = Some(count);
        self
    }

    /// The timing with Kubernetes' defaults for absent fields. Out-of-range values (which
    /// [`validate`](crate::spec::ContainerGroup::validate) rejects) are clamped to the minimum.
    pub fn timing(&self) -> ProbeTiming {
        let get = |v: Option<i32>, default: i32, min: i32| v.unwrap_or(default).max(min).unsigned_abs();
        ProbeTiming {
            initial_delay: Duration::from_secs(u64::from(get(
                self.initial_delay_seconds,
                Self::DEFAULT_INITIAL_DELAY_SECONDS,
                0,
            ))),
            period: Duration::from_secs(u64::from(get(self.period_seconds, Self::DEFAULT_PERIOD_SECONDS, 1))),
            timeout: Duration::from_secs(u64::from(get(
                self.timeout_seconds,
                Self::DEFAULT_TIMEOUT_SECONDS,
                1,
            ))),
            success_threshold: get(self.success_threshold, Self::DEFAULT_SUCCESS_THRESHOLD, 1),
            failure_threshold: get(self.failure_threshold, Self::DEFAULT_FAILURE_THRESHOLD, 1),
        }
    }
}

/// `exec`: a command run inside the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    /// The command, exec form.
    #[serde(default)]
    pub command: Vec<String>,
}

ci_enum! {
    /// `httpGet.scheme`.
    pub enum Scheme {
        /// Plain HTTP (the default).
        Http => "http",
        /// HTTPS; the certificate is not verified.
        Https => "https",
    }
}

/// `httpGet`: an HTTP GET to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    /// The request path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The port.
    #[serde(deserialize_with = "serde_util::int")]
    pub port: u16,
    /// `http` (default) or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One HTTP header of an `httpGet` probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// **aci extension**: `tcpSocket` `{port}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    /// The port to connect to.
    #[serde(deserialize_with = "serde_util::int")]
    pub port: u16,
}

/// A probe the agent cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeConversionError {
    /// `httpGet.scheme: https`: the guest agent's HTTP probe speaks plain HTTP only.
    #[error("httpGet probes with scheme https are not supported yet (use http or tcpSocket)")]
    HttpsUnsupported,
    /// None of `exec`, `httpGet`, `tcpSocket` is set (validation reports this too).
    #[error("the probe has no action (exec, httpGet or tcpSocket)")]
    NoAction,
}

impl Probe {
    /// The probe as the guest agent runs it, with Kubernetes' defaults applied.
    pub fn to_agent(&self) -> Result<aci_proto::probe::ProbeConfig, ProbeConversionError> {
        use aci_proto::probe::ProbeAction;
        let action = if let Some(exec) = &self.exec {
            ProbeAction::Exec { command: exec.command.clone() }
        } else if let Some(get) = &self.http_get {
            if get.scheme == Some(Scheme::Https) {
                return Err(ProbeConversionError::HttpsUnsupported);
            }
            ProbeAction::HttpGet {
                path: get.path.clone().unwrap_or_else(|| "/".to_owned()),
                port: get.port,
                headers: get.http_headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
            }
        } else if let Some(tcp) = &self.tcp_socket {
            ProbeAction::TcpSocket { port: tcp.port }
        } else {
            return Err(ProbeConversionError::NoAction);
        };
        let timing = self.timing();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Ok(aci_proto::probe::ProbeConfig {
            action,
            initial_delay_ms: ms(timing.initial_delay),
            period_ms: ms(timing.period),
            timeout_ms: ms(timing.timeout),
            success_threshold: timing.success_threshold,
            failure_threshold: timing.failure_threshold,
        })
    }
}

#[cfg(test)]
mod agent_tests {
    use super::*;
    use aci_proto::probe::ProbeAction;

    #[test]
    fn probes_convert_with_kubernetes_defaults() {
        let cfg = Probe::http_get("/healthz", 8080).to_agent().unwrap();
        assert_eq!(cfg.action, ProbeAction::HttpGet { path: "/healthz".into(), port: 8080, headers: vec![] });
        assert_eq!((cfg.initial_delay_ms, cfg.period_ms, cfg.timeout_ms), (0, 10_000, 1_000));
        assert_eq!((cfg.success_threshold, cfg.failure_threshold), (1, 3));
        let cfg =
            Probe::exec(["cat", "/tmp/healthy"]).period_seconds(2).failure_threshold(1).to_agent().unwrap();
        assert_eq!(cfg.action, ProbeAction::Exec { command: vec!["cat".into(), "/tmp/healthy".into()] });
        assert_eq!((cfg.period_ms, cfg.failure_threshold), (2_000, 1));
        assert_eq!(Probe::tcp_socket(53).to_agent().unwrap().action, ProbeAction::TcpSocket { port: 53 });
        let mut https = Probe::http_get("/", 443);
        if let Some(get) = https.http_get.as_mut() {
            get.scheme = Some(Scheme::Https);
        }
        assert_eq!(https.to_agent(), Err(ProbeConversionError::HttpsUnsupported));
        assert_eq!(Probe::default().to_agent(), Err(ProbeConversionError::NoAction));
    }
}
