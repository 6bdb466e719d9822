//! One group's shared state: its status (mirrored to disk on every change), its spec, its
//! active deployment's control channel and agent, and the helpers that record events and
//! state changes.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::accounting::{PriceTable, UsageRecord};
use super::clock::now_ms;
use super::error::RuntimeError;
use super::events::{aggregate, EventKind, EventName, RuntimeEvent};
use super::guest::AgentHandle;
use super::state::RecordStore;
use super::status::GroupStatus;
use super::RuntimeConfig;
use crate::images::ImageStore;
use crate::spec::ContainerGroup;

/// What every group shares: configuration, images, records, broadcast channels.
pub(crate) struct Shared {
    pub config: RuntimeConfig,
    /// Host networking, when the runtime was built with it.
    pub nets: Option<super::network::HostNet>,
    pub images: ImageStore,
    pub store: RecordStore,
    pub events: broadcast::Sender<RuntimeEvent>,
    pub usage: broadcast::Sender<UsageRecord>,
}

impl Shared {
    /// The network manager and settings, when networking is on; recovers orphaned taps,
    /// leases and namespaces of an earlier process first (once).
    pub async fn network(&self) -> Option<(&super::network::HostNet, &super::network::NetworkSettings)> {
        let nets = self.nets.as_ref()?;
        let settings = self.config.network.as_ref()?;
        nets.ready(settings).await;
        Some((nets, settings))
    }
}

/// A command for a deployment's supervisor.
#[derive(Debug)]
pub(crate) enum Command {
    /// Stop the containers and release the VM; answered when done.
    Stop(oneshot::Sender<()>),
    /// Restart every container in place; answered when the restarts are under way.
    Restart(oneshot::Sender<Result<(), RuntimeError>>),
}

/// One group.
pub(crate) struct GroupCtx {
    pub name: String,
    pub shared: Arc<Shared>,
    status: Mutex<GroupStatus>,
    /// The spec as given (with secret values, unlike the record on disk).
    pub spec: Mutex<ContainerGroup>,
    /// Bumped on every status change.
    pub changed: watch::Sender<u64>,
    /// The active deployment's supervisor.
    pub control: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    /// The active deployment's agent, once it said hello.
    pub agent: Mutex<Option<AgentHandle>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCtx {
    pub fn new(shared: Arc<Shared>, status: GroupStatus, spec: ContainerGroup) -> Self {
        Self {
            name: status.name.clone(),
            shared,
            status: Mutex::new(status),
            spec: Mutex::new(spec),
            changed: watch::channel(0).0,
            control: Mutex::new(None),
            agent: Mutex::new(None),
        }
    }

    /// A copy of the status.
    pub fn status(&self) -> GroupStatus {
        lock(&self.status).clone()
    }

    /// Changes the status, writes the record and wakes waiters.
    pub fn update<R>(&self, f: impl FnOnce(&mut GroupStatus) -> R) -> R {
        let mut status = lock(&self.status);
        let out = f(&mut status);
        status.updated_at_ms = now_ms();
        if let Err(err) = self.shared.store.save(&status) {
            tracing::warn!(group = %self.name, error = %err, "cannot write the group record");
        }
        drop(status);
        self.changed.send_modify(|v| *v += 1);
        out
    }

    /// Records an event (in the container's or the group's list) and broadcasts it.
    pub fn event(
        &self,
        container: Option<&str>,
        name: EventName,
        kind: EventKind,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let event = self.update(|s| {
            let event = RuntimeEvent {
                group: self.name.clone(),
                deployment: s.deployment,
                container: container.map(str::to_string),
                name,
                kind,
                message,
                time_ms: now_ms(),
            };
            match container.and_then(|c| s.container_mut(c)) {
                Some(c) => aggregate(&mut c.events, &event),
                None => aggregate(&mut s.events, &event),
            }
            event
        });
        tracing::debug!(group = %event.group, container = ?event.container, event = event.name.as_str(), "{}", event.message);
        let _ = self.shared.events.send(event);
    }

    /// Refreshes the current usage record's charge (and measurements), writes the record and
    /// broadcasts the usage.
    pub fn refresh_usage(&self, f: impl FnOnce(&mut UsageRecord)) {
        let prices: &PriceTable = &self.shared.config.prices;
        let record = self.update(|s| {
            let u = s.usage.last_mut()?;
            f(u);
            u.refresh(now_ms(), prices);
            Some(u.clone())
        });
        if let Some(r) = record {
            let _ = self.shared.usage.send(r);
        }
    }

    /// The active deployment's agent.
    pub fn agent(&self) -> Result<AgentHandle, RuntimeError> {
        lock(&self.agent).clone().ok_or_else(|| RuntimeError::NotRunning(self.name.clone()))
    }
}
