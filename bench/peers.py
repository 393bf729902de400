"""`bench/run.py peers`: eks-reaper against its peers on one backlog, each run as its users
run it, outside the cluster with a kubeconfig, on the local testbed.

Contenders (comma list, `--contenders`):

  reaper    eks-reaper (release binary, CLI) as the reaper identity (run.run_reaper)
  floor     the raw concurrent DELETE loop, examples/raw_floor.rs (run.run_floor)
  kubectl   `kubectl delete jobs --all -n NS --wait=false`, admin kubeconfig (run.run_kubectl)
  ttl       the native TTL-after-finished controller: every backlog Job carries
            ttlSecondsAfterFinished and falls due at one instant after seeding (as `ttl`)
  kco       kube-cleanup-operator v0.8.4 (Go), a continuous controller, with the
            ServiceAccount and ClusterRole of its deploy/deployment/rbac.yaml
  janitor   kube-janitor 20.10.0 (Python) `--once` with a rules file for finished Jobs, with
            the ServiceAccount and ClusterRole of its deploy/rbac.yaml

Each contender gets a fresh namespace holding the backlog (N finished Jobs, one finished pod
each) and, next to it, a few Jobs and bare pods that run until deleted (the sentinels). After
the contender, every sentinel must still be there with its uid and no deletionTimestamp:
`deletedWrongly` counts the ones that are not.

Wall time to drain = from the contender's start until no backlog Job is left (listed with
the backlog's label, polled every second). The continuous controller (kco) never exits on
its own: it is stopped (SIGTERM) once the backlog is gone, or at `--time-limit`; a capped
contender's rate is the Jobs gone over its window (`capped` in the row). Requests and 429s:
the contender's own count where it keeps one (eks-reaper's report, the floor's output,
kubectl's -v=6 log); the apiserver's audit log, filtered by the peer's ServiceAccount, for
kco and janitor (the testbed started with bench/peers-audit-policy.yaml); the apiserver's
request counters over the window for the TTL controller (all clients: it shares
kube-controller-manager's identity with the garbage collector).

The peers are built by `scripts/bench` (see BENCHMARKS.md) into BENCH_PEERS_DIR (default
~/.cache/eks-reaper-peers): bin/kube-cleanup-operator, kube-janitor/ (source) and
venv-janitor/ (its dependencies).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from testbed import workload
from testbed.kube import ApiError, Kube
from testbed.ports import free_ports

JSON = dict[str, Any]

PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR", Path.home() / ".cache/eks-reaper-peers"))
KCO_BIN = PEERS_DIR / "bin/kube-cleanup-operator"
JANITOR_SRC = PEERS_DIR / "kube-janitor"
JANITOR_PY = PEERS_DIR / "venv-janitor/bin/python"
PEERS_NAMESPACE = "bench-peers"
SENTINELS = 3  # running Jobs, and as many running bare pods, next to each backlog

# The peers' shipped RBAC (kube-cleanup-operator deploy/deployment/rbac.yaml, kube-janitor
# deploy/rbac.yaml), bound to a ServiceAccount of the bench-peers namespace.
PEER_RULES = {
    "kco": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"],
         "verbs": ["delete", "get", "list", "watch"]},
    ],
    "janitor": [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "watch", "list", "delete"]},
    ],
}
PEER_ACCOUNT = {"kco": "kube-cleanup-operator", "janitor": "kube-janitor"}

# kube-janitor's rule: a Job with a terminal condition (Complete or Failed, True). Its TTL
# counts from creationTimestamp, which for the seeded backlog is the seeding time (the
# finish times are two days back in `status`), hence 1s rather than a retention.
JANITOR_RULES = """rules:
  - id: finished-jobs
    resources: [jobs]
    jmespath: "status.conditions[?(type == 'Complete' || type == 'Failed') && status == 'True']"
    ttl: 1s
