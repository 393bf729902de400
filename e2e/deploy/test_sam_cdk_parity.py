"""template.yaml (SAM) and the CDK app deploy the same thing.

Compares template.yaml, resolved for clusters batch-prod and etl-dev with an alarm
e-mail, with the template `scripts/check-deploy` synthesizes from infra/ for the same
clusters and e-mail ($EKS_REAPER_CACHE/cdk.out/EksReaper.template.json; a missing synth
output is a failure: run scripts/check-deploy). The CDK construct creates the access
entries that SAM users get from infra/cluster-onboarding.yaml, one stack per cluster:
those are compared with that template resolved per cluster. With cluster discovery on
(DiscoverTaggedClusters=true and DiscoveryRegions in SAM, `discovery: {regions}` in CDK;
$EKS_REAPER_CACHE/cdk.out-discovery), the discovery statements of the role, the function's
cluster selection and the schedule input are compared too. With every metric published
(MetricsDetail=full in SAM, `metricsDetail: 'full'` in CDK; $EKS_REAPER_CACHE/cdk.out-full)
the alarms and the dashboard are compared again. With a non-default parameter set (an
hourly schedule, every run count and threshold changed, the absolute IP alarms, a role
name, a named cluster in another region; $EKS_REAPER_CACHE/cdk.out-custom) the alarms
(queries, thresholds, periods, evaluation periods, actions), the role name, the schedule,
the regions the EKS grants reach and the emergency rule are compared once more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from template_policy import (ACCOUNT, ONBOARDING, PARTITION, REGION, ROOT, Resolver, actions_of,
                             function_role_statements, load_template, resources)

CACHE = Path(os.environ.get("EKS_REAPER_CACHE", Path.home() / ".cache" / "eks-reaper"))
CDK_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_TEMPLATE", CACHE / "cdk.out" / "EksReaper.template.json"))
CLUSTERS = "batch-prod,etl-dev"
# scripts/check-deploy synthesizes with -c alarmEmail=ALARM_EMAIL.
ALARM_EMAIL = "oncall@example.com"
PARAMS = {"ClusterNames": CLUSTERS, "AlarmEmail": ALARM_EMAIL}
CDK_DISCOVERY_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_DISCOVERY_TEMPLATE",
                                             CACHE / "cdk.out-discovery" / "EksReaper.template.json"))
# scripts/check-deploy synthesizes with -c discovery=true -c discoveryRegions=DISCOVERY_REGIONS.
DISCOVERY_REGIONS = "eu-west-1,us-east-1"
DISCOVERY_PARAMS = {**PARAMS, "DiscoverTaggedClusters": "true", "DiscoveryRegions": DISCOVERY_REGIONS}
DISCOVERY_SIDS = {"DescribeTaggedClusters", "DescribeFargateProfiles", "ListClustersToDiscover"}
CDK_FULL_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_FULL_TEMPLATE", CACHE / "cdk.out-full" / "EksReaper.template.json"))
# scripts/check-deploy synthesizes with -c metricsDetail=full.
FULL_PARAMS = {**PARAMS, "MetricsDetail": "full"}
CDK_CUSTOM_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_CUSTOM_TEMPLATE",
                                          CACHE / "cdk.out-custom" / "EksReaper.template.json"))
# scripts/check-deploy synthesizes with the CDK context of the same values:
# -c clusters=batch-prod,etl-dev@eu-west-1 -c intervalMinutes=60 -c heartbeatMissedRuns=3
# -c backlogRuns=2 -c deleteErrorRuns=1 -c throttledRuns=2 -c forecastHours=4
# -c subnetFreePercent=15 -c metricsDetail=full -c absoluteIpAlarms=true -c roleName=fleet-a-reaper
CUSTOM_PARAMS = {
    **PARAMS, "ClusterNames": "batch-prod,etl-dev@eu-west-1", "ClusterRegions": "eu-west-1",
    "ScheduleIntervalMinutes": "60", "HeartbeatMissedRuns": "3", "BacklogRuns": "2", "DeleteErrorRuns": "1",
    "ThrottledRuns": "2", "ForecastThresholdHours": "4", "SubnetFreePercentThreshold": "15",
    "MetricsDetail": "full", "AbsoluteIpAlarms": "true", "ReaperRoleName": "fleet-a-reaper",
}


@pytest.fixture(scope="module")
def sam() -> dict:
    t = load_template()
    return resources(t, Resolver(t, PARAMS))


@pytest.fixture(scope="module")
def sam_raw() -> dict:
    """Unresolved resources, for the attributes outside Properties."""
    return load_template()["Resources"]


def _synthesized(path: Path) -> dict:
    if not path.exists():
        pytest.fail(f"no CDK synth output at {path}: run scripts/check-deploy")
    return json.loads(path.read_text())["Resources"]


@pytest.fixture(scope="module")
def cdk() -> dict:
    return _synthesized(CDK_TEMPLATE)


@pytest.fixture(scope="module")
def cdk_discovery() -> dict:
    return _synthesized(CDK_DISCOVERY_TEMPLATE)


@pytest.fixture(scope="module")
def cdk_full() -> dict:
    return _synthesized(CDK_FULL_TEMPLATE)


@pytest.fixture(scope="module")
def sam_full() -> dict:
    t = load_template()
    return resources(t, Resolver(t, FULL_PARAMS))


@pytest.fixture(scope="module")
def cdk_custom() -> dict:
    return _synthesized(CDK_CUSTOM_TEMPLATE)


@pytest.fixture(scope="module")
def sam_custom() -> dict:
    t = load_template()
    return resources(t, Resolver(t, CUSTOM_PARAMS))


@pytest.fixture(scope="module")
def sam_discovery() -> dict:
    t = load_template()
    return resources(t, Resolver(t, DISCOVERY_PARAMS))


def of_type(resources: dict, type_: str) -> list[dict]:
    return [r["Properties"] for r in resources.values() if r["Type"] == type_]


def cdk_role_statements(cdk: dict) -> list[dict]:
    roles = [k for k, r in cdk.items() if r["Type"] == "AWS::IAM::Role"
             and "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    assert len(roles) == 1
    return [s for r in cdk.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": roles[0]} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]]


def cdk_role_actions(cdk: dict) -> set[str]:
    return {a for s in cdk_role_statements(cdk) for a in actions_of(s)}


def test_same_function_role_actions(cdk):
    sam_actions = {a for s in function_role_statements(PARAMS) for a in actions_of(s)}
    assert cdk_role_actions(cdk) == sam_actions


def test_same_function_role_actions_with_discovery(cdk_discovery):
    sam_actions = {a for s in function_role_statements(DISCOVERY_PARAMS) for a in actions_of(s)}
    assert "eks:ListClusters" in sam_actions
    assert cdk_role_actions(cdk_discovery) == sam_actions


def _pseudo(text: str) -> str:
    """CDK's environment-agnostic ARNs with the pseudo parameters template_policy resolves."""
    return (text.replace("<AWS::Partition>", PARTITION).replace("<AWS::AccountId>", ACCOUNT)
            .replace("<AWS::Region>", REGION))


