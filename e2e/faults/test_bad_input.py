"""Bad input: every invalid setting or event stops the run before anything is deleted, with
an error naming the setting (or event field) and the bad value, and the right failure
signal: CLI exit 2 for invalid configuration, exit 1 when a cluster could not be
processed; a failed Lambda invocation (errorType) for both.

One namespace seeded with due objects serves the whole module: a run that deleted
anything would show there.
"""

from __future__ import annotations

import pytest

from testbed.workload import delete_namespace

from . import faultlib as fl
from .faultlib import assert_nothing_deleted


@pytest.fixture(scope="module")
def seeded(kube, reaper_bin):
    ns = f"faults-bad-input-{fl.secrets.token_hex(2)}"
    s = fl.seed(kube, ns, due_jobs=10, due_pods=2)
    yield s
    delete_namespace(kube, ns)


# (extra args, extra env, setting named in the error, bad value quoted in the error)
CLI_CASES = {
    "unparsable duration": (["--succeeded-job-ttl", "fortnight"], {},
                            "REAPER_SUCCEEDED_JOB_TTL", "fortnight"),
    "negative duration": ([], {"REAPER_FAILED_JOB_TTL": "-5m"}, "REAPER_FAILED_JOB_TTL", "-5m"),
    "duration without unit": (["--deadline-margin", "30"], {}, "REAPER_DEADLINE_MARGIN", "30"),
    "zero concurrency": (["--concurrency", "0"], {}, "REAPER_CONCURRENCY", "0"),
    "negative concurrency": (["--concurrency", "-4"], {}, "REAPER_CONCURRENCY", "-4"),
    "negative concurrency from env": ([], {"REAPER_CONCURRENCY": "-1"}, "REAPER_CONCURRENCY", "-1"),
    "zero cluster concurrency": (["--cluster-concurrency", "0"], {},
                                 "REAPER_CLUSTER_CONCURRENCY", "0"),
    "zero page size": (["--page-size", "0"], {}, "REAPER_PAGE_SIZE", "0"),
    "unknown dry-run mode": (["--dry-run", "maybe"], {}, "REAPER_DRY_RUN", "maybe"),
    "fraction above one": (["--low-headroom-fraction", "1.5"], {},
                           "REAPER_LOW_HEADROOM_FRACTION", "1.5"),
    "unknown metrics sink": (["--metrics-sink", "statsd"], {}, "REAPER_METRICS_SINK", "statsd"),
}


@pytest.mark.parametrize("case", CLI_CASES, ids=list(CLI_CASES))
def test_invalid_setting_stops_the_cli_before_anything_is_deleted(env, kube, seeded, case):
    args, extra_env, field, value = CLI_CASES[case]
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], seeded.namespace, *args),
                     extra_env, json_logs=False)
    assert run.rc == 2, run.describe()
    err = fl.ANSI.sub("", run.stderr)
    assert field in err and f'"{value}"' in err, (
        f"error must name {field} and the value {value!r}:\n{run.describe()}")
    assert "invalid configuration" in err
    assert run.report is None, "no report: nothing was run"
    assert_nothing_deleted(kube, seeded)


def test_empty_cluster_list_is_an_error_naming_the_setting(env, kube, seeded):
    run = fl.run_cli(env, ["run", "--namespaces", seeded.namespace, "--output", "json"],
                     {"REAPER_CLUSTERS": ""}, json_logs=False)
    assert run.rc == 2, run.describe()
    assert "REAPER_CLUSTERS" in run.stderr and "no cluster" in run.stderr, run.describe()
    assert_nothing_deleted(kube, seeded)


def test_unknown_cluster_fails_the_cli_run_naming_the_cluster(env, kube, seeded):
    run = fl.run_cli(env, fl.cli_args("no-such-cluster", seeded.namespace))
    assert run.rc == 1, run.describe()
    c = run.cluster
    assert c["status"] == "failed" and c["errorKind"] == "ClusterNotFound", c
    assert "no-such-cluster" in c["error"]
    assert run.report["status"] == "failed"
    assert fl.find_logs(run.logs, "cannot connect to the cluster", "WARN"), run.describe()
    assert_nothing_deleted(kube, seeded)


# ---- the Lambda entry point --------------------------------------------------------------

@pytest.fixture(scope="module")
def lambda_fn(env, seeded):
    """One emulator for the module; settings from the environment as in production."""
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": seeded.namespace}) as fn:
        yield fn


# (event, errorType, texts the errorMessage must contain: the field and the value)
EVENT_CASES = {
    "malformed JSON": ('{"clusters": [', None, ["clusters", "EOF"]),
    "not an object": ('["etl"]', "ConfigError", ["event", 'etl', "JSON object"]),
    "unknown top-level field": ({"cluster": ["etl"]}, "ConfigError", ["event.cluster"]),
    "unknown field in a cluster entry": ({"clusters": [{"name": "etl", "role": "x"}]},
                                         "ConfigError", ["event.clusters[0].role"]),
    "unknown field in a classic envelope": (
        {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"dry_run": True}},
        "ConfigError", ["event.detail.dry_run"]),
    "wrong type": ({"dryRun": 3}, "ConfigError", ["event.dryRun", "3"]),
    "unknown dry-run mode": ({"dryRun": "maybe"}, "ConfigError", ["event.dryRun", "maybe"]),
    "empty cluster list": ({"clusters": []}, "ConfigError", ["event.clusters", "empty"]),
    "cluster entry without a name": ({"clusters": [{"region": "us-east-1"}]}, "ConfigError",
                                     ["event.clusters[0].name"]),
    "unknown cluster": ({"clusters": ["no-such-cluster"]}, "ClusterFailed.ClusterNotFound",
                        ["no-such-cluster", "ResourceNotFoundException"]),
}


@pytest.mark.parametrize("case", EVENT_CASES, ids=list(EVENT_CASES))
def test_bad_event_fails_the_invocation_before_anything_is_deleted(kube, seeded, lambda_fn,
                                                                   case):
    event, error_type, texts = EVENT_CASES[case]
    inv = lambda_fn.invoke(event)
    assert inv.failed, f"invocation must fail: {inv.body[:2000]}"
    if error_type:
        assert inv.json["errorType"] == error_type, inv.json
    for text in texts:
        assert text in inv.json["errorMessage"], (text, inv.json)
    assert_nothing_deleted(kube, seeded)


def test_invalid_environment_fails_every_invocation_naming_the_setting(env, kube, seeded):
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": seeded.namespace,
                            "REAPER_CONCURRENCY": "0"}) as fn:
        inv = fn.invoke({})
        assert inv.failed and inv.json["errorType"] == "ConfigError", inv.body
        assert "REAPER_CONCURRENCY" in inv.json["errorMessage"]
        assert '"0"' in inv.json["errorMessage"]
        assert "invalid configuration; nothing done" in fn.output()
    assert_nothing_deleted(kube, seeded)


def test_valid_event_after_bad_ones_still_prunes(kube, seeded, lambda_fn):
    """The control: the same function, given a valid event, does delete the due objects,
    so the cases above prove the input stopped the run, not something else."""
    inv = lambda_fn.invoke({"clusters": ["etl"]})
    assert not inv.failed, inv.body[:2000]
    c = inv.json["clusters"][0]
    o = fl.assert_nothing_wrong_deleted(kube, seeded)
    fl.assert_counts_match(c, o)
    assert o.due_left == 0, c