"""


# ---- identities --------------------------------------------------------------------------

def _create(kube: Kube, api: str, plural: str, body: JSON, namespace: str | None = None) -> None:
    try:
        kube.create(api, plural, body, namespace=namespace)
    except ApiError as e:
        if not e.conflict:
            raise


def peer_kubeconfig(env: JSON, kube: Kube, who: str, logs: Path) -> Path:
    """A kubeconfig for the peer's ServiceAccount (TokenRequest token, 6 h), with its shipped
    ClusterRole bound: the identity it has when deployed, used from outside."""
    kube.ensure_namespace(PEERS_NAMESPACE)
    name = PEER_ACCOUNT[who]
    rbac = "rbac.authorization.k8s.io/v1"
    _create(kube, "v1", "serviceaccounts", {"metadata": {"name": name}}, PEERS_NAMESPACE)
    _create(kube, rbac, "clusterroles", {"metadata": {"name": f"bench-{name}"},
                                          "rules": PEER_RULES[who]})
    _create(kube, rbac, "clusterrolebindings", {
        "metadata": {"name": f"bench-{name}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": f"bench-{name}"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": PEERS_NAMESPACE}]})
    token = kube.create("v1", "serviceaccounts", {"spec": {"expirationSeconds": 21600}},
                        namespace=PEERS_NAMESPACE, name=name,
                        subresource="token")["status"]["token"]
    path = logs / f"{name}.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "peer",
        "clusters": [{"name": "testbed", "cluster": {
            "server": env["TESTBED_APISERVER"],
            "certificate-authority": env["TESTBED_CA_FILE"]}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "peer", "context": {"cluster": "testbed", "user": name}}]}))
    path.chmod(0o600)
    return path


def audit_user(who: str) -> str:
    return f"system:serviceaccount:{PEERS_NAMESPACE}:{PEER_ACCOUNT[who]}"


def audit_offset(env: JSON) -> int:
    p = audit_log(env)
    return p.stat().st_size if p.exists() else 0


def audit_log(env: JSON) -> Path:
    return Path(env["TESTBED_DIR"], "audit.log")


def audit_counts(env: JSON, offset: int, user: str) -> JSON | None:
    """The user's requests in the audit log written since `offset`: total, 429s, by verb,
    resource and code."""
    p = audit_log(env)
    if not p.exists():
        return None
    by: dict[str, int] = {}
    total = throttled = 0
    with p.open("rb") as f:
        f.seek(offset)
        for line in f:
            ev = json.loads(line)
            if ev.get("user", {}).get("username") != user:
                continue
            total += 1
            code = ev.get("responseStatus", {}).get("code")
            throttled += code == 429
            ref = ev.get("objectRef") or {}
            k = f"{ev.get('verb')} {ref.get('resource', ev.get('requestURI', '')[:40])} {code}"
            by[k] = by.get(k, 0) + 1
    return {"requests": total, "throttled": throttled, "byVerb": dict(sorted(by.items()))}


# ---- fixture: sentinels next to the backlog ----------------------------------------------

def count_backlog(kube: Kube, api_version: str, plural: str, ns: str) -> int:
    """Backlog objects left: all in the namespace (one `limit=1` page: items +
    remainingItemCount, which the apiserver leaves out when a label selector is given)
    minus the sentinels (a small labelled list)."""
    page = kube.list_page(api_version, plural, ns, limit=1)
    every = len(page.get("items") or []) + int(page["metadata"].get("remainingItemCount") or 0)
    sentinels = kube.list_page(api_version, plural, ns,
                               label_selector=f"{workload.KIND_LABEL}=running")["items"]
    return every - len(sentinels)


def seed_sentinels(kube: Kube, ns: str) -> None:
    workload.running_jobs(kube, count=SENTINELS, namespace=ns)
    workload.running_pods(kube, count=SENTINELS, namespace=ns)


def sentinels_running(kube: Kube, ns: str, timeout: float = 120) -> list[JSON]:
    """The running Jobs, their pods and the bare running pods, once all pods run."""
    sel = f"{workload.KIND_LABEL}=running"
    t0 = time.monotonic()
    while True:
        jobs = kube.list_page("batch/v1", "jobs", ns, label_selector=sel)["items"]
        # The Jobs' pods carry their template's labels: both kinds of pod match.
        pods = kube.list_page("v1", "pods", ns, label_selector=sel)["items"]
        if (len(jobs) == SENTINELS and len(pods) == 2 * SENTINELS
                and all(p.get("status", {}).get("phase") == "Running" for p in pods)):
            return [{"apiVersion": "batch/v1", "plural": "jobs", "name": j["metadata"]["name"],
                     "uid": j["metadata"]["uid"]} for j in jobs] + \
                   [{"apiVersion": "v1", "plural": "pods", "name": p["metadata"]["name"],
                     "uid": p["metadata"]["uid"]} for p in pods]
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"sentinels in {ns} not running after {timeout}s: "
                             f"{len(jobs)} Jobs, {len(pods)} pods")
        time.sleep(1)


def sentinels_lost(kube: Kube, ns: str, sentinels: list[JSON]) -> list[str]:
    """Sentinels gone, replaced (other uid) or being deleted."""
    lost = []
    for s in sentinels:
        try:
            obj = kube.get(s["apiVersion"], s["plural"], s["name"], ns)
        except ApiError as e:
            if e.status != 404:
                raise
            lost.append(f"{s['plural']}/{s['name']}: gone")
            continue
        if obj["metadata"]["uid"] != s["uid"]:
            lost.append(f"{s['plural']}/{s['name']}: replaced")
        elif obj["metadata"].get("deletionTimestamp"):
            lost.append(f"{s['plural']}/{s['name']}: being deleted")
    return lost


def seed_ttl_backlog(kube: Kube, ns: str, n: int, seed_rate: float, seed) -> tuple[JSON, float]:
    """The backlog with ttlSecondsAfterFinished set so that every Job falls due at one
    instant after seeding (the `ttl` step's fixture); returns it and the due time."""
    delay = int(n / seed_rate * 1.5) + 60
    finish = time.time()
    fixed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finish))
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finish - 30))
    real_now = workload.now_rfc3339
    # bulk_finished stamps finish = now(-age) and start = now(-age-30): pin both.
    workload.now_rfc3339 = lambda off=0.0: start if off < -1 else fixed
    try:
        fixture = seed(kube, ns, n, "direct", age_seconds=0, age_jitter_seconds=0,
                       ttl_seconds_after_finished=delay)
    finally:
        workload.now_rfc3339 = real_now
    if time.time() > finish + delay:
        raise SystemExit(f"seeding outlasted the TTL ({delay}s); lower --ttl-seed-rate")
    return {**fixture, "ttlSecondsAfterFinished": delay}, finish + delay


