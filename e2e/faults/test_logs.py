"""Logs an on-call can query: with JSON logs (as in Lambda) the run's summary line carries
the report as a JSON object, not an escaped string, so CloudWatch Logs Insights filters on
its fields (`fields.report.clusters.0.status`, `fields.totals.jobsDeleted`); with text
logs the line gives the totals only (the CLI prints the report itself)."""

from __future__ import annotations

from . import faultlib as fl


def summary_lines(logs: list[dict]) -> list[dict]:
    return [e for e in logs if fl.log_message(e) == "eks-reaper run summary"]


def test_json_summary_line_nests_the_report_and_its_totals(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=4, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace))
    fl.assert_nothing_wrong_deleted(kube, s)
    assert run.rc == 0, run.describe()
    lines = summary_lines(run.logs)
    assert len(lines) == 1, run.tail()
    fields = lines[0]["fields"]
    assert fields["report"] == run.report, "the logged report is the printed one, as an object"
    c = run.report["clusters"][0]
    assert fields["totals"]["jobsDeleted"] == c["jobs"]["deleted"] == 4, fields["totals"]
    assert fields["totals"]["podsDeleted"] == c["pods"]["deleted"], fields["totals"]
    assert fields["totals"]["status"] == "ok" and fields["totals"]["dryRun"] == "off"
    assert lines[0]["level"] == "INFO"


def test_text_summary_line_gives_the_totals_only(env, kube, namespace):
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), json_logs=False)
    assert run.rc == 0, run.describe()
    line = [l for l in run.stderr.splitlines() if "eks-reaper run summary" in l]
    assert len(line) == 1, run.describe()
    assert "jobs_deleted=0" in fl.ANSI.sub("", line[0]), line[0]
    assert "report=" not in line[0], line[0]
