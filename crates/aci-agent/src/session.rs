//! One host connection: read calls, answer them, say when the VM should stop.

use std::io::Write;
use std::os::unix::net::UnixStream;

use aci_proto::frame::{Frame, FrameError, FrameKind};
use aci_proto::message::{Call, RemoteError, RemoteErrorKind, Reply, Request, Response};
use aci_proto::PROTOCOL_VERSION;

use crate::Agent;

/// What the caller should do after a connection ends.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Keep serving other connections.
    Continue,
    /// The host asked for the VM to stop.
    PowerOff,
}

/// Serves calls on `stream` until the peer closes, breaks protocol, or asks to shut down.
/// A streaming call (`Exec`, `Logs`, `Events`, `Attach`) hands the connection to its handler, which
/// owns it until the stream ends.
pub fn serve(mut stream: UnixStream, agent: &Agent) -> Result<After, FrameError> {
    let mut greeted = false;
    loop {
        let frame = match Frame::read_from(&mut stream) {
            Ok(frame) => frame,
            Err(FrameError::Closed) => return Ok(After::Continue),
            Err(err) => return Err(err),
        };
        if frame.kind != FrameKind::Call {
            continue;
        }
        let (id, request) = match decode(&frame.payload) {
            Ok(request) => (request.id, request.call),
            Err(response) => {
                reply(&mut stream, &response)?;
                continue;
            }
        };
        let call = match check_hello(id, request, &mut greeted) {
            Ok(Some(call)) => call,
            Ok(None) => {
                reply(&mut stream, &hello_reply(id))?;
                continue;
            }
            Err(response) => {
                reply(&mut stream, &response)?;
                return Ok(After::Continue);
            }
        };
        match call {
            Call::Shutdown => {
                reply(&mut stream, &Response { id, result: Ok(Reply::ShuttingDown) })?;
                return Ok(After::PowerOff);
            }
            Call::Exec(config) => {
                return agent.containers.serve_exec(config, id, stream).map(|()| After::Continue)
            }
            Call::Logs(request) => {
                return agent.containers.serve_logs(request, id, stream).map(|()| After::Continue)
            }
            Call::Events => return agent.containers.serve_events(id, stream).map(|()| After::Continue),
            Call::Attach(request) => {
                return agent.containers.serve_attach(request, id, stream).map(|()| After::Continue)
            }
            call => {
                let result = answer(agent, call);
                reply(&mut stream, &Response { id, result })?;
            }
        }
    }
}

/// Answers a plain request/reply call.
fn answer(agent: &Agent, call: Call) -> Result<Reply, RemoteError> {
    let done = |r: Result<(), RemoteError>| r.map(|()| Reply::Done);
    match call {
        Call::Ping => Ok(Reply::Pong),
        Call::ConfigureSandbox(config) => done(agent.sandbox.configure(&config)),
        Call::MountStorage(mount) => done(agent.sandbox.mount(&mount)),
        Call::CreateContainer(config) => done(agent.containers.create(config)),
        Call::StartContainer { name } => agent.containers.start(&name).map(|pid| Reply::Started { pid }),
        Call::WaitContainer { name } => agent.containers.wait(&name).map(Reply::Exited),
        Call::Signal { name, signal } => done(agent.containers.signal(&name, signal)),
        Call::ListContainers => Ok(Reply::Containers { containers: agent.containers.list() }),
        Call::Stats => {
            let mut stats = agent.containers.stats();
            stats.interfaces = agent.sandbox.interface_stats();
            Ok(Reply::Stats(stats))
        }
        Call::SetProbes(probes) => done(agent.probes.set(probes)),
        Call::RemoveContainer { name } => {
            agent.probes.forget(&name);
            done(agent.containers.remove(&name))
        }
        Call::ResizeTty(_) => Err(RemoteError {
            kind: RemoteErrorKind::InvalidState,
            message: "resize_tty is only valid on an exec connection".into(),
        }),
        Call::Hello { .. }
        | Call::Shutdown
        | Call::Exec(_)
        | Call::Logs(_)
        | Call::Events
        | Call::Attach(_) => {
            Err(RemoteError { kind: RemoteErrorKind::Failed, message: "handled by the session".into() })
        }
    }
}