# ---- running a peer ----------------------------------------------------------------------

def peer_cmd(who: str, ns: str, logs: Path) -> list[str]:
    if who == "kco":
        # Its documented flags; `=` after the booleans (a separate `false` keeps legacy mode
        # and drops the flags after it). Retentions as eks-reaper's defaults.
        (port,) = free_ports(1)
        return [str(KCO_BIN), "-run-outside-cluster", "-legacy-mode=false", f"-namespace={ns}",
                "-delete-successful-after=15m", "-delete-failed-after=24h",
                f"-listen-addr=127.0.0.1:{port}"]
    rules = logs / "janitor-rules.yaml"
    rules.write_text(JANITOR_RULES)
    return [str(JANITOR_PY), "-m", "kube_janitor", "--once", f"--include-namespaces={ns}",
            f"--rules-file={rules}"]


def run_peer(env: JSON, kube: Kube, logs: Path, tag: str, who: str, ns: str,
             time_limit: float) -> JSON:
    """Runs the peer under /usr/bin/time -v, polls the backlog every second, stops it
    (SIGTERM) once the backlog is gone (continuous controller) or at the time limit."""
    cmd = peer_cmd(who, ns, logs)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REAPER_"))}
    e["KUBECONFIG"] = str(peer_kubeconfig(env, kube, who, logs))
    if who == "janitor":
        e["PYTHONPATH"] = str(JANITOR_SRC)
    n0 = count_backlog(kube, "batch/v1", "jobs", ns)
    offset = audit_offset(env)
    tfile = logs / f"{tag}.time"
    timeline: list[tuple[float, int]] = []
    drained = None
    t0 = time.monotonic()
    with (logs / f"{tag}.log").open("w") as out:
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(tfile), *cmd], env=e,
                                stdout=out, stderr=subprocess.STDOUT)
        while True:
            el = time.monotonic() - t0
            n = count_backlog(kube, "batch/v1", "jobs", ns)
            if not timeline or el - timeline[-1][0] >= 10 or n == 0:
                timeline.append((round(el, 1), n))
            if n == 0:
                drained = el
                break
            if proc.poll() is not None or el >= time_limit:
                break
            time.sleep(1)
        window = time.monotonic() - t0
        # Counted at the limit: a peer may go on deleting until it has exited.
        left = count_backlog(kube, "batch/v1", "jobs", ns)
        stopped = proc.poll() is None and (who == "kco" or drained is None)
        if stopped:
            # The peer, not `time`. kube-janitor finishes its pass on SIGTERM (its graceful
            # shutdown), so it is killed 10 s later.
            subprocess.call(["pkill", "-TERM", "-P", str(proc.pid)])
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                subprocess.call(["pkill", "-KILL", "-P", str(proc.pid)])
        rc = proc.wait(timeout=120)
    process_wall = time.monotonic() - t0
    left_at_exit = count_backlog(kube, "batch/v1", "jobs", ns)
    tv = tfile.read_text()

    def field(label: str) -> str:
        for line in tv.splitlines():
            if line.strip().startswith(label + ":"):
                return line.split(":", 1)[1].strip()
        return ""

    gone = n0 - left
    secs = drained if drained is not None else window
    row: JSON = {
        "command": " ".join(cmd), "kubeconfig": f"ServiceAccount {PEERS_NAMESPACE}/"
                                                f"{PEER_ACCOUNT[who]} (TokenRequest)",
        "rc": rc, "stopped": stopped, "capped": drained is None,
        "timeLimitSeconds": time_limit, "wallSeconds": round(secs, 2),
        "processWallSeconds": round(process_wall, 2), "jobsAtStart": n0, "jobsLeft": left,
        "jobsLeftAtExit": left_at_exit,
        "deleted": gone, "deletesPerSecond": round(gone / secs, 1) if secs else None,
        "maxRssKB": int(field("Maximum resident set size (kbytes)") or 0),
        "cpuSeconds": round(float(field("User time (seconds)") or 0)
                            + float(field("System time (seconds)") or 0), 2),
        "timeline": timeline}
    text = (logs / f"{tag}.log").read_text(errors="replace")
    if who == "kco":
        first = next((ln for ln in text.splitlines() if "Deleting job" in ln), None)
        row["deleteLogLines"] = {"jobs": text.count("Deleting job"),
                                 "pods": text.count("Deleting pod")}
        row["firstDeleteLogLine"] = first[:19] if first else None
    else:
        row["deleteLogLines"] = {"jobs": text.count("Deleting Job")}
        done = [ln for ln in text.splitlines() if "Clean up run completed" in ln]
        row["janitorSummary"] = done[-1][-200:] if done else None
    audit = audit_counts(env, offset, audit_user(who))
    if audit is not None:
        row.update({"requests": audit["requests"], "throttled": audit["throttled"],
                    "auditByVerb": audit["byVerb"]})
    return row


