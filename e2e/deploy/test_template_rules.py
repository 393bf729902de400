"""template.yaml's Rules and infra/cluster-onboarding.yaml, evaluated for given parameters.

CloudFormation evaluates Rules before it creates anything; these tests evaluate the same
assertions (template_policy.rule_failures) over every combination that matters.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest

from template_policy import ACCOUNT, ONBOARDING, PARTITION, REGION, Resolver, load_template, resources, rule_failures

BASE = {"ClusterNames": "etl", "AlarmEmail": "oncall@example.com"}


def params_of(name: str) -> dict:
    return load_template()["Parameters"][name]


# --- nobody notified ----------------------------------------------------------------


def test_defaults_without_a_destination_are_refused():
    failures = rule_failures({"ClusterNames": "etl"})
    assert len(failures) == 1 and "notify nobody" in failures[0]


@pytest.mark.parametrize("destination", [
    {"AlarmEmail": "oncall@example.com"},
    {"AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"},
    {"AlarmNotifications": "none"},
])
def test_a_destination_or_an_explicit_none_is_accepted(destination):
    assert rule_failures({"ClusterNames": "etl", **destination}) == []


# --- heartbeat window ---------------------------------------------------------------


def test_heartbeat_window_rules_match_the_arithmetic_for_every_combination():
    """Accepted exactly when HeartbeatMissedRuns x interval x 60 > FunctionTimeout, and
    HeartbeatMissedRuns x interval is at most 180 minutes (Metrics Insights, below)."""
    intervals = params_of("ScheduleIntervalMinutes")["AllowedValues"]
    timeouts = params_of("FunctionTimeout")["AllowedValues"]
    missed = params_of("HeartbeatMissedRuns")
    runs = range(int(missed["MinValue"]), int(missed["MaxValue"]) + 1)
    wrong = []
    for interval, timeout, m in itertools.product(intervals, timeouts, runs):
        p = {**BASE, "ScheduleIntervalMinutes": str(interval), "FunctionTimeout": str(timeout),
             "HeartbeatMissedRuns": str(m)}
        accepted = rule_failures(p) == []
        if accepted != (m * int(interval) * 60 > int(timeout) and m * int(interval) <= 180):
            wrong.append((interval, timeout, m, accepted))
    assert wrong == []


def test_defaults_keep_the_heartbeat_window_longer_than_the_timeout():
    assert rule_failures(BASE) == []
    p = {k: v.get("Default") for k, v in load_template()["Parameters"].items()}
    assert int(p["HeartbeatMissedRuns"]) * int(p["ScheduleIntervalMinutes"]) * 60 > int(p["FunctionTimeout"])


def test_a_refusal_says_what_to_set():
    failures = rule_failures({**BASE, "ScheduleIntervalMinutes": "5", "FunctionTimeout": "900",
                              "HeartbeatMissedRuns": "3"})
    assert failures == ["With a 5-minute schedule and FunctionTimeout 900, HeartbeatMissedRuns must be at least 4."]


# --- Metrics Insights alarm windows: at most 3 hours ---------------------------------

# CloudWatch evaluates an alarm on a Metrics Insights query over the latest 3 hours only,
# and PutMetricAlarm refuses a longer Period x EvaluationPeriods (CloudWatch User Guide,
# "Limits that apply to alarms based on Metrics Insights queries"): the stack rolls back.
METRICS_INSIGHTS_WINDOW_S = 3 * 3600
# Every alarm exists (the absolute IP alarms need both).
ALL_ALARMS = {**BASE, "AbsoluteIpAlarms": "true", "MetricsDetail": "full"}


def metrics_insights_alarms(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
            and any(str(m.get("Expression", "")).startswith("SELECT") or "Fn::Sub" in m.get("Expression", {})
                    for m in r["Properties"].get("Metrics", []))}


def windows(params: dict) -> dict[str, int]:
    """Period x EvaluationPeriods of each Metrics Insights alarm deployed with `params`."""
    t = load_template()
    r = Resolver(t, params)
    out = {}
    for key, res in metrics_insights_alarms(t).items():
        if "Condition" in res and not r.condition(res["Condition"]):
            continue
        props = res["Properties"]
        (query,) = [m for m in r.value(props["Metrics"]) if "Expression" in m]
        assert query["Expression"].startswith("SELECT "), key
        out[key] = int(query["Period"]) * int(r.value(props["EvaluationPeriods"]))
    return out


def run_count_parameters() -> list[str]:
    """The parameters that set a Metrics Insights alarm's EvaluationPeriods."""
    alarms = metrics_insights_alarms(load_template()).values()
    return sorted({a["Properties"]["EvaluationPeriods"]["Ref"] for a in alarms
                   if isinstance(a["Properties"]["EvaluationPeriods"], dict)})


