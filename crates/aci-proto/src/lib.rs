//! # aci-proto — the host ↔ guest-agent wire protocol
//!
//! The host library and the agent (PID 1 in the microVM) talk over one vsock stream
//! (see `docs/agent-protocol.md`). This crate is shared by both sides:
//!
//! - [`frame`]: length-prefixed frames, each tagged with a kind and a stream number, so calls,
//!   replies and byte streams (logs, exec I/O) can share the connection.
//! - [`message`]: the calls and replies, versioned by [`PROTOCOL_VERSION`], encoded as JSON
//!   in `Call`/`Reply` frames.
//! - [`sandbox`], [`container`]: the data the calls carry.
//! - [`secret`]: values that cross the wire but never print.
//! - [`channel`]: blocking helpers that send a call and read its reply.

pub mod channel;
pub mod container;
pub mod frame;
pub mod message;
pub mod probe;
pub mod sandbox;
pub mod secret;

pub use secret::Secret;

/// The protocol version both sides must agree on in [`message::Call::Hello`].
pub const PROTOCOL_VERSION: u32 = 2;

/// The vsock port the agent listens on.
pub const AGENT_VSOCK_PORT: u32 = 1024;
