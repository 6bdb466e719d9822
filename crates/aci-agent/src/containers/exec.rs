//! Exec: a process run in a running container, its I/O carried on the connection that
//! asked for it (see `aci_proto::message`): `Data`/`Eof` on STDIN from the host, on STDOUT
//! and STDERR (or only STDOUT, for a terminal) from the agent, `ResizeTty` calls, and a
//! final `ExecExited` event.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aci_proto::container::{ContainerState, ExecConfig, ExitStatus, TtySize};
use aci_proto::frame::{Frame, FrameError, FrameKind};
use aci_proto::message::{
    AgentEvent, Call, RemoteError, RemoteErrorKind, Reply, Request, Response, STDERR, STDIN, STDOUT,
};
use libcontainer::oci_spec::runtime::{Process, ProcessBuilder, UserBuilder};

use super::bundle;
use super::error::EngineError;
use super::rootfs;
use super::runtime::{dev_null, pipe, Stdio};
use super::tty::{self, ConsoleSocket};
use super::{now_ms, Shared};
use crate::session::reply;

/// How long to wait for output to drain after the process ended (a background child can
/// hold the pipes open forever).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// What a started exec hands to the I/O loop.
pub(super) struct Started {
    pub(super) pid: i32,
    pub(super) exited: mpsc::Receiver<super::reaper::Exit>,
    pub(super) started_at_ms: u64,
    /// Where host input goes: the stdin pipe or the terminal master.
    pub(super) input: Option<File>,
    /// (stream number, reader) of each output.
    pub(super) outputs: Vec<(u32, File)>,
    /// The terminal master, for resizes.
    pub(super) master: Option<Arc<OwnedFd>>,
}

/// Serves one exec connection.
pub fn serve(
    shared: &Arc<Shared>,
    config: ExecConfig,
    id: u64,
    mut stream: UnixStream,
) -> Result<(), FrameError> {
    let started = match start(shared, &config) {
        Ok(started) => started,
        Err(err) => return reply(&mut stream, &Response { id, result: Err(RemoteError::from(err)) }),
    };
    reply(&mut stream, &Response { id, result: Ok(Reply::ExecStarted { pid: started.pid as u32 }) })?;
    pump(stream, started)
}

/// Writes the process description, sets up its I/O and has the runtime start it.
pub(super) fn start(shared: &Arc<Shared>, config: &ExecConfig) -> Result<Started, EngineError> {
    shared.reaper();
    let name = config.container.clone();
    let (dir, process) = {
        let table = shared.table();
        let entry = table.get(&name).ok_or_else(|| EngineError::NoSuchContainer(name.clone()))?;
        if entry.state != ContainerState::Running {
            return Err(EngineError::InvalidState { name, what: "exec needs a running container".into() });
        }
        (entry.layout.dir.clone(), process_spec(entry, config)?)
    };
    let seq = shared.next_exec.fetch_add(1, Ordering::Relaxed);
    let process_file = dir.join(format!("exec-{seq}.json"));
    let json = serde_json::to_vec(&process).map_err(|e| EngineError::InvalidConfig {
        name: name.clone(),
        what: format!("the exec process does not serialize: {e}"),
    })?;
    rootfs::write_private(&process_file, &json)
        .map_err(EngineError::setup(&name, "writing the exec process"))?;
    let result = run(shared, config, &dir.join(format!("exec-{seq}.sock")), &process_file);
    let _ = std::fs::remove_file(&process_file);
    result
}

