"""template.yaml's Rules and infra/cluster-onboarding.yaml, evaluated for given parameters.

CloudFormation evaluates Rules before it creates anything; these tests evaluate the same
assertions (template_policy.rule_failures) over every combination that matters.
"""

from __future__ import annotations

import itertools

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
