//! The run's deadline: when to stop starting work so the report and metrics still get out.

use std::time::Duration;

use tokio::time::Instant;

/// An optional end instant and the margin kept before it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Option<Instant>,
    margin: Duration,
}

impl Deadline {
    /// No end: the CLI without `--max-run-time`.
    pub fn none() -> Self {
        Self {
            end: None,
            margin: Duration::ZERO,
        }
    }

    /// Ends at `end` (if any), keeping `margin` free before it.
    pub fn new(end: Option<Instant>, margin: Duration) -> Self {
        Self { end, margin }
    }

    /// The earlier of `end` and `now + max_run_time`.
    pub fn bounded(end: Option<Instant>, max_run_time: Option<Duration>, margin: Duration) -> Self {
        let cap = max_run_time.map(|d| Instant::now() + d);
        let end = match (end, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self { end, margin }
    }

    /// Time left before the margin starts (`None`: unbounded).
    pub fn remaining(&self) -> Option<Duration> {
        self.end.map(|end| {
            end.saturating_duration_since(Instant::now())
                .saturating_sub(self.margin)
        })
    }

    /// Whether new work must not start any more.
    pub fn reached(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// Whether waiting `wait` would run into the margin.
    pub fn would_pass(&self, wait: Duration) -> bool {
        self.remaining().is_some_and(|r| wait >= r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_reached_when_only_the_margin_is_left() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_secs(60)),
            Duration::from_secs(30),
        );
        assert!(!d.reached());
        assert!(d.would_pass(Duration::from_secs(30)));
        assert!(!d.would_pass(Duration::from_secs(25)));
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_secs(29)),
            Duration::from_secs(30),
        );
        assert!(d.reached());
    }

    #[test]
    fn max_run_time_caps_the_invocation_deadline() {
        let d = Deadline::bounded(
            Some(Instant::now() + Duration::from_secs(900)),
            Some(Duration::from_secs(60)),
            Duration::ZERO,
        );
        let left = d.remaining().expect("bounded");
        assert!(
            left <= Duration::from_secs(60) && left > Duration::from_secs(59),
            "{left:?}"
        );
        assert_eq!(Deadline::none().remaining(), None);
        assert!(!Deadline::none().reached());
    }
}
