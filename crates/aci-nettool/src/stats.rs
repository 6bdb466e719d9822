//! Figures for the `RESULT` lines: throughput and latency percentiles.

use std::time::Duration;

/// One MiB.
pub const MIB: u64 = 1 << 20;

/// MiB per second for `bytes` moved in `elapsed`.
pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / MIB as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The `q`-quantile (0..=1, nearest rank) of `samples` in microseconds; sorts them.
pub fn quantile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_rates() {
        let mut s: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(quantile_us(&mut s, 0.5), 50.0);
        assert_eq!(quantile_us(&mut s, 0.99), 99.0);
        assert!(quantile_us(&mut [], 0.5).is_nan());
        assert_eq!(mib_per_s(4 * MIB, Duration::from_secs(2)), 2.0);
    }
}
