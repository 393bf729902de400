//! The run's deadline: when to stop starting work, and how long one call may wait, so the
//! report and metrics still get out.
//!
//! Two instants matter: the *end* of the run (the Lambda invocation's deadline, or
//! `--max-run-time`) and, `margin` before it, the point after which no new work starts.
//! Every Kubernetes and AWS call made while pruning is bounded by the time left before the
//! margin ([`Deadline::bound`]): a server that accepts the connection and never answers
//! (a hung apiserver) cannot hold the run past it. Metrics are published after pruning and
//! may use the margin, bounded by the end of the run ([`Deadline::end_of_run`]).
//!
//! A call either has no time to start ([`Cut::NoTimeLeft`]: the work is left for the next
//! run) or is started and gets no answer in time ([`Cut::AtDeadline`], [`Cut::AtLimit`]: the
//! server may have received it, and did not answer).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What a [`Cut::AtDeadline`] message says cut the call, for the run's own deadline.
const RUN_DEADLINE: &str = "the run's deadline";

/// Kept free at the very end of the run for serialising and returning the report, when
/// the margin allows it.
const REPORT_RESERVE: Duration = Duration::from_millis(200);

/// An optional end instant and the margin kept before it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Option<Instant>,
    margin: Duration,
    /// Names this deadline in error messages ("cut at {label}").
    label: &'static str,
}

/// How long one kind of call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Longest wait for one call even with time to spare (a sane per-request bound).
    pub cap: Duration,
    /// Less time than this left: the call is not started at all. A call started with a few
    /// milliseconds left would be cut while a healthy server is still answering it.
    pub min_start: Duration,
}

/// How long a call may wait now: [`Deadline::budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Less than the call's `min_start` is left: do not start it.
    NoTimeLeft {
        /// Time left before the margin.
        left: Duration,
    },
    /// Start it, and give up after `timeout`.
    Wait {
        /// How long to wait for the answer.
        timeout: Duration,
        /// The deadline (not the call's cap) sets `timeout`.
        by_deadline: bool,
    },
}

