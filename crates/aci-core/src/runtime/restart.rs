//! Restart policies and the crash-loop back-off.
//!
//! ACI's `restartPolicy` applies to every container of the group:
//! - `Always`: restart after any exit;
//! - `OnFailure`: restart after a non-zero exit (or a kill by a signal);
//! - `Never`: never restart.
//!
//! Restarts are delayed like Kubernetes' CrashLoopBackOff: the n-th consecutive restart waits
//! `base × 2ⁿ` (10 s, 20 s, 40 s, … by default), at most `cap` (5 min); a run that lasted at
//! least `reset_after` (10 min) resets the sequence. The base is configurable so tests are
//! fast. When no container will run again, the group ends: `Succeeded` when every container
//! exited 0, else `Failed`.

use std::time::Duration;

use crate::spec::RestartPolicy;

/// The back-off between restarts of a container that keeps exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The delay before the first restart.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// A run at least this long resets the sequence to `base`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffPolicy {
    /// The delay before a restart, after `consecutive` earlier back-offs (0 for the first).
    pub fn delay(&self, consecutive: u32) -> Duration {
        let factor = 1u32.checked_shl(consecutive.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.cap).min(self.cap)
    }

    /// The consecutive back-off count to use after a run of `ran` that followed `previous`
    /// consecutive back-offs: a long run starts the sequence over.
    pub fn next_count(&self, previous: u32, ran: Duration) -> u32 {
        if ran >= self.reset_after {
            0
        } else {
            previous
        }
    }
}

/// Whether a container that exited with `exit_code` is restarted under `policy`.
pub fn should_restart(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// The group state once no container will run again: `Succeeded` when every exit code is 0.
pub fn terminal_state(exit_codes: impl IntoIterator<Item = i32>) -> super::GroupState {
    if exit_codes.into_iter().all(|c| c == 0) {
        super::GroupState::Succeeded
    } else {
        super::GroupState::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::GroupState;

    #[test]
    fn back_off_doubles_from_the_base_to_the_cap() {
        let p = BackoffPolicy::default();
        let secs: Vec<u64> = (0..8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(p.delay(u32::MAX), p.cap);
        let fast = BackoffPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(1), ..p };
        assert_eq!(fast.delay(2), Duration::from_millis(400));
        assert_eq!(fast.delay(4), Duration::from_secs(1));
    }

    #[test]
    fn a_long_run_resets_the_sequence() {
        let p = BackoffPolicy::default();
        assert_eq!(p.next_count(5, Duration::from_secs(30)), 5);
        assert_eq!(p.next_count(5, Duration::from_secs(600)), 0);
    }

    #[test]
    fn policies_and_outcomes_follow_aci() {
        assert!(should_restart(RestartPolicy::Always, 0));
        assert!(should_restart(RestartPolicy::OnFailure, 1));
        assert!(should_restart(RestartPolicy::OnFailure, 137));
        assert!(!should_restart(RestartPolicy::OnFailure, 0));
        assert!(!should_restart(RestartPolicy::Never, 1));
        assert_eq!(terminal_state([0, 0]), GroupState::Succeeded);
        assert_eq!(terminal_state([0, 1]), GroupState::Failed);
    }
}