def allowed_values(name: str) -> list[str]:
    spec = params_of(name)
    if "AllowedValues" in spec:
        return [str(v) for v in spec["AllowedValues"]]
    return [str(v) for v in range(int(spec["MinValue"]), int(spec["MaxValue"]) + 1)]


def test_the_enumeration_covers_every_metrics_insights_alarm_and_run_count():
    assert len(windows(ALL_ALARMS)) == 11
    assert run_count_parameters() == ["BacklogRuns", "DeleteErrorRuns", "HeartbeatMissedRuns", "ThrottledRuns"]


def test_rules_accept_exactly_the_combinations_whose_alarm_windows_fit_in_3_hours():
    """For every interval, timeout and value of each run count (the others at the smallest
    value the Rules accept): accepted exactly when every Metrics Insights alarm's window is
    at most 3 hours and the heartbeat outlasts the timeout, and then it is."""
    counts = run_count_parameters()
    wrong, accepted = [], 0
    for interval, timeout in itertools.product(allowed_values("ScheduleIntervalMinutes"), allowed_values("FunctionTimeout")):
        base = {**ALL_ALARMS, "ScheduleIntervalMinutes": interval, "FunctionTimeout": timeout,
                **{c: allowed_values(c)[0] for c in counts}}
        # The smallest heartbeat the Rules accept here, if any (a long timeout needs more runs).
        heartbeat = next((m for m in allowed_values("HeartbeatMissedRuns")
                          if rule_failures({**base, "HeartbeatMissedRuns": m}) == []), None)
        if heartbeat is None:
            continue
        base["HeartbeatMissedRuns"] = heartbeat
        for count in counts:
            for value in allowed_values(count):
                p = {**base, count: value}
                w = windows(p)
                fits = all(s <= METRICS_INSIGHTS_WINDOW_S for s in w.values())
                outlasts = int(p["HeartbeatMissedRuns"]) * int(interval) * 60 > int(timeout)
                ok = rule_failures(p) == []
                accepted += ok
                if ok != (fits and outlasts):
                    wrong.append((interval, timeout, count, value, ok, w))
    assert wrong == []
    assert accepted > 1000, "the enumeration must reach the accepted combinations"


def test_every_interval_keeps_some_heartbeat_and_the_default_run_counts_up_to_30_minutes():
    for interval in allowed_values("ScheduleIntervalMinutes"):
        assert any(rule_failures({**ALL_ALARMS, "ScheduleIntervalMinutes": interval, "HeartbeatMissedRuns": m}) == []
                   for m in allowed_values("HeartbeatMissedRuns")), interval
        if int(interval) <= 30:
            failures = rule_failures({**ALL_ALARMS, "ScheduleIntervalMinutes": interval})
            assert not [f for f in failures if "3 hours" in f], interval


