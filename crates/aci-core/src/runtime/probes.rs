//! Liveness and readiness probes, host side (semantics in `docs/probes.md`).
//!
//! The agent runs the probes in the guest; the host:
//! - converts each container's `livenessProbe` / `readinessProbe` for the agent at the
//!   *validate* step, before anything is pulled or billed (a probe the agent cannot run,
//!   `httpGet` over https, fails the deployment there, naming the container), and sends
//!   them (`SetProbes`) before the container's first start;
//! - turns the agent's reports into `Unhealthy` events (one per failed attempt) and each
//!   container's `ready` flag ([`ProbeTracker`]);
//! - decides what a failing liveness verdict does: `Killing` and a restart with back-off,
//!   unless `restartPolicy` is `Never` ([`Decision`]; the supervisor does the stopping);
//! - answers [`Runtime::wait_ready`].
//!
//! Reports carry the agent's run number (0 for a container's first run, + 1 per restart in
//! place). A report from a run older than the current one is stale (it raced with the run's
//! end) and ignored: at every (re)start the tracker expects a run newer than any it has seen.

use std::collections::BTreeMap;
use std::time::Duration;

use aci_proto::message::Call;
use aci_proto::probe::{ContainerProbes, ProbeReport, ProbeRole};
use thiserror::Error;

use super::error::{AgentCallError, RuntimeError};
use super::events::{EventKind, EventName};
use super::group::GroupCtx;
use super::guest::AgentHandle;
use super::status::{ContainerStatus, GroupState, GroupStatus};
use super::Runtime;
use crate::spec::{ContainerGroup, ProbeConversionError, RestartPolicy};

/// A container's probe that the agent cannot run.
#[derive(Debug, Error)]
#[error("container {container:?}: {field}")]
pub struct ProbeSpecError {
    /// The container.
    pub container: String,
    /// `livenessProbe` or `readinessProbe`.
    pub field: &'static str,
    /// Why.
    #[source]
    pub source: ProbeConversionError,
}

/// The probes of every app container that has at least one, as the agent runs them.
pub(crate) fn agent_probes(spec: &ContainerGroup) -> Result<Vec<ContainerProbes>, ProbeSpecError> {
    let mut sets = Vec::new();
    for c in &spec.properties.containers {
        let p = &c.properties;
        let convert = |probe: &Option<crate::spec::Probe>, field: &'static str| {
            probe.as_ref().map(|probe| probe.to_agent()).transpose().map_err(|source| ProbeSpecError {
                container: c.name.clone(),
                field,
                source,
            })
        };
        let liveness = convert(&p.liveness_probe, "livenessProbe")?;
        let readiness = convert(&p.readiness_probe, "readinessProbe")?;
        if liveness.is_some() || readiness.is_some() {
            sets.push(ContainerProbes { container: c.name.clone(), liveness, readiness });
        }
    }
    Ok(sets)
}

/// Sends `container`'s probes (if it has any) to the agent; they run from its next start.
pub(crate) async fn send(
    agent: &AgentHandle,
    sets: &[ContainerProbes],
    container: &str,
) -> Result<(), AgentCallError> {
    match sets.iter().find(|s| s.container == container) {
        Some(set) => agent.call_done(Call::SetProbes(set.clone())).await,
        None => Ok(()),
    }
}

/// What the supervisor does about a probe report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing (events and flags are already recorded).
    Nothing,
    /// The liveness verdict failed and the policy restarts: stop the container (SIGTERM,
    /// SIGKILL after the grace) and restart it with back-off whatever its exit code.
    Restart,
}

/// What a liveness verdict means under `policy`.
fn liveness_decision(passing: bool, policy: RestartPolicy) -> Decision {
    if passing || policy == RestartPolicy::Never {
        Decision::Nothing
    } else {
        Decision::Restart
    }
}

/// One app container as the tracker knows it.
#[derive(Debug, Clone, Default)]
struct Tracked {
    /// It has a readiness probe (else it is ready whenever it runs).
    readiness: bool,
    /// Reports from runs before this one are stale.
    min_run: u32,
    /// The newest run a report came from.
    last_run: Option<u32>,
}

impl Tracked {
    /// Whether a report of `run` belongs to the current run (and notes the run).
    fn accept(&mut self, run: u32) -> bool {
        self.last_run = Some(self.last_run.map_or(run, |r| r.max(run)));
        run >= self.min_run
    }

    /// A new run started: only reports from newer runs than any seen count from now on.
    fn restarted(&mut self) {
        if let Some(last) = self.last_run {
            self.min_run = self.min_run.max(last.saturating_add(1));
        }
    }
}

/// The probe state of one deployment's app containers.
#[derive(Debug, Default)]
pub(crate) struct ProbeTracker {
    containers: BTreeMap<String, Tracked>,
}

