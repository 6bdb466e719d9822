//! One deployment's lifecycle task: deploy, then watch the containers (exits, restarts with
//! back-off, in-place restarts, usage polling) until the group stops or ends, then release
//! the VM and stop the meter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aci_proto::container::ExitStatus;
use aci_proto::message::{AgentEvent, Call, Reply};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::clock::now_ms;
use super::deploy::{deploy, error_chain, start, terminated, Deployed};
use super::error::RuntimeError;
use super::events::{EventKind, EventName};
use super::group::{lock, Command, GroupCtx};
use super::guest::GuestMsg;
use super::network;
use super::probes::{Decision, ProbeTracker};
use super::restart::{should_restart, terminal_state};
use super::status::GroupState;
use crate::spec::{ContainerGroup, ContainerState, RestartPolicy};

/// How long the guest gets to power off after `Shutdown` before the VM is stopped by force.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// The message of every back-off event (repeats aggregate into one counted event).
const BACKOFF_MESSAGE: &str = "Back-off restarting failed container";

/// Runs deployment `number` of the group; `ready` is answered when the containers run (or
/// deploying failed).
pub(crate) async fn supervise(
    ctx: Arc<GroupCtx>,
    spec: ContainerGroup,
    number: u32,
    mut commands: UnboundedReceiver<Command>,
    ready: oneshot::Sender<Result<(), RuntimeError>>,
) {
    let outcome = tokio::select! {
        result = deploy(&ctx, &spec, number) => Ok(result),
        stop = stop_requested(&ctx.name, &mut commands) => Err(stop),
    };
    let deployed = match outcome {
        Ok(Ok(deployed)) => deployed,
        Ok(Err(failed)) => {
            let reason =
                format!("deploying failed at step '{}': {}", failed.step, error_chain(&failed.error));
            ctx.event(None, EventName::Failed, EventKind::Warning, reason.clone());
            network::release(&ctx).await;
            finish(&ctx, GroupState::Failed, Some(reason));
            let _ = ready.send(Err(RuntimeError::Deploy {
                group: ctx.name.clone(),
                step: failed.step,
                source: Box::new(failed.error),
            }));
            return;
        }
        Err(stop_reply) => {
            // The deploy future was dropped: its VM (if any) is stopped by VmHandle's Drop.
            ctx.event(None, EventName::Stopped, EventKind::Normal, "stopped while deploying");
            network::release(&ctx).await;
            finish(&ctx, GroupState::Stopped, Some("stopped while deploying".into()));
            let _ = ready.send(Err(RuntimeError::Cancelled(ctx.name.clone())));
            if let Some(reply) = stop_reply {
                let _ = reply.send(());
            }
            return;
        }
    };
    // Built first: it sets the containers' ready flags, which `create`'s status shows.
    let supervisor = Supervisor::new(ctx.clone(), &spec, deployed);
    ctx.update(|s| s.state = GroupState::Running);
    let _ = ready.send(Ok(()));
    supervisor.run(commands).await;
}

/// Waits for a `Stop` (answering other commands with "not running yet"); `None` when every
/// sender is gone.
async fn stop_requested(
    name: &str,
    commands: &mut UnboundedReceiver<Command>,
) -> Option<oneshot::Sender<()>> {
    loop {
        match commands.recv().await? {
            Command::Stop(reply) => return Some(reply),
            Command::Restart(reply) => {
                let _ = reply.send(Err(RuntimeError::NotRunning(name.to_string())));
            }
        }
    }
}

/// Sets the final state, stops the meter and forgets the deployment's agent.
fn finish(ctx: &GroupCtx, state: GroupState, reason: Option<String>) {
    *lock(&ctx.agent) = None;
    // The meter stops and the final charge is in the record before the state says the
    // group ended, so whoever sees the end sees the final bill.
    ctx.refresh_usage(|u| u.meter.stop(now_ms()));
    ctx.update(|s| {
        s.state = state;
        s.reason = reason;
        s.owner_pid = None;
    });
}

