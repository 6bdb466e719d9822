//! Health probes the agent runs inside the guest (liveness and readiness), with
//! Kubernetes' semantics: one attempt per period, consecutive successes/failures against
//! thresholds, and an event whenever an attempt fails or the probe's verdict changes.

use serde::{Deserialize, Serialize};

/// Which question a probe answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeRole {
    /// Is the container alive? A failing verdict makes the host restart it (policy allowing).
    Liveness,
    /// Is the container ready for traffic?
    Readiness,
}

/// What one attempt does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProbeAction {
    /// Run `command` in the container; exit code 0 is success.
    Exec {
        /// The argv.
        command: Vec<String>,
    },
    /// `GET path` on 127.0.0.1:`port` (the group's shared network); 200–399 is success.
    HttpGet {
        /// The path (default `/`).
        path: String,
        /// The port.
        port: u16,
        /// Extra request headers.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// A TCP connect to 127.0.0.1:`port`; an accepted connection is success.
    TcpSocket {
        /// The port.
        port: u16,
    },
}

/// A probe with its timing (defaults already applied by the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// What an attempt does.
    pub action: ProbeAction,
    /// Milliseconds after the container starts before the first attempt.
    pub initial_delay_ms: u64,
    /// Milliseconds between attempts.
    pub period_ms: u64,
    /// Milliseconds one attempt may take before it counts as failed.
    pub timeout_ms: u64,
    /// Consecutive successes that turn the verdict to healthy/ready.
    pub success_threshold: u32,
    /// Consecutive failures that turn the verdict to unhealthy/not ready.
    pub failure_threshold: u32,
}

/// What [`crate::message::Call::SetProbes`] carries: the probes of one container, started
/// with each run of it (and stopped when the run ends).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerProbes {
    /// The container.
    pub container: String,
    /// Its liveness probe.
    #[serde(default)]
    pub liveness: Option<ProbeConfig>,
    /// Its readiness probe.
    #[serde(default)]
    pub readiness: Option<ProbeConfig>,
}

/// A probe report (in an [`crate::message::AgentEvent::Probe`] event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The container.
    pub container: String,
    /// Which probe.
    pub role: ProbeRole,
    /// The container run the probe belongs to.
    pub run: u32,
    /// The verdict after this attempt: healthy (liveness) / ready (readiness).
    pub passing: bool,
    /// The verdict changed with this attempt.
    pub changed: bool,
    /// This attempt succeeded.
    pub attempt_ok: bool,
    /// What the attempt saw (status line, exit code, error).
    pub message: String,
}