def wait_ttl(kube: Kube, ns: str, due: float, timeout: float) -> JSON:
    """From the due instant until no backlog Job is left (or the timeout)."""
    while time.time() < due:
        time.sleep(0.1)
    n0 = count_backlog(kube, "batch/v1", "jobs", ns)
    t0 = time.monotonic()
    timeline, drained = [], None
    while time.monotonic() - t0 < timeout:
        n = count_backlog(kube, "batch/v1", "jobs", ns)
        el = time.monotonic() - t0
        if not timeline or el - timeline[-1][0] >= 10 or n == 0:
            timeline.append((round(el, 1), n))
        if n == 0:
            drained = el
            break
        time.sleep(0.5)
    window = time.monotonic() - t0
    left = count_backlog(kube, "batch/v1", "jobs", ns)
    secs = drained if drained is not None else window
    return {"wallSeconds": round(secs, 2), "capped": drained is None, "jobsAtStart": n0,
            "jobsLeft": left, "deleted": n0 - left,
            "deletesPerSecond": round((n0 - left) / secs, 1) if secs else None,
            "timeline": timeline,
            "controllerManagerFlags": "--kube-api-qps=500 --kube-api-burst=1000 (testbed); "
                                      "--concurrent-ttl-after-finished-syncs default (5)"}