def test_an_hourly_schedule_with_the_default_heartbeat_is_refused_naming_the_limit():
    """4 x 60 minutes: PutMetricAlarm would refuse it and roll the stack back."""
    assert max(windows({**ALL_ALARMS, "ScheduleIntervalMinutes": "60"}).values()) == 4 * 3600
    assert rule_failures({**BASE, "ScheduleIntervalMinutes": "60"}) == [
        "With a 60-minute schedule, HeartbeatMissedRuns must be at most 3: CloudWatch evaluates "
        "Metrics Insights alarms over 3 hours at most (3 x 60 minutes)."]
    failures = rule_failures({**BASE, "ScheduleIntervalMinutes": "30", "HeartbeatMissedRuns": "6", "BacklogRuns": "7",
                              "ThrottledRuns": "12"})
    assert [f.split(":")[0] for f in failures] == [
        "With a 30-minute schedule, BacklogRuns must be at most 6", "With a 30-minute schedule, ThrottledRuns must be at most 6"]


# --- Metrics Insights alarm queries: one series per cluster ---------------------------


def test_no_alarm_query_returns_a_series_per_subnet_nor_over_500():
    """A Metrics Insights alarm query returning over 500 series, or matching over 10,000
    metrics, evaluates on PARTIAL_DATA: per subnet that came at ~50 clusters. Per cluster,
    worst first and at most 500, it holds to 10,000 clusters per metrics namespace."""
    t = load_template()
    res = resources(t, Resolver(t, ALL_ALARMS))
    alarms = {k: res[k]["Properties"] for k in windows(ALL_ALARMS)}
    queries = {k: m["Expression"] for k, a in alarms.items() for m in a["Metrics"]}
    assert len(queries) == 11
    one_per_cluster = re.compile(r'SELECT (\w+)\(\w+\) FROM SCHEMA\("EKSReaper", Account, ClusterName, Region\)'
                                 r'( GROUP BY Account, Region, ClusterName ORDER BY (\w+)\(\) (ASC|DESC) LIMIT 500)?')
    matches = {k: one_per_cluster.fullmatch(q) for k, q in queries.items()}
    assert {k: q for k, q in queries.items() if not matches[k]} == {}
    worst = {k: "ASC" if alarms[k]["ComparisonOperator"].startswith("LessThan") else "DESC" for k in queries}
    grouped = {k: m for k, m in matches.items() if m.group(2)}
    assert len(grouped) == 10, sorted(set(queries) - set(grouped))
    assert {k: (m.group(3), m.group(4)) for k, m in grouped.items()} == {
        k: (m.group(1), worst[k]) for k, m in grouped.items()}
    assert queries["SubnetIpsLowAlarm"].startswith("SELECT MIN(MinSubnetAvailableIps)")


# --- clusters named or discovered ---------------------------------------------------

NOTIFIED = {"AlarmEmail": "oncall@example.com"}


def function(**params: str) -> dict:
    t = load_template()
    return resources(t, Resolver(t, {**NOTIFIED, **params}))["ReaperFunction"]["Properties"]


@pytest.mark.parametrize("names", ["", ","])
def test_no_cluster_named_and_discovery_off_is_refused(names):
    failures = rule_failures({**NOTIFIED, "ClusterNames": names})
    assert len(failures) == 1 and failures[0].startswith("No cluster to prune."), failures


@pytest.mark.parametrize("params", [
    {"ClusterNames": "etl"},
    {"DiscoverTaggedClusters": "true"},
    {"DiscoverTaggedClusters": "true", "ClusterNames": "etl", "DiscoveryRegions": "eu-west-1,us-east-1"},
])
def test_named_clusters_or_discovery_are_accepted(params):
    assert rule_failures({**NOTIFIED, **params}) == []


def test_discovery_regions_without_discovery_are_refused():
    failures = rule_failures({**NOTIFIED, "ClusterNames": "etl", "DiscoveryRegions": "eu-west-1"})
    assert len(failures) == 1 and "DiscoverTaggedClusters is false" in failures[0], failures


