//! # aci-vmm — the in-process KVM microVM monitor
//!
//! aci runs each container group in its own microVM, inside the user's process. This crate
//! is that VMM, built on the rust-vmm crates (kvm-ioctls, vm-memory, linux-loader,
//! vm-superio, virtio-queue): vCPUs, direct 64-bit kernel boot, legacy devices, reset
//! handling, and virtio-mmio devices: virtio-blk over host files, virtio-net over a tap,
//! virtio-vsock with a Firecracker-compatible host side of Unix sockets and virtio-fs host
//! directory shares ([`virtio`], `docs/devices.md`).
//!
//! [`VmConfig`] is plain data; [`Vm::build`] turns it into a running [`Vm`] by the named
//! steps listed in [`builder`]; [`Vm::wait`] returns how the guest ended and [`Vm::stop`]
//! ends it by force. [`host`] tells what kind of KVM the machine offers (hardware, PVM or
//! none), which the test tiers and the runtime use to decide where a microVM can run.
//! [`Vm::metrics`] reports exits by kind, bytes per device and boot milestones ([`metrics`]);
//! a guest kernel panic is reported as [`ExitReason::GuestPanic`] (detected on the console,
//! `devices::console_watch`).
//!
//! ```text
//! config ─► caps ─► memory ─► vm_setup ─► devices ─► virtio::attach ─► loader
//!        (+boot_params, mptable, regs) ─► vcpu (cpuid, msrs, regs, lapic)
//!        ─► one thread per vCPU (PIO + MMIO buses) ─► exit
//! ```
//!
//! Virtio queue work happens on one thread per device (`virtio::event_loop`), woken by KVM
//! through ioeventfds; completions reach the guest through irqfds.

pub mod boot_params;
pub mod builder;
pub mod caps;
pub mod config;
pub mod cpuid;
pub mod devices;
pub mod exit;
pub mod host;
pub mod kick;
pub mod lapic;
pub mod layout;
pub mod loader;
pub mod memory;
pub mod metrics;
pub mod mptable;
pub mod msrs;
pub mod regs;
pub mod vcpu;
pub mod virtio;
pub mod vm;
pub mod vm_setup;

pub use builder::BuildError;
pub use config::{
    DiskConfig, NetConfig, SerialInput, SerialOutput, ShareConfig, TapSource, VmConfig, VsockConfig,
    DEFAULT_CMDLINE,
};
pub use exit::{ExitReason, ExitStats};
pub use loader::KernelFormat;
pub use metrics::{BootTimes, DeviceCounts, DeviceKind, DeviceStats, VmMetrics};
pub use vm::{Vm, VmExit};
