//! IP exhaustion forecast: how long the Fargate subnets last if the reaper stopped.
//!
//! ## Definition (docs/concepts.md)
//!
//! **IpExhaustionHours** = *available* ÷ *Fargate pods created per hour*, where
//!
//! - *available* is the free IPv4 addresses of the subnets Fargate pods draw from: the
//!   watched subnets listed in one of the cluster's Fargate profiles ([`pool`]); the
//!   cluster's other subnets (public ones, EC2 node subnets) never receive a Fargate pod,
//!   so counting them would put the forecast late. Without a Fargate profile, every
//!   watched subnet counts;
//! - *Fargate pods created per hour* is the largest of three rates over the Fargate pods
//!   this run saw (running, pending and finished alike), counted by
//!   `metadata.creationTimestamp`, each scaled to an hour: the pods created in the **short
//!   window** `(now − W, now]`, in the **long window** `(now − 4W, now]` and in the
//!   **extended window** `(now − 5W, now]`. `W` is `REAPER_FORECAST_WINDOW` (15 minutes,
//!   so the long window is an hour and the extended one an hour and a quarter). Every Fargate
//!   pod takes one IP for as long as its pod object exists, so if finished pods stopped
//!   being deleted, each new pod would keep its IP and this is the rate at which the free
//!   addresses would go.
//!
//! Why several windows: workflow engines start most of their Jobs in bursts on the hour over
//! a steady trickle. A short window alone swings from the burst (far too early) to the
//! trickle between bursts (far too late: hours after the real exhaustion). The long
//! window spans a whole hourly cycle, burst included, so between bursts it gives the
//! average rate; the short one still wins during and right after a burst and when the
//! traffic grows, so the forecast errs early rather than late. A burst that comes a few
//! minutes late leaves the hour before the next one is seen; the extended window still
//! holds it (its rate is the hour's less a fifth of the trickle's at most), so the
//! forecast is never late by much at that moment either. With steady traffic all three
//! give the same rate.
//!
//! Why these windows: the run only sees pods that still exist. With the default Fargate
//! pod retention (`REAPER_FARGATE_POD_TTL=15m`) no pod created in the short window has
//! been deleted yet and its count is complete. The long window also misses the pods the
//! reaper already deleted: while the reaper keeps up, its rate is low and the short one
//! decides; once deletions stop (the case the forecast is for) it fills up within one
//! long window. A window given to the forecast should cover the retention; with a
//! shorter retention, in low-headroom mode, or when something else deletes pods, some
//! creations are missed and the forecast is optimistic. Fixed windows (not the span
//! between the first and last creation seen) keep the rate meaningful with one pod or
//! with a burst created in the same second.
//!
//! Edge cases:
//!
//! - **No Fargate pod created in the extended window** (no Fargate traffic): no forecast.
//!   The report says `null` and the `IpExhaustionHours` metric is not published for that
//!   run — never infinity, never a large sentinel. Alarms on it should treat missing data
//!   as not breaching.
//! - **No free address left**: `0` hours, whatever the rate (when there is traffic).
//! - **Creation times in the future** (the API server's clock ahead of ours): up to 5
//!   minutes ahead they count as created now; further ahead they are ignored and counted
//!   in `future_creations_ignored`.
//! - **Whole seconds**: `creationTimestamp` has one-second resolution, so a pod stamped
//!   `T` was created in `[T, T + 1 s)`, on average at `T + 0.5 s`; its age counts from
//!   there. Taking the stamp as exact would shrink every window by half a second on
//!   average (0.06 % of 15 minutes, but a large share of a window shortened to seconds,
//!   as in the time-compressed replay).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::subnets::{Headroom, Source};

/// The long window is this many short windows: an hour with the default, the period of
/// hourly workflow schedules, so a whole burst-and-trickle cycle is in it.
pub const LONG_WINDOW_FACTOR: i32 = 4;

