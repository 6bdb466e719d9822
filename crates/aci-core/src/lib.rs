//! # aci-core — the public API of aci
//!
//! A program describes a container group with ACI's field names ([`spec`]) and a
//! [`runtime::Runtime`] runs it in a KVM microVM: it pulls the images ([`images`]), boots
//! the guest with one erofs disk per image, talks to the guest agent ([`agent`]) to run the
//! containers, applies ACI's restart policies, keeps events, logs and state on disk, and
//! meters the requested resources per second.
//!
//! - [`spec`]: container group specs: loading ACI YAML and ARM JSON files, the builder,
//!   and `validate()` with ACI's rules.
//! - [`runtime`]: create, get, list, stop, start, restart, delete; events, logs, exec,
//!   accounting (see `docs/runtime.md`).
//! - [`images`]: pull, verify and cache OCI images and build their erofs rootfs disks.
//! - [`agent`]: connect to a guest agent over the VMM's vsock socket and check versions.
//!
//! ```no_run
//! use aci_core::runtime::Runtime;
//! use aci_core::spec::{Container, ContainerGroup};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().state_dir("/var/lib/aci").build()?;
//! let group = ContainerGroup::builder("hello")
//!     .container(Container::new("app", "docker.io/library/busybox:1.36").command(["sleep", "5"]))
//!     .build()?;
//! runtime.create(group).await?;
//! runtime.stop("hello").await?;
//! println!("billed: {:?}", runtime.usage("hello")?.last().map(|u| &u.charge));
//! # Ok(()) }
//! ```
//!
//! Not wired yet: volumes, liveness/readiness probes, attach, DNS name labels.

pub mod agent;
pub mod images;
pub mod runtime;
pub mod spec;