def test_discovery_gives_the_function_the_iam_tag_and_the_regions():
    env = function(ClusterNames="etl")["Environment"]["Variables"]
    assert "REAPER_CLUSTER_TAG" not in env and "REAPER_DISCOVERY_REGIONS" not in env
    env = function(DiscoverTaggedClusters="true", ClusterTagValue="fleet-a")["Environment"]["Variables"]
    assert (env["REAPER_CLUSTERS"], env["REAPER_CLUSTER_TAG"]) == ("", "eks-reaper=fleet-a")
    assert "REAPER_DISCOVERY_REGIONS" not in env, "the function's own region by default"
    env = function(DiscoverTaggedClusters="true", DiscoveryRegions="eu-west-1,us-east-1")["Environment"]["Variables"]
    assert env["REAPER_DISCOVERY_REGIONS"] == "eu-west-1,us-east-1"


def test_discovery_accounts_need_discovery_and_reach_the_function_with_their_role_name():
    failures = rule_failures({**NOTIFIED, "ClusterNames": "etl", "DiscoveryAccounts": "111111111111"})
    assert len(failures) == 1 and "DiscoveryAccounts is set but" in failures[0], failures
    env = function(DiscoverTaggedClusters="true")["Environment"]["Variables"]
    assert "REAPER_DISCOVERY_ACCOUNTS" not in env and "REAPER_MEMBER_ROLE_NAME" not in env
    env = function(DiscoverTaggedClusters="true", DiscoveryAccounts="111111111111,222222222222",
                   MemberRoleName="reaper-member")["Environment"]["Variables"]
    assert env["REAPER_DISCOVERY_ACCOUNTS"] == "111111111111,222222222222"
    assert env["REAPER_MEMBER_ROLE_NAME"] == "reaper-member"
    pattern = re.compile(params_of("DiscoveryAccounts")["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("123456789012")
    assert not any(pattern.fullmatch(a) for a in ["12345678901", "1234567890123", "self", " 123456789012"])


def test_member_roles_are_assumable_only_with_discovery_accounts():
    def assume_statements(**params: str) -> list[dict]:
        t = load_template()
        role = resources(t, Resolver(t, {**NOTIFIED, **params}))["ReaperRole"]["Properties"]
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        return [s for s in statements if s.get("Sid") == "AssumeMemberRoles"]

    assert assume_statements(DiscoverTaggedClusters="true") == []
    [s] = assume_statements(DiscoverTaggedClusters="true", DiscoveryAccounts="111111111111",
                            MemberRoleName="reaper-member")
    assert (s["Action"], s["Resource"]) == ("sts:AssumeRole", "arn:aws:iam::*:role/reaper-member")


def test_schedule_input_names_clusters_only_when_there_are_some():
    """The function refuses an empty `clusters` list in the event: discovery-only omits it."""
    def schedule_input(**params: str) -> dict:
        return json.loads(function(**params)["Events"]["Schedule"]["Properties"]["Input"])

    assert schedule_input(ClusterNames="etl,batch-prod") == {"clusters": ["etl", "batch-prod"], "dryRun": False}
    assert schedule_input(DiscoverTaggedClusters="true", DryRun="server") == {"dryRun": "server"}
    assert schedule_input(DiscoverTaggedClusters="true", ClusterNames="etl") == {"clusters": ["etl"], "dryRun": False}


def test_discovery_regions_accept_region_names_only():
    pattern = re.compile(params_of("DiscoveryRegions")["AllowedPattern"])
    assert all(pattern.fullmatch(r) for r in ["", "us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-7"])
    assert not any(pattern.fullmatch(r) for r in ["EU", " us-east-1", "us-east-1 ", "*", "us_east_1"])


# --- the onboarding stack -----------------------------------------------------------

# The reaper's role has a fixed name (ReaperRoleName, default eks-reaper-<region>).
REAPER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-reaper-{REGION}"
REMOTE_REAPER_ROLE = "arn:aws:iam::444455556666:role/eks-reaper-eu-west-1"


def onboarding(**params: str) -> dict:
    t = load_template(ONBOARDING)
    return resources(t, Resolver(t, {"ClusterName": "etl", **params}))


def test_same_account_gets_an_access_entry_for_the_function_role_and_no_role():
    res = onboarding(ReaperRoleArn=REAPER_ROLE)
    assert sorted(r["Type"] for r in res.values()) == ["AWS::EKS::AccessEntry"]
    entry = res["AccessEntry"]["Properties"]
    assert entry == {"ClusterName": "etl", "PrincipalArn": REAPER_ROLE, "Type": "STANDARD",
                     "KubernetesGroups": ["eks-reaper"]}


def test_another_account_gets_a_role_trusting_only_the_reaper_with_the_external_id():
    res = onboarding(ReaperRoleArn=REMOTE_REAPER_ROLE, ExternalId="fleet-42", AssumedRoleName="eks-reaper")
    assert sorted(r["Type"] for r in res.values()) == ["AWS::EKS::AccessEntry", "AWS::IAM::Role"]
    role = res["AssumedRole"]["Properties"]
    assert role["RoleName"] == "eks-reaper"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": REMOTE_REAPER_ROLE},
                      "StringEquals": {"sts:ExternalId": "fleet-42"}}}]
    (policy,) = role["Policies"]
    arn = f"arn:{PARTITION}:eks:{REGION}:{ACCOUNT}"
    grants = sorted((tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])), s["Resource"])
                    for s in policy["PolicyDocument"]["Statement"])
    assert grants == sorted([
        (("eks:DescribeCluster", "eks:ListFargateProfiles"), f"{arn}:cluster/etl"),
        (("eks:DescribeFargateProfile",), f"{arn}:fargateprofile/etl/*"),
        (("ec2:DescribeSubnets",), "*"),
    ])
    assert res["AccessEntry"]["Properties"]["PrincipalArn"] == "<AssumedRole.Arn>"
    assert "AccessPolicies" not in res["AccessEntry"]["Properties"]


