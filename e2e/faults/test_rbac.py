"""RBAC faults, with the real RBAC authorizer: an identity that may list but not delete,
one that may not even list, one with the RBAC of a release that did not read namespaces,
and one that may not create Events.

Each such identity is a second access entry (its own IAM key, user and group in the
authenticator's table) bound to a ClusterRole of the test's own rules (the list-only one:
`list` on jobs, pods and namespaces), so the shipped `eks-reaper` entry and role stay
untouched for the other tests.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Iterator

from . import faultlib as fl
from .faultlib import assert_nothing_deleted, assert_nothing_wrong_deleted

RBAC = "rbac.authorization.k8s.io/v1"


LIST_ONLY = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
             {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]
# infra/rbac/eks-reaper-rbac.yaml before namespace annotations: no namespaces, no events.
JOBS_AND_PODS = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "delete"]},
                 {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]
NO_EVENTS = [*JOBS_AND_PODS, {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]


@contextlib.contextmanager
def list_only_identity(env, kube) -> Iterator[dict[str, str]]:
    """A fresh IAM identity whose only rights are list on batch/jobs, core/pods and
    core/namespaces (the namespaces' annotations)."""
    with identity_with(env, kube, "list-only", LIST_ONLY) as creds:
        yield creds


@contextlib.contextmanager
def identity_with(env, kube, role: str, rules: list[dict],
                  suffix: str | None = None) -> Iterator[dict[str, str]]:
    """A fresh IAM identity mapped to user/group `faults-<role>-<suffix>` (a random suffix
    unless given), bound to a ClusterRole with exactly `rules`. Yields the environment the
    reaper needs to act as it."""
    suffix = suffix or secrets.token_hex(3)
    name = f"faults-{role}-{suffix}"
    key = f"AKIAFAULTS{suffix.upper()}00"
    secret = secrets.token_urlsafe(30)
    arn = f"arn:aws:iam::{env['TESTBED_ACCOUNT_ID']}:role/{name}"
    kube.create(RBAC, "clusterroles", {
        "apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
        "rules": rules})
    kube.create(RBAC, "clusterrolebindings", {
        "apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": name}]})
    try:
        with fl.access_entries(env) as table:
            table["identities"][key] = {"secretAccessKey": secret, "arn": arn,
                                        "userId": f"AROAFAULTS{suffix.upper()}"}
            table["accessEntries"][arn] = {"username": name, "groups": [name]}
            fl.commit_access_entries(env, table)
            yield {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    finally:
        fl.delete_quietly(kube, RBAC, "clusterrolebindings", name)
        fl.delete_quietly(kube, RBAC, "clusterroles", name)


def norbac(env) -> dict[str, str]:
    """The testbed's authenticated identity without any group: RBAC forbids everything."""
    return {"AWS_ACCESS_KEY_ID": env["TESTBED_NORBAC_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": env["TESTBED_NORBAC_SECRET_ACCESS_KEY"]}


def test_delete_forbidden_is_counted_once_per_object_without_retry_storm(env, kube, namespace):
    # GIVEN 20 due Jobs and 3 due bare pods, and an identity that may list but not delete
    s = fl.seed(kube, namespace, due_jobs=20, due_pods=3)
    due = len(s.due_jobs) + len(s.due_pods)
    with list_only_identity(env, kube) as creds:
        # WHEN the reaper runs as that identity
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), creds)
    # THEN nothing is deleted, every due object is one `forbidden` error, each DELETE was
    # sent once (no retries on 403), and each refusal is logged once with its status
    assert_nothing_deleted(kube, s)
    c = run.cluster
    assert c["jobs"]["deleted"] == 0 and c["pods"]["deleted"] == 0, c
    assert c["errors"] == {"forbidden": due}, c["errors"]
    assert c["listingComplete"] and c["backlog"] == 0
    # one page each: namespaces, jobs, unfinished Fargate pods (metadata), finished Fargate
    # pods, other finished pods
    lists = 5
    assert c["requests"] == lists + due, f"{c['requests']} requests for {due} refused deletes"
    refused = fl.find_logs(run.logs, "delete refused", "WARN")
    refused += [e for e in fl.find_logs(run.logs, "forbidden", "WARN")
                if e not in refused and e["fields"].get("status") == 403]
    assert len(refused) == due, run.tail()
    assert all(e["fields"].get("status") == 403 for e in refused), refused[:2]


def test_delete_forbidden_gives_a_failed_run_signal(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=3, due_pods=1, keep=False)
    with list_only_identity(env, kube) as creds:
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), creds)
        with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                                "REAPER_NAMESPACES": namespace, **creds}) as fn:
            inv = fn.invoke({})
    assert_nothing_deleted(kube, s)
    fl.safe(run.cluster["errors"].get("forbidden") == 4, run.describe())
    assert run.rc == 1, f"CLI must signal the failed run:\n{run.describe()}"
    c = run.cluster
    assert c["status"] == "failed" and c["errorKind"] == "DeleteForbidden", c
    assert fl.find_logs(run.logs, "deletions refused", "WARN"), run.tail()
    assert inv.failed and inv.json["errorType"] == "ClusterFailed.DeleteForbidden", inv.body


