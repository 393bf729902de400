//! CloudWatch alarm events as EventBridge delivers them: what starts an emergency run.
//!
//! When a cluster's free-IP or forecast alarm goes to ALARM, an EventBridge rule invokes
//! the function with the alarm's event; the run then prunes that one cluster in
//! low-headroom mode. Two shapes name a cluster:
//! - `CloudWatch Alarm Contributor State Change`: one time series of a multi-time-series
//!   (Metrics Insights `GROUP BY ClusterName`) alarm, the cluster in
//!   `detail.alarmContributor.attributes.ClusterName`;
//! - `CloudWatch Alarm State Change` of a single-metric alarm whose metrics carry a
//!   `ClusterName` dimension (`detail.configuration.metrics[].metricStat.metric.dimensions`).
//!
//! The cluster is the `ClusterName` with the `Region` and `Account` beside it (the metrics'
//! dimensions, [`crate::identity`]): the same name in two accounts or Regions is two
//! clusters, and the run prunes only the one the alarm names. An alarm over metrics without
//! those two dimensions names the cluster by name only.
//!
//! The state must be `ALARM`, and exactly one cluster must be named: anything else is an
//! error naming the field, and nothing is deleted. Fields this code does not read are
//! ignored (AWS adds to these events over time: `muteDetail`, `alarmTags`, ...).

use serde::Serialize;
use serde_json::Value;

use super::error::ConfigError;
use super::{ClusterTarget, Discovery};

/// `detail-type` of a multi-time-series alarm's per-contributor event.
pub const CONTRIBUTOR_STATE_CHANGE: &str = "CloudWatch Alarm Contributor State Change";
/// `detail-type` of an alarm's own state change.
pub const STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// Where a single-metric alarm event names its cluster.
const DIMENSION_FIELD: &str =
    "event.detail.configuration.metrics[].metricStat.metric.dimensions.ClusterName";
/// Where a contributor event names its cluster.
const CONTRIBUTOR_FIELD: &str = "event.detail.alarmContributor.attributes.ClusterName";

/// An emergency run: one cluster, forced into low-headroom mode by an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Emergency {
    /// The alarm that went to ALARM.
    pub alarm: String,
    /// The cluster it names (the `ClusterName` dimension of the metrics).
    pub cluster: String,
    /// The cluster's Region (the `Region` dimension), when the alarm names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The cluster's account (the `Account` dimension: an account id, or
    /// [`crate::identity::OWN_ACCOUNT`]), when the alarm names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The event field the cluster came from, for errors.
    #[serde(skip)]
    pub field: &'static str,
}

impl Emergency {
    /// Whether the cluster `name` in `region`, reached with `role_arn`, is the one the
    /// alarm names: the same name, and the same Region and account when the alarm gives
    /// them. `region` is `None` when it is not known yet (the SDK's default Region, read
    /// later): then only the name and account are compared.
    pub fn names(&self, name: &str, region: Option<&str>, role_arn: Option<&str>) -> bool {
        let same_region = match (self.region.as_deref(), region) {
            (Some(alarm), Some(cluster)) => alarm == cluster,
            _ => true,
        };
        let same_account = self
            .account
            .as_deref()
            .is_none_or(|a| a == crate::identity::account(role_arn));
        name == self.cluster && same_region && same_account
    }

    /// The cluster as the alarm names it: `name`, `name@region`, with ` (account …)`.
    pub fn target(&self) -> String {
        Named {
            cluster: self.cluster.clone(),
            region: self.region.clone(),
            account: self.account.clone(),
        }
        .to_string()
    }
}

/// Whether `detail_type` is an alarm state change this module reads.
pub fn is_alarm_event(detail_type: &str) -> bool {
    detail_type == CONTRIBUTOR_STATE_CHANGE || detail_type == STATE_CHANGE
}

