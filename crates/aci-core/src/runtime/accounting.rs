//! Accounting: the per-second meter of *requested* resources, and measured usage.
//!
//! ACI bills a container group per second, per vCPU and per GB of memory requested, from the
//! moment the first image pull of a deployment starts until the whole group stops. A
//! [`Meter`] is started at that first pull and stopped when the group stops (by `stop`,
//! `delete`, or because every container ended); each deployment (a `create`, or a `start`
//! after a stop) is billed separately. Billed seconds are the metered wall time rounded up
//! to whole seconds. The [`PriceTable`] turns vCPU-seconds and GB-seconds into a cost.
//!
//! Measured usage (CPU seconds, memory peak per container, network bytes) comes from the
//! agent's `Stats` call, polled while the group runs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::clock::{now_ms, rfc3339_ms};

/// Prices per second of requested resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// The currency code printed on bills (`USD`).
    pub currency: String,
    /// Price of one vCPU for one second.
    pub per_vcpu_second: f64,
    /// Price of one GB of memory for one second.
    pub per_gb_second: f64,
}

impl Default for PriceTable {
    /// ACI's published Linux pay-as-you-go list prices in one US region at the time of
    /// writing (USD 0.0000113 per vCPU-second, 0.0000012 per GB-second): an example; set
    /// your own.
    fn default() -> Self {
        Self { currency: "USD".into(), per_vcpu_second: 0.000_011_3, per_gb_second: 0.000_001_2 }
    }
}

/// The meter of one deployment: when it started, whether it stopped, what it requested.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    /// When the first image pull started (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// When the group stopped, once it has.
    pub stopped_at_ms: Option<u64>,
    /// The sum of the containers' CPU requests.
    pub vcpus: f64,
    /// The sum of the containers' memory requests, GB.
    pub memory_gb: f64,
}

impl Meter {
    /// Starts metering `vcpus` and `memory_gb` at `now_ms`.
    pub fn start(now_ms: u64, vcpus: f64, memory_gb: f64) -> Self {
        Self { started_at_ms: now_ms, stopped_at_ms: None, vcpus, memory_gb }
    }

    /// Stops the meter at `now_ms` (a second stop keeps the first time).
    pub fn stop(&mut self, now_ms: u64) {
        self.stopped_at_ms.get_or_insert(now_ms.max(self.started_at_ms));
    }

    /// Metered milliseconds up to the stop, or up to `now_ms` while running.
    pub fn elapsed_ms(&self, now_ms: u64) -> u64 {
        self.stopped_at_ms.unwrap_or(now_ms).saturating_sub(self.started_at_ms)
    }

    /// Billed seconds: the metered time rounded up to a whole second.
    pub fn billed_seconds(&self, now_ms: u64) -> u64 {
        self.elapsed_ms(now_ms).div_ceil(1000)
    }

    /// The charge so far under `prices`.
    pub fn charge(&self, now_ms: u64, prices: &PriceTable) -> Charge {
        let seconds = self.billed_seconds(now_ms) as f64;
        let vcpu_seconds = seconds * self.vcpus;
        let gb_seconds = seconds * self.memory_gb;
        Charge {
            billed_seconds: self.billed_seconds(now_ms),
            vcpu_seconds,
            gb_seconds,
            cost: vcpu_seconds * prices.per_vcpu_second + gb_seconds * prices.per_gb_second,
            currency: prices.currency.clone(),
            per_vcpu_second: prices.per_vcpu_second,
            per_gb_second: prices.per_gb_second,
        }
    }
}

/// What a meter adds up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// Whole seconds billed.
    pub billed_seconds: u64,
    /// vCPU-seconds of requested CPU.
    pub vcpu_seconds: f64,
    /// GB-seconds of requested memory.
    pub gb_seconds: f64,
    /// The cost under the price table.
    pub cost: f64,
    /// The price table's currency.
    pub currency: String,
    /// The price of a vCPU-second applied.
    pub per_vcpu_second: f64,
    /// The price of a GB-second applied.
    pub per_gb_second: f64,
}

/// Usage of one container measured by the agent (its cgroup).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredUsage {
    /// The container.
    pub container: String,
    /// CPU time used, seconds.
    pub cpu_seconds: f64,
    /// The highest memory use seen, bytes.
    pub memory_peak_bytes: u64,
}

/// One deployment's usage record: the meter, its charge, and measured usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The group.
    pub group: String,
    /// The deployment number (1 for the first `create`, +1 per `start` or re-create).
    pub deployment: u32,
    /// The meter.
    pub meter: Meter,
    /// The charge under the runtime's price table (up to now while running).
    pub charge: Charge,
    /// Per container, as last polled.
    #[serde(default)]
    pub measured: Vec<MeasuredUsage>,
    /// Bytes the group's interfaces received, as last polled.
    #[serde(default)]
    pub network_rx_bytes: u64,
    /// Bytes the group's interfaces sent, as last polled.
    #[serde(default)]
    pub network_tx_bytes: u64,
}

impl UsageRecord {
    /// A record with the meter's charge at `now_ms` and no measurements yet.
    pub fn new(group: &str, deployment: u32, meter: Meter, now_ms: u64, prices: &PriceTable) -> Self {
        Self {
            group: group.to_string(),
            deployment,
            meter,
            charge: meter.charge(now_ms, prices),
            measured: Vec::new(),
            network_rx_bytes: 0,
            network_tx_bytes: 0,
        }
    }

