//! [`Runtime`]: create, get, list, delete, stop, start and restart container groups.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::accounting::UsageRecord;
use super::builder::{RuntimeBuilder, RuntimeConfig};
use super::clock::{now_ms, rfc3339_ms};
use super::error::RuntimeError;
use super::events::RuntimeEvent;
use super::group::{lock, Command, GroupCtx, Shared};
use super::kept_logs;
use super::state::{RecordStore, StateLock};
use super::status::{ContainerStatus, GroupState, GroupStatus};
use super::supervisor::{send, supervise};
use crate::images::ImageStore;
use crate::spec::ContainerGroup;

/// Runs container groups in microVMs; one per state directory. Cheap to clone (all clones
/// share the groups).
///
/// Operations have ACI's meanings:
/// - [`create`](Self::create): deploy a group (a new one, or a new deployment of a stopped
///   or ended one with the same name); returns once its containers run, or with the step
///   that failed.
/// - [`stop`](Self::stop): stop the containers and release the VM (billing stops); the
///   record stays. [`start`](Self::start): a new deployment of the same spec.
/// - [`restart`](Self::restart): every container restarts in place in the same VM (a group
///   that has ended is started again).
/// - [`delete`](Self::delete): stop and forget the group.
///
/// Must be used inside a multi-threaded tokio runtime. Groups keep running while their
/// supervisor tasks live, even when every `Runtime` handle is dropped; call
/// [`shutdown`](Self::shutdown) first for a clean exit (a VM that dies with its process is
/// reported `Stopped` by the next runtime that opens the state directory).
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    groups: Arc<Mutex<BTreeMap<String, Arc<GroupCtx>>>>,
    _lock: Arc<StateLock>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("state_dir", &self.shared.config.state_dir).finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder; `state_dir` is required.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    pub(crate) fn open(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|source| RuntimeError::StateDir { path: config.state_dir.clone(), source })?;
        let lock_file = StateLock::acquire(&config.state_dir)?;
        let images =
            ImageStore::open(config.images.clone()).map_err(|e| RuntimeError::Images(Box::new(e)))?;
        let store = RecordStore::open(&config.state_dir)?;
        let records = store.load_all()?;
        let nets = match &config.network {
            Some(settings) => Some(super::network::HostNet::open(settings)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            nets,
            images,
            store,
            events: broadcast::channel(1024).0,
            usage: broadcast::channel(256).0,
        });
        let mut groups = BTreeMap::new();
        for mut record in records {
            if record.state.is_active() {
                orphaned(&mut record, &shared);
                shared.store.save(&record)?;
            }
            let spec = record.spec.clone();
            groups.insert(record.name.clone(), Arc::new(GroupCtx::new(shared.clone(), record, spec)));
        }
        super::network::recover_at_open(&shared);
        Ok(Self { shared, groups: Arc::new(Mutex::new(groups)), _lock: Arc::new(lock_file) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// The image store the runtime pulls into.
    pub fn images(&self) -> &ImageStore {
        &self.shared.images
    }

    /// Where the runtime's DNS server answers the host for name labels
    /// ([`super::NetworkSettings::dns_address`]), once a group has been attached.
    pub fn dns_address(&self) -> Option<std::net::SocketAddr> {
        self.shared.nets.as_ref()?.dns_address()
    }

    fn group(&self, name: &str) -> Result<Arc<GroupCtx>, RuntimeError> {
        lock(&self.groups).get(name).cloned().ok_or_else(|| RuntimeError::NotFound(name.to_string()))
    }

    /// Deploys `group` and waits until its containers run. A group with this name that is
    /// still active is an error; a stopped or ended one is redeployed with the new spec.
    ///
    /// ```no_run
    /// use aci_core::runtime::Runtime;
    /// use aci_core::spec::{Container, ContainerGroup};
    /// # async fn run(runtime: Runtime) -> Result<(), Box<dyn std::error::Error>> {
    /// let group = ContainerGroup::builder("hello")
    ///     .container(Container::new("app", "127.0.0.1:5000/busybox:1").command(["echo", "hi"]).cpu(1.0).memory_gb(0.5))
    ///     .build()?;
    /// let status = runtime.create(group).await?;
    /// println!("{} is {}", status.name, status.state.as_str());
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, group: ContainerGroup) -> Result<GroupStatus, RuntimeError> {
        group.validate().map_err(|source| RuntimeError::Invalid { name: group.name.clone(), source })?;
        let ctx = {
            let mut groups = lock(&self.groups);
            match groups.get(&group.name) {
                Some(ctx) => {
                    if ctx.status().state.is_active() {
                        return Err(RuntimeError::Active(group.name.clone()));
                    }
                    *lock(&ctx.spec) = group.clone();
                    ctx.update(|s| s.spec = group.clone());
                    ctx.clone()
                }
                None => {
                    let status = GroupStatus {
                        name: group.name.clone(),
                        spec: group.clone(),
                        state: GroupState::Pending,
                        reason: None,
                        deployment: 0,
                        containers: Vec::new(),
                        events: Vec::new(),
                        usage: Vec::new(),
                        owner_pid: None,
                        updated_at_ms: now_ms(),
                        console_log: None,
                        network: None,
                        ip: None,
                        fqdn: None,
                        published: Vec::new(),
                        deploy_phases: Vec::new(),
                    };
                    let ctx = Arc::new(GroupCtx::new(self.shared.clone(), status, group.clone()));
                    groups.insert(group.name.clone(), ctx.clone());
                    ctx
                }
            }
        };
        self.deploy(&ctx).await
    }

    /// Starts a new deployment of `ctx`'s spec and waits for it to run.
    async fn deploy(&self, ctx: &Arc<GroupCtx>) -> Result<GroupStatus, RuntimeError> {
        let spec = lock(&ctx.spec).clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let number = {
            let mut control = lock(&ctx.control);
            let number = ctx.update(|s| {
                if s.state.is_active() && s.deployment > 0 {
                    return None;
                }
                s.deployment += 1;
                s.state = GroupState::Pending;
                s.reason = None;
                s.owner_pid = Some(std::process::id());
                s.events.clear();
                s.containers = spec
                    .properties
                    .init_containers
                    .iter()
                    .map(|c| ContainerStatus::waiting(&c.name, true))
                    .chain(
                        spec.properties.containers.iter().map(|c| ContainerStatus::waiting(&c.name, false)),
                    )
                    .collect();
                Some(s.deployment)
            });
            let number = number.ok_or_else(|| RuntimeError::Active(ctx.name.clone()))?;
            *control = Some(tx);
            number
        };
        kept_logs::clear(&self.shared.config.state_dir, &ctx.name);
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(supervise(ctx.clone(), spec, number, rx, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => Ok(ctx.status()),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(RuntimeError::SupervisorGone(ctx.name.clone())),
        }
    }

    /// The group's status.
    pub fn get(&self, name: &str) -> Result<GroupStatus, RuntimeError> {
        let ctx = self.group(name)?;
        let mut status = ctx.status();
        if let Some(u) = status.usage.last_mut() {
            u.refresh(now_ms(), &self.shared.config.prices);
        }
        Ok(status)
    }

    /// Every group, by name.
    pub fn list(&self) -> Vec<GroupStatus> {
        let names: Vec<String> = lock(&self.groups).keys().cloned().collect();
        names.iter().filter_map(|n| self.get(n).ok()).collect()
    }

    /// Stops the group's containers and releases its VM (billing stops); the record stays.
    /// Stopping a group that is not active does nothing.
    pub async fn stop(&self, name: &str) -> Result<GroupStatus, RuntimeError> {
        let ctx = self.group(name)?;
        let (tx, rx) = oneshot::channel();
        if send(&ctx, Command::Stop(tx)).is_ok() {
            // An Err means the supervisor had already ended.
            let _ = rx.await;
        }
        Ok(ctx.status())
    }

    /// A new deployment of a stopped or ended group's spec.
    pub async fn start(&self, name: &str) -> Result<GroupStatus, RuntimeError> {
        let ctx = self.group(name)?;
        if ctx.status().state.is_active() {
            return Err(RuntimeError::Active(name.to_string()));
        }
        let spec = lock(&ctx.spec).clone();
        spec.validate().map_err(|source| RuntimeError::Invalid { name: name.to_string(), source })?;
        self.deploy(&ctx).await
    }

    /// Restarts every container in place (same VM); a group that is not active is started.
    pub async fn restart(&self, name: &str) -> Result<GroupStatus, RuntimeError> {
        let ctx = self.group(name)?;
        if !ctx.status().state.is_active() {
            return self.start(name).await;
        }
        let (tx, rx) = oneshot::channel();
        send(&ctx, Command::Restart(tx))?;
        rx.await.map_err(|_| RuntimeError::SupervisorGone(name.to_string()))??;
        Ok(ctx.status())
    }

    /// Stops the group and removes its record.
    pub async fn delete(&self, name: &str) -> Result<(), RuntimeError> {
        self.stop(name).await?;
        lock(&self.groups).remove(name);
        kept_logs::clear(&self.shared.config.state_dir, name);
        self.shared.store.remove(name)
    }

    /// Stops every active group (for a clean process exit).
    pub async fn shutdown(&self) {
        for status in self.list() {
            if status.state.is_active() {
                let _ = self.stop(&status.name).await;
            }
        }
    }

    /// Events of every group from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.shared.events.subscribe()
    }

    /// Usage records of every group from now on: sent at every usage poll and when a
    /// deployment ends.
    pub fn subscribe_usage(&self) -> broadcast::Receiver<UsageRecord> {
        self.shared.usage.subscribe()
    }

    /// The group's usage records, one per deployment (the current one charged up to now).
    pub fn usage(&self, name: &str) -> Result<Vec<UsageRecord>, RuntimeError> {
        Ok(self.get(name)?.usage)
    }

    /// Waits until `condition` holds for the group's status (checked at every change), up
    /// to `timeout`; returns the status that satisfied it.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        condition: impl Fn(&GroupStatus) -> bool,
    ) -> Result<GroupStatus, RuntimeError> {
        let ctx = self.group(name)?;
        let mut changed = ctx.changed.subscribe();
        let wait = async {
            loop {
                let status = ctx.status();
                if condition(&status) {
                    return status;
                }
                if changed.changed().await.is_err() {
                    // The sender lives in ctx, which we hold: cannot happen.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| RuntimeError::Timeout {
            group: name.to_string(),
            what: what.to_string(),
            waited: timeout,
        })
    }

    /// Whether `container` of group `name` was given a stdin pipe (the spec's `stdin`).
    pub(crate) fn container_has_stdin(&self, name: &str, container: &str) -> Result<bool, RuntimeError> {
        let ctx = self.group(name)?;
        let spec = lock(&ctx.spec);
        Ok(spec.properties.containers.iter().any(|c| c.name == container && c.properties.stdin))
    }

    pub(crate) fn agent_of(
        &self,
        name: &str,
        container: &str,
    ) -> Result<super::guest::AgentHandle, RuntimeError> {
        let ctx = self.group(name)?;
        if ctx.status().container(container).is_none() {
            return Err(RuntimeError::NoSuchContainer { group: name.into(), container: container.into() });
        }
        ctx.agent()
    }
}

/// A record that says active, read at open: its VM died with the process that ran it.
fn orphaned(record: &mut GroupStatus, shared: &Shared) {
    let last_seen = record.updated_at_ms;
    record.reason = Some(format!(
        "its VM ended with the process that ran it (pid {}); last seen {}",
        record.owner_pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        rfc3339_ms(last_seen)
    ));
    record.state = GroupState::Stopped;
    record.owner_pid = None;
    for c in record.containers.iter_mut().filter(|c| c.state() != "Terminated") {
        c.current_state.state = Some("Terminated".into());
        c.current_state.detail_status = Some("Unknown".into());
        c.ready = false;
    }
    if let Some(u) = record.usage.last_mut() {
        u.meter.stop(last_seen);
        u.refresh(last_seen, &shared.config.prices);
    }
}
