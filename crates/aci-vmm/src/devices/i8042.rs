//! A minimal i8042 keyboard controller.
//!
//! Linux's i8042 driver talks to the controller at boot (reads and writes the command byte,
//! flushes the output buffer); a controller that never answers makes it poll the status port
//! ten thousand times, each poll a VM exit. This model answers the controller commands from
//! its output buffer, and resets the machine on 0xFE (pulse reset line), which `reboot=k`
//! uses. There is no keyboard behind it: keyboard commands get no reply (the kernel's atkbd
//! probe times out in the background) and no IRQ 1 is raised.
//!
//! The controller's two ports are registered separately (0x61-0x63 belong to other
//! hardware); [`I8042Port`] tells the shared controller which one was accessed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::pio_bus::{lock, DeviceAction, PioDevice};

/// The controller's data port.
pub const I8042_DATA_PORT: u16 = 0x60;
/// The controller's status (read) and command (write) port.
pub const I8042_COMMAND_PORT: u16 = 0x64;

/// Status: output buffer full.
const STATUS_OBF: u8 = 0x01;
/// Status: system flag (self-test passed).
const STATUS_SYS: u8 = 0x04;
/// Status: last write was a command.
const STATUS_CMD: u8 = 0x08;
/// Status: keyboard not inhibited (no key lock).
const STATUS_UNLOCKED: u8 = 0x10;
/// Command byte after power-on: keyboard interrupt on, system flag, translation.
const CTR_DEFAULT: u8 = 0x45;
/// Command byte bit: keyboard disabled.
const CTR_KBD_DISABLED: u8 = 0x10;
/// Command byte bit: aux disabled.
const CTR_AUX_DISABLED: u8 = 0x20;
/// Bytes the output buffer holds.
const OUT_CAPACITY: usize = 16;

/// Controller commands.
const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_DISABLE_AUX: u8 = 0xa7;
const CMD_ENABLE_AUX: u8 = 0xa8;
const CMD_TEST_AUX: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_TEST_KBD: u8 = 0xab;
const CMD_DISABLE_KBD: u8 = 0xad;
const CMD_ENABLE_KBD: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_WRITE_KBD_BUFFER: u8 = 0xd2;
const CMD_RESET: u8 = 0xfe;

/// Self-test passed.
const SELF_TEST_OK: u8 = 0x55;
/// Interface test passed.
const INTERFACE_OK: u8 = 0x00;

/// The controller state.
#[derive(Debug)]
pub struct I8042 {
    ctr: u8,
    output_port: u8,
    out: VecDeque<u8>,
    /// A command waiting for its data byte.
    pending: Option<u8>,
    last_was_command: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self {
            ctr: CTR_DEFAULT,
            output_port: 0x01,
            out: VecDeque::new(),
            pending: None,
            last_was_command: false,
        }
    }
}

impl I8042 {
    fn push(&mut self, byte: u8) {
        if self.out.len() < OUT_CAPACITY {
            self.out.push_back(byte);
        }
    }

    fn status(&self) -> u8 {
        let mut status = STATUS_SYS | STATUS_UNLOCKED;
        if !self.out.is_empty() {
            status |= STATUS_OBF;
        }
        if self.last_was_command {
            status |= STATUS_CMD;
        }
        status
    }

    fn read_data(&mut self) -> u8 {
        self.out.pop_front().unwrap_or(0)
    }

    fn command(&mut self, cmd: u8) -> DeviceAction {
        self.last_was_command = true;
        self.pending = None;
        match cmd {
            CMD_READ_CTR => self.push(self.ctr),
            CMD_WRITE_CTR | CMD_WRITE_OUTPUT_PORT | CMD_WRITE_KBD_BUFFER => self.pending = Some(cmd),
            CMD_DISABLE_AUX => self.ctr |= CTR_AUX_DISABLED,
            CMD_ENABLE_AUX => self.ctr &= !CTR_AUX_DISABLED,
            CMD_DISABLE_KBD => self.ctr |= CTR_KBD_DISABLED,
            CMD_ENABLE_KBD => self.ctr &= !CTR_KBD_DISABLED,
            CMD_SELF_TEST => self.push(SELF_TEST_OK),
            CMD_TEST_KBD | CMD_TEST_AUX => self.push(INTERFACE_OK),
            CMD_READ_OUTPUT_PORT => self.push(self.output_port),
            CMD_RESET => return DeviceAction::Reset,
            _ => {}
        }
        DeviceAction::None
    }

    fn write_data(&mut self, byte: u8) {
        self.last_was_command = false;
        match self.pending.take() {
            Some(CMD_WRITE_CTR) => self.ctr = byte,
            Some(CMD_WRITE_OUTPUT_PORT) => self.output_port = byte,
            Some(CMD_WRITE_KBD_BUFFER) => self.push(byte),
            // A byte for the keyboard: there is none, so no reply.
            _ => {}
        }
    }
}

/// One of the controller's two ports, sharing one [`I8042`].
#[derive(Debug, Clone)]
pub struct I8042Port {
    controller: Arc<Mutex<I8042>>,
    command_port: bool,
}

impl I8042Port {
    /// The data (0x60) and command/status (0x64) ports of a new controller.
    pub fn pair() -> (Self, Self) {
        let controller = Arc::new(Mutex::new(I8042::default()));
        (
            Self { controller: controller.clone(), command_port: false },
            Self { controller, command_port: true },
        )
    }
}

impl PioDevice for I8042Port {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0);
        let mut controller = lock(&self.controller);
        if let Some(first) = data.first_mut() {
            *first = if self.command_port { controller.status() } else { controller.read_data() };
        }
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> DeviceAction {
        let Some(&byte) = data.first() else {
            return DeviceAction::None;
        };
        let mut controller = lock(&self.controller);
        if self.command_port {
            controller.command(byte)
        } else {
            controller.write_data(byte);
            DeviceAction::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(port: &mut I8042Port) -> u8 {
        let mut b = [0xffu8];
        port.read(0, &mut b);
        b[0]
    }

    #[test]
    fn reset_command_resets_and_nothing_else_does() {
        let (mut data, mut cmd) = I8042Port::pair();
        assert_eq!(cmd.write(0, &[0xfe]), DeviceAction::Reset);
        assert_eq!(cmd.write(0, &[0xad]), DeviceAction::None);
        assert_eq!(data.write(0, &[0xfe]), DeviceAction::None);
        assert_eq!(read(&mut cmd) & STATUS_OBF, 0, "no reply to keyboard bytes");
    }

    #[test]
    fn command_byte_reads_back_through_the_output_buffer() {
        let (mut data, mut cmd) = I8042Port::pair();
        cmd.write(0, &[CMD_READ_CTR]);
        assert_eq!(read(&mut cmd) & STATUS_OBF, STATUS_OBF);
        assert_eq!(read(&mut data), CTR_DEFAULT);
        assert_eq!(read(&mut cmd) & STATUS_OBF, 0);
        cmd.write(0, &[CMD_WRITE_CTR]);
        data.write(0, &[0x61]);
        cmd.write(0, &[CMD_READ_CTR]);
        assert_eq!(read(&mut data), 0x61);
        cmd.write(0, &[CMD_SELF_TEST]);
        assert_eq!(read(&mut data), SELF_TEST_OK);
        cmd.write(0, &[CMD_WRITE_KBD_BUFFER]);
        data.write(0, &[0xa5]);
        assert_eq!(read(&mut data), 0xa5, "loopback through the output buffer");
    }
}