/// The extended window is this many short windows: an hour and a quarter with the default,
/// so an hourly burst that comes a little late (cron jitter, a queue in front of the Job
/// controller) is still counted between the last one leaving the long window and the new
/// one being seen.
pub const EXTENDED_WINDOW_FACTOR: i32 = 5;

/// Resolution of `metadata.creationTimestamp` (RFC 3339 in whole seconds).
pub const TIMESTAMP_RESOLUTION: SignedDuration = SignedDuration::from_secs(1);

/// How far a creation time may lie in the future (clock skew) and still count.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// The forecast for one cluster (see the module docs for the definition).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// Free IPv4 addresses the forecast starts from (the Fargate subnets', see [`pool`]).
    pub available: u64,
    /// Length of the short window in seconds (900 by default).
    pub window_seconds: i64,
    /// Fargate pods created inside the short window.
    pub pods_in_window: u64,
    /// Length of the long window in seconds ([`LONG_WINDOW_FACTOR`] short windows).
    pub long_window_seconds: i64,
    /// Fargate pods created inside the long window.
    pub pods_in_long_window: u64,
    /// Length of the extended window in seconds ([`EXTENDED_WINDOW_FACTOR`] short windows).
    pub extended_window_seconds: i64,
    /// Fargate pods created inside the extended window.
    pub pods_in_extended_window: u64,
    /// The largest of the three windows' counts, each scaled to one hour.
    pub pods_per_hour: f64,
    /// Hours until `available` is used up at `pods_per_hour`; `None` without Fargate
    /// traffic in the extended window ("no forecast").
    pub hours_to_exhaustion: Option<f64>,
    /// Creations more than [`MAX_CLOCK_SKEW`] in the future, left out of the count.
    pub future_creations_ignored: u64,
}

/// The free addresses Fargate pods can take: the watched subnets listed in a Fargate
/// profile, or every watched subnet when none is.
pub fn pool(headroom: &Headroom) -> u64 {
    let fargate = headroom.subnets.iter().filter(|s| {
        s.sources
            .iter()
            .any(|source| matches!(source, Source::FargateProfile(_)))
    });
    let mut any = false;
    let mut available = 0;
    for subnet in fargate {
        any = true;
        available += subnet.available;
    }
    if any {
        available
    } else {
        headroom.total_available
    }
}

/// The configured window (`REAPER_FORECAST_WINDOW`) as the forecast counts it; a window
/// too long for a signed duration saturates.
pub fn window(configured: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(configured).unwrap_or(SignedDuration::MAX)
}

/// Forecasts IP exhaustion from the free addresses and the creation times of the Fargate
/// pods seen in this run (running and finished alike), with short window `window` (a
/// non-positive window yields no forecast).
pub fn forecast(
    available: u64,
    fargate_pod_creations: &[Timestamp],
    now: Timestamp,
    window: SignedDuration,
) -> Forecast {
    let long_window = window.saturating_mul(LONG_WINDOW_FACTOR);
    let extended_window = window.saturating_mul(EXTENDED_WINDOW_FACTOR);
    let mut pods_in_extended_window = 0u64;
    let mut pods_in_window = 0u64;
    let mut pods_in_long_window = 0u64;
    let mut future_creations_ignored = 0u64;
    for created in fargate_pod_creations {
        let stamped_age = now.duration_since(*created);
        if stamped_age < -MAX_CLOCK_SKEW {
            future_creations_ignored += 1;
            continue;
        }
        // Created in [stamp, stamp + resolution): on average half a resolution after it.
        let age = stamped_age - TIMESTAMP_RESOLUTION / 2;
        if age < window {
            pods_in_window += 1;
        }
        if age < long_window {
            pods_in_long_window += 1;
        }
        if age < extended_window {
            pods_in_extended_window += 1;
        }
    }
    let pods_per_hour = per_hour(pods_in_window, window)
        .max(per_hour(pods_in_long_window, long_window))
        .max(per_hour(pods_in_extended_window, extended_window));
    let hours_to_exhaustion = (pods_per_hour > 0.0).then(|| available as f64 / pods_per_hour);
    Forecast {
        available,
        window_seconds: window.as_secs(),
        pods_in_window,
        long_window_seconds: long_window.as_secs(),
        pods_in_long_window,
        extended_window_seconds: extended_window.as_secs(),
        pods_in_extended_window,
        pods_per_hour,
        hours_to_exhaustion,
        future_creations_ignored,
    }
}

