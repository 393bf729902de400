"""template.yaml (SAM) and the CDK app deploy the same thing.

Compares template.yaml, resolved for clusters batch-prod and etl-dev, with the template
`scripts/check-deploy` synthesizes from infra/ for the same clusters
($EKS_REAPER_CACHE/cdk.out/EksReaper.template.json; a missing synth output is a failure:
run scripts/check-deploy).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from template_policy import Resolver, actions_of, expand_foreach, function_role_statements, load_template

CACHE = Path(os.environ.get("EKS_REAPER_CACHE", Path.home() / ".cache" / "eks-reaper"))
CDK_TEMPLATE = Path(os.environ.get("EKS_REAPER_CDK_TEMPLATE", CACHE / "cdk.out" / "EksReaper.template.json"))
CLUSTERS = "batch-prod,etl-dev"


@pytest.fixture(scope="module")
def sam() -> dict:
    t = load_template()
    r = Resolver(t, {"ClusterNames": CLUSTERS})
    resources = {}
    for k, v in expand_foreach(t, r).items():
        if "Condition" in v and not r.condition(v["Condition"]):
            continue
        resources[k] = {**v, "Properties": r.value(v.get("Properties", {}))}
    return resources


@pytest.fixture(scope="module")
def cdk() -> dict:
    if not CDK_TEMPLATE.exists():
        pytest.fail(f"no CDK synth output at {CDK_TEMPLATE}: run scripts/check-deploy")
    return json.loads(CDK_TEMPLATE.read_text())["Resources"]


def of_type(resources: dict, type_: str) -> list[dict]:
    return [r["Properties"] for r in resources.values() if r["Type"] == type_]


def cdk_role_actions(cdk: dict) -> set[str]:
    roles = [k for k, r in cdk.items() if r["Type"] == "AWS::IAM::Role"
             and "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    assert len(roles) == 1
    acts = set()
    for r in cdk.values():
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": roles[0]} in r["Properties"]["Roles"]:
            for s in r["Properties"]["PolicyDocument"]["Statement"]:
                acts |= set(actions_of(s))
    return acts


def test_same_function_role_actions(cdk):
    sam_actions = {a for s in function_role_statements({"ClusterNames": CLUSTERS}) for a in actions_of(s)}
    assert cdk_role_actions(cdk) == sam_actions


def test_same_function_settings(sam, cdk):
    keys = ["Runtime", "Architectures", "Handler", "MemorySize", "Timeout", "ReservedConcurrentExecutions"]
    (s,) = of_type(sam, "AWS::Serverless::Function")
    (c,) = of_type(cdk, "AWS::Lambda::Function")
    assert {k: s[k] for k in keys} == {k: c[k] for k in keys}
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


def test_same_access_entries(sam, cdk):
    def entries(res):
        return sorted((e["ClusterName"], e["Type"], tuple(e["KubernetesGroups"]), "AccessPolicies" in e)
                      for e in of_type(res, "AWS::EKS::AccessEntry"))
    assert entries(sam) == entries(cdk)


def _alarm_key(a: dict) -> tuple:
    if "MetricName" in a:
        dims = tuple(d["Value"] if isinstance(d["Value"], str) and not d["Value"].startswith("<") else "fn" for d in a.get("Dimensions", []))
        what = (a["Namespace"] if a["Namespace"].startswith("AWS/") else "ns", a["MetricName"], a["Statistic"], dims)
    else:
        exprs = [m.get("Expression") or m["MetricStat"]["Metric"]["MetricName"] for m in a["Metrics"]]
        what = tuple(sorted(exprs))
    return (what, a["ComparisonOperator"], float(a["Threshold"]), int(a["EvaluationPeriods"]),
            int(a.get("DatapointsToAlarm", a["EvaluationPeriods"])), a.get("TreatMissingData"))


def test_same_alarms(sam, cdk):
    assert sorted(map(_alarm_key, of_type(sam, "AWS::CloudWatch::Alarm"))) == \
        sorted(map(_alarm_key, of_type(cdk, "AWS::CloudWatch::Alarm")))


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
    return "<ref>"


def test_same_dashboard_widgets_and_queries(sam, cdk):
    (s,) = of_type(sam, "AWS::CloudWatch::Dashboard")
    (c,) = of_type(cdk, "AWS::CloudWatch::Dashboard")
    assert _dashboard_titles_and_queries(s["DashboardBody"]) == _dashboard_titles_and_queries(_flat(c["DashboardBody"]))
