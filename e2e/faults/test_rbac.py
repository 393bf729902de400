"""RBAC faults, with the real RBAC authorizer: an identity that may list but not delete,
and one that may not even list.

The list-only identity is a second access entry (its own IAM key, user and group in the
authenticator's table) bound to a ClusterRole with only `list` on jobs and pods, so the
shipped `eks-reaper` entry and role stay untouched for the other tests.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Iterator

from . import faultlib as fl
from .faultlib import assert_nothing_deleted

RBAC = "rbac.authorization.k8s.io/v1"


@contextlib.contextmanager
def list_only_identity(env, kube) -> Iterator[dict[str, str]]:
    """A fresh IAM identity mapped to user/group `faults-list-only-<id>`, whose only rights
    are list on batch/jobs and core/pods. Yields the environment the reaper needs to act
    as it."""
    suffix = secrets.token_hex(3)
    name = f"faults-list-only-{suffix}"
    key = f"AKIAFAULTS{suffix.upper()}00"
    secret = secrets.token_urlsafe(30)
    arn = f"arn:aws:iam::{env['TESTBED_ACCOUNT_ID']}:role/{name}"
    kube.create(RBAC, "clusterroles", {
        "apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]})
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
    lists = 3  # one page each: jobs, Fargate pods (any phase), other finished pods
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
    assert c["requests"] == 1, "a 403 on list is not retried"
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