def test_without_an_external_id_the_trust_names_the_reaper_role_alone():
    role = onboarding(ReaperRoleArn=REMOTE_REAPER_ROLE)["AssumedRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": REMOTE_REAPER_ROLE}}
    assert "RoleName" not in role


def test_the_trust_names_the_reaper_role_by_arn_so_it_survives_a_replaced_reaper_stack():
    """IAM stores a role named as Principal by its unique id: a reaper role deleted and
    created again under its fixed name would not match. aws:PrincipalArn is compared at
    each AssumeRole; the Principal is the reaper's account (its partition too)."""
    gov = "arn:aws-us-gov:iam::444455556666:role/eks-reaper-us-gov-west-1"
    (statement,) = onboarding(ReaperRoleArn=gov)["AssumedRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws-us-gov:iam::444455556666:root"}
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": gov}}
    assert "role/" not in json.dumps(statement["Principal"])


# --- the reaper's role name ------------------------------------------------------------


def reaper_role_name(**params: str) -> str:
    t = load_template()
    return resources(t, Resolver(t, {**NOTIFIED, "ClusterNames": "etl", **params}))["ReaperRole"]["Properties"]["RoleName"]


def test_the_function_role_has_a_fixed_name_with_the_region_by_default():
    """IAM is global: the region keeps two regions' reaper stacks in one account apart."""
    assert reaper_role_name() == f"eks-reaper-{REGION}"
    assert reaper_role_name(ReaperRoleName="fleet-a-reaper") == "fleet-a-reaper"
    # The longest region names (14 characters) keep the default far from IAM's 64.
    assert len("eks-reaper-" + "ap-southeast-7") <= 64


def test_reaper_role_names_follow_iam_rules():
    pattern = re.compile(params_of("ReaperRoleName")["AllowedPattern"])
    assert all(pattern.fullmatch(n) for n in ["", "eks-reaper", "a" * 64, "team+reaper=1,x.y@z_w-v"])
    assert not any(pattern.fullmatch(n) for n in ["a" * 65, "eks reaper", "eks/reaper", "reaper:1"])