/// Writes a reply frame.
pub fn reply(stream: &mut impl Write, response: &Response) -> Result<(), FrameError> {
    let payload = serde_json::to_vec(response).unwrap_or_default();
    Frame::control(FrameKind::Reply, payload).write_to(stream)
}

fn refuse(id: u64, kind: RemoteErrorKind, message: String) -> Response {
    Response { id, result: Err(RemoteError { kind, message }) }
}

/// Decodes a call; an undecodable one is answered with `unknown_call` (same id when readable).
fn decode(payload: &[u8]) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let id = value.get("id").and_then(serde_json::Value::as_u64).unwrap_or(0);
    serde_json::from_value(value).map_err(|err| {
        let msg = format!("agent {} does not understand this call: {err}", env!("CARGO_PKG_VERSION"));
        refuse(id, RemoteErrorKind::UnknownCall, msg)
    })
}

/// Enforces Hello-first: `Ok(None)` for a good Hello (answer it), `Ok(Some(call))` for a call
/// to serve, `Err(response)` to send before closing the connection.
fn check_hello(id: u64, call: Call, greeted: &mut bool) -> Result<Option<Call>, Response> {
    match call {
        Call::Hello { protocol, host } => {
            if protocol != PROTOCOL_VERSION {
                let msg = format!(
                    "host {host} speaks protocol {protocol}, agent {} speaks {PROTOCOL_VERSION}",
                    env!("CARGO_PKG_VERSION")
                );
                return Err(refuse(id, RemoteErrorKind::VersionMismatch, msg));
            }
            *greeted = true;
            Ok(None)
        }
        _ if !*greeted => Err(refuse(id, RemoteErrorKind::HelloRequired, "send hello first".into())),
        call => Ok(Some(call)),
    }
}

fn hello_reply(id: u64) -> Response {
    let reply = Reply::Hello {
        protocol: PROTOCOL_VERSION,
        agent: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_ms: uptime_ms(),
    };
    Response { id, result: Ok(reply) }
}

fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .map(|secs| (secs * 1000.0) as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::channel::{Channel, ChannelError};
    use std::os::unix::net::UnixStream;

    fn agent() -> (Channel<UnixStream>, std::thread::JoinHandle<After>) {
        let (host, guest) = UnixStream::pair().unwrap();
        let handle = std::thread::spawn(move || serve(guest, &Agent::for_tests()).unwrap());
        (Channel::new(host), handle)
    }

    #[test]
    fn hello_ping_shutdown() {
        let (mut ch, handle) = agent();
        let info = ch.hello("test").unwrap();
        assert_eq!(info.agent, env!("CARGO_PKG_VERSION"));
        assert_eq!(ch.call(Call::Ping).unwrap(), Reply::Pong);
        assert_eq!(ch.call(Call::Shutdown).unwrap(), Reply::ShuttingDown);
        assert_eq!(handle.join().unwrap(), After::PowerOff);
    }

    #[test]
    fn version_mismatch_is_named_and_closes() {
        let (mut ch, handle) = agent();
        let err = ch.call(Call::Hello { protocol: PROTOCOL_VERSION + 1, host: "future".into() }).unwrap_err();
        assert!(matches!(err, ChannelError::VersionMismatch(_)), "{err}");
        assert!(err.to_string().contains("mismatch"), "{err}");
        assert_eq!(handle.join().unwrap(), After::Continue);
    }

    #[test]
    fn calls_before_hello_and_unknown_calls_are_refused() {
        let (mut ch, handle) = agent();
        let err = ch.call(Call::Ping).unwrap_err();
        assert!(err.to_string().contains("HelloRequired"), "{err}");
        assert_eq!(handle.join().unwrap(), After::Continue);

        let (host, guest) = UnixStream::pair().unwrap();
        let handle = std::thread::spawn(move || serve(guest, &Agent::for_tests()).unwrap());
        let mut raw = host;
        Frame::control(FrameKind::Call, br#"{"id":9,"call":{"call":"teleport"}}"#.to_vec())
            .write_to(&mut raw)
            .unwrap();
        let reply = Frame::read_from(&mut raw).unwrap();
        let resp: Response = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(resp.id, 9);
        assert!(matches!(resp.result, Err(RemoteError { kind: RemoteErrorKind::UnknownCall, .. })));
        drop(raw);
        assert_eq!(handle.join().unwrap(), After::Continue);
    }
}
