//! The clock, an input of every decision: the run reads the time through a [`Clock`], so a
//! test (or a replay) can set it.

use jiff::Timestamp;

/// Where the run reads the current instant.
pub trait Clock: Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
