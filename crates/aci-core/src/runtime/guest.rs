//! The host's handles on one deployment's guest: the VM (owned by its own thread) and the
//! agent (a control connection for request/reply calls, an events connection read by its
//! own thread). Everything the guest reports reaches the group's supervisor as a
//! [`GuestMsg`] on one channel.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aci_proto::message::{AgentEvent, Call, Reply};
use aci_vmm::{BuildError, Vm, VmConfig, VmExit};
use tokio::sync::mpsc::UnboundedSender;

use super::error::AgentCallError;
use crate::agent::{connect, Channel};

/// How often the VM thread looks at its stop flag.
const VM_POLL: Duration = Duration::from_millis(50);

/// What the guest side tells the supervisor.
#[derive(Debug)]
pub enum GuestMsg {
    /// An event from the agent's events stream.
    Agent(AgentEvent),
    /// The events stream ended (the agent closed it or the connection broke).
    EventsClosed(String),
    /// The VM ended.
    VmEnded(VmExit),
}

/// The VM could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The VMM refused the configuration or failed a build step.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The VM's thread could not be started.
    #[error("cannot start the VM thread")]
    Thread(#[source] std::io::Error),
}

/// A running VM, owned by a thread that reports its end; dropping the handle stops the VM.
#[derive(Debug)]
pub struct VmHandle {
    stop: Arc<AtomicBool>,
}

impl VmHandle {
    /// Builds and boots the VM on its own thread (blocking until it is built) and reports
    /// its end on `tx`.
    pub fn boot(config: VmConfig, tx: UnboundedSender<GuestMsg>) -> Result<Self, BootError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (built_tx, built_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("aci-vm".into()).spawn(move || {
            let mut vm = match Vm::build(config) {
                Ok(vm) => {
                    let _ = built_tx.send(Ok(()));
                    vm
                }
                Err(err) => {
                    let _ = built_tx.send(Err(err));
                    return;
                }
            };
            let exit = loop {
                if flag.load(Ordering::Acquire) {
                    break vm.stop();
                }
                if let Some(exit) = vm.wait_timeout(VM_POLL) {
                    break exit;
                }
            };
            let _ = tx.send(GuestMsg::VmEnded(exit));
        });
        spawned.map_err(BootError::Thread)?;
        match built_rx.recv() {
            Ok(Ok(())) => Ok(Self { stop }),
            Ok(Err(err)) => Err(BootError::Build(err)),
            Err(_) => Err(BootError::Thread(std::io::Error::other("the VM thread ended while building"))),
        }
    }

    /// Stops the VM by force (its thread then reports [`GuestMsg::VmEnded`]).
    pub fn force_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Drop for VmHandle {
    fn drop(&mut self) {
        self.force_stop();
    }
}

/// The agent of one deployment: the vsock socket and the control connection.
#[derive(Clone)]
pub struct AgentHandle {
    uds: PathBuf,
    control: Arc<Mutex<Channel<UnixStream>>>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").field("uds", &self.uds).finish_non_exhaustive()
    }
}

impl AgentHandle {
    /// Connects to the agent behind `uds` (retrying until `timeout`) and says hello.
    pub async fn connect(uds: &Path, timeout: Duration) -> Result<Self, AgentCallError> {
        let path = uds.to_path_buf();
        let (channel, _info) = tokio::task::spawn_blocking(move || connect(&path, timeout))
            .await
            .map_err(AgentCallError::Task)??;
        Ok(Self { uds: uds.to_path_buf(), control: Arc::new(Mutex::new(channel)) })
    }

    /// The VMM's vsock socket (streaming calls open their own connection there).
    pub fn uds(&self) -> &Path {
        &self.uds
    }

    /// Makes a request/reply call on the control connection.
    pub async fn call(&self, call: Call) -> Result<Reply, AgentCallError> {
        let control = self.control.clone();
        tokio::task::spawn_blocking(move || {
            let mut channel = control.lock().unwrap_or_else(|p| p.into_inner());
            channel.call(call)
        })
        .await
        .map_err(AgentCallError::Task)?
        .map_err(AgentCallError::from)
    }

    /// A call whose success reply is `Done`.
    pub async fn call_done(&self, call: Call) -> Result<(), AgentCallError> {
        match self.call(call).await? {
            Reply::Done => Ok(()),
            other => Err(AgentCallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Opens the events stream and reads it on a thread that forwards every event to `tx`
    /// (then [`GuestMsg::EventsClosed`]). Returns once the agent accepted the subscription,
    /// with a handle that ends the stream when dropped.
    pub async fn subscribe_events(
        &self,
        timeout: Duration,
        tx: UnboundedSender<GuestMsg>,
    ) -> Result<StreamGuard, AgentCallError> {
        let (mut channel, guard) = open_stream(&self.uds, timeout, Call::Events).await?;
        std::thread::Builder::new()
            .name("aci-events".into())
            .spawn(move || loop {
                match channel.next_event() {
                    Ok(Some(event)) => {
                        if tx.send(GuestMsg::Agent(event)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(GuestMsg::EventsClosed("the agent closed the events stream".into()));
                        return;
                    }
                    Err(err) => {
                        let _ = tx.send(GuestMsg::EventsClosed(format!("the events stream failed: {err}")));
                        return;
                    }
                }
            })
            .map_err(|e| AgentCallError::Unexpected(format!("cannot start the events thread: {e}")))?;
        Ok(guard)
    }
}

/// Shuts a streaming connection down when dropped, which ends the thread reading it.
#[derive(Debug)]
pub struct StreamGuard(UnixStream);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Connects a new connection, makes a streaming `call` on it, and returns the channel (with
/// no read timeout: streams wait as long as they must) and a guard that ends it.
pub async fn open_stream(
    uds: &Path,
    timeout: Duration,
    call: Call,
) -> Result<(Channel<UnixStream>, StreamGuard), AgentCallError> {
    let path = uds.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (mut channel, _) = connect(&path, timeout)?;
        match channel.call(call)? {
            Reply::Streaming | Reply::ExecStarted { .. } => {}
            other => return Err(AgentCallError::Unexpected(format!("{other:?}"))),
        }
        let stream = channel.get_ref();
        let clone = stream.try_clone().map_err(|e| AgentCallError::Unexpected(format!("dup: {e}")))?;
        stream.set_read_timeout(None).map_err(|e| AgentCallError::Unexpected(format!("timeout: {e}")))?;
        Ok((channel, StreamGuard(clone)))
    })
    .await
    .map_err(AgentCallError::Task)?
}
