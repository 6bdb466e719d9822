//! Talking to the guest agent from the host.
//!
//! The VMM exposes the guest's vsock through a Unix socket (Firecracker's convention): the
//! host connects to it, writes `CONNECT <port>\n` and reads `OK <host_port>\n`; after that
//! the socket is a byte stream to the agent, which speaks `aci-proto` (see
//! `docs/agent-protocol.md`). [`connect`] does the handshake, retrying while the agent is
//! not listening yet, and returns a [`Channel`] on which `hello` has succeeded.

mod connect;

pub use aci_proto::channel::{AgentInfo, Channel, ChannelError};
pub use connect::{connect, ConnectError, REPLY_TIMEOUT};
