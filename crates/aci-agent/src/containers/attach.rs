//! Attach: a running container's live output (and, for a `stdin: true` container, its
//! input) on the connection that asked (see `aci_proto::message`). The stream follows the
//! run that was current at attach time and ends with that run's exit: a restart is a new
//! run, which the host attaches to again.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aci_proto::container::{AttachEnd, AttachRequest, ContainerState, ExitStatus, LogStream};
use aci_proto::frame::{Frame, FrameError, FrameKind};
use aci_proto::message::{AgentEvent, RemoteError, Reply, Response, STDERR, STDIN, STDOUT};

use super::error::EngineError;
use super::fanout::{Output, StdinSlot, Subscription};
use super::Shared;
use crate::session::reply;

/// How often an idle attach checks whether the host is still there.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How long to wait, after the run ended, for the rest of its output (a background child
/// can hold the pipes open forever).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// What a successful attach holds.
struct Attached {
    subscription: Subscription,
    stdin: Option<StdinSlot>,
    /// How many output streams end before the output is complete (2, or 1 on a terminal).
    streams: usize,
}

/// Subscribes to the current run of a running container, checking the request against it.
fn subscribe(shared: &Shared, request: &AttachRequest) -> Result<Attached, EngineError> {
    let name = &request.container;
    let table = shared.table();
    let entry = table.get(name).ok_or_else(|| EngineError::NoSuchContainer(name.clone()))?;
    if entry.state != ContainerState::Running {
        return Err(EngineError::InvalidState {
            name: name.clone(),
            what: "attach needs a running container".into(),
        });
    }
    let stdin = if request.stdin {
        let slot = entry.stdin.clone().ok_or_else(|| EngineError::InvalidState {
            name: name.clone(),
            what: "attach with stdin needs a container created with stdin: true".into(),
        })?;
        if !slot.is_open() {
            return Err(EngineError::InvalidState {
                name: name.clone(),
                what: "its stdin was already closed by another attach".into(),
            });
        }
        Some(slot)
    } else {
        None
    };
    let streams = if entry.config.tty { 1 } else { 2 };
    Ok(Attached { subscription: entry.output.subscribe(entry.run), stdin, streams })
}

fn number(stream: LogStream) -> u32 {
    match stream {
        LogStream::Stdout => STDOUT,
        LogStream::Stderr => STDERR,
    }
}

/// Serves one attach connection.
pub fn serve(
    shared: &Arc<Shared>,
    request: AttachRequest,
    id: u64,
    mut stream: UnixStream,
) -> Result<(), FrameError> {
    let attached = match subscribe(shared, &request) {
        Ok(attached) => attached,
        Err(err) => return reply(&mut stream, &Response { id, result: Err(RemoteError::from(err)) }),
    };
    reply(&mut stream, &Response { id, result: Ok(Reply::Streaming) })?;
    let host_gone = Arc::new(AtomicBool::new(false));
    let input = {
        let reader = stream.try_clone()?;
        let gone = Arc::clone(&host_gone);
        let stdin = attached.stdin;
        std::thread::Builder::new()
            .name("attach-input".into())
            .spawn(move || host_input(reader, stdin, &gone))
            .map_err(FrameError::Io)?
    };
    let end = pump(&mut stream, &attached.subscription, attached.streams, &host_gone);
    if let Some(end) = end {
        // A failed write here means the host left first: nothing more to tell it.
        let payload = serde_json::to_vec(&AgentEvent::AttachEnded(end)).unwrap_or_default();
        let _ = Frame::control(FrameKind::Event, payload).write_to(&mut stream);
    }
    let _ = stream.shutdown(Shutdown::Both);
    let _ = input.join();
    Ok(())
}

/// Forwards the subscription's output until the run's output is complete after its exit,
/// the hub drops the subscriber, or the host leaves (`None`: nothing left to send).
fn pump(
    stream: &mut UnixStream,
    subscription: &Subscription,
    streams: usize,
    host_gone: &AtomicBool,
) -> Option<AttachEnd> {
    let mut ended = 0;
    let mut exit: Option<(ExitStatus, Instant)> = None;
    loop {
        if let Some((status, at)) = exit {
            if ended >= streams || at.elapsed() >= DRAIN_WAIT {
                return Some(AttachEnd { exit: Some(status), reason: None });
            }
        }
        let wait = match exit {
            Some((_, at)) => DRAIN_WAIT.saturating_sub(at.elapsed()),
            None => IDLE_CHECK,
        };
        let frame = match subscription.rx.recv_timeout(wait) {
            Ok(Output::Chunk(s, bytes)) => {
                Frame { kind: FrameKind::Data, stream: number(s), payload: bytes.to_vec() }
            }
            Ok(Output::End(s)) => {
                ended += 1;
                Frame { kind: FrameKind::Eof, stream: number(s), payload: Vec::new() }
            }
            Ok(Output::Exited(status)) => {
                exit = Some((status, Instant::now()));
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {
                if host_gone.load(Ordering::SeqCst) {
                    return None;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some((status, _)) = exit {
                    // Removed while draining: the run's end is known all the same.
                    return Some(AttachEnd { exit: Some(status), reason: None });
                }
                let reason = if subscription.lagged() {
                    "this attach fell too far behind the container's output".to_owned()
                } else {
                    "the container was removed".to_owned()
                };
                return Some(AttachEnd { exit: None, reason: Some(reason) });
            }
        };
        if frame.write_to(stream).is_err() {
            return None;
        }
    }
}

/// Reads the host's frames: stdin bytes and end of input (when attached with stdin). Sets
/// `gone` when the host closes the connection (it detached).
fn host_input(mut reader: UnixStream, stdin: Option<StdinSlot>, gone: &AtomicBool) {
    let mut stdin = stdin;
    loop {
        let frame = match Frame::read_from(&mut reader) {
            Ok(frame) => frame,
            Err(_) => {
                gone.store(true, Ordering::SeqCst);
                return;
            }
        };
        match (frame.kind, frame.stream, stdin.as_ref()) {
            // Closed by another attach, or the process is gone: nothing more to write.
            (FrameKind::Data, STDIN, Some(slot)) if slot.write(&frame.payload).is_err() => stdin = None,
            (FrameKind::Eof, STDIN, Some(slot)) => {
                slot.close();
                stdin = None;
            }
            _ => {}
        }
    }
}
