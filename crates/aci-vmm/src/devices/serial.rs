//! COM1: vm-superio's 16550A UART behind the port I/O bus, raising IRQ 4 through an eventfd
//! that KVM injects as GSI 4 (irqfd).

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use vm_superio::{serial::NoEvents, Serial, Trigger};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::console_watch::{ConsoleMarks, ConsoleWatch};
use super::pio_bus::{DeviceAction, PioDevice};
use crate::config::SerialOutput;

/// COM1's base port.
pub const COM1_PORT: u16 = 0x3f8;
/// Number of UART registers.
pub const COM1_LEN: u16 = 8;
/// COM1's ISA interrupt.
pub const COM1_IRQ: u32 = 4;

/// Why the serial port could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The interrupt eventfd could not be created.
    #[error("could not create the serial interrupt eventfd")]
    CreateEventFd(#[source] io::Error),
    /// The output file could not be created.
    #[error("could not create the serial output file {path}")]
    CreateOutput {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Raises the UART's interrupt by signalling an eventfd.
#[derive(Debug)]
pub struct EventFdTrigger(EventFd);

impl EventFdTrigger {
    /// A trigger with a fresh non-blocking eventfd.
    pub fn new() -> Result<Self, SerialError> {
        EventFd::new(EFD_NONBLOCK).map(Self).map_err(SerialError::CreateEventFd)
    }

    /// The eventfd, to register as irqfd.
    pub fn eventfd(&self) -> &EventFd {
        &self.0
    }
}

impl Trigger for EventFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// A writer that discards everything.
struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens the writer a [`SerialOutput`] names.
pub fn open_output(output: SerialOutput) -> Result<Box<dyn Write + Send>, SerialError> {
    Ok(match output {
        SerialOutput::Sink => Box::new(Discard),
        SerialOutput::Stdout => Box::new(io::stdout()),
        SerialOutput::File(path) => match File::create(&path) {
            Ok(file) => Box::new(file),
            Err(source) => return Err(SerialError::CreateOutput { path, source }),
        },
        SerialOutput::Writer(writer) => writer,
    })
}

/// The UART model, generic over its interrupt trigger so tests need no eventfd.
pub type Uart<T> = Serial<T, NoEvents, Box<dyn Write + Send>>;

/// COM1 as a port I/O device.
pub struct SerialDevice<T: Trigger = EventFdTrigger> {
    uart: Uart<T>,
    failed_writes: u64,
    marks: Arc<ConsoleMarks>,
}

impl<T: Trigger + Send> SerialDevice<T> {
    /// A UART writing to `out` and raising its interrupt with `trigger`.
    pub fn new(trigger: T, out: Box<dyn Write + Send>) -> Self {
        let marks = Arc::new(ConsoleMarks::default());
        let out: Box<dyn Write + Send> = Box::new(ConsoleWatch::new(out, marks.clone()));
        Self { uart: Serial::new(trigger, out), failed_writes: 0, marks }
    }

    /// When the guest first transmitted a byte, if it has.
    pub fn first_output_at(&self) -> Option<Instant> {
        self.marks.first_byte()
    }

    /// The console milestones (first byte, agent ready, kernel panic).
    pub fn marks(&self) -> Arc<ConsoleMarks> {
        self.marks.clone()
    }

    /// Queues input bytes for the guest; returns how many fit in the receive FIFO.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        self.uart.enqueue_raw_bytes(bytes).unwrap_or(0)
    }

    /// Register writes that failed (output errors or interrupt errors).
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes
    }

    /// The interrupt trigger.
    pub fn trigger(&self) -> &T {
        self.uart.interrupt_evt()
    }
}

impl<T: Trigger + Send> PioDevice for SerialDevice<T> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        data.fill(0);
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.uart.read(offset);
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        if let (Some(value), Ok(offset)) = (data.first(), u8::try_from(offset)) {
            if self.uart.write(offset, *value).is_err() {
                self.failed_writes += 1;
            }
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Counts interrupts.
    #[derive(Default)]
    struct CountingTrigger(Cell<u32>);
    // SAFETY: tests use the trigger from one thread only.
    unsafe impl Send for CountingTrigger {}

    impl Trigger for CountingTrigger {
        type E = ();
        fn trigger(&self) -> Result<(), ()> {
            self.0.set(self.0.get() + 1);
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(dev: &mut SerialDevice<CountingTrigger>, offset: u16) -> u8 {
        let mut b = [0u8];
        dev.read(offset, &mut b);
        b[0]
    }

    #[test]
    fn first_output_is_timestamped_only_when_data_is_sent() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut dev = SerialDevice::new(CountingTrigger(Cell::new(0)), Box::new(SharedBuf(buf.clone())));
        assert!(dev.first_output_at().is_none());
        let before = Instant::now();
        dev.write(0, b"x");
        let at = dev.first_output_at().expect("a transmitted byte is timestamped");
        assert!(at >= before);
        dev.write(0, b"y");
        assert_eq!(dev.first_output_at(), Some(at), "only the first byte counts");
        assert_eq!(buf.lock().unwrap().as_slice(), b"xy");
    }

    #[test]
    fn output_reaches_the_sink_and_raises_thr_empty() {
        let buf = SharedBuf::default();
        let mut dev = SerialDevice::new(CountingTrigger::default(), Box::new(buf.clone()));
        dev.write(1, &[0x02]); // IER: THR empty interrupt
        let after_ier = dev.trigger().0.get();
        for b in b"hi\n" {
            read(&mut dev, 2); // the driver acknowledges by reading IIR
            dev.write(0, &[*b]);
        }
        assert_eq!(*buf.0.lock().unwrap(), b"hi\n");
        assert_eq!(dev.trigger().0.get(), after_ier + 3);
        assert_eq!(read(&mut dev, 5) & 0x60, 0x60, "LSR: transmitter empty");
    }

    #[test]
    fn registers_read_back_and_fifo_bits_show() {
        let mut dev = SerialDevice::new(CountingTrigger::default(), Box::new(Discard));
        dev.write(7, &[0x5a]);
        assert_eq!(read(&mut dev, 7), 0x5a, "scratch register");
        dev.write(3, &[0x03]);
        assert_eq!(read(&mut dev, 3), 0x03, "LCR");
        assert_eq!(read(&mut dev, 2) & 0xc0, 0xc0, "IIR: FIFOs enabled (16550A)");
    }

    #[test]
    fn input_is_queued_for_the_guest() {
        let mut dev = SerialDevice::new(CountingTrigger::default(), Box::new(Discard));
        dev.write(1, &[0x01]); // IER: received data interrupt
        assert_eq!(dev.enqueue_input(b"ok"), 2);
        assert_eq!(read(&mut dev, 5) & 1, 1, "LSR: data ready");
        assert_eq!((read(&mut dev, 0), read(&mut dev, 0)), (b'o', b'k'));
        assert_eq!(read(&mut dev, 5) & 1, 0);
    }

    #[test]
    fn file_output_is_created() {
        let path = std::env::temp_dir().join(format!("aci-vmm-serial-{}", std::process::id()));
        let mut out = open_output(SerialOutput::File(path.clone())).unwrap();
        out.write_all(b"x").unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        std::fs::remove_file(&path).unwrap();
    }
}
