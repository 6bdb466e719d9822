//! The bring-up of one deployment, step by named step (see `docs/runtime.md`):
//!
//! ```text
//! validate ─► pull images (meter starts) ─► resolve containers ─► size the VM ─► volumes
//!   ─► network ─► boot ─► agent hello ─► subscribe events ─► configure sandbox
//!   ─► mount images ─► mount volumes ─► init containers (in order, each to completion)
//!   ─► start containers
//! ```
//! Volumes are `volumes.rs` (host side before boot, guest mounts after the images). Networking is
//! `network.rs`: with a runtime built `.networking(..)` the group gets an address, a tap and
//! its published ports; without, loopback only and a warning event for `ipAddress`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aci_proto::container::{ContainerConfig, Resources};
use aci_proto::message::{AgentEvent, Call, Reply};
use aci_proto::sandbox::{SandboxConfig, StorageMount, StorageSource};
use aci_vmm::{DiskConfig, SerialOutput, VmConfig, VsockConfig};
use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::accounting::{Meter, UsageRecord};
use super::clock::{now_ms, rfc3339_ms};
use super::error::{AgentCallError, Step, StepError};
use super::events::{EventKind, EventName};
use super::group::{lock, GroupCtx};
use super::guest::{AgentHandle, GuestMsg, StreamGuard, VmHandle};
use super::log_sink::LogSink;
use super::network;
use super::probes;
use super::resolve::{container_config, limits, ContainerInput};
use super::sizing::{size_vm, VmSize};
use super::status::PhaseTiming;
use super::volumes::GroupVolumes;
use crate::images::{ImageDisk, RegistryCredential};
use crate::spec::{ContainerGroup, ContainerState};

/// Where image disks are mounted in the guest.
pub const IMAGE_MOUNT_ROOT: &str = "/run/aci/images";

/// A deployment that came up: its VM, agent, events and the containers it started.
pub(crate) struct Deployed {
    pub vm: VmHandle,
    pub agent: AgentHandle,
    pub _events: StreamGuard,
    pub published: Option<aci_net::PublishedPorts>,
    pub guest_rx: UnboundedReceiver<GuestMsg>,
    pub apps: Vec<String>,
    /// The volumes; their host side is undone once the VM is gone (or on drop).
    pub volumes: GroupVolumes,
    /// The containers' kept log files, filled while the deployment runs.
    pub logs: LogSink,
}

/// A failed step and what the deployment had built so far (dropping it releases the VM).
pub(crate) struct Failed {
    pub step: Step,
    pub error: StepError,
}

type StepResult<T> = Result<T, Failed>;

fn at<E: Into<StepError>>(step: Step) -> impl FnOnce(E) -> Failed {
    move |e| Failed { step, error: e.into() }
}

/// One distinct image of the group and its guest disk.
struct ImagePlan {
    reference: String,
    disk: ImageDisk,
    id: String,
}

/// Runs every step; on success the app containers run. On a failure the VM is gone and the
/// logs kept so far are complete on disk.
pub(crate) async fn deploy(ctx: &GroupCtx, spec: &ContainerGroup, number: u32) -> StepResult<Deployed> {
    let config = &ctx.shared.config;
    let logs = LogSink::new(&config.state_dir, &ctx.name, config.log_file_cap);
    let result = bring_up(ctx, spec, number, &logs).await;
    if result.is_err() {
        logs.finish().await;
    }
    result
}