/// A call that the deadline or its time limit stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cut {
    /// Not started: too little time was left.
    #[error("{call}: not started, {} left before {at}", secs(*left))]
    NoTimeLeft {
        /// The call (`eks:DescribeCluster`, `DELETE /api/v1/...`).
        call: String,
        /// Time that was left.
        left: Duration,
        /// Which deadline.
        at: &'static str,
    },
    /// Sent, and no answer came before the deadline.
    #[error("{call}: no answer after {}, cut at {at}", secs(*waited))]
    AtDeadline {
        /// The call.
        call: String,
        /// How long it waited.
        waited: Duration,
        /// Which deadline.
        at: &'static str,
    },
    /// Sent, and no answer came within the call's own limit ([`CallLimits::cap`]).
    #[error("{call}: no answer within its {} time limit", secs(*waited))]
    AtLimit {
        /// The call.
        call: String,
        /// How long it waited.
        waited: Duration,
    },
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Deadline {
    /// No end: the CLI without `--max-run-time`.
    pub fn none() -> Self {
        Self::new(None, Duration::ZERO)
    }

    /// Ends at `end` (if any), keeping `margin` free before it.
    pub fn new(end: Option<Instant>, margin: Duration) -> Self {
        Self {
            end,
            margin,
            label: RUN_DEADLINE,
        }
    }

    /// The earlier of `end` and `now + max_run_time`.
    pub fn bounded(end: Option<Instant>, max_run_time: Option<Duration>, margin: Duration) -> Self {
        let cap = max_run_time.map(|d| Instant::now() + d);
        let end = match (end, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self::new(end, margin)
    }

    /// Time left before the margin starts (`None`: unbounded).
    pub fn remaining(&self) -> Option<Duration> {
        self.end.map(|end| {
            end.saturating_duration_since(Instant::now())
                .saturating_sub(self.margin)
        })
    }

    /// Time left before the real end of the run, margin included (`None`: unbounded).
    #[cfg(test)]
    pub fn until_end(&self) -> Option<Duration> {
        self.end
            .map(|end| end.saturating_duration_since(Instant::now()))
    }

    /// Whether new work must not start any more.
    pub fn reached(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// Whether waiting `wait` would run into the margin.
    pub fn would_pass(&self, wait: Duration) -> bool {
        self.remaining().is_some_and(|r| wait >= r)
    }

    /// The deadline for what runs after pruning (publishing metrics): the end of the run,
    /// less a small reserve (never more than the margin) for returning the report.
    pub fn end_of_run(&self) -> Deadline {
        Deadline {
            end: self.end,
            margin: REPORT_RESERVE.min(self.margin),
            label: "the end of the run",
        }
    }

    /// A deadline `fraction` (0–1) of the way to this one, for a step that must leave the
    /// rest of the time to later ones; `label` names it in error messages. Unbounded stays
    /// unbounded.
    pub fn share(&self, fraction: f64, label: &'static str) -> Deadline {
        Deadline {
            end: self
                .remaining()
                .map(|left| Instant::now() + left.mul_f64(fraction.clamp(0.0, 1.0))),
            margin: Duration::ZERO,
            label,
        }
    }

    /// How long a call with these limits may wait now.
    pub fn budget(&self, limits: CallLimits) -> Budget {
        budget(self.remaining(), limits)
    }

    /// Runs `call` (named `name` in errors) for at most the time its [`budget`](Self::budget)
    /// allows. The future is dropped when the time is up: whatever it sent stays sent.
    pub async fn bound<F: Future>(
        &self,
        name: &str,
        limits: CallLimits,
        call: F,
    ) -> Result<F::Output, Cut> {
        let started = Instant::now();
        match self.budget(limits) {
            Budget::NoTimeLeft { left } => Err(Cut::NoTimeLeft {
                call: name.to_owned(),
                left,
                at: self.label,
            }),
            Budget::Wait {
                timeout,
                by_deadline,
            } => tokio::time::timeout(timeout, call).await.map_err(|_| {
                let waited = started.elapsed();
                let call = name.to_owned();
                if by_deadline {
                    Cut::AtDeadline {
                        call,
                        waited,
                        at: self.label,
                    }
                } else {
                    Cut::AtLimit { call, waited }
                }
            }),
        }
    }
}

/// Pure: the budget of a call given the time left before the deadline's margin.
pub fn budget(remaining: Option<Duration>, limits: CallLimits) -> Budget {
    match remaining {
        Some(left) if left < limits.min_start => Budget::NoTimeLeft { left },
        Some(left) if left < limits.cap => Budget::Wait {
            timeout: left,
            by_deadline: true,
        },
        _ => Budget::Wait {
            timeout: limits.cap,
            by_deadline: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: CallLimits = CallLimits {
        cap: Duration::from_secs(60),
        min_start: Duration::from_secs(1),
    };

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

    #[test]
    fn a_call_waits_for_the_time_left_when_that_is_shorter_than_its_cap() {
        assert_eq!(
            budget(Some(Duration::from_secs(7)), LIMITS),
            Budget::Wait {
                timeout: Duration::from_secs(7),
                by_deadline: true
            }
        );
    }

    #[test]
    fn a_call_waits_for_its_cap_when_time_is_plenty_or_unbounded() {
        let capped = Budget::Wait {
            timeout: Duration::from_secs(60),
            by_deadline: false,
        };
        assert_eq!(budget(Some(Duration::from_secs(600)), LIMITS), capped);
        assert_eq!(budget(Some(Duration::from_secs(60)), LIMITS), capped);
        assert_eq!(budget(None, LIMITS), capped);
    }

    #[test]
    fn a_call_is_not_started_with_less_than_its_minimum_left() {
        assert_eq!(
            budget(Some(Duration::from_millis(999)), LIMITS),
            Budget::NoTimeLeft {
                left: Duration::from_millis(999)
            }
        );
        assert_eq!(
            budget(Some(Duration::ZERO), LIMITS),
            Budget::NoTimeLeft {
                left: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_call_is_started_with_exactly_its_minimum_left() {
        assert_eq!(
            budget(Some(Duration::from_secs(1)), LIMITS),
            Budget::Wait {
                timeout: Duration::from_secs(1),
                by_deadline: true
            }
        );
    }

    #[test]
    fn the_end_of_the_run_includes_the_margin_less_a_reserve_for_the_report() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_secs(10)),
            Duration::from_secs(4),
        );
        let until_end = d.until_end().expect("bounded");
        assert!(until_end > Duration::from_millis(9900), "{until_end:?}");
        let after = d.end_of_run().remaining().expect("bounded");
        assert!(
            after > Duration::from_millis(9700) && after <= Duration::from_millis(9800),
            "{after:?}"
        );
        // A margin smaller than the reserve is all that is kept back.
        let tight = Deadline::new(
            Some(Instant::now() + Duration::from_secs(10)),
            Duration::from_millis(50),
        );
        let after = tight.end_of_run().remaining().expect("bounded");
        assert!(after > Duration::from_millis(9900), "{after:?}");
        assert_eq!(Deadline::none().end_of_run().remaining(), None);
    }

    #[test]
    fn a_share_ends_that_fraction_of_the_way_to_the_margin() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_secs(12)),
            Duration::from_secs(2),
        );
        let half = d.share(0.5, "half").remaining().expect("bounded");
        assert!(
            half > Duration::from_millis(4900) && half <= Duration::from_secs(5),
            "{half:?}"
        );
        assert_eq!(Deadline::none().share(0.5, "half").remaining(), None);
    }

    /// Short limits so the timing tests run on the real clock in a fraction of a second.
    const QUICK: CallLimits = CallLimits {
        cap: Duration::from_millis(300),
        min_start: Duration::from_millis(100),
    };

    #[tokio::test]
    async fn a_call_with_no_answer_is_cut_at_the_deadline_and_named() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_millis(2120)),
            Duration::from_secs(2),
        );
        let started = Instant::now();
        let cut = d
            .bound("eks:DescribeCluster", QUICK, std::future::pending::<()>())
            .await
            .expect_err("never answers");
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(300), "{waited:?}");
        assert!(matches!(cut, Cut::AtDeadline { .. }), "{cut:?}");
        let text = cut.to_string();
        assert!(
            text.starts_with("eks:DescribeCluster: no answer after 0.1 s"),
            "{text}"
        );
        assert!(text.ends_with(", cut at the run's deadline"), "{text}");
    }

    #[tokio::test]
    async fn a_call_with_no_answer_and_time_to_spare_is_cut_at_its_cap() {
        let cut = Deadline::none()
            .bound("GET /api/v1/pods", QUICK, std::future::pending::<()>())
            .await
            .expect_err("never answers");
        assert!(matches!(cut, Cut::AtLimit { .. }), "{cut:?}");
        assert_eq!(
            cut.to_string(),
            "GET /api/v1/pods: no answer within its 0.3 s time limit"
        );
    }

    #[tokio::test]
    async fn a_call_without_time_to_start_is_not_polled() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_millis(2050)),
            Duration::from_secs(2),
        );
        let polled = std::cell::Cell::new(false);
        let cut = d
            .bound("ec2:DescribeSubnets", QUICK, async { polled.set(true) })
            .await
            .expect_err("no time");
        assert!(!polled.get());
        assert!(matches!(cut, Cut::NoTimeLeft { .. }), "{cut:?}");
        assert_eq!(
            cut.to_string(),
            "ec2:DescribeSubnets: not started, 0.0 s left before the run's deadline"
        );
    }

    #[tokio::test]
    async fn an_answer_in_time_is_returned() {
        let d = Deadline::new(
            Some(Instant::now() + Duration::from_secs(5)),
            Duration::from_secs(2),
        );
        let v = d
            .bound("x", QUICK, async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                7
            })
            .await;
        assert_eq!(v, Ok(7));
    }
}
