//! Legacy devices on the port I/O bus: a 16550A UART, an i8042 that can reset the machine,
//! and a CMOS real-time clock; and the MMIO bus the virtio-mmio transports sit on.

pub mod cmos;
pub mod console_watch;
pub mod i8042;
pub mod mmio_bus;
pub mod pio_bus;
pub mod serial;