def _as_sets(condition: dict | None) -> dict | None:
    """IAM condition values are sets: order and repeats do not count."""
    if condition is None:
        return None
    return {op: {k: sorted(set(v)) if isinstance(v, list) else v for k, v in kv.items()} for op, kv in condition.items()}


def _discovery_grants(statements: list[dict], flatten=lambda v: v) -> list[tuple]:
    return sorted((s["Sid"], tuple(sorted(actions_of(s))), flatten(s["Resource"]),
                   json.dumps(_as_sets(s.get("Condition")), sort_keys=True))
                  for s in statements if s.get("Sid") in DISCOVERY_SIDS)


def test_same_discovery_statements(cdk_discovery):
    """ListClusters on "*" and the tag-conditioned EKS grants, both scoped to the regions.
    (SAM's also name the stack's region for its named clusters, listed in the discovery
    regions here; CDK grants named clusters by their own ARNs.)"""
    sam = _discovery_grants(function_role_statements(DISCOVERY_PARAMS))
    assert {g[0] for g in sam} == DISCOVERY_SIDS
    assert _discovery_grants(cdk_role_statements(cdk_discovery), lambda r: _pseudo(_flat(r))) == sam


def test_same_cluster_selection_and_schedule_input_with_discovery(sam_discovery, cdk_discovery):
    (s,) = of_type(sam_discovery, "AWS::Serverless::Function")
    (c,) = of_type(cdk_discovery, "AWS::Lambda::Function")
    keys = ("REAPER_CLUSTERS", "REAPER_CLUSTER_TAG", "REAPER_DISCOVERY_REGIONS")
    sam_env, cdk_env = s["Environment"]["Variables"], c["Environment"]["Variables"]
    assert {k: sam_env.get(k) for k in keys} == {k: cdk_env.get(k) for k in keys} == {
        "REAPER_CLUSTERS": CLUSTERS, "REAPER_CLUSTER_TAG": "eks-reaper=enabled", "REAPER_DISCOVERY_REGIONS": DISCOVERY_REGIONS}
    (sched,) = of_type(cdk_discovery, "AWS::Scheduler::Schedule")
    assert json.loads(s["Events"]["Schedule"]["Properties"]["Input"]) == json.loads(sched["Target"]["Input"])


