//! Calls the host makes and the agent's replies (JSON in `Call`/`Reply` frames).
//!
//! Every call carries an `id` that its reply repeats. The first call on a connection must be
//! [`Call::Hello`]; the agent answers a different [`crate::PROTOCOL_VERSION`] with a
//! [`RemoteErrorKind::VersionMismatch`] error and serves nothing else on that connection.

use serde::{Deserialize, Serialize};

/// A call with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the host, unique per connection; repeated in the reply.
    pub id: u64,
    /// What is asked.
    pub call: Call,
}

/// What the host can ask of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Opens the conversation; the versions must match.
    Hello {
        /// The host's protocol version.
        protocol: u32,
        /// The host library's version, for the agent's log.
        host: String,
    },
    /// Liveness check.
    Ping,
    /// Stop the VM: sync, unmount and power off after replying.
    Shutdown,
}

/// The reply to a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The id of the call answered.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, RemoteError>,
}

/// A successful outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The agent's side of [`Call::Hello`].
    Hello {
        /// The agent's protocol version (equal to the host's).
        protocol: u32,
        /// The agent's version.
        agent: String,
        /// Guest uptime when the reply was made, in milliseconds.
        uptime_ms: u64,
    },
    /// Answer to [`Call::Ping`].
    Pong,
    /// The agent is powering the VM off.
    ShuttingDown,
}

/// A failed outcome, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// The class of failure.
    pub kind: RemoteErrorKind,
    /// A sentence for humans.
    pub message: String,
}

/// Classes of agent-side failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteErrorKind {
    /// The protocol versions differ.
    VersionMismatch,
    /// A call other than Hello came first.
    HelloRequired,
    /// The agent does not know the call (it is older than the host).
    UnknownCall,
    /// The call was understood but failed.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_round_trip_as_tagged_json() {
        let req = Request { id: 3, call: Call::Hello { protocol: 1, host: "0.1.0".into() } };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""call":"hello""#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        let resp = Response {
            id: 3,
            result: Err(RemoteError { kind: RemoteErrorKind::VersionMismatch, message: "x".into() }),
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), resp);
    }
}
