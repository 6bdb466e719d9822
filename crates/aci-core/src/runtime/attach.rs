//! Attach: a running container's live output (stdout and stderr apart) from the moment of
//! attaching, its input when the container has `stdin: true`, and how its run ended. The
//! agent's `Attach` call on its own connection, read by a thread that forwards each chunk.

use std::fmt;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aci_proto::container::{AttachEnd, AttachRequest, LogStream};
use aci_proto::frame::{Frame, FrameError, FrameKind, MAX_PAYLOAD};
use aci_proto::message::{AgentEvent, Call, RemoteErrorKind, STDERR, STDIN, STDOUT};
use futures_util::Stream;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::api::Runtime;
use super::error::{AgentCallError, RuntimeError};
use super::group::lock;
use super::guest::{open_stream, StreamGuard};
use crate::agent::ChannelError;

/// How many chunks the reader thread queues ahead of a slow consumer (the agent then holds
/// the rest, and drops an attach that falls far behind).
const QUEUE: usize = 256;

/// What [`Runtime::attach`] asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Also take input for the container's main process: the container must have been
    /// created with `stdin: true` ([`crate::spec::Container::stdin`]).
    pub stdin: bool,
}

/// Bytes the container's main process wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachChunk {
    /// Standard output or standard error.
    pub stream: LogStream,
    /// The bytes, as read (not split into lines).
    pub bytes: Vec<u8>,
}

/// How the attached run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachExit {
    /// The exit code (128 + signal when killed).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The run was OOM-killed.
    pub oom_killed: bool,
}

/// Errors of [`Runtime::attach`] and of an attachment.
#[derive(Debug, Error)]
pub enum AttachError {
    /// The group is unknown or not running, or has no such container.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The container exists but its process is not running (it ended, or waits to restart).
    #[error("container group {group:?}: container {container:?} is not running")]
    ContainerNotRunning {
        /// The group.
        group: String,
        /// The container.
        container: String,
    },
    /// Attach with stdin to a container created without `stdin: true`.
    #[error("container group {group:?}: container {container:?} was not created with stdin: true")]
    StdinNotEnabled {
        /// The group.
        group: String,
        /// The container.
        container: String,
    },
    /// Attach with stdin after an attachment closed the container's stdin.
    #[error("container group {group:?}: the stdin of container {container:?} was already closed")]
    StdinClosed {
        /// The group.
        group: String,
        /// The container.
        container: String,
    },
    /// Connecting to the agent or the attach call failed.
    #[error("container group {group:?}: attach to {container:?} failed")]
    Agent {
        /// The group.
        group: String,
        /// The container.
        container: String,
        /// The cause.
        #[source]
        source: AgentCallError,
    },
    /// Writing to the container's stdin failed (the attachment ended).
    #[error("container group {group:?}: writing to the stdin of {container:?} failed")]
    Stdin {
        /// The group.
        group: String,
        /// The container.
        container: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The attachment ended without the run's exit: the container was removed, this
    /// attachment fell too far behind, or the connection broke.
    #[error("container group {group:?}: the attachment to {container:?} ended before the run did: {reason}")]
    Ended {
        /// The group.
        group: String,
        /// The container.
        container: String,
        /// Why.
        reason: String,
    },
}

/// Who an attachment is for (for its errors).
#[derive(Debug, Clone)]
struct Target {
    group: String,
    container: String,
}

impl Target {
    fn ended(&self, reason: impl Into<String>) -> AttachError {
        AttachError::Ended {
            group: self.group.clone(),
            container: self.container.clone(),
            reason: reason.into(),
        }
    }