def test_same_function_settings(sam, cdk):
    keys = ["Runtime", "Architectures", "Handler", "MemorySize", "Timeout", "ReservedConcurrentExecutions"]
    (s,) = of_type(sam, "AWS::Serverless::Function")
    (c,) = of_type(cdk, "AWS::Lambda::Function")
    # Parameters reach the template as strings (MemorySize "1024"), CDK writes numbers.
    assert {k: str(s[k]) for k in keys} == {k: str(c[k]) for k in keys}
    assert s["LoggingConfig"]["LogFormat"] == c["LoggingConfig"]["LogFormat"] == "JSON"
    # CDK leaves unset settings to the binary's defaults; SAM passes its parameter defaults.
    assert set(c["Environment"]["Variables"]) <= set(s["Environment"]["Variables"])
    assert s["Environment"]["Variables"]["REAPER_CLUSTERS"] == c["Environment"]["Variables"]["REAPER_CLUSTERS"]


def test_same_schedule_input_and_rate(sam, cdk):
    (s,) = of_type(sam, "AWS::Serverless::Function")
    sched = s["Events"]["Schedule"]["Properties"]
    (c,) = of_type(cdk, "AWS::Scheduler::Schedule")
    assert json.loads(sched["Input"]) == json.loads(c["Target"]["Input"])
    assert sched["ScheduleExpression"] == c["ScheduleExpression"]


def _entries(entries: list[dict]) -> list[tuple]:
    return sorted((e["ClusterName"], e["Type"], tuple(e["KubernetesGroups"]), "AccessPolicies" in e) for e in entries)


def test_same_access_entries_as_one_onboarding_stack_per_cluster(sam, cdk):
    assert of_type(sam, "AWS::EKS::AccessEntry") == [], "the reaper stack has nothing per cluster"
    t = load_template(ONBOARDING)
    onboarded = []
    for cluster in CLUSTERS.split(","):
        r = Resolver(t, {"ClusterName": cluster, "ReaperRoleArn": "arn:aws:iam::123456789012:role/eks-reaper"})
        onboarded += of_type(resources(t, r), "AWS::EKS::AccessEntry")
    assert _entries(onboarded) == _entries(of_type(cdk, "AWS::EKS::AccessEntry"))


def _one(resources: dict, type_: str) -> dict:
    (r,) = [r for r in resources.values() if r["Type"] == type_]
    return r


