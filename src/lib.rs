//! # aci — Azure-Container-Instances-style container groups in KVM microVMs
//!
//! `aci` is an embeddable SDK: a program describes a *container group* and the library pulls
//! the images, boots a KVM microVM, runs every container of the group inside it and meters
//! the resources per second. This facade re-exports the workspace crates:
//!
//! - [`core`] (`aci-core`): the public API, spec types, runtime and lifecycle.
//! - [`vmm`] (`aci-vmm`): the in-process KVM microVM monitor.
//! - [`net`] (`aci-net`): host networking for groups.
//! - [`storage`] (`aci-storage`): rootfs images and volumes.
//!
//! See `README.md` for the state of each layer and `docs/` for the design notes.

pub use aci_core as core;
pub use aci_net as net;
pub use aci_storage as storage;
pub use aci_vmm as vmm;
