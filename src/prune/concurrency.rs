//! How many DELETEs may be in flight: an adaptive limit, additive increase / multiplicative
//! decrease (AIMD) on what the API server's answers say, never above `REAPER_CONCURRENCY`.
//!
//! Pure: the deleters report each answer ([`Sample`]) with the [`Ticket`] its request was
//! sent under; no clock, no I/O, so the rules below are unit- and property-tested.
//!
//! - **Start** at 1 and double once per window (slow start) until the first sign of load;
//!   then **+1 per window** (additive increase). A window is one round trip's worth of
//!   answers: as many as the limit, and at least [`MIN_WINDOW`] so its median means
//!   something. The limit only grows when the window actually had that many requests in
//!   flight: a lister that cannot keep the deleters busy proves nothing about the server.
//! - **429** (or a request that got no answer in time) **halves** the limit at once.
//! - **Rising latency** cuts it by a quarter. The window's median latency is compared with
//!   the lowest window median seen (the unloaded latency, found during slow start):
//!   `limit × (1 − lowest / median)` estimates how many of our requests wait in the server
//!   rather than being worked on (TCP Vegas' queue estimate). Over [`QUEUE_HIGH`] waiting,
//!   the limit comes down; under [`QUEUE_LOW`] it may grow; in between it holds. Latency
//!   alone therefore never takes the limit under [`QUEUE_HIGH`]: only 429s go lower.
//! - After a decrease, answers to requests sent before it are ignored (their [`Ticket`]'s
//!   epoch is old): one overload is one decrease, not one per request in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Fewest answers a window judges on.
pub const MIN_WINDOW: usize = 8;
/// Requests estimated waiting in the server above which the limit comes down.
pub const QUEUE_HIGH: f64 = 8.0;
/// Requests estimated waiting below which the limit may grow.
pub const QUEUE_LOW: f64 = 4.0;
/// Factor applied on a 429 or a request with no answer in time.
const THROTTLED_DECREASE: f64 = 0.5;
/// Factor applied on rising latency.
const LATENCY_DECREASE: f64 = 0.75;

/// What one request's answer says about the server's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// Answered (any status but 429) after this long, with no 429 on the way.
    Answered(Duration),
    /// Throttled (429, whatever came after) or no answer in time.
    Overloaded,
    /// Says nothing about load (not sent: deadline; transport failure).
    Nothing,
}

/// Handed out when a request starts; given back with its [`Sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
}

/// How the limit grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Doubles per window, until the first sign of load.
    SlowStart,
    /// One more per window.
    Steady,
}

/// The adaptive limit of one cluster's deletions.
#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    ceiling: usize,
    limit: usize,
    phase: Phase,
    /// Bumped at every decrease: answers to requests sent before it are stale.
    epoch: u64,
    in_flight: usize,
    /// Latencies of the current window.
    window: Vec<Duration>,
    /// The window had `limit` requests in flight at some point.
    window_saturated: bool,
    /// Lowest window median seen.
    baseline: Option<Duration>,
    /// Requests sent, by the limit in force when each was sent.
    sent_at: BTreeMap<usize, u64>,
    decreases_throttled: u64,
    decreases_latency: u64,
}

impl AdaptiveLimit {
    /// A limit that never exceeds `ceiling` (at least 1).
    pub fn new(ceiling: usize) -> Self {
        Self {
            ceiling: ceiling.max(1),
            limit: 1,
            phase: Phase::SlowStart,
            epoch: 0,
            in_flight: 0,
            window: Vec::new(),
            window_saturated: false,
            baseline: None,
            sent_at: BTreeMap::new(),
            decreases_throttled: 0,
            decreases_latency: 0,
        }
    }

    /// Requests that may be in flight now.
    pub fn current(&self) -> usize {
        self.limit
    }