async fn bring_up(
    ctx: &GroupCtx,
    spec: &ContainerGroup,
    number: u32,
    logs: &LogSink,
) -> StepResult<Deployed> {
    let config = &ctx.shared.config;
    let mut phases = Phases::new(ctx);
    spec.validate().map_err(at(Step::Validate))?;
    let probe_sets = probes::agent_probes(spec).map_err(at(Step::Validate))?;

    start_meter(ctx, spec, number);
    let images = pull_images(ctx, spec).await?;
    phases.done(Step::PullImages);
    let (mut inits, mut apps) = resolve_containers(spec, &images).map_err(at(Step::ResolveContainers))?;
    let size = size_vm(spec, &config.sizing).map_err(at(Step::SizeVm))?;
    let mut volumes =
        GroupVolumes::prepare(config, &ctx.name, number, spec).await.map_err(at(Step::Volumes))?;
    volumes.attach(&mut inits);
    volumes.attach(&mut apps);
    let net = network::attach(ctx, spec).await.map_err(at(Step::Network))?;
    phases.done(Step::Network);

    let (tx, mut guest_rx) = mpsc::unbounded_channel();
    let uds = socket_path(ctx, number).map_err(at(Step::Boot))?;
    let mut vm_config = vm_config(ctx, number, &size, &images, &uds).map_err(at(Step::Boot))?;
    vm_config.shares.extend(volumes.shares());
    let (interfaces, dns, published) = match net {
        Some(n) => {
            vm_config.nets.push(n.nic);
            (vec![n.interface], n.dns, n.published)
        }
        None => (Vec::new(), network::loopback_dns(spec), None),
    };
    let vm = tokio::task::spawn_blocking({
        let tx = tx.clone();
        move || VmHandle::boot(vm_config, tx)
    })
    .await
    .map_err(|e| Failed { step: Step::Boot, error: StepError::Task(e) })?
    .map_err(|e| Failed { step: Step::Boot, error: StepError::Boot(e) })?;
    phases.done(Step::Boot);

    let agent = AgentHandle::connect(&uds, config.agent_timeout).await.map_err(at(Step::AgentHello))?;
    phases.done(Step::AgentHello);
    let events = agent.subscribe_events(config.agent_timeout, tx).await.map_err(at(Step::SubscribeEvents))?;
    *lock(&ctx.agent) = Some(agent.clone());

    let sandbox = SandboxConfig {
        hostname: spec.name.clone(),
        clock_unix_ms: now_ms(),
        interfaces,
        dns,
        hosts: volumes.hosts().await,
    };
    agent.call_done(Call::ConfigureSandbox(sandbox)).await.map_err(at(Step::ConfigureSandbox))?;
    for image in &images {
        let mount = StorageMount {
            id: image.id.clone(),
            mount_point: format!("{IMAGE_MOUNT_ROOT}/{}", image.id),
            source: StorageSource::Block { serial: image.id.clone(), fs_type: "erofs".into() },
            read_only: true,
        };
        agent.call_done(Call::MountStorage(mount)).await.map_err(at(Step::MountImages))?;
    }
    phases.done(Step::MountImages);
    let apps = volumes.mount_all(ctx, &agent, &inits, apps).await.map_err(at(Step::MountVolumes))?;
    phases.done(Step::MountVolumes);

    for init in inits {
        run_init(ctx, &agent, logs, &mut guest_rx, init).await?;
    }
    phases.done(Step::InitContainers);
    let mut names = Vec::new();
    for app in apps {
        names.push(app.name.clone());
        probes::send(&agent, &probe_sets, &app.name).await.map_err(at(Step::StartContainers))?;
        create_and_start(ctx, &agent, logs, app).await.map_err(at(Step::StartContainers))?;
    }
    phases.done(Step::StartContainers);
    Ok(Deployed { vm, agent, _events: events, published, guest_rx, apps: names, volumes, logs: logs.clone() })
}

/// Records how long each phase of the deployment took, in the group's status.
struct Phases<'a> {
    ctx: &'a GroupCtx,
    last: std::time::Instant,
}

impl<'a> Phases<'a> {
    fn new(ctx: &'a GroupCtx) -> Self {
        ctx.update(|s| s.deploy_phases.clear());
        Self { ctx, last: std::time::Instant::now() }
    }

    /// The phase ending with `step` (and the cheap steps before it) is over.
    fn done(&mut self, step: Step) {
        let ms = self.last.elapsed().as_secs_f64() * 1000.0;
        self.last = std::time::Instant::now();
        self.ctx.update(|s| s.deploy_phases.push(PhaseTiming { step: step.to_string(), ms }));
    }
}

/// The meter starts as the first pull starts (ACI's rule).
fn start_meter(ctx: &GroupCtx, spec: &ContainerGroup, number: u32) {
    let meter = Meter::start(now_ms(), spec.total_cpu(), spec.total_memory_in_gb());
    let record = UsageRecord::new(&ctx.name, number, meter, now_ms(), &ctx.shared.config.prices);
    ctx.update(|s| s.usage.push(record));
}