    /// Recomputes the charge at `now_ms`.
    pub fn refresh(&mut self, now_ms: u64, prices: &PriceTable) {
        self.charge = self.meter.charge(now_ms, prices);
    }

    /// Takes in an agent `Stats` answer (peaks only grow).
    pub fn absorb(&mut self, stats: &aci_proto::container::SandboxStats) {
        for c in &stats.containers {
            let cpu_seconds = c.cpu_usage_usec as f64 / 1e6;
            match self.measured.iter_mut().find(|m| m.container == c.name) {
                Some(m) => {
                    m.cpu_seconds = m.cpu_seconds.max(cpu_seconds);
                    m.memory_peak_bytes = m.memory_peak_bytes.max(c.memory_peak_bytes);
                }
                None => self.measured.push(MeasuredUsage {
                    container: c.name.clone(),
                    cpu_seconds,
                    memory_peak_bytes: c.memory_peak_bytes,
                }),
            }
        }
        let rx: u64 = stats.interfaces.iter().map(|i| i.rx_bytes).sum();
        let tx: u64 = stats.interfaces.iter().map(|i| i.tx_bytes).sum();
        self.network_rx_bytes = self.network_rx_bytes.max(rx);
        self.network_tx_bytes = self.network_tx_bytes.max(tx);
    }
}

impl fmt::Display for UsageRecord {
    /// An ACI-style bill: the metered period, one line per meter, the total, and the measured
    /// usage.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.charge;
        let m = &self.meter;
        let until = m.stopped_at_ms.map_or_else(|| "(running)".to_string(), rfc3339_ms);
        writeln!(f, "Container group {:?}, deployment {}", self.group, self.deployment)?;
        writeln!(
            f,
            "  metered  {} .. {}  ({:.3} s, billed {} s)",
            rfc3339_ms(m.started_at_ms),
            until,
            m.elapsed_ms(now_ms()) as f64 / 1000.0,
            c.billed_seconds
        )?;
        writeln!(
            f,
            "  vCPU     {:>6.2} vCPU x {} s = {:>10.2} vCPU-s x {} {:.7} = {} {:.7}",
            m.vcpus,
            c.billed_seconds,
            c.vcpu_seconds,
            c.currency,
            c.per_vcpu_second,
            c.currency,
            c.vcpu_seconds * c.per_vcpu_second
        )?;
        writeln!(
            f,
            "  memory   {:>6.2} GB   x {} s = {:>10.2} GB-s   x {} {:.7} = {} {:.7}",
            m.memory_gb,
            c.billed_seconds,
            c.gb_seconds,
            c.currency,
            c.per_gb_second,
            c.currency,
            c.gb_seconds * c.per_gb_second
        )?;
        writeln!(f, "  total    {} {:.7}", c.currency, c.cost)?;
        for u in &self.measured {
            writeln!(
                f,
                "  measured {:<12} cpu {:.3} s, memory peak {:.1} MiB",
                u.container,
                u.cpu_seconds,
                u.memory_peak_bytes as f64 / 1048576.0
            )?;
        }
        if self.network_rx_bytes + self.network_tx_bytes > 0 {
            writeln!(
                f,
                "  network  {} bytes in, {} bytes out",
                self.network_rx_bytes, self.network_tx_bytes
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bills_whole_seconds_of_requested_resources() {
        let prices = PriceTable { currency: "EUR".into(), per_vcpu_second: 0.5, per_gb_second: 0.25 };
        let mut m = Meter::start(10_000, 1.5, 2.0);
        assert_eq!(m.billed_seconds(10_000), 0);
        assert_eq!(m.billed_seconds(10_001), 1);
        assert_eq!(m.billed_seconds(13_000), 3);
        m.stop(13_200);
        m.stop(99_000);
        let c = m.charge(1_000_000, &prices);
        assert_eq!(c.billed_seconds, 4);
        assert_eq!((c.vcpu_seconds, c.gb_seconds), (6.0, 8.0));
        assert_eq!(c.cost, 6.0 * 0.5 + 8.0 * 0.25);
        assert_eq!(c.currency, "EUR");
        let bill = UsageRecord::new("g", 2, m, 0, &prices).to_string();
        assert!(bill.contains("deployment 2") && bill.contains("billed 4 s"), "{bill}");
        assert!(bill.contains("total    EUR 5.0000000"), "{bill}");
    }

    #[test]
    fn a_stop_before_the_start_bills_nothing() {
        let mut m = Meter::start(5_000, 1.0, 1.0);
        m.stop(4_000);
        assert_eq!(m.billed_seconds(9_000), 0);
    }

    #[test]
    fn measured_usage_keeps_peaks() {
        use aci_proto::container::{ContainerStats, InterfaceStats, SandboxStats};
        let mut r = UsageRecord::new("g", 1, Meter::start(0, 1.0, 1.0), 0, &PriceTable::default());
        let stats = |usec, peak, rx| SandboxStats {
            containers: vec![ContainerStats {
                name: "app".into(),
                cpu_usage_usec: usec,
                memory_peak_bytes: peak,
                ..Default::default()
            }],
            interfaces: vec![InterfaceStats { name: "eth0".into(), rx_bytes: rx, tx_bytes: 1 }],
        };
        r.absorb(&stats(1_500_000, 100, 10));
        r.absorb(&stats(2_000_000, 50, 5));
        assert_eq!(r.measured.len(), 1);
        assert_eq!((r.measured[0].cpu_seconds, r.measured[0].memory_peak_bytes), (2.0, 100));
        assert_eq!((r.network_rx_bytes, r.network_tx_bytes), (10, 1));
    }
}
