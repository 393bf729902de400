//! The typed values settings take, and the pure functions that read them from text. Each
//! returns what was expected when the text does not fit; the caller names the setting.

use std::time::Duration;

use serde::Serialize;

/// Why a text is not a valid value: what was expected.
pub type Reason = String;

/// Dry-run mode (`off`, `client` or `server` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// Delete for real.
    Off,
    /// Report what would be deleted; send nothing.
    Client,
    /// Send deletes with `dryRun=All`: the API server checks RBAC and admission, persists
    /// nothing.
    Server,
}

impl DryRun {
    /// Whether nothing is really deleted.
    pub fn is_dry(self) -> bool {
        self != DryRun::Off
    }

    /// `"off"`, `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DryRun::Off => "off",
            DryRun::Client => "client",
            DryRun::Server => "server",
        }
    }
}

/// Which metrics sink to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSinkKind {
    /// CloudWatch `PutMetricData`.
    CloudWatch,
    /// Embedded Metric Format log lines.
    Emf,
    /// No metrics.
    None,
}

impl MetricsSinkKind {
    /// The configuration spelling (`cloudwatch`, `emf`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsSinkKind::CloudWatch => "cloudwatch",
            MetricsSinkKind::Emf => "emf",
            MetricsSinkKind::None => "none",
        }
    }
}

/// How many metrics a run publishes: the set every alarm and the dashboard's core read, or
/// every metric (the metrics module decides which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsDetail {
    /// Only what the alarms and the dashboard's core widgets read; nothing per subnet.
    Essential,
    /// Every metric of the metric set.
    Full,
}

impl MetricsDetail {
    /// The configuration spelling (`essential`, `full`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsDetail::Essential => "essential",
            MetricsDetail::Full => "full",
        }
    }
}

/// A tag a cluster must carry to be discovered: `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

impl std::fmt::Display for ClusterTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// An optional `key=value` cluster tag: blank means no discovery.
pub fn cluster_tag(value: &str) -> Result<Option<ClusterTag>, Reason> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match value.split_once('=') {
        Some((key, tag)) if !key.trim().is_empty() && !tag.trim().is_empty() => {
            Ok(Some(ClusterTag {
                key: key.trim().to_owned(),
                value: tag.trim().to_owned(),
            }))
        }
        _ => Err("expected key=value, e.g. eks-reaper=enabled".to_owned()),
    }
}

/// The external id presented to `sts:AssumeRole`, which a role's trust policy may require
/// (`sts:ExternalId`). Not a secret to AWS, but it is one half of what lets another account's
/// role be assumed, so it is kept out of logs: `Debug` hides it, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    /// The value, for the `AssumeRole` call only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalId(<hidden>)")
    }
}

/// An optional external id: blank means none; otherwise 2–1224 characters of letters,
/// digits and `+=,.@:/_-`, as `sts:AssumeRole` accepts.
pub fn external_id(value: &str) -> Result<Option<ExternalId>, Reason> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c);
    if !(2..=1224).contains(&value.len()) || !value.chars().all(allowed) {
        return Err("expected 2-1224 characters: letters, digits and + = , . @ : / _ -".to_owned());
    }
    Ok(Some(ExternalId(value.to_owned())))
}

/// What an error shows instead of a value that must not be repeated: its length only.
pub fn hidden(value: &str) -> String {
    match value.chars().count() {
        1 => "<hidden, 1 character>".to_owned(),
        n => format!("<hidden, {n} characters>"),
    }
}

/// `true|client|server|false` (case-insensitive; `yes`/`1`/`no`/`0`/`off` too).
pub fn dry_run(value: &str) -> Result<DryRun, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "off" | "no" | "0" => Ok(DryRun::Off),
        "true" | "client" | "yes" | "1" | "on" => Ok(DryRun::Client),
        "server" => Ok(DryRun::Server),
        _ => Err("expected true, false, client or server (or yes/no, on/off, 1/0)".to_owned()),
    }
}

/// A `humantime` duration (`90s`, `15m`, `24h`).
pub fn duration(value: &str) -> Result<Duration, Reason> {
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("expected a duration such as 90s, 15m, 24h ({e})"))
}

/// A duration greater than zero.
pub fn positive_duration(value: &str) -> Result<Duration, Reason> {
    match duration(value)? {
        d if d.is_zero() => Err("must be greater than zero".to_owned()),
        d => Ok(d),
    }
}