/// One app container as the supervisor tracks it.
#[derive(Debug, Default)]
struct Run {
    running: bool,
    /// When the current run started (to reset the back-off after a long run).
    started: Option<Instant>,
    /// Consecutive back-offs.
    backoffs: u32,
    /// A restart is due then.
    restart_at: Option<Instant>,
    /// SIGKILL is due then (after a SIGTERM for an in-place restart).
    kill_at: Option<Instant>,
    /// Restart right after the exit (in-place restart asked).
    restart_in_place: bool,
    /// Stopped for a failed liveness probe: restarted with back-off whatever its exit code.
    liveness_kill: bool,
    /// Ended for good, with this exit code.
    finished: Option<i32>,
}

struct Supervisor {
    ctx: Arc<GroupCtx>,
    policy: RestartPolicy,
    deployed: Deployed,
    runs: BTreeMap<String, Run>,
    /// Probe reports, ready flags (`probes.rs`).
    probes: ProbeTracker,
}

/// Why the watch loop ended.
enum End {
    Stop(Option<oneshot::Sender<()>>),
    Terminal(GroupState),
    VmLost(String),
}

impl Supervisor {
    fn new(ctx: Arc<GroupCtx>, spec: &ContainerGroup, deployed: Deployed) -> Self {
        let now = Instant::now();
        let runs = deployed
            .apps
            .iter()
            .map(|n| (n.clone(), Run { running: true, started: Some(now), ..Default::default() }))
            .collect();
        let mut probes = ProbeTracker::new(spec);
        for name in &deployed.apps {
            probes.started(&ctx, name);
        }
        Self { ctx, policy: spec.properties.restart_policy, deployed, runs, probes }
    }

