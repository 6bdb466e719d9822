//! Turns a [`VmConfig`] into a running [`Vm`], one named step at a time:
//!
//! 1. [`check_kvm`]: open `/dev/kvm`, check the API version and capabilities.
//! 2. [`create_guest_memory`]: RAM with the 32-bit MMIO gap left out.
//! 3. [`create_vm`]: VM, TSS and identity-map addresses, irqchip, PIT, memory slots.
//! 4. [`add_legacy_devices`]: COM1 (irqfd on GSI 4), i8042, CMOS on the port I/O bus.
//!    4b. [`add_virtio_devices`]: disks, taps and vsock behind virtio-mmio transports on the MMIO
//!    bus (irqfd, ioeventfd), declared on the command line (see [`crate::virtio::attach`]).
//! 5. [`load_guest`]: kernel, command line, initrd, zero page, MP table, boot page tables.
//! 6. [`create_vcpus`]: CPUID, MSRs, FPU, registers, LAPIC for each vCPU.
//! 7. [`start`]: one thread per vCPU, plus the serial input pump if there is input.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

use crate::caps::{check_kvm, CapsError};
use crate::config::{SerialInput, SerialOutput, VmConfig, MAX_VCPUS};
use crate::devices::cmos::{Cmos, CMOS_LEN, CMOS_PORT};
use crate::devices::i8042::{I8042Port, I8042_COMMAND_PORT, I8042_DATA_PORT};
use crate::devices::mmio_bus::MmioBus;
use crate::devices::pio_bus::{lock, PioBus, PioBusError};
use crate::devices::serial::{
    open_output, EventFdTrigger, SerialDevice, SerialError, COM1_IRQ, COM1_LEN, COM1_PORT,
};
use crate::exit::RunState;
use crate::kick::{self, KickError};
use crate::loader::{self, BootInfo, LoadError, LoadInput};
use crate::memory::{create_guest_memory, GuestMem, MemoryError};
use crate::metrics::{device_name, DeviceCounters, DeviceKind};
use crate::regs::{write_boot_tables, RegsError};
use crate::vcpu::{create_vcpu, Buses, VcpuError, VcpuRunner};
use crate::virtio::attach::{attach_devices, devices_from_config, AttachError};
use crate::virtio::{device_type, VirtioDevice};
use crate::vm::Vm;
use crate::vm_setup::{create_vm, VmSetupError};