    /// Turns the agent's refusal of the call into the typed error it stands for.
    fn refused(&self, source: AgentCallError, stdin: bool) -> AttachError {
        let (group, container) = (self.group.clone(), self.container.clone());
        if let AgentCallError::Channel(ChannelError::Remote(remote)) = &source {
            match remote.kind {
                RemoteErrorKind::NoSuchContainer => {
                    return RuntimeError::NoSuchContainer { group, container }.into();
                }
                RemoteErrorKind::InvalidState if stdin && remote.message.contains("already closed") => {
                    return AttachError::StdinClosed { group, container };
                }
                RemoteErrorKind::InvalidState if stdin && remote.message.contains("stdin") => {
                    return AttachError::StdinNotEnabled { group, container };
                }
                RemoteErrorKind::InvalidState => {
                    return AttachError::ContainerNotRunning { group, container }
                }
                _ => {}
            }
        }
        AttachError::Agent { group, container, source }
    }
}

/// A live attachment to a container; a [`Stream`] of its output chunks, which ends when
/// the attached run has ended (then [`Self::exit`] says how) or the attachment broke.
/// Dropping it (and its [`AttachStdin`], if taken) detaches; the container runs on.
pub struct Attachment {
    output: mpsc::Receiver<AttachChunk>,
    exit: oneshot::Receiver<Result<AttachExit, AttachError>>,
    stdin: Option<AttachStdin>,
    target: Target,
    _guard: Arc<StreamGuard>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("group", &self.target.group)
            .field("container", &self.target.container)
            .finish_non_exhaustive()
    }
}

impl Stream for Attachment {
    type Item = AttachChunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.output.poll_recv(cx)
    }
}

impl Attachment {
    /// The writer of the container's stdin (attached with [`AttachOptions::stdin`]); taken
    /// once.
    pub fn take_stdin(&mut self) -> Option<AttachStdin> {
        self.stdin.take()
    }

    /// Waits for the attached run to end and returns how; output not read yet is dropped.
    /// [`AttachError::Ended`] when the attachment ended first.
    pub async fn exit(self) -> Result<AttachExit, AttachError> {
        let Self { output, exit, target, _guard, .. } = self;
        drop(output); // The reader thread discards the rest instead of waiting for us.
        exit.await.unwrap_or_else(|_| Err(target.ended("the attachment's reader ended")))
    }
}

/// The input of an attached container's main process. Dropping it leaves stdin open (for
/// other attachments); [`Self::close`] ends it.
pub struct AttachStdin {
    stream: Arc<Mutex<UnixStream>>,
    target: Target,
    _guard: Arc<StreamGuard>,
}

impl fmt::Debug for AttachStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachStdin").field("container", &self.target.container).finish_non_exhaustive()
    }
}

impl AttachStdin {
    async fn send(&self, frames: Vec<Frame>) -> Result<(), AttachError> {
        let stream = Arc::clone(&self.stream);
        let sent = tokio::task::spawn_blocking(move || -> Result<(), FrameError> {
            let mut stream = lock(&stream);
            for frame in frames {
                frame.write_to(&mut *stream)?;
            }
            stream.flush()?;
            Ok(())
        })
        .await;
        let err = |source| AttachError::Stdin {
            group: self.target.group.clone(),
            container: self.target.container.clone(),
            source,
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(FrameError::Io(e))) => Err(err(e)),
            Ok(Err(other)) => Err(err(std::io::Error::other(other.to_string()))),
            Err(join) => Err(err(std::io::Error::other(join.to_string()))),
        }
    }

    /// Writes `bytes` to the process's stdin.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), AttachError> {
        let frames = bytes
            .chunks(MAX_PAYLOAD / 4)
            .map(|part| Frame { kind: FrameKind::Data, stream: STDIN, payload: part.to_vec() })
            .collect();
        self.send(frames).await
    }

    /// Closes the process's stdin (for every attachment): it reads end of file.
    pub async fn close(self) -> Result<(), AttachError> {
        self.send(vec![Frame { kind: FrameKind::Eof, stream: STDIN, payload: Vec::new() }]).await
    }
}

