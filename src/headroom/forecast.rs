//! IP exhaustion forecast: how long the watched subnets last if the reaper stopped.
//!
//! ## Definition (README)
//!
//! **IpExhaustionHours** = *available* ÷ *Fargate pods created per hour*, where
//!
//! - *available* is the cluster's total free IPv4 addresses over its watched subnets
//!   (`ClusterAvailableIps`, from `ec2:DescribeSubnets` in the same run);
//! - *Fargate pods created per hour* is the number of Fargate pods this run saw (running,
//!   pending and finished alike) whose `metadata.creationTimestamp` lies in the **trailing
//!   15-minute window** `(now − 15 min, now]`, multiplied by 4. Every Fargate pod takes one IP for as long as its pod object
//!   exists, so if finished pods stopped being deleted, each new pod would keep its IP and
//!   this is the rate at which the free addresses would go.
//!
//! Why 15 minutes and not the last hour: the run only sees pods that still exist. The
//! window equals the default Fargate pod retention (`REAPER_FARGATE_POD_TTL=15m`), so with
//! default settings no pod created inside it has been deleted by the reaper yet and the
//! count is complete. With a shorter retention, in low-headroom mode, or when something
//! else deletes pods, some creations in the window are missed and the forecast is
//! optimistic. A fixed window (not the span between the first and last creation seen)
//! keeps the rate meaningful with one pod or with a burst created in the same second.
//!
//! Edge cases:
//!
//! - **No Fargate pod created in the window** (no Fargate traffic): no forecast. The
//!   report says `null` and the `IpExhaustionHours` metric is not published for that run —
//!   never infinity, never a large sentinel. Alarms on it should treat missing data as
//!   not breaching.
//! - **No free address left**: `0` hours, whatever the rate (when there is traffic).
//! - **Creation times in the future** (the API server's clock ahead of ours): up to 5
//!   minutes ahead they count as created now; further ahead they are ignored and counted
//!   in `future_creations_ignored`.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Trailing window over which Fargate pod creations are counted.
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// How far a creation time may lie in the future (clock skew) and still count.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// The forecast for one cluster (see the module docs for the definition).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// Free IPv4 addresses the forecast starts from.
    pub available: u64,
    /// Length of the counting window in seconds (900).
    pub window_seconds: i64,
    /// Fargate pods created inside the window.
    pub pods_in_window: u64,
    /// `pods_in_window` scaled to one hour.
    pub pods_per_hour: f64,
    /// Hours until `available` is used up at `pods_per_hour`; `None` without Fargate
    /// traffic in the window ("no forecast").
    pub hours_to_exhaustion: Option<f64>,
    /// Creations more than [`MAX_CLOCK_SKEW`] in the future, left out of the count.
    pub future_creations_ignored: u64,
}

/// Forecasts IP exhaustion from the free addresses and the creation times of the Fargate
/// pods seen in this run (running and finished alike), with the default [`WINDOW`].
pub fn forecast(available: u64, fargate_pod_creations: &[Timestamp], now: Timestamp) -> Forecast {
    forecast_over(available, fargate_pod_creations, now, WINDOW)
}

/// [`forecast`] with an explicit counting window (must be positive; a non-positive window
/// yields no forecast).
pub fn forecast_over(
    available: u64,
    fargate_pod_creations: &[Timestamp],
    now: Timestamp,
    window: SignedDuration,
) -> Forecast {
    let mut pods_in_window = 0u64;
    let mut future_creations_ignored = 0u64;
    for created in fargate_pod_creations {
        let age = now.duration_since(*created);
        if age < -MAX_CLOCK_SKEW {
            future_creations_ignored += 1;
        } else if age < window {
            pods_in_window += 1;
        }
    }
    let window_hours = window.as_secs_f64() / 3600.0;
    let pods_per_hour = if window_hours > 0.0 {
        pods_in_window as f64 / window_hours
    } else {
        0.0
    };
    let hours_to_exhaustion = (pods_per_hour > 0.0).then(|| available as f64 / pods_per_hour);
    Forecast {
        available,
        window_seconds: window.as_secs(),
        pods_in_window,
        pods_per_hour,
        hours_to_exhaustion,
        future_creations_ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn ago(mins: i64) -> Timestamp {
        now() - SignedDuration::from_mins(mins)
    }

    #[test]
    fn no_fargate_pods_means_no_forecast() {
        let f = forecast(1000, &[], now());
        assert_eq!(f.hours_to_exhaustion, None);
        assert_eq!(f.pods_per_hour, 0.0);
    }

    #[test]
    fn pods_older_than_the_window_are_no_traffic() {
        let f = forecast(1000, &[ago(15), ago(60), ago(600)], now());
        assert_eq!(
            f.pods_in_window, 0,
            "the window is half-open: exactly 15 min ago is out"
        );
        assert_eq!(f.hours_to_exhaustion, None);
    }

    #[test]
    fn one_pod_in_the_window_is_four_per_hour() {
        let f = forecast(100, &[ago(3)], now());
        assert_eq!(f.pods_per_hour, 4.0);
        assert_eq!(f.hours_to_exhaustion, Some(25.0));
    }

    #[test]
    fn burst_created_at_the_same_instant_still_has_a_rate() {
        let burst = vec![ago(1); 125];
        let f = forecast(12_000, &burst, now());
        assert_eq!(f.pods_per_hour, 500.0);
        assert_eq!(f.hours_to_exhaustion, Some(24.0));
    }

    #[test]
    fn zero_available_with_traffic_is_zero_hours() {
        let f = forecast(0, &[ago(1)], now());
        assert_eq!(f.hours_to_exhaustion, Some(0.0));
    }

    #[test]
    fn zero_available_without_traffic_is_still_no_forecast() {
        assert_eq!(forecast(0, &[], now()).hours_to_exhaustion, None);
    }

    #[test]
    fn slightly_future_creations_count_and_far_future_ones_are_ignored() {
        let soon = now() + SignedDuration::from_mins(2);
        let far = now() + SignedDuration::from_hours(3);
        let f = forecast(40, &[soon, far, ago(5)], now());
        assert_eq!(f.pods_in_window, 2);
        assert_eq!(f.future_creations_ignored, 1);
        assert_eq!(f.hours_to_exhaustion, Some(5.0));
    }

    #[test]
    fn explicit_window_scales_the_rate() {
        let f = forecast_over(
            60,
            &[ago(10), ago(50)],
            now(),
            SignedDuration::from_hours(1),
        );
        assert_eq!(f.pods_per_hour, 2.0);
        assert_eq!(f.hours_to_exhaustion, Some(30.0));
        assert_eq!(f.window_seconds, 3600);
    }

    #[test]
    fn non_positive_window_gives_no_forecast() {
        let f = forecast_over(60, &[now()], now(), SignedDuration::ZERO);
        assert_eq!(f.hours_to_exhaustion, None);
    }
}