    /// Whether another request may start.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.limit
    }

    /// A request starts.
    pub fn start(&mut self) -> Ticket {
        self.in_flight += 1;
        if self.in_flight >= self.limit {
            self.window_saturated = true;
        }
        *self.sent_at.entry(self.limit).or_default() += 1;
        Ticket { epoch: self.epoch }
    }

    /// A request started with `ticket` ended; `sample` is what its answer says.
    pub fn finish(&mut self, ticket: Ticket, sample: Sample) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if ticket.epoch != self.epoch {
            return;
        }
        match sample {
            Sample::Nothing => {}
            Sample::Overloaded => {
                self.decreases_throttled += 1;
                self.decrease(THROTTLED_DECREASE);
            }
            Sample::Answered(latency) => {
                self.window.push(latency);
                if self.window.len() >= self.limit.max(MIN_WINDOW) {
                    self.judge_window();
                }
            }
        }
    }

    fn judge_window(&mut self) {
        self.window.sort_unstable();
        let median = self.window[self.window.len() / 2];
        let baseline = self.baseline.map_or(median, |b| b.min(median));
        self.baseline = Some(baseline);
        let queued = waiting(self.limit, baseline, median);
        let saturated = self.window_saturated;
        self.window.clear();
        self.window_saturated = false;
        if queued > QUEUE_HIGH {
            self.decreases_latency += 1;
            self.decrease(LATENCY_DECREASE);
        } else if queued < QUEUE_LOW && saturated {
            self.limit = match self.phase {
                Phase::SlowStart => self.limit.saturating_mul(2),
                Phase::Steady => self.limit + 1,
            }
            .min(self.ceiling);
        } else if queued >= QUEUE_LOW {
            self.phase = Phase::Steady;
        }
    }

    fn decrease(&mut self, factor: f64) {
        // Truncation is the point: the limit only ever comes down to a whole request.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let lower = (self.limit as f64 * factor) as usize;
        self.limit = lower.max(1);
        self.phase = Phase::Steady;
        self.epoch += 1;
        self.window.clear();
        self.window_saturated = false;
    }

    /// What the run did with its limit.
    pub fn summary(&self) -> ConcurrencyReport {
        ConcurrencyReport {
            ceiling: self.ceiling,
            settled: settled(&self.sent_at),
            min: self.sent_at.keys().next().copied().unwrap_or(0),
            max: self.sent_at.keys().next_back().copied().unwrap_or(0),
            decreases_throttled: self.decreases_throttled,
            decreases_latency: self.decreases_latency,
            sent_at: self.sent_at.clone(),
        }
    }
}

