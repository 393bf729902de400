//! The Lambda invocation event: what a schedule may override for one run.
//!
//! Three shapes are accepted:
//! - an EventBridge Scheduler payload, which is the target's raw `Input` with no envelope:
//!   `{"clusters": ["etl", {"name": "x", "region": "eu-west-1", "roleArn": "arn:...",
//!   "externalId": "..."}], "dryRun": true}`;
//! - a classic EventBridge scheduled event (`detail-type`, `source`, ... ), with the same
//!   overrides inside `detail`;
//! - nothing: `null` or `{}`;
//! - a CloudWatch alarm state change (EventBridge envelope, `detail-type` `CloudWatch Alarm
//!   [Contributor] State Change`): an emergency run of the alarm's cluster
//!   ([`super::alarm`]).
//!
//! Anything else — an unknown field, a wrong type — is an error naming the field, so a typo
//! in a schedule fails loudly instead of pruning with defaults.

use serde_json::{Map, Value};

use super::alarm::{self, Emergency};
use super::error::ConfigError;
use super::values::{self, DryRun, ExternalId};

/// Overrides carried by the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces the configured cluster list.
    pub clusters: Option<Vec<ClusterOverride>>,
    /// Replaces the configured dry-run mode.
    pub dry_run: Option<DryRun>,
    /// An alarm asks for an emergency run of one cluster.
    pub emergency: Option<Emergency>,
}

/// One cluster entry of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOverride {
    /// Cluster name, possibly `name@region`.
    pub name: String,
    /// Region for this cluster.
    pub region: Option<String>,
    /// Role to assume for this cluster.
    pub role_arn: Option<String>,
    /// External id for assuming this cluster's role (instead of `REAPER_EXTERNAL_ID`).
    pub external_id: Option<ExternalId>,
}

/// Standard fields of the classic EventBridge envelope.
const ENVELOPE_FIELDS: &[&str] = &[
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
];

const OVERRIDE_FIELDS: &str = "clusters, dryRun";

impl Overrides {
    /// Reads the overrides from an invocation payload.
    pub fn from_event(event: &Value) -> Result<Overrides, ConfigError> {
        match event {
            Value::Null => Ok(Overrides::default()),
            Value::Object(map) if map.contains_key("detail-type") => {
                for key in map.keys() {
                    if !ENVELOPE_FIELDS.contains(&key.as_str()) {
                        return Err(unknown(&format!("event.{key}"), ENVELOPE_FIELDS.join(", ")));
                    }
                }
                if let Some(kind) = map
                    .get("detail-type")
                    .and_then(Value::as_str)
                    .filter(|k| alarm::is_alarm_event(k))
                {
                    return Ok(Overrides {
                        emergency: Some(alarm::emergency(kind, map.get("detail"))?),
                        ..Overrides::default()
                    });
                }
                match map.get("detail") {
                    None | Some(Value::Null) => Ok(Overrides::default()),
                    Some(Value::Object(detail)) => overrides(detail, "event.detail."),
                    Some(other) => Err(wrong_type("event.detail", other, "an object")),
                }
            }
            Value::Object(map) => overrides(map, "event."),
            other => Err(wrong_type("event", other, "a JSON object or null")),
        }
    }
}

fn overrides(map: &Map<String, Value>, prefix: &str) -> Result<Overrides, ConfigError> {
    let mut out = Overrides::default();
    for (key, value) in map {
        let field = format!("{prefix}{key}");
        match key.as_str() {
            "clusters" => {
                let Value::Array(items) = value else {
                    return Err(wrong_type(&field, value, "an array"));
                };
                out.clusters = Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| cluster(item, &format!("{field}[{i}]")))
                        .collect::<Result<_, _>>()?,
                );
            }
            "dryRun" => {
                out.dry_run = Some(match value {
                    Value::Bool(true) => DryRun::Client,
                    Value::Bool(false) => DryRun::Off,
                    Value::String(s) => {
                        values::dry_run(s).map_err(|why| ConfigError::invalid(&field, s, why))?
                    }
                    other => {
                        return Err(wrong_type(
                            &field,
                            other,
                            "a boolean, \"client\" or \"server\"",
                        ));
                    }
                });
            }
            _ => return Err(unknown(&field, OVERRIDE_FIELDS.to_owned())),
        }
    }
    Ok(out)
}

