//! How many DELETEs may be in flight: an adaptive limit, additive increase / multiplicative
//! decrease (AIMD) on what the API server's answers say, never above `REAPER_CONCURRENCY`.
//!
//! Pure: the deleters report each answer ([`Sample`]) with the [`Ticket`] its request was
//! sent under; no clock, no I/O, so the rules below are unit- and property-tested.
//!
//! - **Start** at 1 and double once per window (slow start) until latency starts to rise;
//!   then **+1 per window** (additive increase). A window is one round trip's worth of
//!   answers: as many as the limit, and at least [`MIN_WINDOW`] so its median means
//!   something. The limit only grows when the window actually had that many requests in
//!   flight: a lister that cannot keep the deleters busy proves nothing about the server.
//! - **429** (or a request that got no answer in time) **halves** the limit at once.
//! - **Rising latency** cuts it by a quarter. What counts as rising depends on
//!   `REAPER_DRAIN_LATENCY_TARGET` ([`LatencyTarget`]):
//!   - **With a target** (a factor, say 3): a window whose median is over the factor times
//!     the **baseline**. The baseline is the lowest window median seen while the limit was
//!     at most [`BASELINE_LIMIT`] (slow start's first windows, or later ones back down
//!     there): the latency of a server the drain barely loads, as a gradient limiter's
//!     long-term minimum round trip. It only ever goes down. The limit then settles where
//!     the drain's own latency stays within the target: the drain yields to everything that
//!     slows the server, its own load included, in exchange for rate. Over the target at
//!     the floor, the limit is held there until a window is back within it.
//!   - **Off**: a window whose median is more than [`RISE`] times the recent latency (a
//!     moving average of window medians, each new window weighing [`RECENT_WEIGHT`]).
//!     Rising is then judged against what the server answered lately, not against its
//!     unloaded latency: a busy server answers more slowly as the limit grows even while it
//!     still gets more done. A jump (the server or etcd slowed down, another client started
//!     hammering it) is what this rule catches; queueing that builds up gradually is left to
//!     the API server's own flow control (the reaper's priority level), which answers 429
//!     when its queues are full.
//!
//!   How low latency alone may take the limit depends on the same setting. **Off**: not
//!   below [`LATENCY_FLOOR`] (4): the drain's latency rises with every client's load, not
//!   only its own, and a rule that reads any slow period as its own doing should not hold
//!   the cleaner at one request at a time. **With a target**: down to [`TARGET_FLOOR`] (1),
//!   because a target is the user asking the drain to yield, and on the testbed another
//!   client's latency fell with every request in flight taken away, down to one, while one
//!   request at a time still drained hundreds of objects a second (BENCHMARKS.md, "A drain
//!   that yields"). One request at a time drains one object per round trip: at 100 ms a
//!   DELETE, 36,000 an hour. Seats are the API server's to ration either way: its 429s
//!   (the reaper's priority level) can take the limit to 1.
//! - Slow start ends at the first window over [`SLOW_START_EXIT`] times the recent latency,
//!   or at the first decrease.
//! - After a decrease, answers to requests sent before it are ignored (their [`Ticket`]'s
//!   epoch is old): one overload is one decrease, not one per request in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::LatencyTarget;
use crate::report::{ConcurrencyReport, spread};

/// Fewest answers a window judges on.
pub const MIN_WINDOW: usize = 8;
/// A window's median over the recent latency by more than this factor is a rise.
pub const RISE: f64 = 2.0;
/// A window's median over the recent latency by more than this factor ends slow start.
pub const SLOW_START_EXIT: f64 = 1.5;
/// Weight of each new window's median in the recent latency.
pub const RECENT_WEIGHT: f64 = 0.25;
/// Lowest limit latency alone can bring the limit to without a target (429s can go to 1).
pub const LATENCY_FLOOR: usize = 4;
/// Lowest limit latency alone can bring the limit to with a target.
pub const TARGET_FLOOR: usize = 1;
/// Windows judged while the limit is at most this set the baseline of a latency target.
pub const BASELINE_LIMIT: usize = 4;
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
    /// Moving average of window medians, in seconds.
    recent: Option<f64>,
    /// Rising latency is judged against the baseline when set.
    target: LatencyTarget,
    /// Lowest window median at a limit of at most [`BASELINE_LIMIT`], in seconds.
    baseline: Option<f64>,
    /// Requests sent, by the limit in force when each was sent.
    sent_at: BTreeMap<usize, u64>,
    decreases_throttled: u64,
    decreases_latency: u64,
}