/// Why the VM could not be built; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration asks for something impossible.
    #[error("invalid VM configuration: {0}")]
    InvalidConfig(String),
    /// Step 1.
    #[error("KVM is not usable")]
    CheckKvm(#[source] CapsError),
    /// Step 2.
    #[error("could not create guest memory")]
    CreateMemory(#[source] MemoryError),
    /// Step 3.
    #[error("could not create the VM")]
    CreateVm(#[source] VmSetupError),
    /// Step 4: the serial port.
    #[error("could not set up the serial port")]
    AddSerial(#[source] SerialError),
    /// Step 4: the serial irqfd.
    #[error("could not register the serial interrupt with KVM")]
    RegisterIrqfd(#[source] kvm_ioctls::Error),
    /// Step 4: a port range.
    #[error("could not place a legacy device on the port bus")]
    AddDevice(#[source] PioBusError),
    /// Step 4b.
    #[error("could not add the virtio devices")]
    AddVirtioDevices(#[source] AttachError),
    /// Step 5.
    #[error("could not load the guest")]
    LoadGuest(#[source] LoadError),
    /// Step 5: boot page tables and GDT.
    #[error("could not write the boot tables")]
    WriteBootTables(#[source] RegsError),
    /// Step 6: supported CPUID.
    #[error("could not read the CPUID KVM supports")]
    GetSupportedCpuid(#[source] kvm_ioctls::Error),
    /// Step 6.
    #[error("could not create vCPU {index}")]
    CreateVcpu {
        /// The vCPU.
        index: u8,
        /// What failed.
        #[source]
        source: VcpuError,
    },
    /// Step 7: the kick signal handler.
    #[error("could not prepare vCPU threads")]
    InstallKick(#[source] KickError),
    /// Step 7: a thread.
    #[error("could not start a VMM thread")]
    SpawnThread(#[source] std::io::Error),
}

impl Vm {
    /// Builds and boots the VM `config` describes.
    ///
    /// ```no_run
    /// use aci_vmm::{SerialOutput, Vm, VmConfig};
    ///
    /// let mut config = VmConfig::new("target/guest/vmlinux");
    /// config.initrd = Some("target/guest/initramfs.cpio.gz".into());
    /// config.vcpus = 2;
    /// config.serial_output = SerialOutput::Stdout;
    /// let mut vm = Vm::build(config)?;
    /// println!("guest ended: {:?}", vm.wait().reason);
    /// # Ok::<(), aci_vmm::BuildError>(())
    /// ```
    pub fn build(config: VmConfig) -> Result<Vm, BuildError> {
        let started = Instant::now();
        let created = SystemTime::now();
        let mut timings = StepTimings::new(started);
        validate(&config)?;
        let mut config = config;
        let serial_output = std::mem::replace(&mut config.serial_output, SerialOutput::Sink);
        let serial_input = config.serial_input.take();
        let kvm = check_kvm().map_err(BuildError::CheckKvm)?;
        timings.step("check_kvm");
        let memory = create_guest_memory(config.memory_bytes()).map_err(BuildError::CreateMemory)?;
        timings.step("create_guest_memory");
        let vm = create_vm(&kvm, &memory).map_err(BuildError::CreateVm)?;
        timings.step("create_vm");
        let (bus, serial) = add_legacy_devices(&vm, serial_output)?;
        timings.step("add_legacy_devices");
        let (mmio, devices) = add_virtio_devices(&vm, &memory, &mut config)?;
        timings.step("add_virtio_devices");
        let bus = Buses { pio: bus, mmio };
        let boot = load_guest(&memory, &config)?;
        timings.step("load_guest");
        let vcpus = create_vcpus(&kvm, &vm, &config, &boot)?;
        timings.step("create_vcpus");
        let input = StartInput {
            vm,
            memory,
            bus,
            serial,
            vcpus,
            input: serial_input,
            boot,
            started,
            created,
            devices,
        };
        let mut vm = start(input)?;
        timings.step("start");
        vm.built = started.elapsed();
        vm.build_timings = timings.steps;
        Ok(vm)
    }
}

impl TryFrom<VmConfig> for Vm {
    type Error = BuildError;

    fn try_from(config: VmConfig) -> Result<Self, Self::Error> {
        Vm::build(config)
    }
}

/// How long each build step took.
struct StepTimings {
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl StepTimings {
    fn new(started: Instant) -> Self {
        Self { last: started, steps: Vec::with_capacity(8) }
    }

    fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }
}

fn validate(config: &VmConfig) -> Result<(), BuildError> {
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return Err(BuildError::InvalidConfig(format!(
            "{} vCPUs requested; 1 to {MAX_VCPUS} are supported",
            config.vcpus
        )));
    }
    Ok(())
}

/// Step 4: the legacy devices on a new port I/O bus.
pub fn add_legacy_devices(
    vm: &VmFd,
    output: SerialOutput,
) -> Result<(PioBus, Arc<Mutex<SerialDevice>>), BuildError> {
    let trigger = EventFdTrigger::new().map_err(BuildError::AddSerial)?;
    vm.register_irqfd(trigger.eventfd(), COM1_IRQ).map_err(BuildError::RegisterIrqfd)?;
    let output = open_output(output).map_err(BuildError::AddSerial)?;
    let serial = Arc::new(Mutex::new(SerialDevice::new(trigger, output)));
    let mut bus = PioBus::new();
    bus.register(COM1_PORT, COM1_LEN, serial.clone()).map_err(BuildError::AddDevice)?;
    let (i8042_data, i8042_command) = I8042Port::pair();
    bus.register(I8042_DATA_PORT, 1, Arc::new(Mutex::new(i8042_data))).map_err(BuildError::AddDevice)?;
    bus.register(I8042_COMMAND_PORT, 1, Arc::new(Mutex::new(i8042_command)))
        .map_err(BuildError::AddDevice)?;
    bus.register(CMOS_PORT, CMOS_LEN, Arc::new(Mutex::new(Cmos::default())))
        .map_err(BuildError::AddDevice)?;
    Ok((bus, serial))
}

/// One device's name, kind and live counters, for [`crate::Vm::metrics`].
pub type DeviceMeter = (String, DeviceKind, Arc<DeviceCounters>);

/// Step 4b: the configured virtio devices on a new MMIO bus; their `virtio_mmio.device=`
/// entries are appended to `config.cmdline`. Returns the bus and each device's counters.
pub fn add_virtio_devices(
    vm: &VmFd,
    memory: &GuestMem,
    config: &mut VmConfig,
) -> Result<(MmioBus, Vec<DeviceMeter>), BuildError> {
    let devices = devices_from_config(config).map_err(BuildError::AddVirtioDevices)?;
    let meters = device_meters(&devices);
    let mut bus = MmioBus::new();
    let placements = attach_devices(vm, memory, &mut bus, devices).map_err(BuildError::AddVirtioDevices)?;
    for place in placements {
        config.cmdline.push(' ');
        config.cmdline.push_str(&place.cmdline_entry());
    }
    Ok((bus, meters))
}

/// Names the devices as the guest does (`vda`, `eth0`, ...) and takes their counters.
fn device_meters(devices: &[Box<dyn VirtioDevice>]) -> Vec<DeviceMeter> {
    let mut seen: Vec<DeviceKind> = Vec::new();
    let mut meters = Vec::with_capacity(devices.len());
    for device in devices {
        let kind = match device.device_type() {
            device_type::BLOCK => DeviceKind::Block,
            device_type::NET => DeviceKind::Net,
            device_type::VSOCK => DeviceKind::Vsock,
            device_type::FS => DeviceKind::Fs,
            _ => DeviceKind::Rng,
        };
        let index = seen.iter().filter(|k| **k == kind).count();
        seen.push(kind);
        meters.push((device_name(kind, index), kind, device.counters()));
    }
    meters
}

/// Step 5: everything the guest finds in memory at boot.
pub fn load_guest(memory: &GuestMem, config: &VmConfig) -> Result<BootInfo, BuildError> {
    let input = LoadInput {
        kernel: &config.kernel,
        initrd: config.initrd.as_deref(),
        cmdline: &config.cmdline,
        mem_bytes: config.memory_bytes(),
        vcpus: config.vcpus,
    };
    let boot = loader::load(memory, &input).map_err(BuildError::LoadGuest)?;
    write_boot_tables(memory).map_err(BuildError::WriteBootTables)?;
    Ok(boot)
}

/// Step 6: the configured vCPUs, boot vCPU first.
pub fn create_vcpus(
    kvm: &Kvm,
    vm: &VmFd,
    config: &VmConfig,
    boot: &BootInfo,
) -> Result<Vec<VcpuFd>, BuildError> {
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(BuildError::GetSupportedCpuid)?;
    (0..config.vcpus)
        .map(|index| {
            create_vcpu(vm, &supported, index, config.vcpus, boot)
                .map_err(|source| BuildError::CreateVcpu { index, source })
        })
        .collect()
}

/// Inputs of [`start`].
pub struct StartInput {
    vm: VmFd,
    memory: GuestMem,
    bus: Buses,
    serial: Arc<Mutex<SerialDevice>>,
    vcpus: Vec<VcpuFd>,
    input: Option<SerialInput>,
    boot: BootInfo,
    started: Instant,
    created: SystemTime,
    devices: Vec<DeviceMeter>,
}

/// Step 7: a thread per vCPU, and the serial input pump.
pub fn start(input: StartInput) -> Result<Vm, BuildError> {
    kick::install_handler().map_err(BuildError::InstallKick)?;
    let console = lock(&input.serial).marks();
    let state = Arc::new(RunState::new(console.clone()));
    let bus = Arc::new(input.bus);
    let mut vm = Vm {
        state: state.clone(),
        vcpu_threads: Vec::with_capacity(input.vcpus.len()),
        bus: bus.clone(),
        serial: input.serial.clone(),
        console,
        devices: input.devices,
        created: input.created,
        built: Duration::ZERO,
        started: input.started,
        format: input.boot.format,
        build_timings: Vec::new(),
        _vm: input.vm,
        _memory: input.memory,
    };
    for (index, fd) in (0u8..).zip(input.vcpus) {
        let runner = VcpuRunner { fd, index, bus: bus.clone(), state: state.clone() };
        let thread = std::thread::Builder::new()
            .name(format!("aci-vcpu{index}"))
            .spawn(move || runner.run())
            .map_err(BuildError::SpawnThread)?;
        // On error, dropping `vm` stops and joins the threads started so far.
        vm.vcpu_threads.push(thread);
    }
    if let Some(SerialInput(reader)) = input.input {
        std::thread::Builder::new()
            .name("aci-serial-in".to_string())
            .spawn(move || pump_serial_input(reader, &input.serial, &state))
            .map_err(BuildError::SpawnThread)?;
    }
    Ok(vm)
}

/// Copies bytes from `reader` into the UART's receive FIFO until EOF or the VM ends. The
/// thread is detached: a blocked read cannot be interrupted portably.
fn pump_serial_input(mut reader: Box<dyn Read + Send>, serial: &Mutex<SerialDevice>, state: &RunState) {
    let mut buf = [0u8; 64];
    while !state.should_stop() {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut pending = &buf[..n];
        while !pending.is_empty() && !state.should_stop() {
            let taken = lock(serial).enqueue_input(pending);
            pending = &pending[taken..];
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