impl ProbeTracker {
    /// Tracks every app container of `spec`.
    pub fn new(spec: &ContainerGroup) -> Self {
        let containers = spec
            .properties
            .containers
            .iter()
            .map(|c| {
                let tracked =
                    Tracked { readiness: c.properties.readiness_probe.is_some(), ..Default::default() };
                (c.name.clone(), tracked)
            })
            .collect();
        Self { containers }
    }

    /// A run of `name` started: its readiness starts over (ready at once without a
    /// readiness probe, else not until the probe passes).
    pub fn started(&mut self, ctx: &GroupCtx, name: &str) {
        let Some(t) = self.containers.get_mut(name) else { return };
        t.restarted();
        let ready = !t.readiness;
        set_ready(ctx, name, ready);
    }

    /// The run of `name` ended: not ready.
    pub fn ended(&self, ctx: &GroupCtx, name: &str) {
        if self.containers.contains_key(name) {
            set_ready(ctx, name, false);
        }
    }

    /// A report from the agent. `live` says the container runs and is not being stopped
    /// (reports about a run on its way out are dropped). Failed attempts become `Unhealthy`
    /// events, readiness verdicts the `ready` flag; a failing liveness verdict is a
    /// [`Decision::Restart`] (with a `Killing` event) unless `policy` is `Never`.
    pub fn report(
        &mut self,
        ctx: &GroupCtx,
        policy: RestartPolicy,
        live: bool,
        report: &ProbeReport,
    ) -> Decision {
        let name = report.container.as_str();
        let Some(t) = self.containers.get_mut(name) else { return Decision::Nothing };
        if !t.accept(report.run) || !live {
            return Decision::Nothing;
        }
        let what = match report.role {
            ProbeRole::Liveness => "Liveness",
            ProbeRole::Readiness => "Readiness",
        };
        if !report.attempt_ok {
            let message = format!("{what} probe failed: {}", report.message);
            ctx.event(Some(name), EventName::Unhealthy, EventKind::Warning, message);
        }
        match report.role {
            ProbeRole::Readiness => {
                set_ready(ctx, name, report.passing);
                Decision::Nothing
            }
            ProbeRole::Liveness => {
                let decision = liveness_decision(report.passing, policy);
                if decision == Decision::Restart {
                    ctx.event(
                        Some(name),
                        EventName::Killing,
                        EventKind::Normal,
                        format!("Container {name} failed liveness probe, will be restarted"),
                    );
                }
                decision
            }
        }
    }
}

/// Sets a container's `ready` flag (writing the record only when it changes).
fn set_ready(ctx: &GroupCtx, name: &str, ready: bool) {
    let current = ctx.status().container(name).map(|c| c.ready);
    if current.is_some_and(|r| r != ready) {
        tracing::debug!(group = %ctx.name, container = name, ready, "readiness changed");
        ctx.update(|s| {
            if let Some(c) = s.container_mut(name) {
                c.ready = ready;
            }
        });
    }
}

impl ContainerStatus {
    /// An app container that runs and passes its readiness probe (without one: that runs).
    pub fn is_ready(&self) -> bool {
        !self.init && self.ready && self.state() == "Running"
    }
}

impl GroupStatus {
    /// The group is ready: it runs, and every app container that runs or will run again is
    /// ready (a container that ended for good does not count; at least one must be ready).
    pub fn is_ready(&self) -> bool {
        self.state == GroupState::Running
            && self.containers.iter().any(ContainerStatus::is_ready)
            && self.not_ready().is_empty()
    }

    /// The app containers that keep the group from being ready: not ready, and not ended
    /// for good (`Terminated` with no restart due).
    pub fn not_ready(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|c| !c.init && !c.is_ready() && c.state() != "Terminated")
            .map(|c| c.name.clone())
            .collect()
    }
}

