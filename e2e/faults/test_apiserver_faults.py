"""Control-plane faults during a run: the apiserver killed and restarted, a continue token
expired by etcd compaction, the bearer token expiring under a long run.

"Mid-run" is made deterministic where timing would not be: the reaper is paused with
SIGSTOP right after it has listed its first page (a long list or a slow invocation, as
far as the cluster can tell), the fault is set up, and it is resumed with SIGCONT.
"""

from __future__ import annotations

import time
from pathlib import Path

from testbed.control import restart_apiserver
from testbed.kube import ApiError
from testbed.workload import RUN_LABEL

from . import faultlib as fl
from .faultlib import assert_counts_match, assert_nothing_wrong_deleted, paused

PANIC = "panicked"


# ---- apiserver restart ---------------------------------------------------------------------

def test_apiserver_restart_mid_run_no_panic_no_double_counting(env, kube, namespace):
    # GIVEN 800 due Jobs deleted one at a time (a run of a few seconds even on a fast
    # loopback: the restart must land inside it)
    s = fl.seed(kube, namespace, due_jobs=800, due_pods=3)
    due = len(s.due_jobs) + len(s.due_pods)
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--concurrency", "1")
    p = fl.start_cli(env, args)

    def gone() -> int:
        left = kube.list_page("batch/v1", "jobs", namespace,
                              label_selector=f"{RUN_LABEL}", limit=1000)["items"]
        return len(s.due_jobs) - len(left)  # only the due Jobs carry the run label

    # WHEN the apiserver is SIGKILLed after ~20 deletions, and comes back 2 s later
    fl.wait_until(lambda: gone() >= 20 or p.poll() is not None, 60, 0.02)
    fl.require(p.poll() is None, "the run ended before the restart")
    restart = restart_apiserver(env, down_seconds=2, wait=False)
    restart.wait_down()
    first = fl.finish_cli(p, timeout=120)
    restart.wait()
    # THEN: no panic, a report, an exit code that agrees with it
    fl.safe(PANIC not in first.stderr, first.describe())
    c = first.cluster
    assert first.rc in (0, 1) and (first.rc == 1) == (first.report["status"] == "failed"), \
        first.describe()
    fl.require(fl.find_logs(first.logs, "API request failed|unreachable|delete failed|listing "
                            "failed", "WARN"), f"the run never saw the apiserver down:\n"
                                               f"{first.tail()}")
    # nothing wrong deleted; every deletion the report claims really happened, and each due
    # object is counted once (a DELETE lost with the connection may have been applied:
    # it is counted as an error, never as a deletion)
    o = assert_nothing_wrong_deleted(kube, s)
    gone_due = len(s.due_jobs) + len(s.due_pods) - o.due_left
    deleted = c["jobs"]["deleted"] + c["pods"]["deleted"]
    unsure = c["alreadyGone"] + c["errors"].get("unreachable", 0)
    fl.safe(deleted <= gone_due <= deleted + unsure,
            f"report claims {deleted} deletions (+{unsure} unsure), apiserver shows {gone_due}")
    if c["listingComplete"]:
        accounted = (deleted + c["alreadyGone"] + c["conflicts"] + c["backlog"]
                     + sum(c["errors"].values()))
        fl.safe(accounted == due, f"{due} due objects, {accounted} outcomes: {c}")
    # and the fault is named: the run's transport errors are in the log
    assert fl.find_logs(first.logs, "unreachable|API request failed|delete failed", "WARN",
                        fields=("error",))
    # AND the next run finishes the job, without counting anything twice
    second = fl.run_cli(env, args)
    assert second.rc == 0, second.describe()
    o2 = assert_nothing_wrong_deleted(kube, s)
    assert o2.due_left == 0, second.cluster
    c2 = second.cluster
    total = deleted + c2["jobs"]["deleted"] + c2["pods"]["deleted"]
    fl.safe(due - unsure <= total <= due, f"{total} deletions counted over two runs for {due}")


def test_apiserver_down_during_listing_fails_the_cluster_and_reports_what_was_done(env, kube,
                                                                                  namespace):
    # GIVEN a run listing one Job per page
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--page-size", "1",
                       "--concurrency", "1")
    p = fl.start_cli(env, args)
    # WHEN the apiserver crashes mid-list and stays down longer than the reaper's retries
    with paused(p, after='"deleted"'):
        restart = restart_apiserver(env, down_seconds=6, wait=False)
        restart.wait_down()
    first = fl.finish_cli(p, timeout=120)
    restart.wait()
    # THEN the cluster is reported failed (not processed to the end), with no panic, and
    # what it did before is reported truthfully
    fl.safe(PANIC not in first.stderr, first.describe())
    c = first.cluster
    assert first.rc == 1 and c["status"] == "failed" and c["errorKind"] == "Unreachable", \
        first.describe()
    assert "listing" in c["error"], c["error"]
    warn = fl.find_logs(first.logs, "listing failed", "WARN")
    assert warn and "unreachable" in warn[0]["fields"].get("error", ""), first.tail()
    o = assert_nothing_wrong_deleted(kube, s)
    gone_due = len(s.due_jobs) + len(s.due_pods) - o.due_left
    deleted = c["jobs"]["deleted"] + c["pods"]["deleted"]
    unsure = c["alreadyGone"] + c["errors"].get("unreachable", 0)
    fl.safe(deleted <= gone_due <= deleted + unsure,
            f"report claims {deleted} deletions (+{unsure} unsure), apiserver shows {gone_due}")
    fl.require(o.due_left > 0, "everything was deleted before the crash")
    # AND the next run finishes the job
    second = fl.run_cli(env, args)
    assert second.rc == 0, second.describe()
    assert assert_nothing_wrong_deleted(kube, s).due_left == 0