# ---- the step ----------------------------------------------------------------------------

def step_peers(a: argparse.Namespace, run: Any) -> None:
    """`run` is bench/run.py's module: its plumbing and contenders."""
    env = run.load_env()
    kube = run.admin(env)
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    contenders = a.contenders.split(",")
    if "ttl" in contenders and "ttl-after-finished" not in env.get("TESTBED_CONTROLLERS", ""):
        raise SystemExit("contender ttl: bring the testbed up with "
                         "EKS_REAPER_TESTBED_TTL_CONTROLLER=1")
    if any(w in ("kco", "janitor") for w in contenders) and not audit_log(env).exists():
        run.log("no audit log: kco/janitor rows will have no request counts (start the "
                "testbed with bench/peers-audit-policy.yaml, see scripts/bench)")
    # All backlogs are seeded first (the TTL controller's last: its Jobs fall due at a fixed
    # instant), so that no seeding runs during a measurement; each namespace is deleted once
    # every contender has run, so no namespace deletion runs during one either.
    plan = []
    for rep in range(1, a.repeats + 1):
        for who in contenders[::-1] if rep % 2 == 0 else contenders:
            plan.append((rep, who, f"bench-{a.label}-{who}-{rep}"))
    fixtures: dict[str, JSON] = {}
    for rep, who, ns in plan:
        if who != "ttl":
            seed_sentinels(kube, ns)
            fixtures[ns] = run.seed(kube, ns, a.count, "direct")
    try:
        for rep, who, ns in plan:
            tag = f"{a.label}-peers-{who}-{rep}"
            if who == "ttl":
                seed_sentinels(kube, ns)
                fixtures[ns], due = seed_ttl_backlog(kube, ns, a.count, a.ttl_seed_rate,
                                                     run.seed)
            fixture = fixtures[ns]
            sentinels = sentinels_running(kube, ns)
            run.quiet(kube)
            before, la0 = run.metrics(kube), run.loadavg()
            run.log(f"{tag}: {who} on {fixture['jobs']} Jobs + {len(sentinels)} sentinels "
                    f"in {ns}")
            if who == "reaper":
                r = run.run_reaper(env, logs, tag, ns, a.concurrency)
            elif who == "floor":
                r = run.run_floor(env, logs, tag, ns, a.concurrency)
            elif who == "kubectl":
                r = run.run_kubectl(env, logs, tag, ns, a.time_limit)
            elif who == "ttl":
                r = wait_ttl(kube, ns, due, a.time_limit)
            elif who in ("kco", "janitor"):
                r = run_peer(env, kube, logs, tag, who, ns, a.time_limit)
            else:
                raise SystemExit(f"unknown contender {who}")
            left = count_backlog(kube, "batch/v1", "jobs", ns)
            # The garbage collector's share of the work (pods of deleted Jobs), bounded.
            pods_gone = wait_backlog_pods(kube, ns, 0 if left else 300)
            lost = sentinels_lost(kube, ns, sentinels)
            after = run.metrics(kube)
            if who == "ttl":
                api = run.metrics_delta(before, after)["requests"]
                r["requests"] = sum(v for k, v in api.items())
                r["throttled"] = sum(v for k, v in api.items() if k.endswith(" 429"))
                r["requestsNote"] = "all clients on jobs and pods (kube-controller-manager)"
            run.record(Path(a.out), {
                "step": "peers", "label": a.label, "who": who, "rep": rep, "namespace": ns,
                "n": fixture["jobs"], "podsPerJob": "direct", **fixture, **r,
                "backlogJobsLeft": left, "podsGoneAfterSeconds": pods_gone,
                "sentinels": len(sentinels), "deletedWrongly": len(lost), "lost": lost,
                "apiserver": run.metrics_delta(before, after),
                "loadavgBefore": la0, "loadavgAfter": run.loadavg()})
    finally:
        for _, _, ns in plan:
            kube.delete("v1", "namespaces", ns, missing_ok=True)


