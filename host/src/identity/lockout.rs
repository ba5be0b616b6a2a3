//! Locking an account out after repeated wrong passwords, with a back-off
//! that doubles: 5 failures in a row lock the user name for 30 s, the next
//! failure after that for 60 s, and so on up to 15 min. A right password
//! while locked is refused too (that is the point). A success clears the
//! strikes. Unknown user names are counted the same way, so the answer does
//! not tell which names exist. Kept in memory, per node.

use std::collections::HashMap;

use parking_lot::Mutex;

/// Wrong passwords in a row that lock an account.
pub const FAILURES_TO_LOCK: u32 = 5;
/// The first lock's length; each later one doubles it.
pub const BASE_LOCK_MS: i64 = 30_000;
/// The longest lock.
pub const MAX_LOCK_MS: i64 = 15 * 60_000;
/// User names remembered at most (old, unlocked ones are forgotten first).
const REMEMBERED: usize = 100_000;

#[derive(Debug, Default, Clone, Copy)]
struct Strikes {
    failures: u32,
    /// Locks so far (the back-off exponent).
    level: u32,
    locked_until: i64,
    last: i64,
}

/// The strikes against each user name.
#[derive(Default)]
pub struct Lockout {
    names: Mutex<HashMap<String, Strikes>>,
}

impl Lockout {
    /// `Err(until)` while `name` is locked.
    pub fn check(&self, name: &str, now: i64) -> Result<(), i64> {
        match self.names.lock().get(name) {
            Some(s) if s.locked_until > now => Err(s.locked_until),
            _ => Ok(()),
        }
    }

    /// A wrong password for `name`; `Some(until)` if this locks it.
    pub fn failure(&self, name: &str, now: i64) -> Option<i64> {
        let mut names = self.names.lock();
        if names.len() >= REMEMBERED && !names.contains_key(name) {
            names.retain(|_, s| s.locked_until > now || now - s.last < MAX_LOCK_MS);
            if names.len() >= REMEMBERED {
                return None;
            }
        }
        let s = names.entry(name.to_owned()).or_default();
        s.failures += 1;
        s.last = now;
        if s.failures < FAILURES_TO_LOCK {
            return None;
        }
        let lock = BASE_LOCK_MS.saturating_mul(1 << s.level.min(20)).min(MAX_LOCK_MS);
        s.level += 1;
        // One more failure after a lock ends locks again, for longer.
        s.failures = FAILURES_TO_LOCK - 1;
        s.locked_until = now + lock;
        Some(s.locked_until)
    }

    /// The right password: the strikes are cleared.
    pub fn success(&self, name: &str) {
        self.names.lock().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_and_the_back_off_doubles() {
        let l = Lockout::default();
        for _ in 0..4 {
            assert_eq!(l.failure("zhang", 0), None);
        }
        assert_eq!(l.check("zhang", 0), Ok(()));
        assert_eq!(l.failure("zhang", 0), Some(30_000));
        assert_eq!(l.check("zhang", 29_999), Err(30_000));
        assert_eq!(l.check("li", 1), Ok(()), "other names are not affected");
        assert_eq!(l.check("zhang", 30_000), Ok(()));
        // One more failure after the lock: locked again, twice as long.
        assert_eq!(l.failure("zhang", 30_000), Some(90_000));
        assert_eq!(l.failure("zhang", 90_000), Some(90_000 + 120_000));
        // A success forgets everything.
        l.success("zhang");
        assert_eq!(l.failure("zhang", 300_000), None);
        // Capped at 15 minutes.
        let l = Lockout::default();
        let mut until = 0;
        for n in 0..20 {
            for _ in 0..5 {
                if let Some(u) = l.failure("wang", until) {
                    until = u;
                }
            }
            let _ = n;
        }
        assert!(l.check("wang", until - 1).is_err());
        assert_eq!(l.failure("wang", until), Some(until + MAX_LOCK_MS));
    }
}