/// An optional positive duration: blank means none.
pub fn optional_positive_duration(value: &str) -> Result<Option<Duration>, Reason> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    match duration(value)? {
        d if d.is_zero() => Err("must be greater than zero".to_owned()),
        d => Ok(Some(d)),
    }
}

/// The schedule's interval, blank when unknown: a whole number of minutes from 1m to 24h
/// (a schedule's `rate()` is in whole minutes, 1 at least).
pub fn schedule_interval(value: &str) -> Result<Option<Duration>, Reason> {
    let Some(d) = optional_positive_duration(value)? else {
        return Ok(None);
    };
    if d.as_secs() % 60 != 0 || d.subsec_nanos() != 0 || d > Duration::from_secs(24 * 3600) {
        return Err(
            "expected a whole number of minutes from 1m to 24h, as the schedule's rate".to_owned(),
        );
    }
    Ok(Some(d))
}

/// How many scheduled runs a cluster may miss before the planner calls it not reported: a
/// whole number from 1 to 100.
pub fn missed_runs(value: &str) -> Result<u32, Reason> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=100).contains(&n) => u32::try_from(n).map_err(|_| "too large".to_owned()),
        _ => Err("expected a whole number from 1 to 100".to_owned()),
    }
}

/// How long an EKS token is used before it is re-signed: more than 0, less than 14 minutes
/// (EKS accepts a token for 15).
pub fn token_max_age(value: &str) -> Result<Duration, Reason> {
    match duration(value)? {
        d if d.is_zero() || d >= Duration::from_secs(14 * 60) => {
            Err("must be more than 0 and less than 14m (EKS accepts a token for 15m)".to_owned())
        }
        d => Ok(d),
    }
}

/// `true` or `false`, in the spellings the policy reads in annotations.
pub fn flag(value: &str) -> Result<bool, Reason> {
    crate::policy::parse_flag(value).ok_or_else(|| "expected true or false".to_owned())
}

/// A whole number of at least 1.
pub fn count(value: &str) -> Result<usize, Reason> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| "too large".to_owned()),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}

/// How many of an owner's last Jobs to keep: a whole number from 0 (off) to 100. The bound
/// keeps the run's memory at 100 entries per owner.
pub fn history_count(value: &str) -> Result<usize, Reason> {
    match value.trim().parse::<i64>() {
        Ok(n) if (0..=100).contains(&n) => usize::try_from(n).map_err(|_| "too large".to_owned()),
        _ => Err("expected a whole number from 0 to 100".to_owned()),
    }
}

/// A Kubernetes label key (`name` or `prefix/name`), or empty for none.
pub fn label_key(value: &str) -> Result<Option<String>, Reason> {
    let key = value.trim();
    if key.is_empty() {
        return Ok(None);
    }
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let name_ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.len() <= 253
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    if name_ok && prefix_ok && !(key.contains('/') && prefix.is_empty()) {
        Ok(Some(key.to_owned()))
    } else {
        Err("expected a label key: name or prefix/name (letters, digits, -, _, .)".to_owned())
    }
}

/// A list page size: a whole number from 1 to 2³²-1.
pub fn page_size(value: &str) -> Result<u32, Reason> {
    u32::try_from(count(value)?).map_err(|_| "too large".to_owned())
}

/// How far the drain's median DELETE latency may rise over its baseline before latency
/// brings the adaptive limit down (`REAPER_DRAIN_LATENCY_TARGET`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyTarget {
    /// No target: a rise is judged against the recent latency.
    Off,
    /// Within this many times the baseline (a finite number over 1).
    Factor(f64),
}

impl LatencyTarget {
    /// The factor, `None` when off.
    pub fn factor(self) -> Option<f64> {
        match self {
            LatencyTarget::Off => None,
            LatencyTarget::Factor(f) => Some(f),
        }
    }
}

/// `off`, or a factor of the baseline over 1 (`3`: keep the median within 3 times it). The
/// baseline is the lowest median seen, so a factor of 1 or less is over it at almost every
/// window and would hold the limit at its floor.
pub fn latency_target(value: &str) -> Result<LatencyTarget, Reason> {
    let text = value.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(LatencyTarget::Off);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 1.0 => Ok(LatencyTarget::Factor(f)),
        _ => Err("expected off or a number over 1 (a factor of the baseline, e.g. 3)".to_owned()),
    }
}