def test_list_forbidden_fails_the_run_naming_the_permission(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), norbac(env))
    assert_nothing_deleted(kube, s)
    assert run.rc == 1, run.describe()
    c = run.cluster
    assert c["status"] == "failed" and c["errorKind"] == "Forbidden", c
    # The apiserver's own words: user, verb, resource, group, namespace.
    for text in ("list", '"jobs"', '"batch"', env["TESTBED_NORBAC_USERNAME"]):
        assert text in c["error"], (text, c["error"])
    # the namespaces list and the Jobs list, each refused once: a 403 on list is not retried
    assert c["requests"] == 2, c
    warn = fl.find_logs(run.logs, "listing failed", "WARN")
    assert warn and "list" in warn[0]["fields"]["error"], run.tail()
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": namespace, **norbac(env)}) as fn:
        inv = fn.invoke({})
    assert inv.failed and inv.json["errorType"] == "ClusterFailed.Forbidden", inv.body
    assert "cannot list" in inv.json["errorMessage"], inv.json
    assert_nothing_deleted(kube, s)


def json_keys_repeated(line: str) -> list[str]:
    """Keys that appear twice in one JSON object of the line (json.loads would silently
    keep the last)."""
    import json

    repeated: list[str] = []

    def hook(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                repeated.append(k)
            seen.add(k)
        return dict(pairs)

    json.loads(line, object_pairs_hook=hook)
    return repeated


def test_json_log_lines_keep_their_constant_message(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=1, due_pods=0, keep=False)
    with list_only_identity(env, kube) as creds:
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), creds)
    assert_nothing_deleted(kube, s)
    # The run's summary line carries the report, whose errorSamples quote the refusal too.
    lines = [l for l in run.stderr.splitlines()
             if "is forbidden" in l and "eks-reaper run summary" not in l]
    fl.require(len(lines) == 1, f"expected one refusal line:\n{run.tail()}")
    assert fl.log_message(fl.parse_logs(lines[0])[0]) == "delete refused", lines[0]
    for line in run.stderr.splitlines():
        if line.startswith("{"):
            assert json_keys_repeated(line) == [], line


def test_namespaces_not_listable_keeps_everything_and_fails_the_cluster(env, kube, namespace):
    # GIVEN due Jobs and pods, and the RBAC of a release that did not read namespaces
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=2)
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace)
    with identity_with(env, kube, "no-namespaces", JOBS_AND_PODS) as creds:
        # WHEN the reaper runs as that identity
        run = fl.run_cli(env, args, creds)
        # THEN an opt-out it cannot see might exist: nothing is deleted, every object is
        # kept as namespaceAnnotationsUnknown, and the cluster fails naming the permission
        # and the way out
        assert_nothing_deleted(kube, s)
        assert run.rc == 1, run.describe()
        c = run.cluster
        assert c["status"] == "failed" and c["errorKind"] == "Forbidden", c
        for text in ("listing namespaces", "cannot list", '"namespaces"',
                     "REAPER_NAMESPACE_ANNOTATIONS=false", "namespaceAnnotationsUnknown"):
            assert text in c["error"], (text, c["error"])
        assert c["namespaceAnnotations"]["status"] == "unknown", c
        # (the seed's opted-out Job is kept by its own annotation, checked first)
        assert c["jobs"]["keptByReason"] == {"namespaceAnnotationsUnknown": s.jobs - 1,
                                             "optedOut": 1}, c
        assert c["jobs"]["deleted"] == 0 and c["pods"]["deleted"] == 0, c
        assert fl.find_logs(run.logs, "namespaces not listed", "WARN"), run.tail()
        # AND with namespace annotations turned off the same identity prunes as before
        off = fl.run_cli(env, args, {**creds, "REAPER_NAMESPACE_ANNOTATIONS": "false"})
    assert off.rc == 0 and off.cluster["status"] == "ok", off.describe()
    assert off.cluster["namespaceAnnotations"]["status"] == "off", off.cluster
    o = assert_nothing_wrong_deleted(kube, s)
    assert o.due_left == 0, off.describe()


def test_events_refused_are_counted_and_never_fail_the_run(env, kube, namespace):
    # GIVEN due objects, Events asked for, and an identity that may not create Events
    s = fl.seed(kube, namespace, due_jobs=3, due_pods=1)
    with identity_with(env, kube, "no-events", NO_EVENTS) as creds:
        # WHEN the reaper runs as that identity
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                         {**creds, "REAPER_NAMESPACE_EVENTS": "true"})
    # THEN everything due is deleted and the run is ok; the one Event is counted as failed
    assert run.rc == 0 and run.cluster["status"] == "ok", run.describe()
    o = assert_nothing_wrong_deleted(kube, s)
    assert o.due_left == 0, run.describe()
    events = run.cluster["namespaceEvents"]
    assert events["sent"] == 0 and events["failed"] == 1, events
    assert "403" in events["error"] and namespace in events["error"], events
    assert fl.find_logs(run.logs, "namespace events not all sent", "WARN"), run.tail()
    assert list(kube.list("v1", "events", namespace, field_selector="reason=EksReaperPruned")) == []