fn run(
    shared: &Arc<Shared>,
    config: &ExecConfig,
    console_path: &std::path::Path,
    process_file: &std::path::Path,
) -> Result<Started, EngineError> {
    let name = &config.container;
    let setup = |step| EngineError::setup(name, step);
    let (stdio, console, mut input, mut outputs) = match config.tty {
        Some(_) => {
            let null = dev_null().map_err(setup("opening /dev/null"))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(setup("duplicating /dev/null"));
            let stdio = Stdio { stdin: dup(&null)?, stdout: dup(&null)?, stderr: null };
            let console = ConsoleSocket::bind(console_path).map_err(setup("creating the console socket"))?;
            (stdio, Some(console), None, Vec::new())
        }
        None => {
            let (in_r, in_w) = pipe().map_err(setup("creating the stdin pipe"))?;
            let (out_r, out_w) = pipe().map_err(setup("creating the stdout pipe"))?;
            let (err_r, err_w) = pipe().map_err(setup("creating the stderr pipe"))?;
            let outputs = vec![(STDOUT, File::from(out_r)), (STDERR, File::from(err_r))];
            (Stdio { stdin: in_r, stdout: out_w, stderr: err_w }, None, Some(File::from(in_w)), outputs)
        }
    };
    let console_arg = console.as_ref().map(|c| c.path().to_owned());
    let pid = shared.runtime.exec(name, process_file, &stdio, console_arg.as_deref()).map_err(|reason| {
        EngineError::StartFailed {
            name: name.clone(),
            command: config.args.first().cloned().unwrap_or_default(),
            reason,
        }
    })?;
    let started_at_ms = now_ms();
    let exited = shared.reaper().wait_for(pid);
    drop(stdio);
    let mut master = None;
    if let (Some(console), Some(size)) = (&console, config.tty) {
        let fd = match console.receive_master(Duration::from_secs(10)) {
            Ok(fd) => fd,
            Err(e) => {
                // SAFETY: kill(2) on the exec's pid (not yet reaped: we watch it).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(setup("receiving the exec's terminal")(e));
            }
        };
        let _ = tty::resize(&fd, size);
        let reader = fd.try_clone().map_err(setup("duplicating the terminal"))?;
        let writer = fd.try_clone().map_err(setup("duplicating the terminal"))?;
        outputs.push((STDOUT, File::from(reader)));
        input = Some(File::from(writer));
        master = Some(Arc::new(fd));
    }
    Ok(Started { pid, exited, started_at_ms, input, outputs, master })
}

/// The exec's process: the container's environment and user, with the exec's additions.
fn process_spec(entry: &super::Entry, config: &ExecConfig) -> Result<Process, EngineError> {
    let name = &config.container;
    let invalid = |what: String| EngineError::InvalidConfig { name: name.clone(), what };
    if config.args.first().is_none_or(String::is_empty) {
        return Err(invalid("exec args is empty: there is no command to run".into()));
    }
    let mut env = entry.config.env.clone();
    env.extend(config.env.iter().cloned());
    let env = bundle::environment(&env, entry.user.home.as_deref(), config.tty.is_some())
        .map_err(|e| invalid(format!("exec {e}")))?;
    let cwd = config.working_dir.as_deref().or(entry.config.working_dir.as_deref()).unwrap_or("/");
    let cwd = bundle::checked_path("exec working_dir".into(), cwd).map_err(|e| invalid(e.to_string()))?;
    let build = || -> Result<Process, libcontainer::oci_spec::OciSpecError> {
        let user = UserBuilder::default()
            .uid(entry.user.uid)
            .gid(entry.user.gid)
            .additional_gids(entry.user.additional_gids.clone())
            .build()?;
        let mut b = ProcessBuilder::default()
            .terminal(config.tty.is_some())
            .user(user)
            .args(config.args.clone())
            .env(env)
            .cwd(cwd)
            .no_new_privileges(true)
            .capabilities(bundle::default_capabilities()?);
        if let Some(size) = config.tty {
            b = b.console_size(
                libcontainer::oci_spec::runtime::BoxBuilder::default()
                    .height(u64::from(size.rows))
                    .width(u64::from(size.cols))
                    .build()?,
            );
        }
        b.build()
    };
    build().map_err(|e| invalid(format!("building the exec process failed: {e}")))
}

type Writer = Arc<Mutex<UnixStream>>;

fn send(writer: &Writer, frame: &Frame) -> Result<(), FrameError> {
    let mut w = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    frame.write_to(&mut *w)
}

