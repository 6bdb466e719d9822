//! Seeding the guest's random pool at boot.
//!
//! When the VM has a virtio-rng device (`/dev/hwrng`, fed by the host's getrandom), the
//! kernel's hwrng thread feeds the pool from it by itself. The agent does not wait for that:
//! it reads [`SEED_BYTES`] from `/dev/hwrng` and adds them, credited, with `RNDADDENTROPY`,
//! so the pool is initialised before the first container starts. Without the device it
//! does nothing and reports whether the pool is initialised anyway.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;

/// Bytes read from the hardware RNG at boot (256 bits of credited entropy would already do).
pub const SEED_BYTES: usize = 64;
/// `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;

/// What [`seed_at_boot`] did, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntropyReport {
    /// The kernel's current hardware RNG (`virtio_rng.0`), or `none`.
    pub hwrng: String,
    /// Bytes from the hardware RNG added to the pool.
    pub credited_bytes: usize,
    /// Whether getrandom(2) no longer blocks.
    pub crng_ready: bool,
    /// Why seeding failed, if it did.
    pub error: Option<String>,
}

impl std::fmt::Display for EntropyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = if self.crng_ready { "ready" } else { "not-ready" };
        write!(f, "hwrng={} credited={} crng={ready}", self.hwrng, self.credited_bytes)?;
        if let Some(error) = &self.error {
            write!(f, " error={error:?}")?;
        }
        Ok(())
    }
}

/// `RNDADDENTROPY`'s argument: `struct rand_pool_info` with its buffer.
#[repr(C)]
struct PoolInfo {
    entropy_count: libc::c_int,
    buf_size: libc::c_int,
    buf: [u8; SEED_BYTES],
}

/// Seeds the pool from `/dev/hwrng` when there is one (see the module docs).
pub fn seed_at_boot() -> EntropyReport {
    let hwrng = std::fs::read_to_string("/sys/class/misc/hw_random/rng_current")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "none".to_owned());
    let mut report = EntropyReport { hwrng, credited_bytes: 0, crng_ready: false, error: None };
    if report.hwrng != "none" && !report.hwrng.is_empty() {
        match credit_from_hwrng() {
            Ok(n) => report.credited_bytes = n,
            Err(err) => report.error = Some(err.to_string()),
        }
    }
    report.crng_ready = crng_ready();
    report
}

fn credit_from_hwrng() -> io::Result<usize> {
    let mut info = PoolInfo { entropy_count: 0, buf_size: SEED_BYTES as libc::c_int, buf: [0; SEED_BYTES] };
    File::open("/dev/hwrng")?.read_exact(&mut info.buf)?;
    info.entropy_count = (SEED_BYTES * 8) as libc::c_int;
    let pool = File::options().write(true).open("/dev/urandom")?;
    // SAFETY: RNDADDENTROPY reads a rand_pool_info followed by `buf_size` bytes; `info` is
    // laid out that way (repr(C)) and outlives the call.
    let rc = unsafe { libc::ioctl(pool.as_raw_fd(), RNDADDENTROPY, std::ptr::from_ref(&info)) };
    info.buf.fill(0);
    std::hint::black_box(&info.buf);
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SEED_BYTES)
}

/// Whether the kernel's CRNG is initialised (getrandom with `GRND_NONBLOCK` succeeds).
pub fn crng_ready() -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: `byte` is valid for a 1-byte write.
    let n = unsafe { libc::getrandom(byte.as_mut_ptr().cast(), 1, libc::GRND_NONBLOCK) };
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_one_console_line() {
        let r =
            EntropyReport { hwrng: "virtio_rng.0".into(), credited_bytes: 64, crng_ready: true, error: None };
        assert_eq!(r.to_string(), "hwrng=virtio_rng.0 credited=64 crng=ready");
        assert_eq!(std::mem::size_of::<PoolInfo>(), 8 + SEED_BYTES);
        // The test host's pool is initialised long after boot.
        assert!(crng_ready());
    }
}