impl AdaptiveLimit {
    /// A limit that never exceeds `ceiling` (at least 1), judging rising latency by
    /// `target`.
    pub fn new(ceiling: usize, target: LatencyTarget) -> Self {
        Self {
            ceiling: ceiling.max(1),
            limit: 1,
            phase: Phase::SlowStart,
            epoch: 0,
            in_flight: 0,
            window: Vec::new(),
            window_saturated: false,
            recent: None,
            target,
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
                self.decrease(THROTTLED_DECREASE, 1);
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
        let median = self.window[self.window.len() / 2].as_secs_f64();
        let recent = self.recent.unwrap_or(median);
        self.recent = Some(recent + RECENT_WEIGHT * (median - recent));
        if self.limit <= BASELINE_LIMIT {
            self.baseline = Some(self.baseline.map_or(median, |b| b.min(median)));
        }
        let saturated = self.window_saturated;
        self.window.clear();
        self.window_saturated = false;
        let rising = self.rising(median, recent);
        let floor = self.latency_floor();
        if rising && self.limit > floor {
            self.decreases_latency += 1;
            self.decrease(LATENCY_DECREASE, floor);
            return;
        }
        if rising && self.target != LatencyTarget::Off {
            // Over the target at the floor: held there until a window is back within it.
            self.phase = Phase::Steady;
            return;
        }
        if median > SLOW_START_EXIT * recent {
            self.phase = Phase::Steady;
        }
        if saturated {
            self.limit = match self.phase {
                Phase::SlowStart => self.limit.saturating_mul(2),
                Phase::Steady => self.limit + 1,
            }
            .min(self.ceiling);
        }
    }

    /// Lowest limit rising latency may bring the limit to.
    fn latency_floor(&self) -> usize {
        match self.target {
            LatencyTarget::Off => LATENCY_FLOOR,
            LatencyTarget::Factor(_) => TARGET_FLOOR,
        }
    }

    /// Whether a window's median is a rise: over the target times the baseline with a
    /// target, over [`RISE`] times the recent latency without one.
    fn rising(&self, median: f64, recent: f64) -> bool {
        match (self.target.factor(), self.baseline) {
            (Some(factor), Some(baseline)) => median > factor * baseline,
            _ => median > RISE * recent,
        }
    }

    /// Multiplies the limit by `factor`, not below `floor` (nor 1), nor above where it was.
    fn decrease(&mut self, factor: f64, floor: usize) {
        // Truncation is the point: the limit only ever comes down to a whole request.
        let lower = (self.limit as f64 * factor) as usize;
        self.limit = lower.max(floor).max(1).min(self.limit);
        self.phase = Phase::Steady;
        self.epoch += 1;
        self.window.clear();
        self.window_saturated = false;
    }

    /// What the run did with its limit.
    pub fn summary(&self) -> ConcurrencyReport {
        let (settled, min, max) = spread(&self.sent_at);
        ConcurrencyReport {
            ceiling: self.ceiling,
            settled,
            min,
            max,
            decreases_throttled: self.decreases_throttled,
            decreases_latency: self.decreases_latency,
            latency_target: self.target.factor(),
            baseline_ms: self.baseline.map(|b| (b * 100_000.0).round() / 100.0),
            sent_at: self.sent_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Keeps the limit's worth of requests in flight and answers them, a window's worth at
    /// a time, `windows` times; `answer` gives each answer from the limit.
    fn serve(limit: &mut AdaptiveLimit, windows: usize, answer: impl Fn(usize) -> Sample) {
        for _ in 0..windows {
            let n = limit.current().max(MIN_WINDOW);
            let mut tickets = Vec::new();
            let mut answered = 0;
            while answered < n {
                while limit.has_room() {
                    // Every ticket here is in flight: room means fewer than the limit.
                    assert!(tickets.len() < limit.current(), "room past the limit");
                    tickets.push(limit.start());
                }
                let t = tickets.remove(0);
                limit.finish(t, answer(limit.current()));
                answered += 1;
            }
            for t in tickets {
                limit.finish(t, Sample::Nothing);
            }
        }
    }

    /// [`serve`] with every request answered after `latency(limit)`.
    fn run(limit: &mut AdaptiveLimit, windows: usize, latency: impl Fn(usize) -> Duration) {
        serve(limit, windows, |l| Sample::Answered(latency(l)));
    }

    #[test]
    fn a_fast_server_lets_the_limit_climb_to_the_ceiling_and_no_further() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 40, |_| ms(5));
        assert_eq!(l.current(), 64);
        let s = l.summary();
        assert_eq!((s.min, s.max, s.ceiling), (1, 64, 64));
        assert_eq!(s.decreases_latency + s.decreases_throttled, 0);
    }

    #[test]
    fn slow_start_doubles_then_steady_state_adds_one() {
        let mut l = AdaptiveLimit::new(100, LatencyTarget::Off);
        run(&mut l, 3, |_| ms(5));
        assert_eq!(l.current(), 8, "1 → 2 → 4 → 8");
        // 1.6 times the recent latency: not a rise, but the end of slow start.
        run(&mut l, 1, |_| ms(8));
        assert_eq!(l.current(), 9);
        run(&mut l, 2, |_| ms(5));
        assert_eq!(l.current(), 11, "+1 per window after slow start");
        assert_eq!(l.summary().decreases_latency, 0);
    }

    #[test]
    fn a_429_halves_the_limit_once_for_all_requests_then_in_flight() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
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
        let mut l = AdaptiveLimit::new(16, LatencyTarget::Off);
        run(&mut l, 10, |_| ms(5));
        for _ in 0..10 {
            let t = l.start();
            l.finish(t, Sample::Overloaded);
        }
        assert_eq!(l.current(), 1);
        assert!(l.has_room());
    }

