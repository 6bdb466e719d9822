//! The kept log files of a group's containers (written by `log_sink.rs` while a deployment
//! runs): where they are, reading them back for `logs` once the VM is gone (stopped, ended,
//! failed, died, or after a process restart), and forgetting them.
//!
//! Layout: `<state_dir>/logs/<group>/<container>.jsonl`, one JSON [`LogEntry`] a line, and
//! the older half `<container>.jsonl.1` once the file was rotated.

use std::path::{Path, PathBuf};

use aci_proto::container::LogEntry;

/// The directory of a group's kept logs.
pub(crate) fn group_dir(state_dir: &Path, group: &str) -> PathBuf {
    state_dir.join("logs").join(group)
}

/// A container's current log file in the group directory `dir`.
pub(crate) fn file(dir: &Path, container: &str) -> PathBuf {
    dir.join(format!("{container}.jsonl"))
}

/// The older (rotated) half of the log file `path`.
pub(crate) fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".1");
    PathBuf::from(name)
}

/// The kept lines of a container, oldest first (the last `tail`), or `None` when none
/// were kept. A line that does not decode (a torn last line after a host crash) is skipped.
pub(crate) fn read(
    state_dir: &Path,
    group: &str,
    container: &str,
    tail: Option<usize>,
) -> Option<Vec<LogEntry>> {
    let current = file(&group_dir(state_dir, group), container);
    let older = std::fs::read_to_string(rotated(&current)).ok();
    let newer = std::fs::read_to_string(&current).ok();
    if older.is_none() && newer.is_none() {
        return None;
    }
    let entries: Vec<LogEntry> = [older, newer]
        .iter()
        .flatten()
        .flat_map(|text| text.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    Some(entries.into_iter().skip(skip).collect())
}

/// Forgets a group's kept logs (a new deployment, or `delete`).
pub(crate) fn clear(state_dir: &Path, group: &str) {
    let _ = std::fs::remove_dir_all(group_dir(state_dir, group));
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::container::LogStream;
    use std::io::Write;

    fn entry(i: u64) -> LogEntry {
        LogEntry { time_unix_ns: i, stream: LogStream::Stdout, line: format!("line {i}"), run: 0 }
    }

    fn write(path: &Path, entries: impl Iterator<Item = LogEntry>) {
        let text: String = entries.map(|e| serde_json::to_string(&e).unwrap() + "\n").collect();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_the_rotated_half_first_skips_torn_lines_and_applies_tail() {
        let state = tempfile::tempdir().unwrap();
        assert!(read(state.path(), "g", "app", None).is_none());
        let dir = group_dir(state.path(), "g");
        std::fs::create_dir_all(&dir).unwrap();
        let current = file(&dir, "app");
        write(&rotated(&current), (0..3u64).map(entry));
        write(&current, (3..5).map(entry));
        std::fs::OpenOptions::new().append(true).open(&current).unwrap().write_all(b"{\"time_un").unwrap();
        let all = read(state.path(), "g", "app", None).unwrap();
        assert_eq!(all, (0..5).map(entry).collect::<Vec<_>>());
        let last = read(state.path(), "g", "app", Some(2)).unwrap();
        assert_eq!(last, vec![entry(3), entry(4)]);
        clear(state.path(), "g");
        assert!(read(state.path(), "g", "app", None).is_none());
    }
}
