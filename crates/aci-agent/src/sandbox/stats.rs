//! Byte counters of the guest's network interfaces (`/sys/class/net/*/statistics`).

use std::path::Path;

use aci_proto::container::InterfaceStats;

/// `/sys/class/net/*/type` of an Ethernet device.
const ARPHRD_ETHER: &str = "1";

/// The counters of the Ethernet interfaces in `sys_class_net` (not loopback nor tunnel
/// devices), sorted by name.
pub fn interface_stats(sys_class_net: &Path) -> Vec<InterfaceStats> {
    let Ok(entries) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut stats: Vec<InterfaceStats> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let read = |file: &str| std::fs::read_to_string(entry.path().join(file)).ok();
            // Ethernet devices only (ARPHRD_ETHER): not loopback (772) nor the kernel's
            // tunnel devices such as `sit0` (776).
            if read("type").is_none_or(|t| t.trim() != ARPHRD_ETHER) {
                return None;
            }
            let counter = |file: &str| read(&format!("statistics/{file}"))?.trim().parse().ok();
            Some(InterfaceStats { name, rx_bytes: counter("rx_bytes")?, tx_bytes: counter("tx_bytes")? })
        })
        .collect();
    stats.sort_by(|a, b| a.name.cmp(&b.name));
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_ethernet_interfaces_only() {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind, rx, tx) in
            [("lo", "772", 5, 5), ("sit0", "776", 0, 0), ("eth1", "1", 30, 40), ("eth0", "1", 10, 20)]
        {
            let stats = dir.path().join(name).join("statistics");
            std::fs::create_dir_all(&stats).unwrap();
            std::fs::write(dir.path().join(name).join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(stats.join("rx_bytes"), format!("{rx}\n")).unwrap();
            std::fs::write(stats.join("tx_bytes"), format!("{tx}\n")).unwrap();
        }
        let got = interface_stats(dir.path());
        let want = |name: &str, rx, tx| InterfaceStats { name: name.into(), rx_bytes: rx, tx_bytes: tx };
        assert_eq!(got, vec![want("eth0", 10, 20), want("eth1", 30, 40)]);
        assert!(interface_stats(&dir.path().join("missing")).is_empty());
    }
}
