//! Logs kept after a deployment ends: before the VM goes away (stop, the group ending, an
//! init container failing) each container's kept lines are fetched from the agent and
//! written to `<state_dir>/logs/<group>/<container>.jsonl`, so `logs` still answers for a
//! stopped or ended group (and after a process restart). A new deployment starts afresh.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aci_proto::container::{LogEntry, LogsRequest};
use aci_proto::message::{AgentEvent, Call};

use super::group::GroupCtx;
use super::guest::{open_stream, AgentHandle};

/// How long fetching one container's logs may take before it is given up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// The directory of a group's kept logs.
pub(crate) fn group_dir(state_dir: &Path, group: &str) -> PathBuf {
    state_dir.join("logs").join(group)
}

fn file(state_dir: &Path, group: &str, container: &str) -> PathBuf {
    group_dir(state_dir, group).join(format!("{container}.jsonl"))
}

/// Fetches and writes the logs of `containers` (a container the agent does not know is
/// skipped). Best effort: a failure is logged, never fatal.
pub(crate) async fn save(ctx: &GroupCtx, agent: &AgentHandle, containers: &[String]) {
    let state_dir = &ctx.shared.config.state_dir;
    for container in containers {
        let request = LogsRequest { container: container.clone(), tail: None, follow: false };
        let Ok((mut channel, guard)) = open_stream(agent.uds(), FETCH_TIMEOUT, Call::Logs(request)).await
        else {
            continue;
        };
        let read = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            while let Ok(Some(event)) = channel.next_event() {
                match event {
                    AgentEvent::Log(entry) => entries.push(entry),
                    AgentEvent::LogEnd => break,
                    _ => {}
                }
            }
            entries
        });
        let entries = match tokio::time::timeout(FETCH_TIMEOUT, read).await {
            Ok(Ok(entries)) => entries,
            _ => {
                drop(guard);
                tracing::warn!(group = %ctx.name, %container, "fetching the logs to keep timed out");
                continue;
            }
        };
        drop(guard);
        if let Err(err) = write(&file(state_dir, &ctx.name, container), &entries) {
            tracing::warn!(group = %ctx.name, %container, error = %err, "cannot keep the container's logs");
        }
    }
}

fn write(path: &Path, entries: &[LogEntry]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for e in entries {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

/// The kept lines of a container (the last `tail`), or `None` when none were kept.
pub(crate) fn read(
    state_dir: &Path,
    group: &str,
    container: &str,
    tail: Option<usize>,
) -> Option<Vec<LogEntry>> {
    let text = std::fs::read_to_string(file(state_dir, group, container)).ok()?;
    let entries: Vec<LogEntry> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    Some(entries.into_iter().skip(skip).collect())
}

/// Forgets a group's kept logs (a new deployment, or `delete`).
pub(crate) fn clear(state_dir: &Path, group: &str) {
    let _ = std::fs::remove_dir_all(group_dir(state_dir, group));
}
