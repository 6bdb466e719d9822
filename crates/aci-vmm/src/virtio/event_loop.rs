//! The device thread: an epoll loop over a device's notification eventfds and backend fds,
//! calling the device's event glue with the token of each ready source. The vCPU threads
//! never process queues; KVM signals the eventfds (ioeventfd) and this thread does the work.

use std::io;
use std::os::fd::RawFd;
use std::thread::JoinHandle;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Token reserved for the stop eventfd.
const STOP_TOKEN: u64 = u64::MAX;

/// Why a device thread could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    /// The stop eventfd could not be created.
    #[error("could not create the stop eventfd")]
    CreateStopEvent(#[source] io::Error),
    /// The epoll set could not be created.
    #[error("could not create the epoll set")]
    CreateEpoll(#[source] io::Error),
    /// A source could not be added to the epoll set.
    #[error("could not watch fd {fd}")]
    AddSource {
        /// The fd.
        fd: RawFd,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The thread could not be spawned.
    #[error("could not spawn the device thread")]
    SpawnThread(#[source] io::Error),
}

/// Reacts to ready sources; runs on the device thread.
pub trait EventHandler: Send + 'static {
    /// The fds to watch (readable, level-triggered) and the token each reports as.
    fn sources(&self) -> Vec<(RawFd, u64)>;
    /// Source `token` is ready.
    fn handle(&mut self, token: u64);
}

/// A running device thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Worker {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread named `name` that feeds `handler` its events until stopped.
    pub fn spawn<H: EventHandler>(name: &str, mut handler: H) -> Result<Self, EventLoopError> {
        let stop = EventFd::new(EFD_NONBLOCK).map_err(EventLoopError::CreateStopEvent)?;
        let epoll = Epoll::new().map_err(EventLoopError::CreateEpoll)?;
        let mut sources = handler.sources();
        sources.push((stop_fd(&stop), STOP_TOKEN));
        for (fd, token) in sources {
            epoll
                .ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, token))
                .map_err(|source| EventLoopError::AddSource { fd, source })?;
        }
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(&epoll, &mut handler))
            .map_err(EventLoopError::SpawnThread)?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Writing an eventfd only fails when its counter is full: already stopping.
            let _ = self.stop.write(1);
            // A handler that panicked has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

fn stop_fd(stop: &EventFd) -> RawFd {
    std::os::fd::AsRawFd::as_raw_fd(stop)
}

fn run<H: EventHandler>(epoll: &Epoll, handler: &mut H) {
    let mut events = vec![EpollEvent::default(); 16];
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for event in &events[..n] {
            if event.data() == STOP_TOKEN {
                return;
            }
            handler.handle(event.data());
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    struct Forward(EventFd, mpsc::Sender<u64>);

    impl EventHandler for Forward {
        fn sources(&self) -> Vec<(RawFd, u64)> {
            vec![(stop_fd(&self.0), 7)]
        }
        fn handle(&mut self, token: u64) {
            let _ = self.0.read();
            let _ = self.1.send(token);
        }
    }

    #[test]
    fn events_reach_the_handler_and_drop_stops_the_thread() {
        let event = EventFd::new(EFD_NONBLOCK).unwrap();
        let (tx, rx) = mpsc::channel();
        let worker = Worker::spawn("test-worker", Forward(event.try_clone().unwrap(), tx)).unwrap();
        event.write(1).unwrap();
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(), 7);
        drop(worker);
        assert!(rx.recv().is_err(), "the handler is gone with the thread");
    }
}
