//! Container logs as a [`Stream`]: the agent's `Logs` call on its own connection, read by a
//! thread that forwards each line.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use aci_proto::container::{LogStream, LogsRequest};
use aci_proto::message::{AgentEvent, Call};
use futures_util::Stream;
use tokio::sync::mpsc;

use super::api::Runtime;
use super::clock::rfc3339_ns;
use super::error::{AgentCallError, RuntimeError};
use super::guest::{open_stream, StreamGuard};
use super::kept_logs;

/// What [`Runtime::logs`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N lines kept so far.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 time when displayed.
    pub timestamps: bool,
    /// Keep streaming new lines until the container's group stops (or the stream is
    /// dropped).
    pub follow: bool,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the guest read it, ns since the Unix epoch.
    pub time_unix_ns: u64,
    /// Standard output or standard error.
    pub stream: LogStream,
    /// The line, without its newline.
    pub line: String,
    /// Which run of the container (0, then +1 per restart).
    pub run: u32,
    /// Whether `Display` prefixes the time ([`LogOptions::timestamps`]).
    pub timestamps: bool,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timestamps {
            write!(f, "{} ", rfc3339_ns(self.time_unix_ns))?;
        }
        f.write_str(&self.line)
    }
}

/// A container's log lines; dropping it closes the agent connection.
pub struct LogStreamHandle {
    rx: mpsc::Receiver<Result<LogLine, RuntimeError>>,
    _guard: Option<StreamGuard>,
}

impl fmt::Debug for LogStreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogStreamHandle(..)")
    }
}

impl Stream for LogStreamHandle {
    type Item = Result<LogLine, RuntimeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Runtime {
    /// The logs of `container` in group `name`: the kept lines (or the last `tail`), then
    /// new ones when following. A running group's agent answers; for a group whose VM is
    /// gone (stopped, ended, failed, died, or after a process restart) the lines the host
    /// kept while it ran answer (following then ends with them); see `docs/runtime.md`.
    ///
    /// ```no_run
    /// use aci_core::runtime::{LogOptions, Runtime};
    /// use futures_util::StreamExt;
    /// # async fn run(runtime: Runtime) -> Result<(), aci_core::runtime::RuntimeError> {
    /// let options = LogOptions { tail: Some(10), timestamps: true, follow: false };
    /// let mut lines = runtime.logs("hello", "app", options).await?;
    /// while let Some(line) = lines.next().await {
    ///     println!("{}", line?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn logs(
        &self,
        name: &str,
        container: &str,
        options: LogOptions,
    ) -> Result<LogStreamHandle, RuntimeError> {
        let agent = match self.agent_of(name, container) {
            Ok(agent) => agent,
            Err(RuntimeError::NotRunning(group)) => return self.kept_logs(&group, container, options),
            Err(err) => return Err(err),
        };
        let what = format!("logs of {container:?}");
        let request =
            LogsRequest { container: container.to_string(), tail: options.tail, follow: options.follow };
        let (mut channel, guard) = open_stream(agent.uds(), self.config().agent_timeout, Call::Logs(request))
            .await
            .map_err(|source| RuntimeError::Agent { group: name.into(), what: what.clone(), source })?;
        let (tx, rx) = mpsc::channel(256);
        let group = name.to_string();
        let spawned = std::thread::Builder::new().name("aci-logs".into()).spawn(move || loop {
            let item = match channel.next_event() {
                Ok(Some(AgentEvent::Log(entry))) => Ok(LogLine {
                    time_unix_ns: entry.time_unix_ns,
                    stream: entry.stream,
                    line: entry.line,
                    run: entry.run,
                    timestamps: options.timestamps,
                }),
                Ok(Some(AgentEvent::LogEnd)) | Ok(None) => return,
                Ok(Some(_)) => continue,
                Err(err) => Err(RuntimeError::Agent {
                    group: group.clone(),
                    what: what.clone(),
                    source: AgentCallError::Channel(err),
                }),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        });
        spawned.map_err(|e| RuntimeError::Agent {
            group: name.into(),
            what: "logs".into(),
            source: AgentCallError::Unexpected(format!("cannot start the log thread: {e}")),
        })?;
        Ok(LogStreamHandle { rx, _guard: Some(guard) })
    }

    /// The lines the host kept while the group's last deployment ran.
    fn kept_logs(
        &self,
        group: &str,
        container: &str,
        options: LogOptions,
    ) -> Result<LogStreamHandle, RuntimeError> {
        let entries = kept_logs::read(&self.config().state_dir, group, container, options.tail)
            .ok_or_else(|| RuntimeError::NotRunning(group.to_string()))?;
        let (tx, rx) = mpsc::channel(entries.len().max(1));
        for entry in entries {
            let line = LogLine {
                time_unix_ns: entry.time_unix_ns,
                stream: entry.stream,
                line: entry.line,
                run: entry.run,
                timestamps: options.timestamps,
            };
            let _ = tx.try_send(Ok(line));
        }
        Ok(LogStreamHandle { rx, _guard: None })
    }
}
