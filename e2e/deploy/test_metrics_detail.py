"""template.yaml's MetricsDetail: what an essential stack alarms on and shows.

The essential metric set is read from the binary's own list (src/metrics/detail.rs,
`ESSENTIAL`), so a template alarm or widget on a metric the binary does not publish in
essential mode fails here, and so does a metric dropped from the list that an alarm reads.
"""

from __future__ import annotations

import json
import re

import pytest

from template_policy import ROOT, Resolver, load_template, resources, rule_failures

NOTIFIED = {"ClusterNames": "etl", "AlarmEmail": "oncall@example.com"}
QUERY = re.compile(r'SELECT [A-Z]+\((\w+)\) FROM SCHEMA\("([^"]+)"')


def essential_metrics() -> set[str]:
    """The names in src/metrics/detail.rs's ESSENTIAL array."""
    source = (ROOT / "src" / "metrics" / "detail.rs").read_text()
    block = re.search(r"pub const ESSENTIAL: \[Metric; (\d+)\] = \[(.*?)\];", source, re.S)
    assert block, "ESSENTIAL not found in src/metrics/detail.rs"
    names = set(re.findall(r"Metric::(\w+),", block.group(2)))
    assert len(names) == int(block.group(1))
    return names


def sent_when_non_zero() -> set[str]:
    """The names in src/metrics/detail.rs's SENT_WHEN_NON_ZERO array: the counters essential
    leaves out while they are 0."""
    source = (ROOT / "src" / "metrics" / "detail.rs").read_text()
    block = re.search(r"pub const SENT_WHEN_NON_ZERO: \[Metric; (\d+)\] =\s*\[(.*?)\];", source, re.S)
    assert block, "SENT_WHEN_NON_ZERO not found in src/metrics/detail.rs"
    names = set(re.findall(r"Metric::(\w+)", block.group(2)))
    assert len(names) == int(block.group(1))
    return names


def stack(**params: str) -> dict:
    t = load_template()
    return resources(t, Resolver(t, {**NOTIFIED, **params}))


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        node = list(node.values())
    return [s for n in node for s in strings(n)] if isinstance(node, list) else []


def reaper_metrics_read(node, namespace: str = "EKSReaper") -> set[str]:
    """Metric names in the reaper's namespace that Metrics Insights queries in `node` read."""
    return {name for text in strings(node) for name, ns in QUERY.findall(text) if ns == namespace}


def alarms(res: dict) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def dashboard(res: dict) -> dict:
    (d,) = [r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    return json.loads(d["DashboardBody"])


def test_essential_is_the_default_and_reaches_the_function():
    assert load_template()["Parameters"]["MetricsDetail"]["Default"] == "essential"
    for detail in ("essential", "full"):
        env = stack(MetricsDetail=detail)["ReaperFunction"]["Properties"]["Environment"]["Variables"]
        assert env["REAPER_METRICS_DETAIL"] == detail


@pytest.mark.parametrize("params", [{}, {"EmergencyRuns": "false"}, {"MetricsSink": "emf"}])
def test_every_alarm_of_an_essential_stack_reads_essential_metrics(params):
    res = stack(MetricsDetail="essential", **params)
    read = {k: reaper_metrics_read(a) for k, a in alarms(res).items()}
    on_reaper_metrics = {k for k, names in read.items() if names}
    assert len(on_reaper_metrics) == 9, read
    dropped = {k: names - essential_metrics() for k, names in read.items() if names - essential_metrics()}
    assert dropped == {}
    # Every alarm on our namespace is a Metrics Insights query: a MetricName alarm would escape the check.
    assert all(a["Namespace"].startswith("AWS/") for a in alarms(res).values() if "MetricName" in a)


@pytest.mark.parametrize("detail", ["essential", "full"])
def test_alarms_on_counters_left_out_at_zero_treat_missing_data_as_not_breaching(detail):
    """A counter essential does not send while it is 0 is missing data in a healthy period:
    its alarm must fire on a value above 0 only, and read a missing period as OK."""
    quiet = sent_when_non_zero()
    assert quiet == {"Backlog", "DeleteErrors", "Throttled", "StuckObjects"}
    on_quiet = {k: a for k, a in alarms(stack(MetricsDetail=detail)).items()
                if reaper_metrics_read(a) & quiet}
    assert {n for a in on_quiet.values() for n in reaper_metrics_read(a)} == quiet, on_quiet.keys()
    for name, a in on_quiet.items():
        assert reaper_metrics_read(a) <= quiet, name
        assert a["TreatMissingData"] == "notBreaching", name
        assert (a["ComparisonOperator"], float(a["Threshold"])) == ("GreaterThanThreshold", 0.0), name


def test_the_heartbeat_is_sent_every_run_and_its_alarms_catch_a_function_that_stopped():
    assert "RunSucceeded" in essential_metrics() - sent_when_non_zero()
    heartbeat = {k: a for k, a in alarms(stack(MetricsDetail="essential")).items()
                 if reaper_metrics_read(a) == {"RunSucceeded"}}
    assert set(heartbeat) == {"HeartbeatAlarm", "ReportsMissingAlarm"}, heartbeat.keys()
    assert {a["TreatMissingData"] for a in heartbeat.values()} == {"breaching"}


def test_deletions_are_one_count_in_essential_and_the_split_in_full():
    def deletions(detail: str) -> set[str]:
        (w,) = [w for w in dashboard(stack(MetricsDetail=detail))["widgets"]
                if w["properties"]["title"] == "Deletions per run"]
        return reaper_metrics_read(w)

    assert deletions("essential") == {"ObjectsDeleted"}
    assert deletions("full") == {"JobsDeleted", "PodsDeleted", "FargatePodsDeleted"}


def test_every_widget_of_an_essential_stack_reads_essential_metrics_and_none_is_empty():
    body = dashboard(stack(MetricsDetail="essential"))
    assert reaper_metrics_read(body) <= essential_metrics()
    for w in body["widgets"]:
        assert w["properties"]["metrics"], w["properties"]["title"]
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert "Free IPs per subnet" not in titles
    assert "Terminated pods and Fargate pods holding IPs" not in titles
    assert len(titles) == 8


def test_the_essential_set_covers_what_the_core_widgets_show():
    """IPs, forecast, subnets read, heartbeat, deletions, errors, backlog, stuck objects."""
    body = dashboard(stack(MetricsDetail="essential"))
    assert reaper_metrics_read(body) == essential_metrics()


def test_full_shows_every_widget_and_the_per_subnet_ips():
    body = dashboard(stack(MetricsDetail="full"))
    assert len(body["widgets"]) == 10
    assert {"SubnetAvailableIps", "FargatePodsHoldingIps", "RunDuration", "LowHeadroomMode",
            "StuckFargatePods"} <= reaper_metrics_read(body)


def test_absolute_ip_alarms_need_full_detail():
    failures = rule_failures({**NOTIFIED, "AbsoluteIpAlarms": "true"})
    assert len(failures) == 1 and failures[0].startswith("AbsoluteIpAlarms=true needs MetricsDetail=full"), failures
    assert rule_failures({**NOTIFIED, "AbsoluteIpAlarms": "true", "MetricsDetail": "full"}) == []
    full = alarms(stack(MetricsDetail="full", AbsoluteIpAlarms="true"))
    assert {"ClusterIpsLowAlarm", "SubnetIpsLowAlarm"} <= set(full)
    # Even if the rule were bypassed, an essential stack never holds them.
    assert not {"ClusterIpsLowAlarm", "SubnetIpsLowAlarm"} & set(alarms(stack(AbsoluteIpAlarms="true")))