impl Runtime {
    /// Waits until the group is ready (see [`GroupStatus::is_ready`] and `docs/probes.md`),
    /// up to `timeout`. A group still deploying is waited for. Errors:
    /// [`RuntimeError::NotReady`] naming the containers not ready when the time is up,
    /// [`RuntimeError::NotRunning`] when the group ends (or is not active) instead.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Result<GroupStatus, RuntimeError> {
        let waited = self.wait_for(name, timeout, "ready", |s| s.is_ready() || !s.state.is_active()).await;
        match waited {
            Ok(status) if status.is_ready() => Ok(status),
            Ok(_) => Err(RuntimeError::NotRunning(name.to_string())),
            Err(RuntimeError::Timeout { .. }) => {
                let status = self.get(name)?;
                let containers = match status.not_ready() {
                    none if none.is_empty() => vec![format!("(group is {})", status.state.as_str())],
                    some => some,
                };
                Err(RuntimeError::NotReady { group: name.to_string(), containers, waited: timeout })
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Container, ContainerState, Probe, Scheme};

    fn running(name: &str, ready: bool) -> ContainerStatus {
        let mut c = ContainerStatus::waiting(name, false);
        c.current_state = ContainerState { state: Some("Running".into()), ..Default::default() };
        c.ready = ready;
        c
    }

    fn status(containers: Vec<ContainerStatus>) -> GroupStatus {
        let spec = ContainerGroup::builder("g")
            .container(Container::new("a", "img").cpu(1.0).memory_gb(0.5))
            .build()
            .unwrap();
        // From JSON, so fields other modules add (with serde defaults) need no change here.
        let value = serde_json::json!({
            "name": "g", "spec": spec, "state": "Running", "reason": null, "deployment": 1,
            "containers": containers, "events": [], "usage": [], "owner_pid": null, "updated_at_ms": 0,
        });
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_group_is_ready_when_every_container_that_runs_or_will_run_is_ready() {
        let mut init = ContainerStatus::waiting("init", true);
        init.current_state.state = Some("Terminated".into());
        let s = status(vec![init.clone(), running("a", true), running("b", true)]);
        assert!(s.is_ready());
        assert!(s.not_ready().is_empty());

        let s = status(vec![init.clone(), running("a", true), running("b", false)]);
        assert!(!s.is_ready());
        assert_eq!(s.not_ready(), ["b"]);

        // A container waiting for its restart (back-off) is not ready.
        let s = status(vec![running("a", true), ContainerStatus::waiting("b", false)]);
        assert_eq!(s.not_ready(), ["b"]);

        // One that ended for good does not hold the group back.
        let mut done = running("b", true);
        done.current_state.state = Some("Terminated".into());
        assert!(status(vec![running("a", true), done.clone()]).is_ready());
        // ... but a group with nothing ready is not ready.
        assert!(!status(vec![done]).is_ready());

        // A stale ready flag on a container that no longer runs counts for nothing.
        let mut stopped = status(vec![running("a", true)]);
        stopped.state = GroupState::Stopped;
        assert!(!stopped.is_ready());
        let view = stopped.to_container_group();
        assert_eq!(view.properties.instance_view.unwrap().ready, Some(false));
    }

    #[test]
    fn the_instance_view_shows_ready_flags() {
        let s = status(vec![running("a", true)]);
        let view = s.to_container_group();
        assert_eq!(view.properties.instance_view.as_ref().unwrap().ready, Some(true));
        let a = view.properties.containers[0].properties.instance_view.as_ref().unwrap();
        assert_eq!(a.ready, Some(true));
    }

    #[test]
    fn liveness_restarts_unless_the_policy_is_never() {
        assert_eq!(liveness_decision(true, RestartPolicy::Always), Decision::Nothing);
        assert_eq!(liveness_decision(false, RestartPolicy::Always), Decision::Restart);
        assert_eq!(liveness_decision(false, RestartPolicy::OnFailure), Decision::Restart);
        assert_eq!(liveness_decision(false, RestartPolicy::Never), Decision::Nothing);
    }

    #[test]
    fn reports_of_an_earlier_run_are_stale_after_a_restart() {
        let mut t = Tracked::default();
        assert!(t.accept(0));
        t.restarted();
        assert!(!t.accept(0), "run 0 ended");
        assert!(t.accept(1));
        // A restart before any report of the current run was seen still rules out run 0.
        let mut t = Tracked::default();
        t.restarted();
        assert!(t.accept(0));
    }

    #[test]
    fn probes_convert_per_container_and_https_is_refused_naming_the_container() {
        let group = |probe: Probe| {
            ContainerGroup::builder("g")
                .container(Container::new("plain", "img").cpu(1.0).memory_gb(0.5))
                .container(
                    Container::new("web", "img")
                        .cpu(1.0)
                        .memory_gb(0.5)
                        .readiness_probe(probe)
                        .liveness_probe(Probe::exec(["true"]).period_seconds(1)),
                )
                .build()
                .unwrap()
        };
        let sets = agent_probes(&group(Probe::http_get("/ready", 8080))).unwrap();
        assert_eq!(sets.len(), 1, "containers without probes get no SetProbes");
        assert_eq!(sets[0].container, "web");
        assert_eq!(sets[0].liveness.as_ref().unwrap().period_ms, 1000);
        assert!(sets[0].readiness.is_some());

        let mut https = Probe::http_get("/", 443);
        if let Some(get) = https.http_get.as_mut() {
            get.scheme = Some(Scheme::Https);
        }
        let err = agent_probes(&group(https)).unwrap_err();
        assert_eq!((err.container.as_str(), err.field), ("web", "readinessProbe"));
        assert_eq!(err.to_string(), "container \"web\": readinessProbe");
        assert_eq!(err.source, ProbeConversionError::HttpsUnsupported);
    }
}
