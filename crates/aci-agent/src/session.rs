//! One host connection: read calls, answer them, say when the VM should stop.

use std::io::{Read, Write};

use aci_proto::frame::{Frame, FrameError, FrameKind};
use aci_proto::message::{Call, RemoteError, RemoteErrorKind, Reply, Request, Response};
use aci_proto::PROTOCOL_VERSION;

/// What the caller should do after a connection ends.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Keep serving other connections.
    Continue,
    /// The host asked for the VM to stop.
    PowerOff,
}

/// Serves calls on `stream` until the peer closes, breaks protocol, or asks to shut down.
pub fn serve(stream: &mut (impl Read + Write)) -> Result<After, FrameError> {
    let mut greeted = false;
    loop {
        let frame = match Frame::read_from(stream) {
            Ok(frame) => frame,
            Err(FrameError::Closed) => return Ok(After::Continue),
            Err(err) => return Err(err),
        };
        if frame.kind != FrameKind::Call {
            continue;
        }
        let (response, next) = answer(&frame.payload, &mut greeted);
        let payload = serde_json::to_vec(&response).unwrap_or_default();
        Frame::control(FrameKind::Reply, payload).write_to(stream)?;
        match next {
            Next::Serve => {}
            Next::Close => return Ok(After::Continue),
            Next::PowerOff => return Ok(After::PowerOff),
        }
    }
}

enum Next {
    Serve,
    Close,
    PowerOff,
}

fn refuse(id: u64, kind: RemoteErrorKind, message: String) -> Response {
    Response { id, result: Err(RemoteError { kind, message }) }
}

fn answer(payload: &[u8], greeted: &mut bool) -> (Response, Next) {
    let value: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let id = value.get("id").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let request: Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(err) => {
            let msg = format!("agent {} does not understand this call: {err}", env!("CARGO_PKG_VERSION"));
            return (refuse(id, RemoteErrorKind::UnknownCall, msg), Next::Serve);
        }
    };
    match request.call {
        Call::Hello { protocol, host } => {
            if protocol != PROTOCOL_VERSION {
                let msg = format!(
                    "host {host} speaks protocol {protocol}, agent {} speaks {PROTOCOL_VERSION}",
                    env!("CARGO_PKG_VERSION")
                );
                return (refuse(id, RemoteErrorKind::VersionMismatch, msg), Next::Close);
            }
            *greeted = true;
            let reply = Reply::Hello {
                protocol,
                agent: env!("CARGO_PKG_VERSION").to_owned(),
                uptime_ms: uptime_ms(),
            };
            (Response { id, result: Ok(reply) }, Next::Serve)
        }
        _ if !*greeted => {
            (refuse(id, RemoteErrorKind::HelloRequired, "send hello first".into()), Next::Close)
        }
        Call::Ping => (Response { id, result: Ok(Reply::Pong) }, Next::Serve),
        Call::Shutdown => (Response { id, result: Ok(Reply::ShuttingDown) }, Next::PowerOff),
    }
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
        let (host, mut guest) = UnixStream::pair().unwrap();
        let handle = std::thread::spawn(move || serve(&mut guest).unwrap());
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

        let (host, mut guest) = UnixStream::pair().unwrap();
        let handle = std::thread::spawn(move || serve(&mut guest).unwrap());
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