/// Reads the emergency run an alarm event asks for.
pub fn emergency(detail_type: &str, detail: Option<&Value>) -> Result<Emergency, ConfigError> {
    let detail = detail
        .filter(|d| d.is_object())
        .ok_or_else(|| ConfigError::Missing {
            field: "event.detail".to_owned(),
            reason: format!("a {detail_type} event without its detail object"),
        })?;
    let alarm = string_at(detail, &["alarmName"], "event.detail.alarmName")?;
    let state = string_at(detail, &["state", "value"], "event.detail.state.value")?;
    if state != "ALARM" {
        return Err(ConfigError::invalid(
            "event.detail.state.value",
            &state,
            format!("alarm {alarm}: an emergency run starts only when an alarm goes to ALARM"),
        ));
    }
    let (named, field) = if detail_type == CONTRIBUTOR_STATE_CHANGE {
        let attributes = detail
            .pointer("/alarmContributor/attributes")
            .unwrap_or(&Value::Null);
        (named_by(attributes, CONTRIBUTOR_FIELD)?, CONTRIBUTOR_FIELD)
    } else {
        (dimension_cluster(&alarm, detail)?, DIMENSION_FIELD)
    };
    let Named {
        cluster,
        region,
        account,
    } = named.ok_or_else(|| ConfigError::Missing {
        field: field.to_owned(),
        reason: "not in the alarm event".to_owned(),
    })?;
    Ok(Emergency {
        alarm,
        cluster,
        region,
        account,
        field,
    })
}

/// A cluster as an alarm's dimensions (or contributor attributes) name it.
#[derive(Debug, PartialEq, Eq)]
struct Named {
    cluster: String,
    region: Option<String>,
    account: Option<String>,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (region, account) = (self.region.as_deref(), self.account.as_deref());
        f.write_str(&crate::identity::label(&self.cluster, region, account))
    }
}

/// The cluster `keys` (a dimensions or attributes object) names: `None` without a
/// `ClusterName`; an error when a key is there but not a non-empty string.
fn named_by(keys: &Value, field: &str) -> Result<Option<Named>, ConfigError> {
    if keys.get("ClusterName").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let cluster = string_at(keys, &["ClusterName"], field)?;
    let beside = |key: &str| -> Result<Option<String>, ConfigError> {
        let sibling = field.replace("ClusterName", key);
        match keys.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => string_at(keys, &[key], &sibling).map(Some),
        }
    };
    Ok(Some(Named {
        cluster,
        region: beside("Region")?,
        account: beside("Account")?,
    }))
}

