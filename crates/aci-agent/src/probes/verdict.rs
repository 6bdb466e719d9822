//! The threshold logic of one probe: consecutive successes and failures turn into a verdict.

/// The running verdict of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    passing: bool,
    successes: u32,
    failures: u32,
    success_threshold: u32,
    failure_threshold: u32,
}

/// What one attempt did to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The verdict after the attempt.
    pub passing: bool,
    /// It changed with this attempt.
    pub changed: bool,
}

impl Verdict {
    /// A fresh verdict: liveness starts passing (a container is alive until proven otherwise),
    /// readiness starts failing (not ready until it has succeeded `success_threshold` times).
    pub fn new(initially_passing: bool, success_threshold: u32, failure_threshold: u32) -> Self {
        Self {
            passing: initially_passing,
            successes: 0,
            failures: 0,
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
        }
    }

    /// Records one attempt.
    pub fn record(&mut self, ok: bool) -> Step {
        let before = self.passing;
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= self.success_threshold {
                self.passing = true;
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failure_threshold {
                self.passing = false;
            }
        }
        Step { passing: self.passing, changed: self.passing != before }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_fails_after_threshold_consecutive_failures() {
        let mut v = Verdict::new(true, 1, 3);
        assert_eq!(v.record(false), Step { passing: true, changed: false });
        assert_eq!(v.record(false), Step { passing: true, changed: false });
        // A success in between resets the count.
        assert_eq!(v.record(true), Step { passing: true, changed: false });
        assert_eq!(v.record(false), Step { passing: true, changed: false });
        assert_eq!(v.record(false), Step { passing: true, changed: false });
        assert_eq!(v.record(false), Step { passing: false, changed: true });
        assert_eq!(v.record(false), Step { passing: false, changed: false });
    }

    #[test]
    fn readiness_needs_success_threshold_and_flips_back() {
        let mut v = Verdict::new(false, 2, 1);
        assert_eq!(v.record(true), Step { passing: false, changed: false });
        assert_eq!(v.record(true), Step { passing: true, changed: true });
        assert_eq!(v.record(false), Step { passing: false, changed: true });
        assert_eq!(v.record(true), Step { passing: false, changed: false });
        assert_eq!(v.record(true), Step { passing: true, changed: true });
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut v = Verdict::new(false, 0, 0);
        assert!(v.record(true).passing);
        assert!(!v.record(false).passing);
    }
}
