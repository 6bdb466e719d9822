//! Exec: run a process in a running container and collect its output and exit code.

use std::time::Duration;

use aci_proto::container::{ExecConfig, TtySize};
use aci_proto::frame::FrameKind;
use aci_proto::message::{AgentEvent, Call, STDERR, STDIN, STDOUT};

use super::api::Runtime;
use super::error::{AgentCallError, RuntimeError};
use super::guest::open_stream;

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The argv (arguments allowed, unlike ACI).
    pub args: Vec<String>,
    /// Run on a terminal of this size (stdout and stderr then arrive together on stdout).
    pub tty: Option<TtySize>,
    /// Bytes written to the process's stdin before it is closed.
    pub stdin: Vec<u8>,
    /// Give up (and close the connection) after this long; `None` waits for the exit.
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    /// Runs `args` without a terminal or input.
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        Self { args: args.into_iter().map(Into::into).collect(), ..Default::default() }
    }
}

/// How an exec ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output (everything, with a terminal).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// The exit code (128 + signal when killed).
    pub exit_code: i32,
}

impl ExecOutput {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Runtime {
    /// Runs `request.args` in `container` of running group `name` and waits for it to end.
    ///
    /// ```no_run
    /// use aci_core::runtime::{ExecRequest, Runtime};
    /// # async fn run(runtime: Runtime) -> Result<(), aci_core::runtime::RuntimeError> {
    /// let out = runtime.exec("hello", "app", ExecRequest::new(["cat", "/etc/hostname"])).await?;
    /// println!("exit {}: {}", out.exit_code, out.stdout_text());
    /// # Ok(()) }
    /// ```
    pub async fn exec(
        &self,
        name: &str,
        container: &str,
        request: ExecRequest,
    ) -> Result<ExecOutput, RuntimeError> {
        let agent = self.agent_of(name, container)?;
        let what = format!("exec in {container:?}");
        let err = |source| RuntimeError::Agent { group: name.to_string(), what: what.clone(), source };
        let config = ExecConfig {
            container: container.to_string(),
            args: request.args.clone(),
            env: Vec::new(),
            working_dir: None,
            tty: request.tty,
        };
        let (mut channel, guard) =
            open_stream(agent.uds(), self.config().agent_timeout, Call::Exec(config)).await.map_err(err)?;
        let stdin = request.stdin;
        let run = tokio::task::spawn_blocking(move || -> Result<ExecOutput, AgentCallError> {
            // A short process can end, and the agent close the connection, before its stdin
            // is written ("Broken pipe"). That is not a failure of the exec: the output and
            // exit status it sent are still buffered on this side, and are read below.
            let fed = if stdin.is_empty() { Ok(()) } else { channel.send_data(STDIN, &stdin) };
            if let Err(e) = fed.and_then(|()| channel.send_eof(STDIN)) {
                tracing::debug!("exec stdin not delivered (the process may have ended): {e}");
            }
            let mut out = ExecOutput::default();
            loop {
                let frame = channel.next_frame()?;
                match frame.kind {
                    FrameKind::Data if frame.stream == STDOUT => out.stdout.extend_from_slice(&frame.payload),
                    FrameKind::Data if frame.stream == STDERR => out.stderr.extend_from_slice(&frame.payload),
                    FrameKind::Event => {
                        let event: AgentEvent = serde_json::from_slice(&frame.payload)
                            .map_err(|e| AgentCallError::Unexpected(format!("undecodable event: {e}")))?;
                        if let AgentEvent::ExecExited(status) = event {
                            out.exit_code = status.code;
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        });
        let joined = match request.timeout {
            Some(limit) => match tokio::time::timeout(limit, run).await {
                Ok(joined) => joined,
                Err(_) => {
                    drop(guard); // ends the blocked read
                    return Err(RuntimeError::Timeout {
                        group: name.to_string(),
                        what: format!("exec {:?} in {container:?}", request.args),
                        waited: limit,
                    });
                }
            },
            None => run.await,
        };
        drop(guard);
        joined.map_err(|e| err(AgentCallError::Task(e)))?.map_err(err)
    }
}