/// A number from 0 to 1.
pub fn fraction(value: &str) -> Result<f64, Reason> {
    match value.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err("expected a number from 0 to 1".to_owned()),
    }
}

/// `cloudwatch`, `emf` or `none` (`off` too).
pub fn metrics_sink(value: &str) -> Result<MetricsSinkKind, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "cloudwatch" => Ok(MetricsSinkKind::CloudWatch),
        "emf" => Ok(MetricsSinkKind::Emf),
        "none" | "off" => Ok(MetricsSinkKind::None),
        _ => Err("expected cloudwatch, emf or none".to_owned()),
    }
}

/// `essential` or `full`.
pub fn metrics_detail(value: &str) -> Result<MetricsDetail, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "essential" => Ok(MetricsDetail::Essential),
        "full" => Ok(MetricsDetail::Full),
        _ => Err("expected essential or full".to_owned()),
    }
}

/// A CloudWatch namespace: 1–255 characters, not starting with `:`.
pub fn metrics_namespace(value: &str) -> Result<String, Reason> {
    let ns = value.trim();
    if ns.is_empty() || ns.len() > 255 || ns.starts_with(':') {
        return Err("expected 1-255 characters, not starting with ':'".to_owned());
    }
    Ok(ns.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_detail_is_essential_or_full() {
        assert_eq!(metrics_detail(" Essential "), Ok(MetricsDetail::Essential));
        assert_eq!(metrics_detail("full"), Ok(MetricsDetail::Full));
        for bad in ["", "all", "lean", "minimal"] {
            assert_eq!(
                metrics_detail(bad),
                Err("expected essential or full".to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_latency_target_is_off_or_a_factor_over_one() {
        assert_eq!(latency_target(" OFF "), Ok(LatencyTarget::Off));
        assert_eq!(latency_target("3"), Ok(LatencyTarget::Factor(3.0)));
        assert_eq!(latency_target(" 1.5 "), Ok(LatencyTarget::Factor(1.5)));
        for bad in ["1", "0.9", "0", "-2", "inf", "NaN", "", "fast", "3x"] {
            assert!(latency_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_are_whole_numbers_of_at_least_one() {
        assert_eq!(count(" 16 "), Ok(16));
        for bad in ["0", "-3", "many", "1.5", ""] {
            assert!(count(bad).is_err(), "{bad:?}");
        }
        assert!(page_size("4294967296").is_err());
    }

    #[test]
    fn cluster_tags_are_blank_or_key_equals_value() {
        assert_eq!(cluster_tag(" "), Ok(None));
        assert_eq!(
            cluster_tag(" eks-reaper = enabled "),
            Ok(Some(ClusterTag {
                key: "eks-reaper".to_owned(),
                value: "enabled".to_owned()
            }))
        );
        for bad in ["eks-reaper", "=x", "x=", "="] {
            assert!(cluster_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn external_ids_are_blank_or_what_assume_role_accepts() {
        assert_eq!(external_id(" "), Ok(None));
        let id = external_id(" tenant-42:etl/prod@x=y+z,w_v. ")
            .expect("valid")
            .expect("some");
        assert_eq!(id.as_str(), "tenant-42:etl/prod@x=y+z,w_v.");
        assert!(external_id("ab").expect("two characters").is_some());
        assert!(external_id(&"a".repeat(1224)).expect("1224").is_some());
        for bad in [
            "a",
            "has space",
            "semi;colon",
            "é-accent",
            &"a".repeat(1225),
        ] {
            assert!(external_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_external_id_is_never_shown() {
        let id = external_id("s3cr3t-tenant").expect("valid").expect("some");
        assert!(!format!("{id:?}").contains("s3cr3t"));
        assert_eq!(hidden("s3cr3t-tenant"), "<hidden, 13 characters>");
        assert_eq!(hidden("x"), "<hidden, 1 character>");
    }

    #[test]
    fn optional_durations_are_blank_or_positive() {
        assert_eq!(optional_positive_duration(" "), Ok(None));
        assert_eq!(
            optional_positive_duration("90s"),
            Ok(Some(Duration::from_secs(90)))
        );
        assert!(optional_positive_duration("0s").is_err());
    }
}
