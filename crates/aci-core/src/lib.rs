//! # aci-core — the public API of aci
//!
//! This crate will hold the `ContainerGroup` builder and spec types (with ACI's field names),
//! validation, the runtime and group lifecycle, restart policies, probes, events, logs, exec,
//! per-second accounting, image pulling and the layer cache.
//!
//! State: the workspace and the proving ground (guest kernel, agent, nested KVM test runner)
//! exist; the API lands with the container-group issue. Nothing here is usable yet, and
//! nothing pretends to be.
//!
//! Usable now: [`spec`], the container group spec types with ACI's field names: loading ACI
//! YAML and ARM JSON files, the builder, and `validate()` with ACI's rules.
//! [`agent`]: connect to a guest agent over the VMM's vsock socket and check versions.
//! [`images`]: pull, verify and cache OCI images and build their erofs rootfs disks.

pub mod agent;
pub mod images;
pub mod spec;