/// The one cluster the single-metric alarm's metrics carry.
fn dimension_cluster(alarm: &str, detail: &Value) -> Result<Option<Named>, ConfigError> {
    let metrics = detail
        .pointer("/configuration/metrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut named: Vec<Named> = Vec::new();
    for metric in metrics {
        let dimensions = metric
            .pointer("/metricStat/metric/dimensions")
            .unwrap_or(&Value::Null);
        if let Some(one) = named_by(dimensions, DIMENSION_FIELD)?
            && !named.contains(&one)
        {
            named.push(one);
        }
    }
    match named.len() {
        1 => Ok(named.pop()),
        0 => Err(ConfigError::Missing {
            field: DIMENSION_FIELD.to_owned(),
            reason: format!(
                "alarm {alarm} names no cluster: none of its metrics has a ClusterName \
                 dimension (a Metrics Insights alarm's own state change names none; its \
                 per-cluster events are {CONTRIBUTOR_STATE_CHANGE})"
            ),
        }),
        _ => Err(ConfigError::invalid(
            DIMENSION_FIELD,
            &named
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            format!("alarm {alarm} names several clusters; an emergency run takes one"),
        )),
    }
}

fn string_at(detail: &Value, path: &[&str], field: &str) -> Result<String, ConfigError> {
    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
    match detail.pointer(&pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        None | Some(Value::Null) => Err(ConfigError::Missing {
            field: field.to_owned(),
            reason: "not in the alarm event".to_owned(),
        }),
        Some(other) => Err(ConfigError::invalid(
            field,
            &other.to_string(),
            "expected a non-empty string",
        )),
    }
}

/// The clusters an emergency run prunes: the configured ones the alarm names (its name, and
/// its Region and account when the alarm gives them; [`Emergency::names`]), else, with discovery on, a discovered one of that
/// name (the run fails when none is found). A cluster the function does not prune is an
/// error: an alarm never widens what the function may touch.
pub(super) fn clusters(
    e: &Emergency,
    clusters: Vec<ClusterTarget>,
    discovery: &mut Option<Discovery>,
) -> Result<Vec<ClusterTarget>, ConfigError> {
    let named: Vec<ClusterTarget> = clusters
        .iter()
        .filter(|t| e.names(&t.name, t.region.as_deref(), t.role_arn.as_deref()))
        .cloned()
        .collect();
    if !named.is_empty() {
        *discovery = None;
        return Ok(named);
    }
    if discovery.is_some() {
        return Ok(Vec::new());
    }
    let configured: Vec<&str> = clusters.iter().map(|t| t.name.as_str()).collect();
    Err(ConfigError::invalid(
        e.field,
        &e.target(),
        format!(
            "alarm {}: not a cluster this function prunes (configured: {}; discovery off)",
            e.alarm,
            configured.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The per-contributor event of a Metrics Insights alarm, as CloudWatch documents it,
    /// with this product's alarm and dimension.
    fn contributor_event(cluster: &str, state: &str) -> Value {
        json!({
            "version": "0",
            "id": "6d226bbc-07f0-9a31-3359-1736968f8ded",
            "detail-type": "CloudWatch Alarm Contributor State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2026-11-30T13:42:04Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:reaper-subnet-free-percent-low"],
            "detail": {
                "alarmName": "reaper-subnet-free-percent-low",
                "alarmContributor": {
                    "id": "6d442278dba546f6",
                    "attributes": {"Account": "111111111111", "Region": "eu-west-1", "ClusterName": cluster}
                },
                "state": {
                    "value": state,
                    "reason": "Threshold Crossed: 1 datapoint was less than the threshold (10.0).",
                    "timestamp": "2026-11-30T13:42:04.919+0000"
                },
                "configuration": {
                    "metrics": [{
                        "id": "free",
                        "expression": "SELECT MIN(MinSubnetFreePercent) FROM SCHEMA(\"EksReaper\", Account, ClusterName, Region) GROUP BY Account, Region, ClusterName",
                        "returnData": true,
                        "period": 300
                    }],
                    "description": "A cluster's tightest subnet is nearly full."
                },
                "muteDetail": {"mutedByArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm-mute-rule:m"}
            }
        })
    }

    fn single_metric_event(dimensions: &[Value]) -> Value {
        let metrics: Vec<Value> = dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({
                    "id": format!("m{i}"),
                    "metricStat": {
                        "metric": {"dimensions": d, "name": "ClusterAvailableIps", "namespace": "EksReaper"},
                        "period": 300,
                        "stat": "Minimum"
                    },
                    "returnData": true
                })
            })
            .collect();
        json!({
            "alarmName": "batch-prod-ips",
            "configuration": {"metrics": metrics},
            "previousState": {"value": "OK"},
            "state": {"value": "ALARM", "reason": "Threshold Crossed"}
        })
    }

    fn parse(event: &Value) -> Result<Emergency, ConfigError> {
        let kind = event["detail-type"].as_str().expect("detail-type");
        emergency(kind, event.get("detail"))
    }

    #[test]
    fn a_contributor_event_names_its_cluster_and_alarm() {
        let e = parse(&contributor_event("batch-prod", "ALARM")).expect("ok");
        assert_eq!(e.cluster, "batch-prod");
        assert_eq!(e.alarm, "reaper-subnet-free-percent-low");
        assert_eq!(e.field, CONTRIBUTOR_FIELD);
    }

    #[test]
    fn a_contributor_names_its_cluster_s_region_and_account_too() {
        let e = parse(&contributor_event("batch-prod", "ALARM")).expect("ok");
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.account.as_deref(), Some("111111111111"));
        assert_eq!(e.target(), "batch-prod@eu-west-1 (account 111111111111)");
        let role = |account: &str| format!("arn:aws:iam::{account}:role/eks-reaper");
        let ours = role("111111111111");
        assert!(e.names("batch-prod", Some("eu-west-1"), Some(&ours)));
        assert!(
            e.names("batch-prod", None, Some(&ours)),
            "a Region not known yet is compared later"
        );
        assert!(!e.names("batch-prod", Some("us-east-1"), Some(&ours)));
        assert!(!e.names("batch-prod", Some("eu-west-1"), Some(&role("222222222222"))));
        assert!(
            !e.names("batch-prod", Some("eu-west-1"), None),
            "own account is `self`"
        );
        assert!(!e.names("batch-dev", Some("eu-west-1"), Some(&ours)));
    }

    #[test]
    fn an_alarm_over_metrics_without_region_or_account_names_the_cluster_by_name() {
        let mut event = contributor_event("etl", "ALARM");
        event["detail"]["alarmContributor"]["attributes"] = json!({"ClusterName": "etl"});
        let e = parse(&event).expect("ok");
        assert_eq!((e.region, e.account), (None, None));
        let e = parse(&contributor_event("etl", "ALARM")).expect("ok");
        let by_name = Emergency {
            region: None,
            account: None,
            ..e
        };
        assert!(by_name.names("etl", Some("us-east-1"), None));
    }

    #[test]
    fn a_region_or_account_that_is_not_a_string_is_an_error_naming_it() {
        let mut event = contributor_event("etl", "ALARM");
        event["detail"]["alarmContributor"]["attributes"]["Account"] = json!(111111111111_u64);
        let e = parse(&event).expect_err("number");
        assert_eq!(
            e.field(),
            "event.detail.alarmContributor.attributes.Account"
        );
    }

    #[test]
    fn a_state_other_than_alarm_starts_nothing() {
        for state in ["OK", "INSUFFICIENT_DATA"] {
            let e = parse(&contributor_event("batch-prod", state)).expect_err(state);
            assert_eq!(e.field(), "event.detail.state.value");
            assert!(e.to_string().contains(state), "{e}");
        }
    }

    #[test]
    fn a_contributor_without_a_cluster_name_is_an_error_naming_the_field() {
        let mut event = contributor_event("x", "ALARM");
        event["detail"]["alarmContributor"]["attributes"] = json!({"SubnetId": "subnet-1"});
        assert_eq!(
            parse(&event).expect_err("no cluster").field(),
            CONTRIBUTOR_FIELD
        );
        event["detail"]["alarmContributor"]["attributes"] = json!({"ClusterName": 7});
        let e = parse(&event).expect_err("not a string");
        assert!(e.to_string().contains('7'), "{e}");
    }

    #[test]
    fn a_single_metric_alarm_names_its_cluster_by_dimension() {
        let detail = single_metric_event(&[json!({"ClusterName": "etl"})]);
        let e = emergency(STATE_CHANGE, Some(&detail)).expect("ok");
        assert_eq!(e.cluster, "etl");
        assert_eq!(e.alarm, "batch-prod-ips");
        let detail = single_metric_event(&[
            json!({"ClusterName": "etl", "SubnetId": "subnet-1"}),
            json!({"ClusterName": "etl", "SubnetId": "subnet-2"}),
        ]);
        assert_eq!(
            emergency(STATE_CHANGE, Some(&detail)).expect("ok").cluster,
            "etl"
        );
    }

    #[test]
    fn a_single_metric_alarm_without_or_with_several_clusters_is_an_error() {
        let none = single_metric_event(&[json!({"InstanceId": "i-1"})]);
        let e = emergency(STATE_CHANGE, Some(&none)).expect_err("none");
        assert_eq!(e.field(), DIMENSION_FIELD);
        assert!(e.to_string().contains(CONTRIBUTOR_STATE_CHANGE), "{e}");
        let two = single_metric_event(&[json!({"ClusterName": "a"}), json!({"ClusterName": "b"})]);
        let e = emergency(STATE_CHANGE, Some(&two)).expect_err("two");
        assert!(e.to_string().contains("a, b"), "{e}");
        let one_name_two_regions = single_metric_event(&[
            json!({"ClusterName": "a", "Region": "eu-west-1", "Account": "self"}),
            json!({"ClusterName": "a", "Region": "us-east-1", "Account": "self"}),
        ]);
        let e = emergency(STATE_CHANGE, Some(&one_name_two_regions)).expect_err("two");
        assert!(
            e.to_string()
                .contains("a@eu-west-1 (account self), a@us-east-1 (account self)"),
            "{e}"
        );
    }

    #[test]
    fn a_metrics_insights_alarms_own_state_change_names_no_cluster() {
        let mut event = contributor_event("x", "ALARM");
        event["detail-type"] = json!(STATE_CHANGE);
        let detail = event["detail"].as_object_mut().expect("object");
        detail.remove("alarmContributor");
        assert_eq!(
            parse(&event).expect_err("aggregate").field(),
            DIMENSION_FIELD
        );
    }

    #[test]
    fn an_event_without_detail_or_alarm_name_is_an_error() {
        assert_eq!(
            emergency(STATE_CHANGE, None)
                .expect_err("no detail")
                .field(),
            "event.detail"
        );
        let mut event = contributor_event("x", "ALARM");
        event["detail"]
            .as_object_mut()
            .expect("object")
            .remove("alarmName");
        assert_eq!(
            parse(&event).expect_err("no name").field(),
            "event.detail.alarmName"
        );
    }
}