/// Step: pull every distinct image (concurrently) and build its disk.
async fn pull_images(ctx: &GroupCtx, spec: &ContainerGroup) -> StepResult<Vec<ImagePlan>> {
    let props = &spec.properties;
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order = Vec::new();
    let pairs = props
        .init_containers
        .iter()
        .map(|c| (c.properties.image.as_str(), c.name.as_str()))
        .chain(props.containers.iter().map(|c| (c.properties.image.as_str(), c.name.as_str())));
    for (image, container) in pairs {
        if !users.contains_key(image) {
            order.push(image);
        }
        users.entry(image).or_default().push(container);
    }
    let credentials: Vec<RegistryCredential> = props
        .image_registry_credentials
        .iter()
        .filter_map(|c| {
            Some(RegistryCredential {
                server: c.server.clone(),
                username: c.username.clone()?,
                password: c.password.as_ref()?.expose()?.to_string(),
            })
        })
        .collect();
    let pulls = order.iter().map(|image| {
        let credentials = &credentials;
        let containers = &users[image];
        async move {
            for c in containers {
                ctx.event(
                    Some(c),
                    EventName::Pulling,
                    EventKind::Normal,
                    format!("pulling image \"{image}\""),
                );
            }
            let started = std::time::Instant::now();
            let result = ctx.shared.images.prepare(image, credentials, ctx.shared.config.pull_policy).await;
            for c in containers {
                match &result {
                    Ok(_) => ctx.event(
                        Some(c),
                        EventName::Pulled,
                        EventKind::Normal,
                        format!(
                            "Successfully pulled image \"{image}\" in {:.3}s",
                            started.elapsed().as_secs_f64()
                        ),
                    ),
                    Err(err) => ctx.event(
                        Some(c),
                        EventName::Failed,
                        EventKind::Warning,
                        format!("Failed to pull image \"{image}\": {}", error_chain(err)),
                    ),
                }
            }
            result.map(|disk| (image.to_string(), disk)).map_err(|source| Failed {
                step: Step::PullImages,
                error: StepError::Image { image: image.to_string(), source: Box::new(source) },
            })
        }
    });
    let pulled = futures_util::future::try_join_all(pulls).await?;
    // One disk per distinct manifest (two tags of one image share it).
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut plans = Vec::new();
    for (reference, disk) in pulled {
        let next = format!("img{}", ids.len());
        let id = ids.entry(disk.manifest_digest.clone()).or_insert(next).clone();
        plans.push(ImagePlan { reference, disk, id });
    }
    Ok(plans)
}

/// The text of an error and its sources, `: `-separated.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Step: each container's process from its spec and image.
fn resolve_containers(
    spec: &ContainerGroup,
    images: &[ImagePlan],
) -> Result<(Vec<ContainerConfig>, Vec<ContainerConfig>), StepError> {
    let resolve = |input: ContainerInput| -> Result<ContainerConfig, StepError> {
        let plan = images
            .iter()
            .find(|plan| plan.reference == input.image)
            .ok_or_else(|| StepError::Unsupported(format!("image {} not pulled", input.image)))?;
        Ok(container_config(&input, &plan.disk.config, &mount_point(&plan.id))?)
    };
    // Init containers run without cgroup limits (as before); app containers get theirs.
    let inits = spec
        .properties
        .init_containers
        .iter()
        .map(|c| {
            let p = &c.properties;
            resolve(ContainerInput {
                name: &c.name,
                image: &p.image,
                command: &p.command,
                env: &p.environment_variables,
                security: p.security_context.as_ref(),
                resources: Resources::default(),
            })
        })
        .collect::<Result<Vec<_>, StepError>>()?;
    let apps = spec
        .properties
        .containers
        .iter()
        .map(|c| {
            let p = &c.properties;
            resolve(ContainerInput {
                name: &c.name,
                image: &p.image,
                command: &p.command,
                env: &p.environment_variables,
                security: p.security_context.as_ref(),
                resources: limits(&p.resources),
            })
            .map(|config| ContainerConfig { stdin: p.stdin, ..config })
        })
        .collect::<Result<Vec<_>, StepError>>()?;
    Ok((inits, apps))
}

fn mount_point(id: &str) -> String {
    format!("{IMAGE_MOUNT_ROOT}/{id}")
}

/// The vsock socket of deployment `number` (short: Unix socket paths are limited).
fn socket_path(ctx: &GroupCtx, number: u32) -> Result<PathBuf, StepError> {
    let dir = &ctx.shared.config.socket_dir;
    std::fs::create_dir_all(dir).map_err(|source| StepError::Dir { path: dir.clone(), source })?;
    let hash = ctx
        .name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{:08x}-{}-{number}.vsock", hash as u32, std::process::id()));
    let _ = std::fs::remove_file(&path);
    Ok(path)
}

/// Step input for boot: the VM's configuration.
fn vm_config(
    ctx: &GroupCtx,
    number: u32,
    size: &VmSize,
    images: &[ImagePlan],
    uds: &std::path::Path,
) -> Result<VmConfig, StepError> {
    let config = &ctx.shared.config;
    let consoles = config.state_dir.join("consoles");
    std::fs::create_dir_all(&consoles).map_err(|source| StepError::Dir { path: consoles.clone(), source })?;
    let mut vm = VmConfig::new(&config.guest_kernel);
    vm.vcpus = size.vcpus;
    vm.memory_mib = size.memory_mib;
    vm.initrd = Some(config.guest_initrd.clone());
    vm.cmdline = config.kernel_cmdline.clone();
    let console = consoles.join(format!("{}-{number}.log", ctx.name));
    ctx.update(|s| s.console_log = Some(console.clone()));
    vm.serial_output = SerialOutput::File(console);
    vm.vsock = Some(VsockConfig { guest_cid: 3, uds_path: uds.to_path_buf() });
    vm.rng = true;
    let mut seen = Vec::new();
    for image in images {
        if !seen.contains(&image.id) {
            seen.push(image.id.clone());
            vm.disks.push(DiskConfig {
                path: image.disk.path.clone(),
                read_only: true,
                serial: Some(image.id.clone()),
            });
        }
    }
    Ok(vm)
}

