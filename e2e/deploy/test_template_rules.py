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
    """Accepted exactly when HeartbeatMissedRuns x interval x 60 > FunctionTimeout."""
    intervals = params_of("ScheduleIntervalMinutes")["AllowedValues"]
    timeouts = params_of("FunctionTimeout")["AllowedValues"]
    missed = params_of("HeartbeatMissedRuns")
    runs = range(int(missed["MinValue"]), int(missed["MaxValue"]) + 1)
    wrong = []
    for interval, timeout, m in itertools.product(intervals, timeouts, runs):
        p = {**BASE, "ScheduleIntervalMinutes": str(interval), "FunctionTimeout": str(timeout),
             "HeartbeatMissedRuns": str(m)}
        accepted = rule_failures(p) == []
        if accepted != (m * int(interval) * 60 > int(timeout)):
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

REAPER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-reaper-ReaperRole-abc"
REMOTE_REAPER_ROLE = "arn:aws:iam::444455556666:role/eks-reaper-ReaperRole-xyz"


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
        "Effect": "Allow", "Principal": {"AWS": REMOTE_REAPER_ROLE}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "fleet-42"}}}]
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
    assert statement["Principal"] == {"AWS": REMOTE_REAPER_ROLE} and "Condition" not in statement
    assert "RoleName" not in role
