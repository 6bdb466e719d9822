//! Usage of one container, read from its cgroup v2 directory.

use std::path::Path;

use aci_proto::container::ContainerStats;

/// Where cgroup2 is mounted in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Reads `cpu.stat` `usage_usec`, `memory.current`, `memory.peak` and `pids.current`
/// from `dir`; a missing file (controller not enabled, cgroup gone) reads as 0.
pub fn read(name: &str, dir: &Path) -> ContainerStats {
    let number = |file: &str| -> u64 {
        std::fs::read_to_string(dir.join(file)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    };
    ContainerStats {
        name: name.to_owned(),
        cpu_usage_usec: keyed(dir, "cpu.stat", "usage_usec").unwrap_or(0),
        memory_current_bytes: number("memory.current"),
        memory_peak_bytes: number("memory.peak"),
        pids_current: number("pids.current"),
    }
}

/// The value of `key` in a flat-keyed cgroup file (`cpu.stat`, `memory.events`).
pub fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    parse_keyed(&text, key)
}

/// The value of `key` in `key value` lines.
pub fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.split_once(' ').filter(|(k, _)| *k == key).and_then(|(_, v)| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_and_plain_numbers_are_parsed() {
        let text = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(parse_keyed(text, "usage_usec"), Some(1234));
        assert_eq!(parse_keyed("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "oom_kill"), Some(1));
        assert_eq!(parse_keyed(text, "nope"), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cpu.stat"), text).unwrap();
        std::fs::write(dir.path().join("memory.current"), "4096\n").unwrap();
        std::fs::write(dir.path().join("pids.current"), "3\n").unwrap();
        let s = read("web", dir.path());
        assert_eq!(
            (s.cpu_usage_usec, s.memory_current_bytes, s.memory_peak_bytes, s.pids_current),
            (1234, 4096, 0, 3)
        );
    }
}
