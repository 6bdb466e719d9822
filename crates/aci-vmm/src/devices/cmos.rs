//! CMOS / MC146818 real-time clock on ports 0x70 (index) and 0x71 (data).
//!
//! Answers the time registers with the host's UTC time in BCD, 24-hour mode, and never shows
//! "update in progress", so the guest reads the clock once instead of polling.

use std::time::{SystemTime, UNIX_EPOCH};

use super::pio_bus::{DeviceAction, PioDevice};

/// The index port.
pub const CMOS_PORT: u16 = 0x70;
/// Index and data ports.
pub const CMOS_LEN: u16 = 2;
/// Status register B: 24-hour mode, BCD.
const STATUS_B_24H: u8 = 0x02;
/// Status register D: RTC battery good.
const STATUS_D_VALID: u8 = 0x80;

/// A wall-clock source, so tests can fix the time.
pub type Clock = fn() -> u64;

fn system_clock() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The CMOS device.
#[derive(Debug)]
pub struct Cmos {
    index: u8,
    clock: Clock,
}

impl Default for Cmos {
    fn default() -> Self {
        Self::with_clock(system_clock)
    }
}

/// Calendar fields of a UNIX time: (year, month, day, hour, minute, second, weekday 1=Sunday).
pub fn civil_from_unix(secs: u64) -> (u64, u8, u8, u8, u8, u8, u8) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = (days + 4) % 7 + 1; // 1970-01-01 was a Thursday
                                      // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let narrow = |v: u64| u8::try_from(v).unwrap_or(0);
    (year, narrow(month), narrow(day), narrow(hour), narrow(minute), narrow(second), narrow(weekday))
}

fn bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

impl Cmos {
    /// A CMOS clock reading time from `clock` (seconds since the UNIX epoch).
    pub fn with_clock(clock: Clock) -> Self {
        Self { index: 0, clock }
    }

    fn register(&self, index: u8) -> u8 {
        let (year, month, day, hour, minute, second, weekday) = civil_from_unix((self.clock)());
        let century = u8::try_from(year / 100).unwrap_or(0);
        let year = u8::try_from(year % 100).unwrap_or(0);
        match index {
            0x00 => bcd(second),
            0x02 => bcd(minute),
            0x04 => bcd(hour),
            0x06 => bcd(weekday),
            0x07 => bcd(day),
            0x08 => bcd(month),
            0x09 => bcd(year),
            0x0a => 0x26, // divider on, 1024 Hz; update-in-progress clear
            0x0b => STATUS_B_24H,
            0x0d => STATUS_D_VALID,
            0x32 => bcd(century),
            _ => 0,
        }
    }
}

impl PioDevice for Cmos {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = if offset == 1 { self.register(self.index) } else { self.index };
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        if let (0, Some(value)) = (offset, data.first()) {
            // Bit 7 is the NMI mask on real hardware; keep only the register index.
            self.index = value & 0x7f;
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_conversion_matches_known_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0, 5));
        // 2024-02-29 12:34:56 UTC, a Thursday.
        assert_eq!(civil_from_unix(1_709_210_096), (2024, 2, 29, 12, 34, 56, 5));
        // 2026-11-29 08:00:00 UTC, a Sunday.
        assert_eq!(civil_from_unix(1_795_939_200), (2026, 11, 29, 8, 0, 0, 1));
    }

    #[test]
    fn registers_read_in_bcd_through_the_index_port() {
        let mut cmos = Cmos::with_clock(|| 1_709_210_096);
        let mut read = |index: u8| {
            cmos.write(0, &[index | 0x80]);
            let mut b = [0u8];
            cmos.read(1, &mut b);
            b[0]
        };
        assert_eq!(read(0x00), 0x56);
        assert_eq!(read(0x02), 0x34);
        assert_eq!(read(0x04), 0x12);
        assert_eq!(read(0x07), 0x29);
        assert_eq!(read(0x08), 0x02);
        assert_eq!(read(0x09), 0x24);
        assert_eq!(read(0x0a) & 0x80, 0, "no update in progress");
        assert_eq!(read(0x0b), STATUS_B_24H);
    }
}
