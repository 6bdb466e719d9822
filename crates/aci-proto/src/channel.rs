//! The host's side of a connection: send a call, wait for its reply.

use std::io::{Read, Write};

use thiserror::Error;

use crate::frame::{Frame, FrameError, FrameKind};
use crate::message::{AgentEvent, Call, RemoteError, RemoteErrorKind, Reply, Request, Response};
use crate::PROTOCOL_VERSION;

/// A call over a [`Channel`] failed.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The connection failed or the peer sent a malformed frame.
    #[error("talking to the agent failed")]
    Frame(#[from] FrameError),
    /// A frame's JSON could not be decoded.
    #[error("the agent sent a message that does not decode")]
    Decode(#[source] serde_json::Error),
    /// The agent answered a different call than the one asked.
    #[error("the agent answered call {got} while call {want} was pending")]
    WrongReply {
        /// The id asked.
        want: u64,
        /// The id answered.
        got: u64,
    },
    /// The protocol versions differ; the text names both sides' versions.
    #[error("protocol version mismatch: {0}")]
    VersionMismatch(String),
    /// The agent reported a failure.
    #[error("the agent refused the call ({:?}): {}", .0.kind, .0.message)]
    Remote(RemoteError),
    /// The reply did not fit the call.
    #[error("unexpected reply {0:?}")]
    UnexpectedReply(Box<Reply>),
}

/// What the agent said in its Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's version.
    pub agent: String,
    /// Guest uptime at the reply, in milliseconds.
    pub uptime_ms: u64,
}

/// A blocking request/response channel over any byte stream.
pub struct Channel<S> {
    stream: S,
    next_id: u64,
}

impl<S: Read + Write> Channel<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        Self { stream, next_id: 1 }
    }

    /// Sends `call` and returns its reply (or the agent's error).
    pub fn call(&mut self, call: Call) -> Result<Reply, ChannelError> {
        let id = self.next_id;
        self.next_id += 1;
        let payload = serde_json::to_vec(&Request { id, call }).map_err(ChannelError::Decode)?;
        Frame::control(FrameKind::Call, payload).write_to(&mut self.stream)?;
        loop {
            let frame = Frame::read_from(&mut self.stream)?;
            if frame.kind != FrameKind::Reply {
                continue; // Streams and events are not consumed by this simple channel.
            }
            let response: Response = serde_json::from_slice(&frame.payload).map_err(ChannelError::Decode)?;
            if response.id != id {
                return Err(ChannelError::WrongReply { want: id, got: response.id });
            }
            return response.result.map_err(|e| match e.kind {
                RemoteErrorKind::VersionMismatch => ChannelError::VersionMismatch(e.message),
                _ => ChannelError::Remote(e),
            });
        }
    }

    /// Opens the conversation and checks the versions agree.
    pub fn hello(&mut self, host_version: &str) -> Result<AgentInfo, ChannelError> {
        match self.call(Call::Hello { protocol: PROTOCOL_VERSION, host: host_version.to_owned() })? {
            Reply::Hello { protocol, agent, uptime_ms } if protocol == PROTOCOL_VERSION => {
                Ok(AgentInfo { agent, uptime_ms })
            }
            Reply::Hello { protocol, agent, .. } => Err(ChannelError::VersionMismatch(format!(
                "host speaks protocol {PROTOCOL_VERSION}, agent {agent} speaks {protocol}"
            ))),
            other => Err(ChannelError::UnexpectedReply(Box::new(other))),
        }
    }

    /// Reads the next frame of a streaming connection (after `Exec`, `Logs` or `Events`).
    pub fn next_frame(&mut self) -> Result<Frame, ChannelError> {
        Ok(Frame::read_from(&mut self.stream)?)
    }

    /// Reads frames until the next `Event` and decodes it; `Ok(None)` when the agent closed
    /// the connection. `Data`/`Eof` frames in between are skipped (use [`Self::next_frame`]
    /// to see them).
    pub fn next_event(&mut self) -> Result<Option<AgentEvent>, ChannelError> {
        loop {
            match Frame::read_from(&mut self.stream) {
                Ok(frame) if frame.kind == FrameKind::Event => {
                    return serde_json::from_slice(&frame.payload).map(Some).map_err(ChannelError::Decode)
                }
                Ok(_) => continue,
                Err(FrameError::Closed) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Sends bytes on a stream (an exec's [`crate::message::STDIN`]).
    pub fn send_data(&mut self, stream: u32, bytes: &[u8]) -> Result<(), ChannelError> {
        Ok(Frame { kind: FrameKind::Data, stream, payload: bytes.to_vec() }.write_to(&mut self.stream)?)
    }

    /// Ends a stream (closes an exec's stdin).
    pub fn send_eof(&mut self, stream: u32) -> Result<(), ChannelError> {
        Ok(Frame { kind: FrameKind::Eof, stream, payload: Vec::new() }.write_to(&mut self.stream)?)
    }

    /// The underlying stream (to clone it for a reader thread, or set timeouts).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}
