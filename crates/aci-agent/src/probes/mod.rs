//! Liveness and readiness probes, run by the agent inside the guest.
//!
//! The host sets a container's probes once ([`Prober::set`]); the container engine tells the
//! prober when each run of the container starts and ends, and the prober runs one thread per
//! probe for the life of that run: wait `initial_delay`, then one attempt per `period`, each
//! bounded by `timeout`. Attempts go through [`check`] (HTTP GET / TCP connect to the
//! group's shared localhost) or through the engine's exec ([`ExecProbe`]). A
//! [`verdict::Verdict`]
//! turns consecutive results into passing/failing; a report goes to the host whenever an
//! attempt fails or the verdict changes. What to do about a failing liveness verdict
//! (restart, or not under `restartPolicy: Never`) is the host's decision.

mod check;
mod runner;
mod verdict;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aci_proto::message::{RemoteError, RemoteErrorKind};
use aci_proto::probe::{ContainerProbes, ProbeAction, ProbeConfig, ProbeReport, ProbeRole};

/// Runs a probe's command in a container (implemented by the container engine).
pub trait ExecProbe: Send + Sync {
    /// Runs `argv` in `container` and returns its exit code, or why it could not run; an
    /// attempt that outlives `timeout` is killed and is an error.
    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<i32, String>;
}

/// Where reports go (the engine's event subscribers).
pub type ReportSink = Arc<dyn Fn(ProbeReport) + Send + Sync>;

/// All probes of the group.
#[derive(Default)]
pub struct Prober {
    configs: Mutex<HashMap<String, ContainerProbes>>,
    running: Mutex<HashMap<String, Vec<runner::Runner>>>,
    wiring: Mutex<Option<(Arc<dyn ExecProbe>, ReportSink)>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Prober").field("containers", &configs.keys().collect::<Vec<_>>()).finish()
    }
}

impl Prober {
    /// Connects the prober to the engine: how to exec in a container and where reports go.
    pub fn wire(&self, exec: Arc<dyn ExecProbe>, sink: ReportSink) {
        *self.wiring.lock().unwrap_or_else(PoisonError::into_inner) = Some((exec, sink));
    }

    /// Sets (replaces) a container's probes; they take effect from its next run.
    pub fn set(&self, probes: ContainerProbes) -> Result<(), RemoteError> {
        for (role, probe) in
            [(ProbeRole::Liveness, &probes.liveness), (ProbeRole::Readiness, &probes.readiness)]
        {
            if let Some(probe) = probe {
                validate(&probes.container, role, probe)?;
            }
        }
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        configs.insert(probes.container.clone(), probes);
        Ok(())
    }

    /// A run of `container` started: start its probes.
    pub fn run_started(&self, container: &str, run: u32) {
        let Some((exec, sink)) = self.wiring.lock().unwrap_or_else(PoisonError::into_inner).clone() else {
            return;
        };
        let Some(probes) =
            self.configs.lock().unwrap_or_else(PoisonError::into_inner).get(container).cloned()
        else {
            return;
        };
        let mut runners = Vec::new();
        for (role, probe) in
            [(ProbeRole::Liveness, probes.liveness), (ProbeRole::Readiness, probes.readiness)]
        {
            if let Some(probe) = probe {
                let target = runner::Target { container: container.to_owned(), role, run };
                runners.push(runner::Runner::start(target, probe, Arc::clone(&exec), Arc::clone(&sink)));
            }
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(container.to_owned(), runners); // Replacing stops the previous run's.
    }

    /// The current run of `container` ended (or it was removed): stop its probes.
    pub fn run_ended(&self, container: &str) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).remove(container);
    }

    /// `container` was removed: forget its probes.
    pub fn forget(&self, container: &str) {
        self.run_ended(container);
        self.configs.lock().unwrap_or_else(PoisonError::into_inner).remove(container);
    }
}

fn validate(container: &str, role: ProbeRole, probe: &ProbeConfig) -> Result<(), RemoteError> {
    let bad = |what: &str| {
        Err(RemoteError {
            kind: RemoteErrorKind::Failed,
            message: format!("container {container:?}: {role:?} probe: {what}"),
        })
    };
    if probe.period_ms == 0 || probe.timeout_ms == 0 {
        return bad("period and timeout must be positive");
    }
    match &probe.action {
        ProbeAction::Exec { command } if command.is_empty() => bad("exec command is empty"),
        ProbeAction::HttpGet { port: 0, .. } | ProbeAction::TcpSocket { port: 0 } => bad("port 0"),
        _ => Ok(()),
    }
}