fn cluster(item: &Value, field: &str) -> Result<ClusterOverride, ConfigError> {
    match item {
        Value::String(name) => Ok(ClusterOverride {
            name: name.clone(),
            region: None,
            role_arn: None,
            external_id: None,
        }),
        Value::Object(map) => {
            let mut name = None;
            let mut region = None;
            let mut role_arn = None;
            let mut external_id = None;
            for (key, value) in map {
                let f = format!("{field}.{key}");
                let slot = match key.as_str() {
                    "name" => &mut name,
                    "region" => &mut region,
                    "roleArn" => &mut role_arn,
                    "externalId" => {
                        external_id = hidden_external_id(&f, value)?;
                        continue;
                    }
                    _ => {
                        return Err(unknown(&f, "name, region, roleArn, externalId".to_owned()));
                    }
                };
                match value {
                    Value::String(s) => *slot = Some(s.clone()),
                    Value::Null => {}
                    other => return Err(wrong_type(&f, other, "a string")),
                }
            }
            let name = name.ok_or_else(|| ConfigError::Missing {
                field: format!("{field}.name"),
                reason: "cluster entry without a name".to_owned(),
            })?;
            Ok(ClusterOverride {
                name,
                region,
                role_arn,
                external_id,
            })
        }
        other => Err(wrong_type(
            field,
            other,
            "a cluster name or an object with name",
        )),
    }
}

/// A cluster's `externalId`: a string as `REAPER_EXTERNAL_ID` takes it (blank or `null`: not
/// given); an error names the field but never shows the value.
fn hidden_external_id(field: &str, value: &Value) -> Result<Option<ExternalId>, ConfigError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => values::external_id(s)
            .map_err(|why| ConfigError::invalid(field, &values::hidden(s), why)),
        other => Err(ConfigError::invalid(
            field,
            &values::hidden(&other.to_string()),
            "expected a string",
        )),
    }
}

fn unknown(field: &str, expected: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value: field.rsplit(['.', '[']).next().unwrap_or(field).to_owned(),
        reason: format!("unknown field (expected one of: {expected})"),
    }
}