/// `count` creations over `window` as a rate per hour (0 for a non-positive window).
fn per_hour(count: u64, window: SignedDuration) -> f64 {
    let hours = window.as_secs_f64() / 3600.0;
    if hours > 0.0 {
        count as f64 / hours
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::subnets::SubnetUsage;
    use proptest::prelude::*;

    /// The default short window (`REAPER_FORECAST_WINDOW`).
    const WINDOW: SignedDuration = SignedDuration::from_mins(15);

    fn now() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn ago(mins: i64) -> Timestamp {
        now() - SignedDuration::from_mins(mins)
    }

    fn at_default(available: u64, creations: &[Timestamp]) -> Forecast {
        forecast(available, creations, now(), WINDOW)
    }

    /// Hourly bursts of `burst` pods at minute 0 and one pod every `trickle_every`
    /// minutes, over the `hours` before now (the minute of the hour now is `minute`).
    fn bursty(hours: i64, minute: i64, burst: usize, trickle_every: i64) -> Vec<Timestamp> {
        // Half a minute past each minute, clear of the windows' edges.
        let at = |m: i64| ago(m) - SignedDuration::from_secs(30);
        let mut out = Vec::new();
        for m in 0..(hours * 60) {
            let minute_of_hour = (minute - m).rem_euclid(60);
            if minute_of_hour == 0 {
                out.extend(std::iter::repeat_n(at(m), burst));
            }
            if m % trickle_every == 0 {
                out.push(at(m));
            }
        }
        out
    }

    fn subnet(id: &str, available: u64, sources: Vec<Source>) -> SubnetUsage {
        SubnetUsage {
            subnet_id: id.to_owned(),
            availability_zone: "us-east-1a".to_owned(),
            cidr: "10.0.0.0/24".to_owned(),
            available,
            capacity: 251,
            utilization_percent: 0.0,
            sources,
        }
    }

    #[test]
    fn no_fargate_pods_means_no_forecast() {
        let f = at_default(1000, &[]);
        assert_eq!(f.hours_to_exhaustion, None);
        assert_eq!(f.pods_per_hour, 0.0);
    }

    fn secs_ago(secs: i64) -> Timestamp {
        now() - SignedDuration::from_secs(secs)
    }

    #[test]
    fn pods_older_than_the_long_window_are_no_traffic() {
        let f = at_default(1000, &[secs_ago(4501), ago(600)]);
        assert_eq!(
            f.pods_in_extended_window, 0,
            "stamped 75 min 1 s ago: created 75 min 0.5 s ago on average, out of the window"
        );
        assert_eq!(f.hours_to_exhaustion, None);
    }

    #[test]
    fn a_pod_stamped_exactly_a_window_ago_was_created_inside_it_on_average() {
        let f = at_default(1000, &[secs_ago(900), secs_ago(901), secs_ago(3600)]);
        assert_eq!(
            f.pods_in_window, 1,
            "stamped 15 min ago: created 0.5 s later on average"
        );
        assert_eq!(f.pods_in_long_window, 3);
    }

    #[test]
    fn a_pod_only_in_the_long_window_is_one_per_hour() {
        let f = at_default(10, &[ago(16)]);
        assert_eq!(f.pods_in_window, 0, "16 min ago is out of the short window");
        assert_eq!(f.pods_in_long_window, 1);
        assert_eq!(f.pods_per_hour, 1.0);
        assert_eq!(f.hours_to_exhaustion, Some(10.0));
        assert_eq!((f.window_seconds, f.long_window_seconds), (900, 3600));
    }

    #[test]
    fn one_pod_in_the_window_is_four_per_hour() {
        let f = at_default(100, &[ago(3)]);
        assert_eq!(f.pods_per_hour, 4.0);
        assert_eq!(f.hours_to_exhaustion, Some(25.0));
    }

    #[test]
    fn burst_created_at_the_same_instant_still_has_a_rate() {
        let burst = vec![ago(1); 125];
        let f = at_default(12_000, &burst);
        assert_eq!(f.pods_per_hour, 500.0);
        assert_eq!(f.hours_to_exhaustion, Some(24.0));
    }

    #[test]
    fn between_hourly_bursts_the_long_window_gives_the_hourly_rate() {
        // GIVEN bursts of 300 on the hour and one pod every 2 minutes: 330 an hour; now is
        // 40 minutes past, so the short window holds only the trickle (7 pods: 28 an hour)
        let creations = bursty(3, 40, 300, 2);
        let f = at_default(3300, &creations);
        assert_eq!(f.pods_in_window, 8);
        assert_eq!(f.pods_in_long_window, 330);
        // THEN the rate is the hour's, not the trickle's: 10 hours, not ~100
        assert_eq!(f.pods_per_hour, 330.0);
        assert_eq!(f.hours_to_exhaustion, Some(10.0));
    }

    #[test]
    fn a_burst_that_left_the_hour_still_counts_until_the_next_one_is_seen() {
        // GIVEN a burst of 300 that came 61 minutes ago (the next one is late) over one pod
        // every 2 minutes
        let mut creations: Vec<Timestamp> = (0..90).map(|i| ago(2 * i)).collect();
        creations.extend(std::iter::repeat_n(ago(61), 300));
        let f = at_default(3300, &creations);
        assert_eq!(f.pods_in_long_window, 31, "the hour holds the trickle only");
        assert_eq!(f.pods_in_extended_window, 338);
        // THEN the rate is the extended window's (270 an hour), not the trickle's 31
        assert_eq!(f.pods_per_hour, 338.0 / 1.25);
        assert_eq!(
            (f.long_window_seconds, f.extended_window_seconds),
            (3600, 4500)
        );
    }

    #[test]
    fn right_after_a_burst_the_short_window_wins_and_the_forecast_is_early() {
        let creations = bursty(3, 5, 300, 2);
        let f = at_default(3300, &creations);
        assert!(f.pods_in_window >= 300, "{f:?}");
        assert_eq!(f.pods_per_hour, f.pods_in_window as f64 * 4.0);
        assert!(f.hours_to_exhaustion.unwrap() < 10.0 / 3.0, "{f:?}");
    }

    #[test]
    fn zero_available_with_traffic_is_zero_hours() {
        let f = at_default(0, &[ago(1)]);
        assert_eq!(f.hours_to_exhaustion, Some(0.0));
    }

    #[test]
    fn zero_available_without_traffic_is_still_no_forecast() {
        assert_eq!(at_default(0, &[]).hours_to_exhaustion, None);
    }

    #[test]
    fn slightly_future_creations_count_and_far_future_ones_are_ignored() {
        let soon = now() + SignedDuration::from_mins(2);
        let far = now() + SignedDuration::from_hours(3);
        let f = at_default(40, &[soon, far, ago(5)]);
        assert_eq!(f.pods_in_window, 2);
        assert_eq!(f.pods_in_long_window, 2);
        assert_eq!(f.future_creations_ignored, 1);
        assert_eq!(f.hours_to_exhaustion, Some(5.0));
    }

    #[test]
    fn explicit_window_scales_both_windows() {
        let f = forecast(
            60,
            &[ago(10), ago(50)],
            now(),
            SignedDuration::from_hours(1),
        );
        assert_eq!(f.pods_per_hour, 2.0);
        assert_eq!(f.hours_to_exhaustion, Some(30.0));
        assert_eq!(f.window_seconds, 3600);
        assert_eq!(f.long_window_seconds, 4 * 3600);
    }

    #[test]
    fn compressed_window_counts_in_seconds() {
        let now = now();
        let creations = [
            now - SignedDuration::from_millis(500),
            now - SignedDuration::from_secs(5),
        ];
        let f = forecast(6, &creations, now, SignedDuration::from_millis(1500));
        assert_eq!((f.pods_in_window, f.pods_in_long_window), (1, 2));
        assert_eq!(f.pods_per_hour, 2400.0);
    }

    #[test]
    fn non_positive_window_gives_no_forecast() {
        let f = forecast(60, &[now()], now(), SignedDuration::ZERO);
        assert_eq!(f.hours_to_exhaustion, None);
    }

    #[test]
    fn pool_is_the_fargate_profiles_subnets() {
        let h = Headroom::new(
            vec![
                subnet("subnet-a", 50, vec![Source::Cluster]),
                subnet(
                    "subnet-b",
                    7,
                    vec![Source::Cluster, Source::FargateProfile("p".to_owned())],
                ),
                subnet("subnet-c", 3, vec![Source::FargateProfile("q".to_owned())]),
                subnet("subnet-d", 100, vec![Source::Extra]),
            ],
            vec![],
        );
        assert_eq!(pool(&h), 10);
    }

    #[test]
    fn without_a_fargate_profile_the_pool_is_every_watched_subnet() {
        let h = Headroom::new(
            vec![
                subnet("subnet-a", 50, vec![Source::Cluster]),
                subnet("subnet-d", 100, vec![Source::Extra]),
            ],
            vec![],
        );
        assert_eq!(pool(&h), 150);
    }

    fn creations() -> impl Strategy<Value = Vec<Timestamp>> {
        // Seconds before now, a few of them in the future.
        prop::collection::vec(-600i64..(3 * 3600), 0..200).prop_map(|secs| {
            secs.into_iter()
                .map(|s| now() - SignedDuration::from_secs(s))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn never_later_than_the_short_window_alone(
            available in 0u64..100_000,
            creations in creations(),
            window_secs in 1i64..7200,
        ) {
            let window = SignedDuration::from_secs(window_secs);
            let f = forecast(available, &creations, now(), window);
            let short_rate = per_hour(f.pods_in_window, window);
            if short_rate > 0.0 {
                let hours = f.hours_to_exhaustion.expect("traffic in the short window is traffic");
                prop_assert!(hours <= available as f64 / short_rate);
            }
            prop_assert!(f.pods_in_window <= f.pods_in_long_window);
            prop_assert!(f.pods_in_long_window <= f.pods_in_extended_window);
        }

        #[test]
        fn one_more_creation_never_pushes_the_forecast_later(
            available in 1u64..100_000,
            creations in creations(),
            extra in 0i64..(3 * 3600),
        ) {
            let before = forecast(available, &creations, now(), WINDOW);
            let mut more = creations.clone();
            more.push(now() - SignedDuration::from_secs(extra));
            let after = forecast(available, &more, now(), WINDOW);
            match (before.hours_to_exhaustion, after.hours_to_exhaustion) {
                (Some(b), Some(a)) => prop_assert!(a <= b),
                (Some(_), None) => prop_assert!(false, "a creation removed the forecast"),
                _ => {}
            }
        }

        #[test]
        fn fewer_free_addresses_never_push_the_forecast_later(
            available in 1u64..100_000,
            taken in 0u64..100_000,
            creations in creations(),
        ) {
            let more = forecast(available, &creations, now(), WINDOW);
            let less = forecast(available.saturating_sub(taken), &creations, now(), WINDOW);
            if let (Some(m), Some(l)) = (more.hours_to_exhaustion, less.hours_to_exhaustion) {
                prop_assert!(l <= m);
            }
        }
    }
}
