//! Supervision: a plugin that keeps failing is quarantined, and tried again
//! after a back-off that doubles with each quarantine.

use serde::Serialize;

/// Quarantine policy.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// Consecutive failed calls that quarantine a plugin.
    pub failures_to_quarantine: u32,
    /// The first quarantine's length; each later one doubles it.
    pub base_backoff_ms: i64,
    /// The longest quarantine.
    pub max_backoff_ms: i64,
    /// Successful calls after which the back-off starts again from the base.
    pub successes_to_forgive: u32,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision { failures_to_quarantine: 3, base_backoff_ms: 1_000, max_backoff_ms: 300_000, successes_to_forgive: 100 }
    }
}

/// A plugin's health.
#[derive(Debug, Default)]
pub struct Health {
    consecutive_failures: u32,
    successes: u32,
    /// How many quarantines in a row (the back-off exponent).
    level: u32,
    quarantined_until: Option<i64>,
    /// After a quarantine ends, the next call is a trial: one failure re-quarantines.
    on_trial: bool,
    last_failure: Option<String>,
}

/// Health as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthView {
    /// `running`, `quarantined` or `trial`.
    #[schema(value_type = String)]
    pub state: &'static str,
    pub quarantined_until_ms: Option<i64>,
    pub consecutive_failures: u32,
    pub last_failure: Option<String>,
}

impl Health {
    /// Whether a call may run now. Ends an expired quarantine (the plugin goes on trial).
    pub fn admit(&mut self, now: i64) -> bool {
        match self.quarantined_until {
            Some(until) if now < until => false,
            Some(_) => {
                self.quarantined_until = None;
                self.on_trial = true;
                true
            }
            None => true,
        }
    }

    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.on_trial = false;
        self.successes = self.successes.saturating_add(1);
    }

    /// Record a failure; returns the end of a new quarantine, if this one starts one.
    pub fn failure(&mut self, now: i64, policy: &Supervision, kind: &str, message: &str) -> Option<i64> {
        self.consecutive_failures += 1;
        self.last_failure = Some(format!("{kind}: {message}"));
        if self.successes >= policy.successes_to_forgive {
            self.level = 0;
        }
        self.successes = 0;
        if self.on_trial || self.consecutive_failures >= policy.failures_to_quarantine {
            let backoff = policy
                .base_backoff_ms
                .saturating_mul(1i64 << self.level.min(30))
                .min(policy.max_backoff_ms);
            self.level += 1;
            self.on_trial = false;
            self.consecutive_failures = 0;
            let until = now + backoff;
            self.quarantined_until = Some(until);
            Some(until)
        } else {
            None
        }
    }

    pub fn view(&self, now: i64) -> HealthView {
        let quarantined = self.quarantined_until.filter(|u| now < *u);
        HealthView {
            state: if quarantined.is_some() {
                "quarantined"
            } else if self.on_trial || self.quarantined_until.is_some() {
                "trial"
            } else {
                "running"
            },
            quarantined_until_ms: quarantined,
            consecutive_failures: self.consecutive_failures,
            last_failure: self.last_failure.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_backs_off_exponentially_and_trial_failures_requarantine() {
        let p = Supervision { failures_to_quarantine: 3, base_backoff_ms: 100, max_backoff_ms: 250, successes_to_forgive: 2 };
        let mut h = Health::default();
        assert_eq!(h.failure(0, &p, "trap", "x"), None);
        assert_eq!(h.failure(0, &p, "trap", "x"), None);
        assert_eq!(h.failure(0, &p, "trap", "x"), Some(100));
        assert!(!h.admit(99));
        assert_eq!(h.view(50).state, "quarantined");
        assert!(h.admit(100));
        assert_eq!(h.view(100).state, "trial");
        // One failure on trial is enough, and the back-off doubles.
        assert_eq!(h.failure(100, &p, "cpu", "y"), Some(300));
        assert!(h.admit(300));
        assert_eq!(h.failure(300, &p, "cpu", "y"), Some(550), "capped at max_backoff");
        assert!(h.admit(550));
        h.success();
        h.success();
        assert_eq!(h.view(551).state, "running");
        // Enough successes forgive the history: the next quarantine is short again.
        for _ in 0..2 {
            assert_eq!(h.failure(600, &p, "trap", "z"), None);
        }
        assert_eq!(h.failure(600, &p, "trap", "z"), Some(700));
    }
}
