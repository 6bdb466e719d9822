//! The runtime: container groups deployed into microVMs, with ACI's lifecycle.
//!
//! [`Runtime::builder`] → [`Runtime`]; [`Runtime::create`] deploys a
//! [`ContainerGroup`](crate::spec::ContainerGroup) by named steps (`deploy.rs`, listed in
//! `docs/runtime.md`): validate → pull images (the meter starts) → resolve each container's
//! process → size the VM → boot it with one read-only erofs disk per image → agent hello →
//! events → sandbox → mount images → init containers in order → create and start the
//! containers. A supervisor task per deployment (`supervisor.rs`) then watches exits,
//! applies the restart policy with back-off ([`BackoffPolicy`]), polls usage, and ends the
//! deployment (releasing the VM, stopping the meter) on `stop`, when every container has
//! ended, or when the VM dies.
//!
//! Files, one job each:
//! - `api.rs` — [`Runtime`]: create, get, list, stop, start, restart, delete, wait_for,
//!   subscribe; `builder.rs` — [`RuntimeBuilder`], [`RuntimeConfig`].
//! - `deploy.rs` — the bring-up steps; `supervisor.rs` — the lifecycle task;
//!   `guest.rs` — the VM thread and agent connections; `group.rs` — one group's shared
//!   state.
//! - `resolve.rs` — argv, environment, user and limits from spec + image;
//!   `sizing.rs` — VM size from the requests; `restart.rs` — policies and back-off.
//! - `status.rs` — [`GroupStatus`] (also the on-disk record); `state.rs` — records and
//!   the state-directory lock; `events.rs` — [`RuntimeEvent`]s; `accounting.rs` — the
//!   meter, [`PriceTable`], [`UsageRecord`].
//! - `logs.rs` — [`Runtime::logs`]; `log_sink.rs` — each container's log followed into
//!   files while the deployment runs; `kept_logs.rs` — those files' layout and reading;
//!   `exec.rs` — [`Runtime::exec`]; `attach.rs` — [`Runtime::attach`] (live output and
//!   input of a running container).
//! - `probes.rs` — liveness/readiness: `SetProbes`, `Unhealthy` events, `ready` flags,
//!   liveness restarts, [`Runtime::wait_ready`] (`docs/probes.md`).
//!
//! - `network.rs` — the group's address, tap and published ports (opt-in:
//!   [`RuntimeBuilder::networking`]); `dns_labels.rs` — `dnsNameLabel` → FQDN.
//!
//! - `volumes.rs` — the group's volumes: host side by `aci_storage`'s driver registry,
//!   guest mounts, virtio-fs shares, containers' bind mounts ([`VolumeSettings`]).

mod accounting;
mod api;
mod attach;
mod builder;
mod clock;
mod deploy;
mod dns_labels;
mod error;
mod events;
mod exec;
mod group;
mod guest;
mod kept_logs;
mod log_sink;
mod logs;
mod network;
mod probes;
mod ready_ports;
mod resolve;
mod restart;
mod sizing;
mod state;
mod status;
mod supervisor;
mod volumes;

pub use accounting::{Charge, MeasuredUsage, Meter, PriceTable, UsageRecord};
pub use api::Runtime;
pub use attach::{AttachChunk, AttachError, AttachExit, AttachOptions, AttachStdin, Attachment};
pub use builder::{RuntimeBuilder, RuntimeConfig, GUEST_DIR_ENV};
pub use clock::{rfc3339_ms, rfc3339_ns};
pub use deploy::IMAGE_MOUNT_ROOT;
pub use error::{AgentCallError, RuntimeError, Step, StepError};
pub use events::{EventKind, EventName, RuntimeEvent};
pub use exec::{ExecOutput, ExecRequest};
pub use guest::BootError;
pub use log_sink::{DEFAULT_LOG_FILE_CAP, SYNC_EVERY as LOG_SYNC_EVERY};
pub use logs::{LogLine, LogOptions, LogStreamHandle};
pub use network::{NetworkSettings, DEFAULT_DNS_ZONE};
pub use probes::ProbeSpecError;
pub use resolve::{ContainerInput, ResolveError, DEFAULT_PATH};
pub use restart::{should_restart, BackoffPolicy};
pub use sizing::{size_vm, SizingError, SizingPolicy, VmSize, DEFAULT_OVERHEAD_MIB};
pub use status::{ContainerStatus, GroupState, GroupStatus, PhaseTiming};
pub use volumes::{VolumeSettings, VolumeStepError, VOLUME_MOUNT_FAILED, VOLUME_MOUNT_ROOT};