    #[test]
    fn queueing_that_builds_up_gradually_is_bounded_by_the_servers_429s() {
        // A server that works on 4 requests at once, 5 ms each, queues 20 more (latency =
        // 5 ms × limit / 4, Little's law) and answers 429 beyond that, as a priority level
        // with queuing does: the limit keeps it busy and stays under where 429s begin most
        // of the time.
        let server = |limit: usize| {
            if limit > 24 {
                Sample::Overloaded
            } else {
                Sample::Answered(ms(5 * (limit as u64).max(4) / 4))
            }
        };
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        serve(&mut l, 300, server);
        let s = l.summary();
        assert!(s.settled >= 4 && s.settled <= 24, "{s:?}");
        assert!(s.max <= 32, "slow start overshoots at most once: {s:?}");
        assert!(s.decreases_throttled >= 1, "{s:?}");
    }

    #[test]
    fn a_latency_jump_cuts_the_limit_then_it_grows_again() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 40, |_| ms(5));
        assert_eq!(l.current(), 64);
        // The server becomes ten times slower at once.
        run(&mut l, 3, |_| ms(50));
        let cut = l.current();
        assert!(cut <= 64 * 3 / 4 * 3 / 4, "{cut}");
        assert!(l.summary().decreases_latency >= 2);
        // Once 50 ms is what the server answers lately, the limit grows back.
        run(&mut l, 20, |_| ms(50));
        assert!(l.current() > cut, "{} after {cut}", l.current());
    }

    #[test]
    fn latency_alone_never_takes_the_limit_below_its_floor() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 40, |_| ms(5));
        // Latency tripling window after window.
        for i in 0..12u32 {
            run(&mut l, 1, |_| ms(5 * 3u64.pow(i.min(10))));
        }
        assert!(l.current() >= LATENCY_FLOOR, "{}", l.current());
        assert!(l.current() < 64);
    }

    #[test]
    fn an_idle_lister_does_not_grow_the_limit() {
        // One request at a time (the lister is the bottleneck): the windows never fill the
        // limit, so it stays where slow start left it.
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
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
        let mut l = AdaptiveLimit::new(16, LatencyTarget::Off);
        for _ in 0..100 {
            let t = l.start();
            l.finish(t, Sample::Nothing);
        }
        assert_eq!(l.current(), 1);
        assert_eq!(l.summary().settled, 1);
    }

    #[test]
    fn the_limit_is_how_many_requests_may_be_in_flight_at_once() {
        let mut l = AdaptiveLimit::new(16, LatencyTarget::Off);
        assert!(l.has_room());
        let t = l.start();
        assert!(
            !l.has_room(),
            "slow start begins with one request in flight"
        );
        l.finish(t, Sample::Nothing);
        assert!(l.has_room());
    }

    #[test]
    fn the_summary_counts_requests_by_the_limit_they_were_sent_under() {
        let mut l = AdaptiveLimit::new(16, LatencyTarget::Off);
        for _ in 0..MIN_WINDOW {
            let t = l.start();
            l.finish(t, Sample::Answered(ms(5)));
        }
        assert_eq!(l.current(), 2);
        let _in_flight = (l.start(), l.start());
        assert_eq!(
            l.summary().sent_at,
            BTreeMap::from([(1, MIN_WINDOW as u64), (2, 2)])
        );
    }

    #[test]
    fn a_window_is_judged_by_its_median_answer_not_its_fastest_or_slowest() {
        let mut l = AdaptiveLimit::new(16, LatencyTarget::Off);
        run(&mut l, 10, |_| ms(5));
        assert_eq!(l.current(), 16);
        // One slow answer in a window of 16: the median is still quick.
        let tickets: Vec<Ticket> = (0..16).map(|_| l.start()).collect();
        for (i, t) in tickets.into_iter().enumerate() {
            l.finish(t, Sample::Answered(ms(if i == 0 { 500 } else { 5 })));
        }
        assert_eq!(l.current(), 16);
        // One quick answer in a window of 16: the median has risen tenfold.
        let tickets: Vec<Ticket> = (0..16).map(|_| l.start()).collect();
        for (i, t) in tickets.into_iter().enumerate() {
            l.finish(t, Sample::Answered(ms(if i == 0 { 5 } else { 50 })));
        }
        assert_eq!(l.current(), 12);
        assert_eq!(l.summary().decreases_latency, 1);
    }

    /// 2⁻⁷ s: a latency whose multiples by 1.5 and 2 are exact in `f64`, so the boundary
    /// tests below compare equal values, not rounded ones.
    const DYADIC: Duration = Duration::from_nanos(7_812_500);

    #[test]
    fn a_median_exactly_twice_the_recent_latency_is_not_yet_a_rise() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 3, |_| DYADIC);
        assert_eq!(l.current(), 8);
        run(&mut l, 1, |_| DYADIC * 2);
        assert_eq!(l.current(), 9, "slow start over, no decrease");
        assert_eq!(l.summary().decreases_latency, 0);
    }

    #[test]
    fn a_median_exactly_one_and_a_half_times_the_recent_latency_keeps_slow_start() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 3, |_| DYADIC);
        assert_eq!(l.current(), 8);
        run(&mut l, 1, |_| DYADIC * 3 / 2);
        assert_eq!(l.current(), 16);
    }

    #[test]
    fn a_latency_rise_at_the_floor_is_not_a_decrease_and_ends_slow_start() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 2, |_| ms(5));
        assert_eq!(l.current(), LATENCY_FLOOR);
        run(&mut l, 1, |_| ms(15));
        assert_eq!(l.current(), LATENCY_FLOOR + 1);
        assert_eq!(l.summary().decreases_latency, 0);
    }

    /// A server that works on 4 requests at once, 5 ms each, and queues the rest: latency
    /// grows with the limit (5 ms × limit / 4 above 4, Little's law) and never jumps.
    fn queueing(limit: usize) -> Duration {
        ms(5 * (limit as u64).max(4) / 4)
    }

    #[test]
    fn without_a_target_gradual_queueing_lets_the_limit_reach_the_ceiling() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 200, queueing);
        assert_eq!(l.current(), 64);
        assert_eq!(l.summary().decreases_latency, 0);
    }

    #[test]
    fn a_target_holds_the_limit_where_latency_reaches_the_target_times_the_baseline() {
        // 3 × the 5-ms baseline is reached at 12 in flight: over it (13) the limit comes
        // down by a quarter, under it it grows by one per window.
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Factor(3.0));
        run(&mut l, 200, queueing);
        let s = l.summary();
        assert!((9..=13).contains(&s.settled), "{s:?}");
        assert!(s.max <= 16, "{s:?}");
        assert!(s.decreases_latency >= 10, "{s:?}");
        assert_eq!((s.latency_target, s.baseline_ms), (Some(3.0), Some(5.0)));
    }

    #[test]
    fn a_lower_target_holds_the_limit_lower() {
        let settled = |factor| {
            let mut l = AdaptiveLimit::new(64, LatencyTarget::Factor(factor));
            run(&mut l, 200, queueing);
            l.summary().settled
        };
        assert!(
            settled(1.5) < settled(3.0),
            "{} {}",
            settled(1.5),
            settled(3.0)
        );
        assert!(
            settled(3.0) < settled(6.0),
            "{} {}",
            settled(3.0),
            settled(6.0)
        );
    }

    #[test]
    fn the_baseline_is_the_lowest_median_at_low_concurrency_only() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Factor(3.0));
        // Slow start's windows at 1, 2 and 4 in flight.
        run(&mut l, 1, |_| ms(8));
        run(&mut l, 1, |_| ms(6));
        run(&mut l, 1, |_| ms(7));
        assert_eq!(l.current(), 8);
        assert_eq!(l.summary().baseline_ms, Some(6.0));
        // Quicker answers at 8 in flight and more do not lower it.
        run(&mut l, 5, |_| ms(2));
        assert!(l.current() > BASELINE_LIMIT);
        assert_eq!(l.summary().baseline_ms, Some(6.0));
    }

    #[test]
    fn a_median_exactly_at_the_target_is_not_yet_a_rise() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Factor(2.0));
        run(&mut l, 3, |_| DYADIC);
        assert_eq!(l.current(), 8);
        run(&mut l, 1, |_| DYADIC * 2);
        run(&mut l, 3, |_| DYADIC * 2);
        assert_eq!(l.current(), 12, "slow start over at 2×, then +1 per window");
        assert_eq!(l.summary().decreases_latency, 0);
        run(&mut l, 1, |_| DYADIC * 2 + Duration::from_nanos(1));
        assert_eq!(l.current(), 9);
        assert_eq!(l.summary().decreases_latency, 1);
    }

    #[test]
    fn over_the_target_the_limit_comes_down_to_one_and_is_held_there() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Factor(2.0));
        run(&mut l, 40, |_| ms(5));
        assert_eq!(l.current(), 64);
        // Three times the baseline, steadily: not a jump over the recent latency after the
        // first window, but over the target every time.
        run(&mut l, 40, |_| ms(15));
        assert_eq!(l.current(), TARGET_FLOOR, "and held there");
        // Back within the target, the limit grows again.
        run(&mut l, 5, |_| ms(9));
        assert!(l.current() > TARGET_FLOOR, "{}", l.current());
    }

    #[test]
    fn without_a_target_a_steady_slower_server_is_not_a_rise_after_the_first_window() {
        let mut l = AdaptiveLimit::new(64, LatencyTarget::Off);
        run(&mut l, 40, |_| ms(5));
        run(&mut l, 40, |_| ms(15));
        assert!(l.current() > 32, "{}", l.current());
    }

    fn sample() -> impl Strategy<Value = Sample> {
        prop_oneof![
            8 => (0u64..2_000).prop_map(|n| Sample::Answered(Duration::from_millis(n))),
            1 => Just(Sample::Overloaded),
            1 => Just(Sample::Nothing),
        ]
    }

    fn target() -> impl Strategy<Value = LatencyTarget> {
        prop_oneof![
            Just(LatencyTarget::Off),
            (1.01f64..20.0).prop_map(LatencyTarget::Factor),
        ]
    }

    proptest! {
        /// Whatever the answers and however requests interleave, the limit stays within
        /// 1..=ceiling and the report agrees with it.
        #[test]
        fn the_limit_stays_between_one_and_the_ceiling(
            ceiling in 1usize..100,
            target in target(),
            steps in proptest::collection::vec((any::<bool>(), sample()), 0..2_000),
        ) {
            let mut l = AdaptiveLimit::new(ceiling, target);
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
        fn an_overload_never_raises_the_limit(
            ceiling in 2usize..100,
            warm in 0usize..30,
            target in target(),
        ) {
            let mut l = AdaptiveLimit::new(ceiling, target);
            run(&mut l, warm, |_| Duration::from_millis(5));
            let before = l.current();
            let t = l.start();
            l.finish(t, Sample::Overloaded);
            prop_assert!(l.current() <= before);
            if before > 1 {
                prop_assert!(l.current() < before);
            }
        }

        /// With a target, a window whose median is over the target never raises the limit,
        /// and lowers it when it is above the floor (after at least one window has set the
        /// baseline).
        #[test]
        fn a_window_over_the_target_never_raises_the_limit(
            ceiling in 1usize..100,
            warm in 1usize..30,
            factor in 1.01f64..20.0,
            over in 1.01f64..10.0,
        ) {
            let mut l = AdaptiveLimit::new(ceiling, LatencyTarget::Factor(factor));
            run(&mut l, warm, |_| Duration::from_millis(5));
            let before = l.current();
            let slow = Duration::from_secs_f64(0.005 * factor * over);
            run(&mut l, 1, |_| slow);
            prop_assert!(l.current() <= before);
            if before > TARGET_FLOOR {
                prop_assert!(l.current() < before);
            }
        }
    }
}