/// Creates and starts one container, recording Created, Started and the Running state; its
/// log is followed into `logs` from before it starts.
pub(crate) async fn create_and_start(
    ctx: &GroupCtx,
    agent: &AgentHandle,
    logs: &LogSink,
    config: ContainerConfig,
) -> Result<(), AgentCallError> {
    let name = config.name.clone();
    if let Err(err) = agent.call_done(Call::CreateContainer(config)).await {
        ctx.event(
            Some(&name),
            EventName::Failed,
            EventKind::Warning,
            format!("Error: {}", error_chain(&err)),
        );
        return Err(err);
    }
    ctx.event(Some(&name), EventName::Created, EventKind::Normal, "Created container");
    if let Err(err) = logs.follow(agent.uds(), &name, ctx.shared.config.agent_timeout).await {
        let why = error_chain(&err);
        tracing::warn!(group = %ctx.name, container = %name, "its logs will not be kept: {why}");
    }
    start(ctx, agent, &name).await
}

/// Starts (or restarts in place) a created container.
pub(crate) async fn start(ctx: &GroupCtx, agent: &AgentHandle, name: &str) -> Result<(), AgentCallError> {
    match agent.call(Call::StartContainer { name: name.to_string() }).await {
        Ok(Reply::Started { .. }) => {
            ctx.update(|s| {
                if let Some(c) = s.container_mut(name) {
                    c.current_state = ContainerState {
                        state: Some("Running".into()),
                        start_time: Some(rfc3339_ms(now_ms())),
                        detail_status: Some(String::new()),
                        ..Default::default()
                    };
                }
            });
            ctx.event(Some(name), EventName::Started, EventKind::Normal, "Started container");
            Ok(())
        }
        Ok(other) => Err(AgentCallError::Unexpected(format!("{other:?}"))),
        Err(err) => {
            ctx.event(
                Some(name),
                EventName::Failed,
                EventKind::Warning,
                format!("Error: {}", error_chain(&err)),
            );
            Err(err)
        }
    }
}

/// The ACI state of a run that ended.
pub(crate) fn terminated(
    status: &aci_proto::container::ExitStatus,
    start_time: Option<String>,
) -> ContainerState {
    let detail = if status.oom_killed {
        "OOMKilled"
    } else if status.code == 0 {
        "Completed"
    } else {
        "Error"
    };
    ContainerState {
        state: Some("Terminated".into()),
        start_time: (status.started_at_ms > 0).then(|| rfc3339_ms(status.started_at_ms)).or(start_time),
        exit_code: Some(status.code),
        finish_time: Some(rfc3339_ms(if status.finished_at_ms > 0 {
            status.finished_at_ms
        } else {
            now_ms()
        })),
        detail_status: Some(detail.into()),
    }
}

/// Step: one init container, run to completion; a non-zero exit fails the deployment.
async fn run_init(
    ctx: &GroupCtx,
    agent: &AgentHandle,
    logs: &LogSink,
    guest_rx: &mut UnboundedReceiver<GuestMsg>,
    config: ContainerConfig,
) -> StepResult<()> {
    let name = config.name.clone();
    create_and_start(ctx, agent, logs, config).await.map_err(at(Step::InitContainers))?;
    let status = loop {
        match guest_rx.recv().await {
            Some(GuestMsg::Agent(AgentEvent::ContainerExited { name: n, status })) if n == name => {
                break status
            }
            Some(GuestMsg::Agent(_)) => continue,
            Some(GuestMsg::EventsClosed(why)) => {
                return Err(Failed { step: Step::InitContainers, error: StepError::VmEnded(why) })
            }
            Some(GuestMsg::VmEnded(exit)) => {
                return Err(Failed {
                    step: Step::InitContainers,
                    error: StepError::VmEnded(format!("{:?}", exit.reason)),
                })
            }
            None => {
                return Err(Failed {
                    step: Step::InitContainers,
                    error: StepError::VmEnded("channel closed".into()),
                })
            }
        }
    };
    ctx.update(|s| {
        if let Some(c) = s.container_mut(&name) {
            let start = c.current_state.start_time.clone();
            c.current_state = terminated(&status, start);
        }
    });
    if status.code != 0 {
        ctx.event(
            Some(&name),
            EventName::Failed,
            EventKind::Warning,
            format!("init container exited with code {}", status.code),
        );
        return Err(Failed {
            step: Step::InitContainers,
            error: StepError::InitFailed { container: name, exit_code: status.code },
        });
    }
    Ok(())
}
