//! The two streaming calls that only read engine state: `Logs` (kept lines, then new ones
//! when following) and `Events` (container lifecycle).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use aci_proto::container::LogsRequest;
use aci_proto::frame::{Frame, FrameError, FrameKind};
use aci_proto::message::{AgentEvent, RemoteError, Reply, Response};

use super::error::EngineError;
use super::Shared;
use crate::session::reply;

/// How often an idle stream checks whether the host is still there.
const IDLE_CHECK: Duration = Duration::from_secs(1);

fn send_event(stream: &mut UnixStream, event: &AgentEvent) -> Result<(), FrameError> {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    Frame::control(FrameKind::Event, payload).write_to(stream)
}

/// True when the host closed (or broke) the connection. Bytes the host sends on a
/// streaming connection are not read, so only hang-ups and a clean end count.
pub fn peer_closed(stream: &UnixStream) -> bool {
    let mut pfd = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return false;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0 {
        return true;
    }
    let mut byte = 0u8;
    // SAFETY: peeking at most one byte into our local.
    let got = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            std::ptr::addr_of_mut!(byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    got == 0
}

/// Serves `Logs`: the kept lines (the last `tail`), then `LogEnd`, or, when following,
/// new lines as they come until the host closes or the container is removed.
pub fn serve_logs(
    shared: &Arc<Shared>,
    request: LogsRequest,
    id: u64,
    mut stream: UnixStream,
) -> Result<(), FrameError> {
    let logs = shared.table().get(&request.container).map(|e| e.logs.clone());
    let Some(logs) = logs else {
        let err = RemoteError::from(EngineError::NoSuchContainer(request.container));
        return reply(&mut stream, &Response { id, result: Err(err) });
    };
    reply(&mut stream, &Response { id, result: Ok(Reply::Streaming) })?;
    // From here on a failed write means the host stopped listening: the stream just ends.
    let (kept, mut cursor) = logs.tail(request.tail);
    for entry in kept {
        if send_event(&mut stream, &AgentEvent::Log(entry)).is_err() {
            return Ok(());
        }
    }
    if !request.follow {
        return send_event(&mut stream, &AgentEvent::LogEnd).or(Ok(()));
    }
    loop {
        if peer_closed(&stream) {
            return Ok(());
        }
        let Some((entries, next)) = logs.wait_after(cursor, IDLE_CHECK) else {
            return send_event(&mut stream, &AgentEvent::LogEnd).or(Ok(()));
        };
        cursor = next;
        for entry in entries {
            if send_event(&mut stream, &AgentEvent::Log(entry)).is_err() {
                return Ok(());
            }
        }
    }
}

/// Serves `Events`: every `ContainerStarted`/`ContainerExited` from now on, until the host
/// closes the connection.
pub fn serve_events(shared: &Arc<Shared>, id: u64, mut stream: UnixStream) -> Result<(), FrameError> {
    let (tx, rx) = mpsc::channel();
    shared.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tx);
    reply(&mut stream, &Response { id, result: Ok(Reply::Streaming) })?;
    loop {
        match rx.recv_timeout(IDLE_CHECK) {
            Ok(event) => {
                if send_event(&mut stream, &event).is_err() {
                    return Ok(());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if peer_closed(&stream) {
                    return Ok(());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