/// Moves bytes both ways until the process ends, then reports its exit and closes.
fn pump(stream: UnixStream, started: Started) -> Result<(), FrameError> {
    let Started { pid, exited, started_at_ms, input, outputs, master } = started;
    let writer: Writer = Arc::new(Mutex::new(stream.try_clone()?));
    let (done_tx, done_rx) = mpsc::channel();
    let n_outputs = outputs.len();
    for (number, mut reader) in outputs {
        let writer = Arc::clone(&writer);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let frame =
                            Frame { kind: FrameKind::Data, stream: number, payload: buf[..n].to_vec() };
                        if send(&writer, &frame).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = send(&writer, &Frame { kind: FrameKind::Eof, stream: number, payload: Vec::new() });
            let _ = done.send(());
        });
    }
    let host = {
        let writer = Arc::clone(&writer);
        let reader = stream.try_clone()?;
        std::thread::spawn(move || host_input(reader, writer, input, master, pid))
    };
    let exit = exited.recv().ok();
    for _ in 0..n_outputs {
        if done_rx.recv_timeout(DRAIN_WAIT).is_err() {
            break;
        }
    }
    let status = ExitStatus {
        code: exit.map_or(-1, |e| e.code),
        signal: exit.and_then(|e| e.signal),
        oom_killed: false,
        started_at_ms,
        finished_at_ms: now_ms(),
    };
    let payload = serde_json::to_vec(&AgentEvent::ExecExited(status)).unwrap_or_default();
    let sent = send(&writer, &Frame::control(FrameKind::Event, payload));
    let _ = stream.shutdown(Shutdown::Both);
    let _ = host.join();
    sent
}

/// Reads the host's frames: stdin bytes and end, terminal resizes. When the host goes away
/// before the process ends, the process is killed (nobody would read its output).
fn host_input(
    mut reader: UnixStream,
    writer: Writer,
    mut input: Option<File>,
    master: Option<Arc<OwnedFd>>,
    pid: i32,
) {
    loop {
        let frame = match Frame::read_from(&mut reader) {
            Ok(frame) => frame,
            Err(FrameError::Closed) => {
                // SAFETY: kill(2) on the exec's pid; ESRCH if it already ended.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return;
            }
            Err(_) => return,
        };
        match (frame.kind, frame.stream) {
            (FrameKind::Data, STDIN) => {
                if let Some(w) = input.as_mut() {
                    if w.write_all(&frame.payload).is_err() {
                        input = None;
                    }
                }
            }
            (FrameKind::Eof, STDIN) => {
                if master.is_some() {
                    // A terminal has no end of input: send its EOF character (^D).
                    if let Some(w) = input.as_mut() {
                        let _ = w.write_all(&[4]);
                    }
                } else {
                    input = None;
                }
            }
            (FrameKind::Call, _) => {
                let response = answer(&frame.payload, master.as_deref());
                let payload = serde_json::to_vec(&response).unwrap_or_default();
                if send(&writer, &Frame::control(FrameKind::Reply, payload)).is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Answers a call made on an exec connection: only `ResizeTty` is valid there.
fn answer(payload: &[u8], master: Option<&OwnedFd>) -> Response {
    let fail = |id, kind, message: String| Response { id, result: Err(RemoteError { kind, message }) };
    let request: Request = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                0,
                RemoteErrorKind::UnknownCall,
                format!("undecodable call on an exec connection: {e}"),
            )
        }
    };
    match (request.call, master) {
        (Call::ResizeTty(size), Some(master)) => {
            match tty::resize(master, TtySize { rows: size.rows, cols: size.cols }) {
                Ok(()) => Response { id: request.id, result: Ok(Reply::Done) },
                Err(e) => {
                    fail(request.id, RemoteErrorKind::Failed, format!("resizing the terminal failed: {e}"))
                }
            }
        }
        (Call::ResizeTty(_), None) => {
            fail(request.id, RemoteErrorKind::InvalidState, "this exec has no terminal to resize".into())
        }
        (_, _) => fail(
            request.id,
            RemoteErrorKind::InvalidState,
            "only resize_tty is valid on an exec connection".into(),
        ),
    }
}