/// Reads the attach stream: output chunks to `output` (discarded once it is dropped), the
/// end to `exit`.
fn read_stream(
    mut stream: UnixStream,
    output: mpsc::Sender<AttachChunk>,
    exit: oneshot::Sender<Result<AttachExit, AttachError>>,
    target: &Target,
) {
    let end = loop {
        let frame = match Frame::read_from(&mut stream) {
            Ok(frame) => frame,
            Err(FrameError::Closed) => break Err(target.ended("the agent closed the connection")),
            Err(e) => break Err(target.ended(format!("reading the attachment failed: {e}"))),
        };
        match frame.kind {
            FrameKind::Data if frame.stream == STDOUT || frame.stream == STDERR => {
                let stream = if frame.stream == STDOUT { LogStream::Stdout } else { LogStream::Stderr };
                // A dropped receiver (the caller only wants the exit) is not an error.
                let _ = output.blocking_send(AttachChunk { stream, bytes: frame.payload });
            }
            FrameKind::Event => match serde_json::from_slice::<AgentEvent>(&frame.payload) {
                Ok(AgentEvent::AttachEnded(end)) => break end_of(end, target),
                Ok(_) => {}
                Err(e) => break Err(target.ended(format!("undecodable event: {e}"))),
            },
            _ => {}
        }
    };
    drop(output); // The output stream ends before the exit is known.
    let _ = exit.send(end);
}

fn end_of(end: AttachEnd, target: &Target) -> Result<AttachExit, AttachError> {
    match (end.exit, end.reason) {
        (Some(status), None) => {
            Ok(AttachExit { exit_code: status.code, signal: status.signal, oom_killed: status.oom_killed })
        }
        (_, Some(reason)) => Err(target.ended(reason)),
        (None, None) => Err(target.ended("the agent gave no reason")),
    }
}