    async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        let config = &self.ctx.shared.config;
        let mut stats = tokio::time::interval(config.stats_interval);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            let next = self.runs.values().flat_map(|r| [r.restart_at, r.kill_at]).flatten().min();
            tokio::select! {
                msg = self.deployed.guest_rx.recv() => match msg {
                    Some(GuestMsg::Agent(AgentEvent::ContainerExited { name, status })) => {
                        self.on_exit(&name, status).await;
                        if let Some(state) = self.terminal() {
                            break End::Terminal(state);
                        }
                    }
                    Some(GuestMsg::Agent(AgentEvent::Probe(report))) => self.on_probe(&report).await,
                    Some(GuestMsg::Agent(_)) => {}
                    Some(GuestMsg::EventsClosed(why)) => break End::VmLost(why),
                    Some(GuestMsg::VmEnded(exit)) => break End::VmLost(format!("the VM ended ({:?})", exit.reason)),
                    None => break End::VmLost("the guest channel closed".into()),
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop(reply)) => break End::Stop(Some(reply)),
                    Some(Command::Restart(reply)) => {
                        self.restart_all().await;
                        let _ = reply.send(Ok(()));
                        if let Some(state) = self.terminal() {
                            break End::Terminal(state);
                        }
                    }
                    None => break End::Stop(None),
                },
                _ = sleep_until(next), if next.is_some() => {
                    self.timers().await;
                    if let Some(state) = self.terminal() {
                        break End::Terminal(state);
                    }
                }
                _ = stats.tick() => self.poll_stats().await,
            }
            super::ready_ports::follow(&self.ctx, &mut self.deployed.published).await;
        };
        self.end(end).await;
    }

    /// A container's run ended: record it and restart it (now, after a back-off, or never).
    async fn on_exit(&mut self, name: &str, status: ExitStatus) {
        let backoff = self.ctx.shared.config.backoff;
        let policy = self.policy;
        let Some(run) = self.runs.get_mut(name) else {
            return; // an init container or an exec: not ours to restart
        };
        run.running = false;
        run.kill_at = None;
        let liveness_kill = std::mem::take(&mut run.liveness_kill);
        self.probes.ended(&self.ctx, name);
        let ran = run.started.map(|s| s.elapsed()).unwrap_or_default();
        let ended = self.ctx.update(|s| {
            let c = s.container_mut(name)?;
            let state = terminated(&status, c.current_state.start_time.clone());
            c.current_state = state.clone();
            Some(state)
        });
        if run.restart_in_place {
            run.restart_in_place = false;
            self.restart_now(name, ended).await;
        } else if should_restart(policy, status.code) || liveness_kill {
            run.backoffs = backoff.next_count(run.backoffs, ran);
            let delay = backoff.delay(run.backoffs);
            run.backoffs += 1;
            run.restart_at = Some(Instant::now() + delay);
            self.ctx.update(|s| {
                if let Some(c) = s.container_mut(name) {
                    c.previous_state = ended;
                    c.current_state = ContainerState {
                        state: Some("Waiting".into()),
                        detail_status: Some("CrashLoopBackOff".into()),
                        ..Default::default()
                    };
                }
            });
            self.ctx.event(Some(name), EventName::BackOff, EventKind::Warning, BACKOFF_MESSAGE);
        } else {
            run.finished = Some(status.code);
        }
    }

    /// Starts an exited container again now; its last run becomes the previous state.
    async fn restart_now(&mut self, name: &str, ended: Option<ContainerState>) {
        self.ctx.update(|s| {
            if let Some(c) = s.container_mut(name) {
                c.restart_count += 1;
                if ended.is_some() {
                    c.previous_state = ended;
                }
            }
        });
        let result = start(&self.ctx, &self.deployed.agent, name).await;
        if let Some(run) = self.runs.get_mut(name) {
            run.restart_at = None;
            run.finished = None;
            match result {
                Ok(()) => {
                    run.running = true;
                    run.started = Some(Instant::now());
                    self.probes.started(&self.ctx, name);
                }
                // The start failed (event recorded): count it as a failed run.
                Err(_) => {
                    if should_restart(self.policy, 1) {
                        let backoff = self.ctx.shared.config.backoff;
                        run.restart_at = Some(Instant::now() + backoff.delay(run.backoffs));
                        run.backoffs += 1;
                    } else {
                        run.finished = Some(1);
                    }
                }
            }
        }
    }

    /// A probe report: events and ready flags (`probes.rs`); a failed liveness verdict stops
    /// the container (SIGTERM, SIGKILL after `stop_grace`) for a restart with back-off.
    async fn on_probe(&mut self, report: &aci_proto::probe::ProbeReport) {
        let name = report.container.clone();
        let live = self.runs.get(&name).is_some_and(|r| r.running && !r.liveness_kill && !r.restart_in_place);
        if self.probes.report(&self.ctx, self.policy, live, report) != Decision::Restart {
            return;
        }
        if let Some(run) = self.runs.get_mut(&name) {
            run.liveness_kill = true;
            run.kill_at = Some(Instant::now() + self.ctx.shared.config.stop_grace);
        }
        if let Err(err) = self.deployed.agent.call(Call::Signal { name: name.clone(), signal: 15 }).await {
            tracing::warn!(group = %self.ctx.name, container = %name, "SIGTERM failed: {err}");
        }
    }

    /// Due restarts and kills.
    async fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| r.restart_at.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.restart_now(&name, None).await;
        }
        let kills: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| r.kill_at.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in kills {
            if let Some(run) = self.runs.get_mut(&name) {
                run.kill_at = None;
            }
            let _ = self.deployed.agent.call(Call::Signal { name, signal: 9 }).await;
        }
    }

    /// `restart`: every container restarts in place (SIGTERM, then SIGKILL after the grace).
    async fn restart_all(&mut self) {
        let grace = self.ctx.shared.config.stop_grace;
        let names: Vec<String> = self.runs.keys().cloned().collect();
        for name in names {
            let running = self.runs.get(&name).is_some_and(|r| r.running);
            if running {
                self.ctx.event(
                    Some(&name),
                    EventName::Killing,
                    EventKind::Normal,
                    "Killing container for restart",
                );
                let signalled =
                    self.deployed.agent.call(Call::Signal { name: name.clone(), signal: 15 }).await;
                if let Some(run) = self.runs.get_mut(&name) {
                    run.restart_in_place = true;
                    run.kill_at = Some(Instant::now() + grace);
                    run.backoffs = 0;
                }
                if let Err(err) = signalled {
                    tracing::warn!(group = %self.ctx.name, container = %name, "SIGTERM failed: {err}");
                }
            } else {
                if let Some(run) = self.runs.get_mut(&name) {
                    run.backoffs = 0;
                }
                self.restart_now(&name, None).await;
            }
        }
    }

    /// The group's final state once no container runs or will run again.
    fn terminal(&self) -> Option<GroupState> {
        let all_done =
            self.runs.values().all(|r| r.finished.is_some() && !r.running && r.restart_at.is_none());
        all_done.then(|| terminal_state(self.runs.values().filter_map(|r| r.finished)))
    }

    async fn poll_stats(&mut self) {
        match self.deployed.agent.call(Call::Stats).await {
            Ok(Reply::Stats(stats)) => self.ctx.refresh_usage(|u| u.absorb(&stats)),
            _ => self.ctx.refresh_usage(|_| {}),
        }
    }

    /// Stops the containers, powers the guest off (by force after a grace), stops the meter.
    async fn end(mut self, end: End) {
        let (state, reason, reply) = match end {
            End::Stop(reply) => {
                for (name, run) in &self.runs {
                    if run.running {
                        self.ctx.event(
                            Some(name),
                            EventName::Killing,
                            EventKind::Normal,
                            "Stopping container",
                        );
                    }
                }
                (GroupState::Stopped, None, reply)
            }
            End::Terminal(state) => {
                let mut failed: Vec<String> = self
                    .runs
                    .iter()
                    .filter_map(|(n, r)| {
                        r.finished.filter(|c| *c != 0).map(|c| format!("{n:?} exited with code {c}"))
                    })
                    .collect();
                let unmounted = self.deployed.volumes.not_started();
                failed.extend(
                    unmounted.iter().map(|n| format!("{n:?} was not started: a volume failed to mount")),
                );
                let state = if unmounted.is_empty() { state } else { GroupState::Failed };
                (state, (!failed.is_empty()).then(|| failed.join(", ")), None)
            }
            End::VmLost(why) => {
                let reason = format!("the VM ended unexpectedly: {why}");
                self.ctx.event(None, EventName::Failed, EventKind::Warning, reason.clone());
                (GroupState::Failed, Some(reason), None)
            }
        };
        self.power_off().await;
        // The VM is gone: the log follows end; the files are complete (and synced) before
        // the final state says the group ended.
        self.deployed.logs.finish().await;
        self.deployed.volumes.release();
        // Published ports close first (their proxy tasks are aborted), then the tap and lease.
        drop(self.deployed.published.take());
        tokio::task::yield_now().await;
        network::release(&self.ctx).await;
        self.ctx.update(|s| {
            for c in s.containers.iter_mut().filter(|c| c.state() == "Running") {
                c.current_state.state = Some("Terminated".into());
                c.current_state.finish_time = Some(super::clock::rfc3339_ms(now_ms()));
                c.current_state.detail_status = Some("Stopped".into());
                c.ready = false;
            }
        });
        if state == GroupState::Stopped {
            self.ctx.event(None, EventName::Stopped, EventKind::Normal, "Stopped the container group");
        }
        finish(&self.ctx, state, reason);
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    /// Asks the agent to stop everything and power off; waits for the VM to end (forcing it
    /// after [`SHUTDOWN_GRACE`]).
    async fn power_off(&mut self) {
        *lock(&self.ctx.agent) = None;
        let asked = tokio::time::timeout(SHUTDOWN_GRACE, self.deployed.agent.call(Call::Shutdown)).await;
        if !matches!(asked, Ok(Ok(Reply::ShuttingDown))) {
            self.deployed.vm.force_stop();
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, vm_ended(&mut self.deployed.guest_rx)).await.is_err() {
            self.deployed.vm.force_stop();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, vm_ended(&mut self.deployed.guest_rx)).await;
        }
    }
}

/// Waits for the VM's end (or the channel's).
async fn vm_ended(rx: &mut UnboundedReceiver<GuestMsg>) {
    while let Some(msg) = rx.recv().await {
        if matches!(msg, GuestMsg::VmEnded(_)) {
            return;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends a command to an active deployment's supervisor.
pub(crate) fn send(ctx: &GroupCtx, command: Command) -> Result<(), RuntimeError> {
    let control = lock(&ctx.control);
    let tx: &UnboundedSender<Command> =
        control.as_ref().ok_or_else(|| RuntimeError::NotRunning(ctx.name.clone()))?;
    tx.send(command).map_err(|_| RuntimeError::NotRunning(ctx.name.clone()))
}
