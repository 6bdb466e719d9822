//! Setting the guest's wall clock from the host's (`clock_unix_ms`).

use std::io;

/// Errors of setting the clock.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// clock_settime(2) failed.
    #[error("setting the clock to {unix_ms} ms after the epoch failed")]
    Set {
        /// The time asked for.
        unix_ms: u64,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// The `timespec` for `unix_ms` milliseconds after the epoch.
pub fn timespec(unix_ms: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (unix_ms / 1000) as libc::time_t,
        tv_nsec: ((unix_ms % 1000) * 1_000_000) as libc::c_long,
    }
}

/// Sets `CLOCK_REALTIME`; 0 (the host did not say) leaves the clock alone.
pub fn set(unix_ms: u64) -> Result<(), ClockError> {
    if unix_ms == 0 {
        return Ok(());
    }
    let ts = timespec(unix_ms);
    // SAFETY: `ts` is a valid timespec that outlives the call.
    let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
    if rc == 0 {
        Ok(())
    } else {
        Err(ClockError::Set { unix_ms, source: io::Error::last_os_error() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_split_into_seconds_and_nanoseconds() {
        let ts = timespec(1_764_000_123_456);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (1_764_000_123, 456_000_000));
    }
}