/// Our requests estimated waiting in the server: `limit × (1 − baseline / median)`.
fn waiting(limit: usize, baseline: Duration, median: Duration) -> f64 {
    if median.is_zero() {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let limit = limit as f64;
    limit * (1.0 - baseline.as_secs_f64() / median.as_secs_f64())
}

/// The limit most requests were sent under (the higher one on a tie); 0 when none was sent.
pub fn settled(sent_at: &BTreeMap<usize, u64>) -> usize {
    sent_at
        .iter()
        .max_by_key(|(limit, n)| (**n, **limit))
        .map_or(0, |(limit, _)| *limit)
}

/// The concurrency a cluster's deletions ran at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyReport {
    /// `REAPER_CONCURRENCY`: the limit never went above it.
    pub ceiling: usize,
    /// The limit most DELETEs were sent under (0: none sent).
    pub settled: usize,
    /// Lowest limit a DELETE was sent under (slow start begins at 1).
    pub min: usize,
    /// Highest limit a DELETE was sent under.
    pub max: usize,
    /// Decreases on a 429 or a DELETE with no answer in time.
    pub decreases_throttled: u64,
    /// Decreases on rising latency.
    pub decreases_latency: u64,
    /// DELETEs sent, by the limit in force (for merging clusters; not serialised).
    #[serde(skip)]
    pub sent_at: BTreeMap<usize, u64>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Keeps the limit's worth of requests in flight and answers them, a window's worth at
    /// a time, `windows` times; `latency` gives each answer's latency from the limit.
    fn run(limit: &mut AdaptiveLimit, windows: usize, latency: impl Fn(usize) -> Duration) {
        for _ in 0..windows {
            let n = limit.current().max(MIN_WINDOW);
            let mut tickets = Vec::new();
            let mut answered = 0;
            while answered < n {
                while limit.has_room() {
                    tickets.push(limit.start());
                }
                let t = tickets.remove(0);
                limit.finish(t, Sample::Answered(latency(limit.current())));
                answered += 1;
            }
            for t in tickets {
                limit.finish(t, Sample::Nothing);
            }
        }
    }

    #[test]
    fn a_fast_server_lets_the_limit_climb_to_the_ceiling_and_no_further() {
        let mut l = AdaptiveLimit::new(64);
        run(&mut l, 40, |_| ms(5));
        assert_eq!(l.current(), 64);
        let s = l.summary();
        assert_eq!((s.min, s.max, s.ceiling), (1, 64, 64));
        assert_eq!(s.decreases_latency + s.decreases_throttled, 0);
    }

    #[test]
    fn slow_start_doubles_then_steady_state_adds_one() {
        let mut l = AdaptiveLimit::new(100);
        run(&mut l, 3, |_| ms(5));
        assert_eq!(l.current(), 8, "1 → 2 → 4 → 8");
        // Latency that says 5 of 8 requests wait: between the bounds, so it holds and
        // leaves slow start.
        run(&mut l, 1, |_| ms(13));
        assert_eq!(l.current(), 8);
        run(&mut l, 2, |_| ms(5));
        assert_eq!(l.current(), 10, "+1 per window after slow start");
    }

    #[test]
    fn a_429_halves_the_limit_once_for_all_requests_then_in_flight() {
        let mut l = AdaptiveLimit::new(64);
        run(&mut l, 40, |_| ms(5));
        let tickets: Vec<Ticket> = (0..64).map(|_| l.start()).collect();
        for t in tickets {
            l.finish(t, Sample::Overloaded);
        }
        assert_eq!(l.current(), 32, "every 429 of one burst is one decrease");
        assert_eq!(l.summary().decreases_throttled, 1);
    }

    #[test]
    fn repeated_429s_bring_the_limit_down_to_one_not_zero() {
        let mut l = AdaptiveLimit::new(16);
        run(&mut l, 10, |_| ms(5));
        for _ in 0..10 {
            let t = l.start();
            l.finish(t, Sample::Overloaded);
        }
        assert_eq!(l.current(), 1);
        assert!(l.has_room());
    }

    #[test]
    fn latency_growing_with_the_limit_stops_it_near_the_servers_capacity() {
        // A server that works on 4 requests at once, 5 ms each: the rest queue, and
        // latency = 5 ms × max(1, limit / 4) (Little's law).
        let mut l = AdaptiveLimit::new(64);
        run(&mut l, 200, |limit| ms(5 * (limit as u64).max(4) / 4));
        let settled = l.current();
        assert!(
            (4 + QUEUE_LOW as usize..=4 + QUEUE_HIGH as usize).contains(&settled),
            "settled at {settled}"
        );
        assert!(
            l.summary().max <= 4 + QUEUE_HIGH as usize,
            "{:?}",
            l.summary()
        );
    }

    #[test]
    fn latency_alone_never_takes_the_limit_below_the_queue_bound() {
        let mut l = AdaptiveLimit::new(64);
        run(&mut l, 40, |_| ms(5));
        run(&mut l, 50, |_| ms(5_000));
        assert!(
            l.current() >= QUEUE_HIGH as usize * 3 / 4,
            "{}",
            l.current()
        );
        assert!(l.current() < 64);
    }

    #[test]
    fn an_idle_lister_does_not_grow_the_limit() {
        // One request at a time (the lister is the bottleneck): the windows never fill the
        // limit, so it stays where slow start left it.
        let mut l = AdaptiveLimit::new(64);
        run(&mut l, 2, |_| ms(5));
        let before = l.current();
        for _ in 0..100 {
            let t = l.start();
            l.finish(t, Sample::Answered(ms(5)));
        }
        assert_eq!(l.current(), before);
    }

    #[test]
    fn answers_that_say_nothing_change_nothing() {
        let mut l = AdaptiveLimit::new(16);
        for _ in 0..100 {
            let t = l.start();
            l.finish(t, Sample::Nothing);
        }
        assert_eq!(l.current(), 1);
        assert_eq!(l.summary().settled, 1);
    }

    #[test]
    fn settled_is_the_limit_most_requests_went_out_under() {
        let sent = BTreeMap::from([(1, 8), (2, 16), (12, 900), (13, 40)]);
        assert_eq!(settled(&sent), 12);
        assert_eq!(settled(&BTreeMap::new()), 0);
        let report = AdaptiveLimit::new(16).summary();
        assert_eq!((report.settled, report.min, report.max), (0, 0, 0));
    }

    fn sample() -> impl Strategy<Value = Sample> {
        prop_oneof![
            8 => (0u64..2_000).prop_map(|n| Sample::Answered(Duration::from_millis(n))),
            1 => Just(Sample::Overloaded),
            1 => Just(Sample::Nothing),
        ]
    }

    proptest! {
        /// Whatever the answers and however requests interleave, the limit stays within
        /// 1..=ceiling and the report agrees with it.
        #[test]
        fn the_limit_stays_between_one_and_the_ceiling(
            ceiling in 1usize..100,
            steps in proptest::collection::vec((any::<bool>(), sample()), 0..2_000),
        ) {
            let mut l = AdaptiveLimit::new(ceiling);
            let mut tickets = Vec::new();
            for (start, s) in steps {
                if start && l.has_room() {
                    tickets.push(l.start());
                } else if let Some(t) = tickets.pop() {
                    l.finish(t, s);
                }
                prop_assert!((1..=ceiling).contains(&l.current()));
            }
            let r = l.summary();
            prop_assert!(r.max <= ceiling);
            prop_assert!(r.min <= r.settled && r.settled <= r.max);
        }

        /// An overload always lowers a limit above 1 (when its request was sent under the
        /// current limit), never raises it.
        #[test]
        fn an_overload_never_raises_the_limit(ceiling in 2usize..100, warm in 0usize..30) {
            let mut l = AdaptiveLimit::new(ceiling);
            run(&mut l, warm, |_| Duration::from_millis(5));
            let before = l.current();
            let t = l.start();
            l.finish(t, Sample::Overloaded);
            prop_assert!(l.current() <= before);
            if before > 1 {
                prop_assert!(l.current() < before);
            }
        }
    }
}