def test_log_group_is_retained_with_the_same_retention(sam, sam_raw, cdk):
    """The logs are the record of what was deleted: neither deployment deletes them."""
    (s_id,) = [k for k, r in sam_raw.items() if r["Type"] == "AWS::Logs::LogGroup"]
    c = _one(cdk, "AWS::Logs::LogGroup")
    for r in (sam_raw[s_id], c):
        assert (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) == ("Retain", "Retain")
    assert int(sam[s_id]["Properties"]["RetentionInDays"]) == int(c["Properties"]["RetentionInDays"])


def _scheduler_trust(resources: dict) -> list[dict]:
    roles = [r for r in resources.values() if r["Type"] == "AWS::IAM::Role"
             and "scheduler.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    assert len(roles) == 1
    return roles[0]["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def test_scheduler_role_trust_is_bound_to_this_account_and_schedule_group(sam, cdk):
    for statements in (_scheduler_trust(sam), _scheduler_trust(cdk)):
        (st,) = statements
        keys = {k for op in st["Condition"].values() for k in op}
        assert keys == {"aws:SourceAccount", "aws:SourceArn"}, st
        arn = next(op["aws:SourceArn"] for op in st["Condition"].values() if "aws:SourceArn" in op)
        assert "schedule-group/default" in (arn if isinstance(arn, str) else _flat(arn))


def _alarm_names(resources: dict, stack_name: str) -> list[str]:
    names = []
    for a in of_type(resources, "AWS::CloudWatch::Alarm"):
        name = a["AlarmName"] if isinstance(a["AlarmName"], str) else _flat(a["AlarmName"])
        assert name.startswith(stack_name + "-"), name
        names.append(name[len(stack_name) + 1:])
    return sorted(names)


def test_same_alarm_names(sam, cdk):
    """The runbook's names hold for either deployment: `<stack>-<name>`."""
    assert _alarm_names(sam, "eks-reaper") == _alarm_names(cdk, "<AWS::StackName>")


def _period(a: dict) -> int:
    if "Period" in a:
        return int(a["Period"])
    (period,) = {int(m["Period"]) for m in a["Metrics"] if "Period" in m}
    return period


def _actions(actions: list | None, resources: dict) -> tuple:
    """Alarm actions with the stack's own topic as "<topic>": SAM's resolved Ref is
    "<AlarmTopic>", CDK's a Ref to its AWS::SNS::Topic."""
    out = []
    for a in actions or []:
        ref = a["Ref"] if isinstance(a, dict) and "Ref" in a else a.strip("<>") if a.startswith("<") else None
        out.append("<topic>" if ref and resources[ref]["Type"] == "AWS::SNS::Topic" else a)
    return tuple(out)


def _alarm_key(a: dict, resources: dict) -> tuple:
    if "MetricName" in a:
        dims = tuple(d["Value"] if isinstance(d["Value"], str) and not d["Value"].startswith("<") else "fn" for d in a.get("Dimensions", []))
        what = (a["Namespace"] if a["Namespace"].startswith("AWS/") else "ns", a["MetricName"], a["Statistic"], dims)
    else:
        exprs = [m.get("Expression") or m["MetricStat"]["Metric"]["MetricName"] for m in a["Metrics"]]
        what = tuple(sorted(exprs))
    return (what, a["ComparisonOperator"], float(a["Threshold"]), _period(a), int(a["EvaluationPeriods"]),
            int(a.get("DatapointsToAlarm", a["EvaluationPeriods"])), a.get("TreatMissingData"),
            _actions(a.get("AlarmActions"), resources), _actions(a.get("OKActions"), resources))


def _alarm_keys(resources: dict) -> list[tuple]:
    return sorted(_alarm_key(a, resources) for a in of_type(resources, "AWS::CloudWatch::Alarm"))


def test_same_alarms(sam, cdk):
    """Queries, thresholds, periods, evaluation periods, missing data and actions."""
    assert _alarm_keys(sam) == _alarm_keys(cdk)
    assert {k[-2] for k in _alarm_keys(sam)} == {("<topic>",)}, "every alarm notifies the stack's topic"


def test_same_alarms_with_full_metrics(sam_full, cdk_full):
    assert _alarm_keys(sam_full) == _alarm_keys(cdk_full)


def test_same_alarm_topic_subscription(sam, cdk):
    (s,) = of_type(sam, "AWS::SNS::Topic")
    (c,) = of_type(cdk, "AWS::SNS::Subscription")
    assert s["Subscription"] == [{"Protocol": "email", "Endpoint": ALARM_EMAIL}]
    assert (c["Protocol"], c["Endpoint"]) == ("email", ALARM_EMAIL)


# --- a non-default parameter set --------------------------------------------------------


def test_the_non_default_set_deploys_as_sam_parameters():
    from template_policy import rule_failures
    assert rule_failures(CUSTOM_PARAMS) == []
    t = load_template()
    defaults = {k: str(v.get("Default")) for k, v in t["Parameters"].items()}
    assert all(defaults[k] != v for k, v in CUSTOM_PARAMS.items() if k not in PARAMS), "each one differs from its default"


def test_same_alarms_with_a_non_default_parameter_set(sam_custom, cdk_custom):
    keys = _alarm_keys(sam_custom)
    assert keys == _alarm_keys(cdk_custom)
    # An hourly period everywhere; 3 runs for the heartbeat (reports-missing too), 2 for the backlog.
    assert {k[3] for k in keys} == {3600}
    assert sorted(k[4] for k in keys if any("RunSucceeded" in q for q in k[0])) == [3, 3]
    assert [k[4] for k in keys if any("(Backlog)" in q for q in k[0])] == [2]
    assert len(keys) == 16


def _role_name(resources: dict) -> str:
    (role,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"
               and "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    return _pseudo(_flat(role["RoleName"]))


def test_same_fixed_role_name(sam, cdk, sam_custom, cdk_custom):
    """The ARN the onboarding stacks trust: eks-reaper-<region> unless named."""
    assert _role_name(sam) == _role_name(cdk) == f"eks-reaper-{REGION}"
    assert _role_name(sam_custom) == _role_name(cdk_custom) == "fleet-a-reaper"


def test_same_schedule_with_a_non_default_parameter_set(sam_custom, cdk_custom):
    (s,) = of_type(sam_custom, "AWS::Serverless::Function")
    sched = s["Events"]["Schedule"]["Properties"]
    (c,) = of_type(cdk_custom, "AWS::Scheduler::Schedule")
    assert sched["ScheduleExpression"] == c["ScheduleExpression"] == "rate(1 hour)"

    def named(clusters: list) -> list[str]:
        return [c if isinstance(c, str) else f"{c['name']}@{c['region']}" for c in clusters]

    assert named(json.loads(sched["Input"])["clusters"]) == named(json.loads(c["Target"]["Input"])["clusters"])
    (f,) = of_type(cdk_custom, "AWS::Lambda::Function")
    assert s["Environment"]["Variables"]["REAPER_CLUSTERS"] == f["Environment"]["Variables"]["REAPER_CLUSTERS"] \
        == "batch-prod,etl-dev@eu-west-1"


def test_same_regions_reached_for_a_named_cluster_in_another_region(cdk_custom):
    """SAM: tagged clusters, aws:RequestedRegion = this region + ClusterRegions. CDK: each
    named cluster's own ARN. Both reach us-east-1 (the stack's) and eu-west-1, no other."""
    def regions(statements: list[dict], flatten) -> set[str]:
        out = set()
        for st in statements:
            if "eks:DescribeCluster" not in actions_of(st):
                continue
            requested = (st.get("Condition") or {}).get("StringEquals", {}).get("aws:RequestedRegion")
            if requested:
                out |= set(requested)
            else:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                out |= {flatten(r).split(":")[3] for r in resources}
        return out

    sam_regions = regions(function_role_statements(CUSTOM_PARAMS), lambda r: r)
    assert sam_regions == regions(cdk_role_statements(cdk_custom), lambda r: _pseudo(_flat(r))) == {REGION, "eu-west-1"}


def test_same_emergency_rule_with_a_non_default_parameter_set(sam_custom, cdk_custom):
    def sam_name(ref: str) -> str:
        return sam_custom[ref.strip("<>")]["Properties"]["AlarmName"]

    def cdk_name(ref: dict) -> str:
        return _flat(cdk_custom[ref["Ref"]]["Properties"]["AlarmName"])

    ours = _emergency_rule(sam_custom, "eks-reaper", sam_name)
    assert ours == _emergency_rule(cdk_custom, "<AWS::StackName>", cdk_name)
    assert ours[3] == ["cluster-available-ips-low", "ip-exhaustion-forecast", "subnet-available-ips-low",
                       "subnet-free-percent-low"]
    assert ours[4]["MaximumEventAgeInSeconds"] == 3600


def test_same_metrics_detail(sam, cdk, sam_full, cdk_full):
    def detail(res: dict, type_: str) -> str:
        (f,) = of_type(res, type_)
        return f["Environment"]["Variables"]["REAPER_METRICS_DETAIL"]

    assert detail(sam, "AWS::Serverless::Function") == detail(cdk, "AWS::Lambda::Function") == "essential"
    assert detail(sam_full, "AWS::Serverless::Function") == detail(cdk_full, "AWS::Lambda::Function") == "full"


def _dashboard_titles_and_queries(body: str) -> tuple[list, list]:
    d = json.loads(body)
    titles = sorted(w["properties"]["title"] for w in d["widgets"])
    queries = sorted(m[0]["expression"] for w in d["widgets"] for m in w["properties"]["metrics"]
                     if isinstance(m[0], dict) and "expression" in m[0])
    return titles, queries


def _flat(v) -> str:
    """CDK's Fn::Join of literals and Refs, as text (Refs become placeholders)."""
    if isinstance(v, str):
        return v
    if "Fn::Join" in v:
        return v["Fn::Join"][0].join(_flat(x) for x in v["Fn::Join"][1])
    if "Ref" in v and v["Ref"].startswith("AWS::"):
        return f"<{v['Ref']}>"
    return "<ref>"


def test_same_dashboard_widgets_and_queries(sam, cdk):
    (s,) = of_type(sam, "AWS::CloudWatch::Dashboard")
    (c,) = of_type(cdk, "AWS::CloudWatch::Dashboard")
    assert _dashboard_titles_and_queries(s["DashboardBody"]) == _dashboard_titles_and_queries(_flat(c["DashboardBody"]))


def test_same_dashboard_widgets_and_queries_with_full_metrics(sam_full, cdk_full):
    (s,) = of_type(sam_full, "AWS::CloudWatch::Dashboard")
    (c,) = of_type(cdk_full, "AWS::CloudWatch::Dashboard")
    titles, queries = _dashboard_titles_and_queries(s["DashboardBody"])
    assert len(titles) == 10 and any("SubnetAvailableIps" in q for q in queries)
    assert (titles, queries) == _dashboard_titles_and_queries(_flat(c["DashboardBody"]))


def _stuck_alarm(resources: dict) -> dict:
    (a,) = [a for a in of_type(resources, "AWS::CloudWatch::Alarm")
            if any("(StuckObjects)" in m.get("Expression", "") for m in a.get("Metrics", []))]
    return a


def test_stuck_objects_alarm_names_the_setting_and_points_at_the_runbook(sam, cdk):
    """Both stacks' objects-stuck-terminating alarm says after how long, and where the
    runbook section is; SAM passes StuckAfter to the function, CDK only when set."""
    (s,) = of_type(sam, "AWS::Serverless::Function")
    assert s["Environment"]["Variables"]["REAPER_STUCK_AFTER"] == "10m"
    (c,) = of_type(cdk, "AWS::Lambda::Function")
    assert "REAPER_STUCK_AFTER" not in c["Environment"]["Variables"], "CDK leaves it to the binary's default"
    for alarm in (_stuck_alarm(sam), _stuck_alarm(cdk)):
        text = alarm["AlarmDescription"] if isinstance(alarm["AlarmDescription"], str) else _flat(alarm["AlarmDescription"])
        assert "longer than 10m" in text, text
        assert "docs/runbook.md#stuck-objects" in text, text
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    assert "## Stuck objects" in runbook.splitlines(), "the anchor #stuck-objects"


def _emergency_rule(resources: dict, stack_name: str, alarm_name) -> tuple:
    (rule,) = of_type(resources, "AWS::Events::Rule")
    pattern = rule["EventPattern"]
    names = sorted(alarm_name(n)[len(stack_name) + 1:] for n in pattern["detail"]["alarmName"])
    (target,) = rule["Targets"]
    retry = {k: int(v) for k, v in target["RetryPolicy"].items()}
    return pattern["source"], pattern["detail-type"], pattern["detail"]["state"], names, retry


def test_same_emergency_rule(sam, cdk):
    """The same alarms start an emergency run, with the same retries."""
    def sam_name(ref: str) -> str:
        return sam[ref.strip("<>")]["Properties"]["AlarmName"]

    def cdk_name(ref: dict) -> str:
        return _flat(cdk[ref["Ref"]]["Properties"]["AlarmName"])

    ours = _emergency_rule(sam, "eks-reaper", sam_name)
    assert ours == _emergency_rule(cdk, "<AWS::StackName>", cdk_name)
    assert ours[3] == ["ip-exhaustion-forecast", "subnet-free-percent-low"]
    (perm,) = of_type(sam, "AWS::Lambda::Permission")
    assert (perm["Principal"], perm["SourceArn"]) == ("events.amazonaws.com", "<EmergencyRule.Arn>")


def test_sam_queue_records_runs_that_did_not_happen():
    """With the queue: the function's on-failure destination, the rule's dead letters."""
    params = {**PARAMS, "UseDeadLetterQueue": "true"}
    t = load_template()
    res = resources(t, Resolver(t, params))
    config = res["ReaperInvokeConfig"]["Properties"]
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": "<ScheduleDeadLetterQueue.Arn>"}}
    assert config["MaximumRetryAttempts"] == 0
    grants = [s for s in function_role_statements(params) if "sqs:SendMessage" in actions_of(s)]
    assert [s["Resource"] for s in grants] == ["<ScheduleDeadLetterQueue.Arn>"]
    (rule,) = of_type(res, "AWS::Events::Rule")
    assert rule["Targets"][0]["DeadLetterConfig"] == {"Arn": "<ScheduleDeadLetterQueue.Arn>"}
    (policy,) = of_type(res, "AWS::SQS::QueuePolicy")
    (st,) = policy["PolicyDocument"]["Statement"]
    assert st["Principal"] == {"Service": "events.amazonaws.com"}
    assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": "<EmergencyRule.Arn>"}}
    without = resources(t, Resolver(t, PARAMS))
    assert "DestinationConfig" not in without["ReaperInvokeConfig"]["Properties"]
    assert of_type(without, "AWS::SQS::QueuePolicy") == []


# ---- fan-out through the run queue ------------------------------------------------------

CDK_FANOUT_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_FANOUT_TEMPLATE",
                                          CACHE / "cdk.out-fanout" / "EksReaper.template.json"))
# scripts/check-deploy synthesizes with -c fanOut=true -c fanOutParallelism=25.
FANOUT_PARAMS = {**PARAMS, "FanOut": "true", "FanOutParallelism": "25"}
FANOUT_SIDS = {"PlanRunsOntoTheQueue", "ConsumeRunQueue", "ReadWhichClustersReported"}


@pytest.fixture(scope="module")
def sam_fanout() -> dict:
    t = load_template()
    return resources(t, Resolver(t, FANOUT_PARAMS))


@pytest.fixture(scope="module")
def cdk_fanout() -> dict:
    return _synthesized(CDK_FANOUT_TEMPLATE)


def function(res: dict) -> dict:
    (fn,) = of_type(res, "AWS::Serverless::Function") or of_type(res, "AWS::Lambda::Function")
    return fn


def queues(res: dict) -> tuple[dict, dict]:
    """(run queue, dead-letter queue): the FIFO queue with a redrive policy, and the other."""
    fifo = [p for p in of_type(res, "AWS::SQS::Queue") if p.get("FifoQueue") in (True, "true")]
    run = [p for p in fifo if "RedrivePolicy" in p]
    dead = [p for p in fifo if "RedrivePolicy" not in p]
    assert len(run) == 1 and len(dead) == 1, fifo
    return run[0], dead[0]


def test_fanout_is_off_by_default(sam, cdk):
    for res in (sam, cdk):
        assert not of_type(res, "AWS::Lambda::EventSourceMapping")
        fn = function(res)
        assert fn["ReservedConcurrentExecutions"] == 1
        assert not {"REAPER_QUEUE_URL", "REAPER_SCHEDULE_INTERVAL"} & set(fn["Environment"]["Variables"])
    assert not FANOUT_SIDS & {s.get("Sid") for s in function_role_statements(PARAMS)}
    assert not FANOUT_SIDS & {s.get("Sid") for s in cdk_role_statements(cdk)}


def test_same_alarms_and_not_reported_window_with_fanout(sam, sam_fanout, cdk_fanout):
    """The fan-out adds the planner's clusters-not-reported alarm, and the settings its
    check reads: the schedule's interval and the heartbeat's run count."""
    assert _alarm_keys(sam_fanout) == _alarm_keys(cdk_fanout)
    assert len(_alarm_keys(sam_fanout)) == len(_alarm_keys(sam)) + 1
    for res in (sam_fanout, cdk_fanout):
        env = function(res)["Environment"]["Variables"]
        assert (env["REAPER_SCHEDULE_INTERVAL"], env["REAPER_NOT_REPORTED_RUNS"]) == ("300s", "4"), env
        (alarm,) = [a for a in of_type(res, "AWS::CloudWatch::Alarm") if a.get("MetricName") == "ClustersNotReported"]
        assert (alarm["Statistic"], int(alarm["Period"]), alarm["TreatMissingData"]) == ("Maximum", 300, "notBreaching")


def test_same_run_queue_and_mapping_with_fanout(sam_fanout, cdk_fanout):
    seen = []
    for res in (sam_fanout, cdk_fanout):
        run, dead = queues(res)
        (mapping,) = of_type(res, "AWS::Lambda::EventSourceMapping")
        fn = function(res)
        assert "ReservedConcurrentExecutions" not in fn, "FIFO groups keep one run per cluster"
        assert "REAPER_QUEUE_URL" in fn["Environment"]["Variables"]
        assert int(run["VisibilityTimeout"]) >= int(fn["Timeout"]), "Lambda requires it"
        seen.append({
            "visibility": int(run["VisibilityTimeout"]) - int(fn["Timeout"]),
            "retention": int(run["MessageRetentionPeriod"]),
            "maxReceiveCount": int(run["RedrivePolicy"]["maxReceiveCount"]),
            "deadRetention": int(dead["MessageRetentionPeriod"]),
            "batch": int(mapping["BatchSize"]),
            "responses": mapping["FunctionResponseTypes"],
            "concurrency": int(mapping["ScalingConfig"]["MaximumConcurrency"]),
        })
    assert seen[0] == seen[1]
    assert seen[0]["batch"] == 1 and seen[0]["concurrency"] == 25
    assert seen[0]["responses"] == ["ReportBatchItemFailures"]


def test_same_queue_statements_with_fanout(cdk_fanout):
    def by_sid(statements):
        return {s["Sid"]: sorted(actions_of(s)) for s in statements if s.get("Sid") in FANOUT_SIDS}
    sam_sids = by_sid(function_role_statements(FANOUT_PARAMS))
    assert sam_sids == by_sid(cdk_role_statements(cdk_fanout))
    assert sam_sids == {
        "PlanRunsOntoTheQueue": ["sqs:SendMessage"],
        "ReadWhichClustersReported": ["cloudwatch:GetMetricData"],
        "ConsumeRunQueue": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                            "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
    }