def wait_backlog_pods(kube: Kube, ns: str, timeout: float) -> float | None:
    """Seconds until no backlog pod is left (None: not within the timeout)."""
    t0 = time.monotonic()
    while True:
        if count_backlog(kube, "v1", "pods", ns) == 0:
            return round(time.monotonic() - t0, 1)
        if time.monotonic() - t0 >= timeout:
            return None
        time.sleep(0.5)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("peers", help="eks-reaper against its peers (bench/peers.py)")
    p.add_argument("--label", default="peers")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--contenders", default="kco,janitor,reaper,floor,ttl,kubectl")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--time-limit", type=float, default=300,
                   help="seconds a contender gets; one that has not drained the backlog "
                        "by then is stopped and measured over the window")
    p.add_argument("--ttl-seed-rate", type=float, default=40.0,
                   help="expected Jobs/s seeding (sets the TTL backlog's due instant)")


# ---- summary -----------------------------------------------------------------------------

NAMES = {"reaper": "eks-reaper", "floor": "raw floor", "kubectl": "kubectl delete --all",
         "ttl": "TTL-after-finished controller", "kco": "kube-cleanup-operator v0.8.4",
         "janitor": "kube-janitor 20.10.0 --once"}


def summary(rows: list[JSON]) -> None:
    peers = [r for r in rows if r["step"] == "peers"]
    for label in sorted({r["label"] for r in peers}):
        group = [r for r in peers if r["label"] == label]
        print(f"\n### peers {label}: {group[0]['n']} finished Jobs with a pod each, "
              f"{group[0]['sentinels']} running sentinels\n")
        print("| contender | runs | deletes/s (median) | each run | wall s to drain (median) "
              "| capped | peak RSS MB | CPU s | requests | 429s | deleted wrongly |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")

        def med(g: list[JSON], k: str):
            v = [r[k] for r in g if r.get(k) is not None]
            return statistics.median(v) if v else None

        rates = {}
        for who in [w for w in NAMES if any(r["who"] == w for r in group)]:
            g = [r for r in group if r["who"] == who]
            rates[who] = med(g, "deletesPerSecond")
            rss = med(g, "maxRssKB")
            print(f"| {NAMES[who]} | {len(g)} | {rates[who]} | "
                  f"{', '.join(str(r['deletesPerSecond']) for r in g)} | "
                  f"{med(g, 'wallSeconds')} | "
                  f"{', '.join('yes' if r.get('capped') else 'no' for r in g)} | "
                  f"{'–' if not rss else round(rss / 1024, 1)} | {med(g, 'cpuSeconds') or '–'} | "
                  f"{med(g, 'requests')} | {med(g, 'throttled')} | "
                  f"{', '.join(str(r['deletedWrongly']) for r in g)} |")
        if rates.get("reaper"):
            print()
            for who, v in rates.items():
                if who != "reaper" and v:
                    print(f"- eks-reaper ÷ {NAMES[who]}: {rates['reaper'] / v:.1f}× (medians)")
        loads = [r["loadavgBefore"][0] for r in group if r.get("loadavgBefore")]
        if loads:
            print(f"- 1-min load average before runs: {min(loads)}–{max(loads)} (2 cores)")