fn wrong_type(field: &str, value: &Value, expected: &str) -> ConfigError {
    ConfigError::invalid(field, &value.to_string(), format!("expected {expected}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Overrides, ConfigError> {
        Overrides::from_event(&v)
    }

    #[test]
    fn null_and_empty_object_override_nothing() {
        assert_eq!(parse(Value::Null).expect("ok"), Overrides::default());
        assert_eq!(parse(json!({})).expect("ok"), Overrides::default());
    }

    #[test]
    fn scheduler_raw_input_overrides_clusters_and_dry_run() {
        let o = parse(json!({
            "clusters": ["etl", {"name": "x", "region": "eu-west-1", "roleArn": "arn:aws:iam::1:role/r"}],
            "dryRun": true
        }))
        .expect("ok");
        let clusters = o.clusters.expect("clusters");
        assert_eq!(clusters[0].name, "etl");
        assert_eq!(clusters[1].region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            clusters[1].role_arn.as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
        assert_eq!(o.dry_run, Some(DryRun::Client));
    }

    #[test]
    fn dry_run_accepts_server() {
        let o = parse(json!({"dryRun": "server"})).expect("ok");
        assert_eq!(o.dry_run, Some(DryRun::Server));
    }

    #[test]
    fn classic_scheduled_event_is_accepted_with_overrides_in_detail() {
        let o = parse(json!({
            "version": "0",
            "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-28T21:00:00Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/reaper"],
            "detail": {"dryRun": false}
        }))
        .expect("ok");
        assert_eq!(o.dry_run, Some(DryRun::Off));
        assert_eq!(o.clusters, None);
    }

    #[test]
    fn classic_scheduled_event_with_empty_detail_overrides_nothing() {
        let o =
            parse(json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
                .expect("ok");
        assert_eq!(o, Overrides::default());
    }

    #[test]
    fn an_alarm_event_asks_for_an_emergency_run_and_overrides_nothing_else() {
        let o = parse(json!({
            "version": "0",
            "detail-type": "CloudWatch Alarm Contributor State Change",
            "source": "aws.cloudwatch",
            "detail": {
                "alarmName": "reaper-ip-exhaustion-forecast",
                "alarmContributor": {"id": "1", "attributes": {"ClusterName": "etl"}},
                "state": {"value": "ALARM"}
            }
        }))
        .expect("ok");
        let e = o.emergency.expect("emergency");
        assert_eq!(
            (e.alarm.as_str(), e.cluster.as_str()),
            ("reaper-ip-exhaustion-forecast", "etl")
        );
        assert_eq!((o.clusters, o.dry_run), (None, None));
        let e = parse(json!({"detail-type": "CloudWatch Alarm State Change", "detail": {}}))
            .expect_err("no alarm name");
        assert_eq!(e.field(), "event.detail.alarmName");
    }

    #[test]
    fn unknown_top_level_field_is_an_error_naming_it() {
        let e = parse(json!({"cluster": ["etl"]})).expect_err("typo");
        assert_eq!(e.field(), "event.cluster");
    }

    #[test]
    fn unknown_detail_field_is_an_error_naming_it() {
        let e = parse(json!({"detail-type": "Scheduled Event", "detail": {"dry_run": true}}))
            .expect_err("typo");
        assert_eq!(e.field(), "event.detail.dry_run");
    }

    #[test]
    fn unknown_envelope_field_is_an_error() {
        let e = parse(json!({"detail-type": "Scheduled Event", "extra": 1})).expect_err("bad");
        assert_eq!(e.field(), "event.extra");
    }

    #[test]
    fn unknown_cluster_field_is_an_error_naming_it() {
        let e = parse(json!({"clusters": [{"name": "x", "role": "r"}]})).expect_err("bad");
        assert_eq!(e.field(), "event.clusters[0].role");
    }

    #[test]
    fn a_cluster_may_carry_an_external_id() {
        let o = parse(json!({"clusters": [
            {"name": "x", "roleArn": "arn:aws:iam::1:role/r", "externalId": "tenant-42"},
            {"name": "y", "externalId": null},
            {"name": "z", "externalId": "  "}
        ]}))
        .expect("ok");
        let clusters = o.clusters.expect("clusters");
        assert_eq!(
            clusters[0].external_id.as_ref().map(ExternalId::as_str),
            Some("tenant-42")
        );
        assert_eq!(clusters[1].external_id, None);
        assert_eq!(clusters[2].external_id, None, "blank means not given");
    }

    #[test]
    fn a_bad_external_id_is_an_error_naming_the_field_not_the_value() {
        for bad in [
            json!("x"),
            json!("has space secret"),
            json!(42),
            json!(["s3cr3t"]),
        ] {
            let e = parse(json!({"clusters": [{"name": "x", "externalId": bad}]}))
                .expect_err("bad external id");
            assert_eq!(e.field(), "event.clusters[0].externalId", "{bad}");
            let msg = e.to_string();
            assert!(msg.contains("<hidden, "), "{msg}");
            for word in ["secret", "s3cr3t", "42"] {
                assert!(!msg.contains(word), "{msg}");
            }
        }
    }

    #[test]
    fn wrong_types_are_errors_naming_field_and_value() {
        let e = parse(json!({"dryRun": 3})).expect_err("bad");
        assert!(e.to_string().contains("event.dryRun"), "{e}");
        assert!(e.to_string().contains('3'), "{e}");
        assert!(parse(json!({"clusters": "etl"})).is_err());
        assert!(parse(json!({"dryRun": "maybe"})).is_err());
        assert!(parse(json!(["etl"])).is_err());
        assert!(parse(json!({"clusters": [{"region": "eu-west-1"}]})).is_err());
    }
}