impl Runtime {
    /// Attaches to `container` of running group `name`: its output from now on (not the
    /// history: [`Runtime::logs`] has that), stdout and stderr apart, until the current
    /// run of the container ends; and, with [`AttachOptions::stdin`], its input. Any
    /// number of attachments may follow one container at once.
    ///
    /// A restart of the container ends the attachment with the run's exit; attach again to
    /// follow the next run.
    ///
    /// ```no_run
    /// use aci_core::runtime::{AttachOptions, Runtime};
    /// use futures_util::StreamExt;
    /// # async fn run(runtime: Runtime) -> Result<(), aci_core::runtime::AttachError> {
    /// let mut attached = runtime.attach("hello", "app", AttachOptions { stdin: true }).await?;
    /// let mut stdin = attached.take_stdin().expect("asked for stdin");
    /// stdin.write(b"hello\n").await?;
    /// stdin.close().await?;
    /// while let Some(chunk) = attached.next().await {
    ///     print!("{}", String::from_utf8_lossy(&chunk.bytes));
    /// }
    /// println!("exit {}", attached.exit().await?.exit_code);
    /// # Ok(()) }
    /// ```
    pub async fn attach(
        &self,
        name: &str,
        container: &str,
        options: AttachOptions,
    ) -> Result<Attachment, AttachError> {
        let target = Target { group: name.to_string(), container: container.to_string() };
        let agent = self.agent_of(name, container)?;
        if options.stdin && !self.container_has_stdin(name, container)? {
            return Err(AttachError::StdinNotEnabled { group: target.group, container: target.container });
        }
        let request = AttachRequest { container: container.to_string(), stdin: options.stdin };
        let (channel, guard) = open_stream(agent.uds(), self.config().agent_timeout, Call::Attach(request))
            .await
            .map_err(|source| target.refused(source, options.stdin))?;
        let stream = channel.into_inner();
        let io_err = |e: std::io::Error| AttachError::Agent {
            group: target.group.clone(),
            container: target.container.clone(),
            source: AgentCallError::Unexpected(format!("cannot duplicate the connection: {e}")),
        };
        let guard = Arc::new(guard);
        let stdin = if options.stdin {
            Some(AttachStdin {
                stream: Arc::new(Mutex::new(stream.try_clone().map_err(io_err)?)),
                target: target.clone(),
                _guard: Arc::clone(&guard),
            })
        } else {
            None
        };
        let (output_tx, output) = mpsc::channel(QUEUE);
        let (exit_tx, exit) = oneshot::channel();
        let reader_target = target.clone();
        std::thread::Builder::new()
            .name("aci-attach".into())
            .spawn(move || read_stream(stream, output_tx, exit_tx, &reader_target))
            .map_err(|e| AttachError::Agent {
                group: target.group.clone(),
                container: target.container.clone(),
                source: AgentCallError::Unexpected(format!("cannot start the attach thread: {e}")),
            })?;
        Ok(Attachment { output, exit, stdin, target, _guard: guard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::container::ExitStatus;
    use aci_proto::message::RemoteError;

    fn target() -> Target {
        Target { group: "g".into(), container: "app".into() }
    }

    fn remote(kind: RemoteErrorKind, message: &str) -> AgentCallError {
        AgentCallError::Channel(ChannelError::Remote(RemoteError { kind, message: message.into() }))
    }

    #[test]
    fn refusals_become_typed_errors_naming_the_container() {
        let t = target();
        let err = t.refused(remote(RemoteErrorKind::NoSuchContainer, "no container named \"app\""), false);
        assert!(matches!(err, AttachError::Runtime(RuntimeError::NoSuchContainer { .. })), "{err:?}");
        let err = t.refused(remote(RemoteErrorKind::InvalidState, "attach needs a running container"), true);
        assert!(matches!(err, AttachError::ContainerNotRunning { .. }), "{err:?}");
        assert_eq!(err.to_string(), r#"container group "g": container "app" is not running"#);
        let err =
            t.refused(remote(RemoteErrorKind::InvalidState, "attach with stdin needs ... stdin: true"), true);
        assert!(matches!(err, AttachError::StdinNotEnabled { .. }), "{err:?}");
        let err = t.refused(remote(RemoteErrorKind::InvalidState, "its stdin was already closed"), true);
        assert!(matches!(err, AttachError::StdinClosed { .. }), "{err:?}");
        let err = t.refused(remote(RemoteErrorKind::Failed, "boom"), false);
        assert!(matches!(err, AttachError::Agent { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn the_reader_forwards_output_apart_and_ends_with_the_exit() {
        let (host, mut agent) = UnixStream::pair().unwrap();
        let frames = [
            Frame { kind: FrameKind::Data, stream: STDOUT, payload: b"out\n".to_vec() },
            Frame { kind: FrameKind::Data, stream: STDERR, payload: b"err\n".to_vec() },
            Frame { kind: FrameKind::Eof, stream: STDOUT, payload: Vec::new() },
            Frame::control(
                FrameKind::Event,
                serde_json::to_vec(&AgentEvent::AttachEnded(AttachEnd {
                    exit: Some(ExitStatus { code: 7, ..Default::default() }),
                    reason: None,
                }))
                .unwrap(),
            ),
        ];
        for f in &frames {
            f.write_to(&mut agent).unwrap();
        }
        let (tx, mut rx) = mpsc::channel(8);
        let (exit_tx, exit_rx) = oneshot::channel();
        let t = target();
        std::thread::spawn(move || read_stream(host, tx, exit_tx, &t));
        let mut got = Vec::new();
        while let Some(chunk) = rx.recv().await {
            got.push(chunk);
        }
        assert_eq!(
            got,
            vec![
                AttachChunk { stream: LogStream::Stdout, bytes: b"out\n".to_vec() },
                AttachChunk { stream: LogStream::Stderr, bytes: b"err\n".to_vec() },
            ]
        );
        assert_eq!(
            exit_rx.await.unwrap().unwrap(),
            AttachExit { exit_code: 7, signal: None, oom_killed: false }
        );
    }

    #[tokio::test]
    async fn an_end_without_exit_or_a_closed_connection_is_an_ended_error() {
        let (host, mut agent) = UnixStream::pair().unwrap();
        let end = AgentEvent::AttachEnded(AttachEnd {
            exit: None,
            reason: Some("the container was removed".into()),
        });
        Frame::control(FrameKind::Event, serde_json::to_vec(&end).unwrap()).write_to(&mut agent).unwrap();
        let (tx, _rx) = mpsc::channel(8);
        let (exit_tx, exit_rx) = oneshot::channel();
        let t = target();
        std::thread::spawn(move || read_stream(host, tx, exit_tx, &t));
        let err = exit_rx.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("the container was removed"), "{err}");

        let (host, agent) = UnixStream::pair().unwrap();
        drop(agent);
        let (tx, _rx) = mpsc::channel(8);
        let (exit_tx, exit_rx) = oneshot::channel();
        let t = target();
        std::thread::spawn(move || read_stream(host, tx, exit_tx, &t));
        assert!(matches!(exit_rx.await.unwrap(), Err(AttachError::Ended { .. })));
    }
}