# ---- expired continue token (410) ---------------------------------------------------------

def test_expired_continue_token_mid_list_skips_nothing(env, kube, namespace):
    # GIVEN 150 due Jobs listed one per page
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    jobs_in_ns = s.jobs
    finished_pods = len(s.due_pods) + 2  # keep-bare-opted-out, keep-bare-recent
    p = fl.start_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--page-size", "1",
                                      "--concurrency", "1"),
                     {"RUST_LOG": "info,eks_reaper=debug"})
    # WHEN, after its first page, etcd is compacted past the list's snapshot (the
    # apiserver's watch cache drops its snapshots at the next compaction poll, <= 15 s)
    with paused(p, after="due for deletion"):
        probe = kube.list_page("batch/v1", "jobs", namespace, limit=1)["metadata"]["continue"]
        kube.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "bump-revision"}},
                    namespace=namespace)
        fl.compact_etcd(env)

        def probe_expired() -> bool:
            try:
                kube.list_page("batch/v1", "jobs", namespace, limit=1, continue_=probe)
                return False
            except ApiError as e:
                return e.status == 410

        fl.wait_until(probe_expired, 40, 0.25, "continue tokens to expire (410)")
    run = fl.finish_cli(p, timeout=120)
    # THEN the list is resumed and no object is skipped or counted twice
    c = run.cluster
    fl.require(c["listRestarts"] >= 1, f"the reaper never got a 410:\n{run.tail()}")
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(c, o)
    assert c["listingComplete"]
    assert c["jobs"]["seen"] == jobs_in_ns, (c["jobs"]["seen"], jobs_in_ns)
    assert c["pods"]["seen"] == finished_pods, (c["pods"]["seen"], finished_pods)
    assert o.due_left == 0 and c["errors"] == {}, c
    assert fl.find_logs(run.logs, "continue token expired|continue parameter is too old",
                        "WARN"), run.tail()


# ---- token expiry -----------------------------------------------------------------------------

def authenticator_log_since(env, offset: int) -> str:
    with open(env["TESTBED_AUTHENTICATOR_LOG"]) as f:
        f.seek(offset)
        return f.read()


def test_token_expiring_mid_run_is_re_signed(env, kube, namespace):
    # GIVEN tokens that the authenticator accepts for 5 s only
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    log_offset = Path(env["TESTBED_AUTHENTICATOR_LOG"]).stat().st_size
    with fl.access_entries(env) as table:
        table["maxTokenAgeSeconds"] = 5
        fl.commit_access_entries(env, table)
        p = fl.start_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--page-size", "1",
                                          "--concurrency", "1"))
        # WHEN the run outlives its token (and the apiserver's 10 s cache of it)
        with paused(p, after='"deleted"'):
            time.sleep(11.5)
        run = fl.finish_cli(p, timeout=120)
    authn = authenticator_log_since(env, log_offset)
    fl.require("token expired" in authn,
               f"the authenticator never refused the old token:\n{authn[-2000:]}")
    # THEN the reaper signs a new token and finishes the run
    c = run.cluster
    fl.safe(run.rc == 0 and c["status"] == "ok" and c["errors"] == {}, run.describe())
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(c, o)
    fl.safe(o.due_left == 0, f"{o.due_left} due objects left after the token expired")
    after_reject = authn[authn.index("token expired"):]
    fl.safe(f"accept arn={env['TESTBED_REAPER_ARN']}" in after_reject,
            "no accepted token after the expiry: the reaper did not re-sign")
    # and the log names what happened
    assert fl.find_logs(run.logs, r"token rejected \(401\)"), run.tail()


def test_token_reaching_its_max_age_is_re_signed_before_it_expires(env, kube, namespace):
    # GIVEN tokens accepted for 30 s, and the reaper told to re-sign at 3 s
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    with fl.access_entries(env) as table:
        table["maxTokenAgeSeconds"] = 30
        fl.commit_access_entries(env, table)
        p = fl.start_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--page-size", "1",
                                          "--concurrency", "1", "--token-max-age", "3s"))
        # WHEN the run goes on 4.5 s after its first deletion: past the reaper's maximum
        # age, long before the token expires (so no 401 can trigger a re-sign instead)
        with paused(p, after='"deleted"'):
            time.sleep(4.5)
        run = fl.finish_cli(p, timeout=120)
    # THEN it signs a new token on its own and completes the run
    c = run.cluster
    assert run.rc == 0 and c["status"] == "ok" and c["errors"] == {}, run.describe()
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(c, o)
    assert o.due_left == 0
    assert fl.find_logs(run.logs, "token reached its maximum age"), run.tail()
    assert not fl.find_logs(run.logs, r"token rejected \(401\)"), run.tail()
