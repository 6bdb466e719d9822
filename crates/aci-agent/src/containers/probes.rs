//! The engine's side of the agent's probes (`crate::probes`): exec attempts run through the
//! engine's exec, reports go to the `Events` subscribers, and the prober hears when each
//! run of a container starts and ends.

use std::io::Read;
use std::sync::{Arc, Weak};
use std::time::Duration;

use aci_proto::container::ExecConfig;
use aci_proto::message::AgentEvent;

use super::{exec, Shared};
use crate::probes::{ExecProbe, ReportSink};
use crate::Agent;

/// Runs probe commands as execs, output discarded (but drained, so a chatty command does
/// not block or die of SIGPIPE).
struct ProbeExec {
    shared: Weak<Shared>,
}

impl ExecProbe for ProbeExec {
    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<i32, String> {
        let shared = self.shared.upgrade().ok_or("the engine is gone")?;
        let config =
            ExecConfig { container: container.to_owned(), args: argv.to_vec(), ..ExecConfig::default() };
        let started = exec::start(&shared, &config).map_err(|e| e.to_string())?;
        drop(started.input);
        for (_, mut output) in started.outputs {
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(output.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
        match started.exited.recv_timeout(timeout) {
            Ok(exit) => Ok(exit.code),
            Err(_) => {
                // SAFETY: kill(2) on the attempt's pid, which the reaper has not reported.
                unsafe { libc::kill(started.pid, libc::SIGKILL) };
                Err(format!("the command did not finish within {} ms", timeout.as_millis()))
            }
        }
    }
}

/// Connects the agent's prober and container engine: probe execs through the engine,
/// reports to the engine's event subscribers, probes started and stopped with each run.
pub fn wire(agent: &Arc<Agent>) {
    let shared = &agent.containers.shared;
    let events = Arc::downgrade(shared);
    let sink: ReportSink = Arc::new(move |report| {
        if let Some(shared) = events.upgrade() {
            shared.emit(AgentEvent::Probe(report));
        }
    });
    agent.probes.wire(Arc::new(ProbeExec { shared: Arc::downgrade(shared) }), sink);
    let weak = Arc::downgrade(agent);
    let observer = super::RunObserver(Box::new(move |name: &str, run: Option<u32>| {
        if let Some(agent) = weak.upgrade() {
            match run {
                Some(run) => agent.probes.run_started(name, run),
                None => agent.probes.run_ended(name),
            }
        }
    }));
    let _ = shared.observer.set(observer);
}
