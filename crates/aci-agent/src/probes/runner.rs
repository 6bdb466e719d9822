//! One probe's thread for one run of a container.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aci_proto::probe::{ProbeAction, ProbeConfig, ProbeReport, ProbeRole};

use super::verdict::Verdict;
use super::{check, ExecProbe, ReportSink};

/// Which probe a runner serves.
#[derive(Debug, Clone)]
pub struct Target {
    /// The container.
    pub container: String,
    /// Liveness or readiness.
    pub role: ProbeRole,
    /// The run.
    pub run: u32,
}

/// A running probe; dropping it stops the thread (after its current attempt, which its
/// timeout bounds).
pub struct Runner {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Runner {
    /// Starts the probe's thread.
    pub fn start(target: Target, probe: ProbeConfig, exec: Arc<dyn ExecProbe>, sink: ReportSink) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let name = format!("probe-{}-{:?}", target.container, target.role);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&target, &probe, exec.as_ref(), sink.as_ref(), &flag));
        if let Err(err) = spawned {
            eprintln!("aci-agent: could not start a probe thread: {err}");
        }
        Self { stop }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let (flag, cond) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_all();
    }
}

/// Sleeps `d` unless stopped first; returns false when stopped.
fn sleep(stop: &(Mutex<bool>, Condvar), d: Duration) -> bool {
    let (flag, cond) = stop;
    let deadline = Instant::now() + d;
    let mut stopped = flag.lock().unwrap_or_else(PoisonError::into_inner);
    while !*stopped {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { return true };
        stopped = cond.wait_timeout(stopped, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    false
}

fn run(
    target: &Target,
    probe: &ProbeConfig,
    exec: &dyn ExecProbe,
    sink: &(dyn Fn(ProbeReport) + Send + Sync),
    stop: &(Mutex<bool>, Condvar),
) {
    let initially_passing = target.role == ProbeRole::Liveness;
    let mut verdict = Verdict::new(initially_passing, probe.success_threshold, probe.failure_threshold);
    if !sleep(stop, Duration::from_millis(probe.initial_delay_ms)) {
        return;
    }
    loop {
        let started = Instant::now();
        let (ok, message) = attempt(&target.container, probe, exec);
        if *stop.0.lock().unwrap_or_else(PoisonError::into_inner) {
            return; // The run ended while the attempt ran: its result says nothing.
        }
        let step = verdict.record(ok);
        if !ok || step.changed {
            sink(ProbeReport {
                container: target.container.clone(),
                role: target.role,
                run: target.run,
                passing: step.passing,
                changed: step.changed,
                attempt_ok: ok,
                message,
            });
        }
        let period = Duration::from_millis(probe.period_ms);
        if !sleep(stop, period.saturating_sub(started.elapsed())) {
            return;
        }
    }
}

fn attempt(container: &str, probe: &ProbeConfig, exec: &dyn ExecProbe) -> check::Attempt {
    let timeout = Duration::from_millis(probe.timeout_ms);
    match &probe.action {
        ProbeAction::TcpSocket { port } => check::tcp(*port, timeout),
        ProbeAction::HttpGet { path, port, headers } => check::http_get(*port, path, headers, timeout),
        ProbeAction::Exec { command } => match exec.exec(container, command, timeout) {
            Ok(0) => (true, format!("{command:?} exited 0")),
            Ok(code) => (false, format!("{command:?} exited {code}")),
            Err(err) => (false, format!("{command:?} failed: {err}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    struct FakeExec(AtomicI32);
    impl ExecProbe for FakeExec {
        fn exec(&self, _c: &str, _argv: &[String], _t: Duration) -> Result<i32, String> {
            Ok(self.0.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn a_runner_reports_failures_and_verdict_changes_then_stops_when_dropped() {
        // The exec side is an in-memory stand-in here; real execs are covered by the KVM tier.
        let exec = Arc::new(FakeExec(AtomicI32::new(0)));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink_reports = Arc::clone(&reports);
        let sink: ReportSink = Arc::new(move |r| sink_reports.lock().unwrap().push(r));
        let probe = ProbeConfig {
            action: ProbeAction::Exec { command: vec!["true".into()] },
            initial_delay_ms: 0,
            period_ms: 20,
            timeout_ms: 100,
            success_threshold: 1,
            failure_threshold: 2,
        };
        let target = Target { container: "app".into(), role: ProbeRole::Liveness, run: 3 };
        let runner = Runner::start(target, probe, Arc::clone(&exec) as Arc<dyn ExecProbe>, sink);
        std::thread::sleep(Duration::from_millis(100));
        assert!(reports.lock().unwrap().is_empty(), "passing liveness attempts are not reported");
        exec.0.store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        drop(runner);
        std::thread::sleep(Duration::from_millis(60));
        let seen = reports.lock().unwrap().clone();
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(seen[0].passing && !seen[0].attempt_ok && !seen[0].changed, "{:?}", seen[0]);
        assert!(!seen[1].passing && seen[1].changed && seen[1].run == 3, "{:?}", seen[1]);
        let count = seen.len();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(reports.lock().unwrap().len(), count, "no attempts after the runner is dropped");
    }
}
