"""eks-reaper benchmarks on the local testbed. Entry point: `scripts/bench`.

Each step appends one JSON object per measurement to `--out` (JSON lines); `summary`
turns that file into the Markdown tables quoted in BENCHMARKS.md. Steps:

  drain     N finished Jobs (one finished pod each with --pods direct) drained by each
            contender in turn, each on a freshly seeded namespace of the same apiserver:
            eks-reaper (release binary, CLI), the raw floor (examples/raw_floor.rs),
            kubectl; --repeats rounds, interleaved so drift hits everyone alike.
            A contender `reaper:policy-on` / `reaper:policy-off` is eks-reaper with the
            admission policy (infra/rbac/eks-reaper-admission-policy.yaml) applied /
            removed just before its drain, each switch confirmed by a probe deletion
            (testbed/admission.py); the policy is re-applied at the end.
  ttl       the native TTL-after-finished controller on the same fixture with
            ttlSecondsAfterFinished set so that every Job falls due at one instant.
  idle      retained (not yet due) Jobs + running pods, nothing to delete: eks-reaper runs.
  lambda-cpu  the idle run under a CPU quota equal to Lambda's share at each memory size
            (memory / 1,769 MB of a vCPU; cgroup v1 cpu controller, needs root).
  package   size of the arm64 Lambda zip (`scripts/package`).
  init      cold-start init of the x86_64 release binary under AWS's Lambda RIE.
  peers     eks-reaper against kube-cleanup-operator, kube-janitor, the TTL controller,
            kubectl and the floor on one backlog, with running sentinels (bench/peers.py).
  apf       the reaper's API priority level (infra/rbac/eks-reaper-flowcontrol.yaml) and a
            workload: another identity (a ServiceAccount) creates and reads ConfigMaps at a
            steady rate throughout; its latency idle, during a drain with the level removed
            (the reaper in global-default) and during a drain with it, and each drain's rate.
  cost      what one run costs the control plane (apiserver + etcd CPU from /proc, requests,
            bytes sent), the current build beside --baseline-bin and the floor, in a steady
            state with nothing due and on a backlog (bench/cost.py).

The testbed must be up (`EKS_REAPER_TESTBED` selects its state dir) with
EKS_REAPER_TESTBED_TTL_CONTROLLER=1 for `ttl`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from requests import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cost, peers  # noqa: E402
from testbed import admission, flowcontrol, workload  # noqa: E402
from testbed.kube import Kube  # noqa: E402
from testbed.ports import free_ports  # noqa: E402
from testbed.tokens import token_for  # noqa: E402

JSON = dict[str, Any]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/eks-reaper/target"))
REAPER_BIN = Path(os.environ.get("BENCH_REAPER_BIN", TARGET / "release/eks-reaper"))
FLOOR_BIN = Path(os.environ.get("BENCH_FLOOR_BIN", TARGET / "release/examples/raw_floor"))


# ---- plumbing ----------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_env() -> JSON:
    state = os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed")
    return json.loads(Path(state, "env.json").read_text())


def admin(env: JSON) -> Kube:
    return Kube.from_kubeconfig(env["KUBECONFIG"], timeout=120)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def record(out: Path, row: JSON) -> None:
    row = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **row}
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    log(json.dumps(row))


def count(kube: Kube, api_version: str, plural: str, namespace: str | None = None) -> int:
    """Objects in a collection from one `limit=1` page (items + remainingItemCount)."""
    page = kube.list_page(api_version, plural, namespace, limit=1)
    return len(page.get("items") or []) + int(page["metadata"].get("remainingItemCount") or 0)


def wait_until_zero(kube: Kube, api_version: str, plural: str, namespace: str,
                    timeout: float, every: float = 0.5) -> float | None:
    """Seconds until the collection is empty (None on timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if count(kube, api_version, plural, namespace) == 0:
            return time.monotonic() - t0
        time.sleep(every)
    return None


def metrics(kube: Kube) -> dict[tuple[str, str], float]:
    """apiserver /metrics (admin cert): request counts and response bytes per series."""
    text = kube.request("GET", "/metrics", timeout=60).text
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith(("apiserver_request_total{", "apiserver_response_sizes_sum{",
                            "apiserver_response_sizes_count{",
                            "apiserver_admission_controller_admission_duration_seconds_sum{",
                            "apiserver_admission_controller_admission_duration_seconds_count{")):
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("} ", 1)
            out[(name, labels)] = float(value)
    return out


def metrics_delta(before: dict, after: dict, resources=("jobs", "pods")) -> JSON:
    """Requests by verb/resource/code and LIST response bytes between two snapshots (all
    clients: includes the controllers, e.g. the garbage collector's pod deletions)."""
    req: dict[str, float] = {}
    list_bytes: dict[str, float] = {}
    # Time the apiserver spent in each admission plugin on DELETEs (all clients), e.g.
    # ValidatingAdmissionPolicy: [seconds, calls].
    admission_delete: dict[str, list[float]] = {}
    for key, value in after.items():
        d = value - before.get(key, 0.0)
        if d <= 0:
            continue
        name, labels = key
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if name.startswith("apiserver_admission_controller_admission_duration_seconds"):
            if lab.get("operation") == "DELETE":
                acc = admission_delete.setdefault(f"{lab['name']} {lab['type']}", [0.0, 0.0])
                acc[0 if name.endswith("_sum") else 1] += d
            continue
        if lab.get("resource") not in resources or lab.get("subresource"):
            continue
        if name == "apiserver_request_total":
            k = f"{lab['verb']} {lab['resource']} {lab['code']}"
            req[k] = req.get(k, 0) + d
        elif name == "apiserver_response_sizes_sum" and lab.get("verb") == "LIST":
            list_bytes[lab["resource"]] = list_bytes.get(lab["resource"], 0) + d
    return {"requests": {k: int(v) for k, v in sorted(req.items())},
            "listBytes": {k: int(v) for k, v in sorted(list_bytes.items())},
            "admissionDeleteSeconds": {k: {"seconds": round(v[0], 3), "calls": int(v[1])}
                                       for k, v in sorted(admission_delete.items())}}


def timed(cmd: list[str], env: dict[str, str], stdout: Path, stderr: Path,
          time_limit: float | None = None) -> JSON:
    """Runs cmd under /usr/bin/time -v; wall (our clock), peak RSS, CPU, exit code. With a
    time limit the command is stopped (SIGTERM) once it is reached: `stopped` says so."""
    tfile = stderr.with_suffix(".time")
    t0 = time.monotonic()
    stopped = False
    with stdout.open("w") as so, stderr.open("w") as se:
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(tfile), *cmd], env=env,
                                stdout=so, stderr=se)
        try:
            rc = proc.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            stopped = True
            subprocess.call(["pkill", "-TERM", "-P", str(proc.pid)])  # the command, not time
            rc = proc.wait()
    wall = time.monotonic() - t0
    tv = tfile.read_text()

    def field(label: str) -> str:
        m = re.search(rf"{re.escape(label)}: (.+)", tv)
        return m.group(1).strip() if m else ""

    return {"rc": rc, "wallSeconds": round(wall, 3), "stopped": stopped,
            "maxRssKB": int(field("Maximum resident set size (kbytes)") or 0),
            "cpuSeconds": round(float(field("User time (seconds)") or 0)
                                + float(field("System time (seconds)") or 0), 2)}


def seed(kube: Kube, namespace: str, n: int, pods: str, **kw: Any) -> JSON:
    t0 = time.monotonic()
    res = workload.bulk_finished(kube, count=n, namespace=namespace, pods=pods,
                                 progress=lambda i, t: log(f"seed {namespace}: {i}/{t}")
                                 if i % 10000 == 0 else None, **kw)
    if res.failed:
        raise SystemExit(f"seeding {namespace} failed: {res.errors[:3]}")
    return {"jobs": res.jobs, "pods": res.pods, "seedSeconds": round(time.monotonic() - t0, 1),
            "seedJobsPerSecond": round(res.jobs_per_second, 1)}


def quiet(kube: Kube) -> None:
    """Let the controllers settle after seeding (informers catch up, GC idle)."""
    time.sleep(5)


# ---- contenders --------------------------------------------------------------------------

def reaper_env(env: JSON) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("REAPER_")}
    e.update({k: str(v) for k, v in env.items() if k.startswith("AWS_")})
    e.setdefault("RUST_LOG", "info")
    return e


def reaper_bin(who: str) -> Path:
    """`reaper` is BENCH_REAPER_BIN (default: the release build); `reaper-X` is the binary in
    BENCH_REAPER_BIN_X, for A/B runs of two builds side by side."""
    if who == "reaper":
        return REAPER_BIN
    variable = "BENCH_REAPER_BIN_" + who.removeprefix("reaper-").upper().replace("-", "_")
    if variable not in os.environ:
        raise SystemExit(f"contender {who}: set {variable} to the binary to run")
    return Path(os.environ[variable])


def reaper_cmd(env: JSON, namespace: str | None, concurrency: int, extra: list[str],
               binary: Path = REAPER_BIN) -> list[str]:
    cmd = [str(binary), "run", "--cluster", env["TESTBED_CLUSTER"], "--output", "json",
           "--succeeded-job-ttl", "15m", "--failed-job-ttl", "24h",
           "--respect-native-ttl", "true", "--concurrency", str(concurrency),
           "--page-size", "500", "--max-run-time", "15m"]
    if namespace:
        cmd += ["--namespaces", namespace]
    return cmd + extra


def run_reaper(env: JSON, logs: Path, tag: str, namespace: str | None, concurrency: int,
               extra: list[str] | None = None, binary: Path = REAPER_BIN,
               wrapper: list[str] | None = None) -> JSON:
    cmd = reaper_cmd(env, namespace, concurrency, extra or [], binary)
    t = timed([*(wrapper or []), *cmd], reaper_env(env), logs / f"{tag}.json",
              logs / f"{tag}.log")
    report = json.loads((logs / f"{tag}.json").read_text() or "{}")
    c = (report.get("clusters") or [{}])[0]
    deleted = c.get("jobs", {}).get("deleted", 0) + c.get("pods", {}).get("deleted", 0)
    st = binary.stat()
    return {**t, "command": " ".join(cmd), "status": c.get("status"),
            "binary": {"path": str(binary), "bytes": st.st_size,
                       "mtime": time.strftime("%H:%M:%S", time.gmtime(st.st_mtime))},
            "jobsSeen": c.get("jobs", {}).get("seen"), "podsSeen": c.get("pods", {}).get("seen"),
            "jobsDeleted": c.get("jobs", {}).get("deleted"),
            "podsDeleted": c.get("pods", {}).get("deleted"), "deleted": deleted,
            "requests": c.get("requests"), "throttled": c.get("throttled"),
            "backlog": c.get("backlog"), "errors": c.get("errors"),
            "reportDurationMs": report.get("durationMs"),
            "logBytes": (logs / f"{tag}.log").stat().st_size,
            "deletesPerSecond": round(deleted / t["wallSeconds"], 1)}


def run_floor(env: JSON, logs: Path, tag: str, namespace: str, concurrency: int) -> JSON:
    cmd = [str(FLOOR_BIN), "--server", env["TESTBED_APISERVER"], "--ca", env["TESTBED_CA_FILE"],
           "--namespace", namespace, "--concurrency", str(concurrency)]
    e = dict(os.environ, BENCH_TOKEN=token_for(env, "reaper"))
    t = timed(cmd, e, logs / f"{tag}.json", logs / f"{tag}.log")
    r = json.loads((logs / f"{tag}.json").read_text() or "{}")
    return {**t, "command": " ".join(cmd), "deleted": r.get("deleted"),
            "requests": r.get("requests"), "throttled": r.get("throttled"),
            "listMs": r.get("listMs"), "deleteMs": r.get("deleteMs"),
            "statuses": r.get("statuses"),
            "deletePhasePerSecond": r.get("deletesPerSecond"),
            "deletesPerSecond": round((r.get("deleted") or 0) / t["wallSeconds"], 1)}


def kubectl_phases(text: str) -> JSON:
    """Phases from kubectl's -v=6 log timestamps: start (first line) -> last DELETE; then the
    wait phase (one GET per object until 404, client-side throttled)."""
    def ts(line: str) -> float:
        h, m, sec = line[6:21].split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)

    lines = text.splitlines()
    deletes = [ln for ln in lines if re.search(r"\] DELETE https://\S+ 200", ln)]
    gets = [ln for ln in lines if re.search(r"\] GET https://\S+/jobs/\S+ ", ln)]
    out: JSON = {}
    if lines and deletes:
        out["deletePhaseSeconds"] = round(ts(deletes[-1]) - ts(lines[0]), 2)
    if len(gets) > 1:
        out["waitPhaseGets"] = len(gets)
        out["waitPhaseGetsPerSecond"] = round((len(gets) - 1) / (ts(gets[-1]) - ts(gets[0])), 2)
    out["clientSideThrottlingWaits"] = sum("client-side throttling" in ln for ln in lines)
    return out


def run_kubectl(env: JSON, logs: Path, tag: str, namespace: str,
                time_limit: float | None = None) -> JSON:
    """`kubectl delete jobs --all -n NS` as an admin would type it, except --wait=false:
    with the default --wait=true kubectl then GETs every deleted Job until 404 at client-go's
    default 5 requests/s (measured: see BENCHMARKS.md), ~N/5 s of waiting after the work is
    done. Deletion speed is taken from the log: start -> last DELETE."""
    cmd = ["kubectl", "delete", "jobs", "--all", "-n", namespace, "--wait=false", "-v=6"]
    e = dict(os.environ, KUBECONFIG=env["KUBECONFIG"])
    t = timed(cmd, e, logs / f"{tag}.out", logs / f"{tag}.log", time_limit)
    text = (logs / f"{tag}.log").read_text()
    phases = kubectl_phases(text)
    deleted = len(re.findall(r"\] DELETE https://\S+ 200", text))
    requests = len(re.findall(r"\] (?:GET|DELETE|POST|PUT|PATCH) https://\S+ \d{3}", text))
    secs = phases.get("deletePhaseSeconds") or t["wallSeconds"]
    return {**t, **phases, "command": " ".join(cmd[:-1]) + "  (-v=6 added to count requests)",
            "deleted": deleted, "requests": requests,
            "throttled": len(re.findall(r"\] \w+ https://\S+ 429", text)),
            "wallSeconds": secs, "processWallSeconds": t["wallSeconds"],
            "deletesPerSecond": round(deleted / secs, 1)}


# ---- the admission policy, on or off -----------------------------------------------------

def reaper_session(env: JSON) -> Session:
    """Requests as the reaper's identity (a presigned EKS token, as the binary sends)."""
    s = Session()
    s.trust_env = False
    s.verify = env["TESTBED_CA_FILE"]
    s.headers["Authorization"] = f"Bearer {token_for(env, 'reaper')}"
    return s


POLICY_PROBE_NAMESPACE = "bench-policy-probe"


def contender(who: str) -> tuple[str, str | None]:
    """`reaper:policy-on` -> ("reaper", "on"); `floor` -> ("floor", None)."""
    base, _, variant = who.partition(":")
    if not variant:
        return base, None
    if variant not in ("policy-on", "policy-off"):
        raise SystemExit(f"contender {who}: the variant must be policy-on or policy-off")
    return base, variant.removeprefix("policy-")


class PolicySwitch:
    """Applies / removes the admission policy with kubectl as admin and waits until the
    apiserver agrees, probing with a dry-run delete of a Pending pod by the reaper
    identity in a namespace of its own (so no drained namespace holds it)."""

    def __init__(self, env: JSON, kube: Kube):
        self.env, self.kube = env, kube
        kube.ensure_namespace(POLICY_PROBE_NAMESPACE)
        kube.wait_for_pod_admission(POLICY_PROBE_NAMESPACE)
        self.pod_url = admission.create_probe_pod(kube.session, env["TESTBED_APISERVER"],
                                                  POLICY_PROBE_NAMESPACE)

    def set(self, on: bool) -> JSON:
        verb = ["apply"] if on else ["delete", "--ignore-not-found"]
        subprocess.run(["kubectl", *verb, "-f", str(ROOT / admission.POLICY_FILE)],
                       env=dict(os.environ, KUBECONFIG=self.env["KUBECONFIG"]), check=True,
                       capture_output=True, text=True, timeout=60)
        waited, seen = admission.wait_enforced(reaper_session(self.env), self.pod_url, on)
        log(f"admission policy {'on' if on else 'off'}: confirmed after {waited:.1f}s "
            f"({len(seen)} probes)")
        return {"admissionPolicy": "on" if on else "off",
                "policySwitchSeconds": round(waited, 2)}

    def close(self) -> None:
        """Back to the testbed's normal state (policy in force); probe namespace gone."""
        try:
            self.set(True)
        finally:
            # Gone before returning, so that a next run can create it again at once.
            workload.delete_namespace(self.kube, POLICY_PROBE_NAMESPACE, wait=120)


# ---- steps -------------------------------------------------------------------------------

def drain_one(a: argparse.Namespace, env: JSON, kube: Kube, who: str, ns: str, rep: int,
              fixture: JSON) -> None:
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    n = count(kube, "batch/v1", "jobs", ns)
    tag = f"{a.label}-{who.replace(':', '-')}-{rep}"
    base, _ = contender(who)
    before, la0 = metrics(kube), loadavg()
    log(f"{tag}: {who} draining {n} Jobs in {ns}")
    if base.startswith("reaper"):
        memory_mb = getattr(a, "memory_mb", None)
        r = run_reaper(env, logs, tag, None if a.cluster_wide else ns, a.concurrency,
                       binary=reaper_bin(base),
                       wrapper=lambda_cpu_wrapper(memory_mb) if memory_mb else None)
        r["memoryMB"] = memory_mb
    elif who == "floor":
        r = run_floor(env, logs, tag, ns, a.concurrency)
    elif who == "kubectl":
        r = run_kubectl(env, logs, tag, ns, a.kubectl_time_limit)
    else:
        raise SystemExit(f"unknown contender {who}")
    jobs_left = count(kube, "batch/v1", "jobs", ns)
    gc = wait_until_zero(kube, "v1", "pods", ns, timeout=1800)
    after = metrics(kube)
    record(Path(a.out), {"step": "drain", "label": a.label, "who": who, "rep": rep,
                         "namespace": ns, "n": n, "podsPerJob": a.pods,
                         "concurrency": a.concurrency, **fixture, **r, "jobsLeft": jobs_left,
                         "podsGoneAfterSeconds": None if gc is None else round(gc, 1),
                         "apiserver": metrics_delta(before, after),
                         "loadavgBefore": la0, "loadavgAfter": loadavg()})
    if not a.keep:
        kube.delete("v1", "namespaces", ns, missing_ok=True)


def step_drain(a: argparse.Namespace) -> None:
    env = load_env()
    kube = admin(env)
    contenders = a.contenders.split(",")
    switch = PolicySwitch(env, kube) if any(contender(w)[1] for w in contenders) else None
    try:
        for rep in range(1, a.repeats + 1):
            # --alternate-order: every other round runs the contenders in reverse, so a
            # fixed position in the round (e.g. right after a drain's GC tail) favours no one.
            order = contenders[::-1] if a.alternate_order and rep % 2 == 0 else contenders
            for who in order:
                if who == "kubectl" and rep > a.kubectl_repeats:
                    continue
                ns = f"bench-{a.label}-{who.replace(':', '-')}-{rep}"
                fixture = seed(kube, ns, a.count, a.pods)
                quiet(kube)
                policy = contender(who)[1]
                if policy:
                    fixture = {**fixture, **switch.set(policy == "on")}
                drain_one(a, env, kube, who, ns, rep, fixture)
    finally:
        if switch:
            switch.close()


def step_one(a: argparse.Namespace) -> None:
    """One contender on an already seeded namespace (e.g. seeded while something else ran)."""
    env = load_env()
    kube = admin(env)
    drain_one(a, env, kube, a.who, a.namespace, a.rep, {"seed": a.seed_note})


def step_ttl(a: argparse.Namespace) -> None:
    """Every Job finished at one instant F with ttlSecondsAfterFinished = D, so all fall due
    at F + D (after seeding): the controller then faces the whole backlog at once, as with
    ttlSecondsAfterFinished: 0 on an aged backlog. Measured: due instant -> no Job left."""
    env = load_env()
    if "ttl-after-finished" not in env.get("TESTBED_CONTROLLERS", ""):
        raise SystemExit("the testbed runs without ttl-after-finished; "
                         "bring it up with EKS_REAPER_TESTBED_TTL_CONTROLLER=1")
    kube = admin(env)
    ns = f"bench-{a.label}-ttl"
    # Expected seeding time from the measured rate, with a wide margin.
    delay = int(a.count / a.seed_rate * 1.5) + 60
    finish = time.time()
    due = finish + delay
    fixed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finish))
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finish - 30))
    real_now = workload.now_rfc3339
    # bulk_finished stamps finish = now(-age) and start = now(-age-30): pin both.
    workload.now_rfc3339 = lambda off=0.0: start if off < -1 else fixed
    try:
        fixture = seed(kube, ns, a.count, a.pods, age_seconds=0, age_jitter_seconds=0,
                       ttl_seconds_after_finished=delay)
    finally:
        workload.now_rfc3339 = real_now
    if time.time() > due:
        raise SystemExit(f"seeding outlasted the TTL ({delay}s); raise --seed-rate margin")
    left0 = count(kube, "batch/v1", "jobs", ns)
    log(f"ttl: {left0} Jobs due at +{due - time.time():.0f}s")
    before, la0 = metrics(kube), loadavg()
    while time.time() < due:
        time.sleep(0.1)
    t0 = time.monotonic()
    timeline = []
    jobs_gone = None
    while time.monotonic() - t0 < a.timeout:
        n = count(kube, "batch/v1", "jobs", ns)
        el = time.monotonic() - t0
        if not timeline or el - timeline[-1][0] >= 5:
            timeline.append((round(el, 1), n))
        if n == 0:
            jobs_gone = el
            break
        time.sleep(0.5)
    window = time.monotonic() - t0
    left = count(kube, "batch/v1", "jobs", ns)
    pods_gone = (wait_until_zero(kube, "v1", "pods", ns, timeout=600)
                 if a.pods != "none" and jobs_gone is not None else None)
    after = metrics(kube)
    record(Path(a.out), {
        "step": "ttl", "label": a.label, "who": "ttl-controller", "namespace": ns, "n": a.count,
        "podsPerJob": a.pods, "ttlSecondsAfterFinished": delay, **fixture, "jobsAtDue": left0,
        "wallSeconds": None if jobs_gone is None else round(jobs_gone, 1),
        "podsGoneAfterSeconds": None if pods_gone is None else round(pods_gone, 1),
        # Stopped by --timeout: the rate over the window, and what was left.
        "stoppedAfterSeconds": None if jobs_gone is not None else round(window, 1),
        "jobsLeftAtStop": None if jobs_gone is not None else left,
        "deletesPerSecond": round(left0 / jobs_gone, 1) if jobs_gone is not None
        else round((left0 - left) / window, 1),
        "timeline": timeline, "apiserver": metrics_delta(before, after),
        "controllerManagerFlags": "--kube-api-qps=500 --kube-api-burst=1000 (testbed); "
                                  "--concurrent-ttl-after-finished-syncs default (5)",
        "loadavgBefore": la0, "loadavgAfter": loadavg()})
    kube.delete("v1", "namespaces", ns, missing_ok=True)


def idle_fixture(a: argparse.Namespace, kube: Kube) -> tuple[JSON, int]:
    """Retained Jobs with their pods + running pods in two namespaces (reused if present)."""
    ns, ns_run = f"bench-{a.label}-idle", f"bench-{a.label}-idle-running"
    t0 = time.monotonic()
    # Retained = failed an hour ago: inside the default 24 h failed-Job retention however long
    # the runs take (succeeded Jobs would fall due 15 minutes after seeding).
    have = count(kube, "batch/v1", "jobs", ns)
    if have >= a.count:
        fixture = {"jobs": have, "pods": count(kube, "v1", "pods", ns), "seed": "reused"}
    else:
        fixture = seed(kube, ns, a.count - have, a.pods, age_seconds=3600,
                       age_jitter_seconds=0, fail_ratio=1.0, prefix="retained")
    have_run = count(kube, "v1", "pods", ns_run)
    if have_run < a.running_pods:
        workload.running_pods(kube, count=a.running_pods - have_run, namespace=ns_run,
                              workers=32)
    running = count(kube, "v1", "pods", ns_run)
    log(f"idle fixture: {fixture} + {running} running pods in {time.monotonic() - t0:.0f}s")
    return fixture, running


def drop_idle_fixture(a: argparse.Namespace, kube: Kube) -> None:
    kube.delete("v1", "namespaces", f"bench-{a.label}-idle", missing_ok=True)
    kube.delete("v1", "namespaces", f"bench-{a.label}-idle-running", missing_ok=True)


def step_idle(a: argparse.Namespace) -> None:
    env = load_env()
    kube = admin(env)
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    fixture, running = idle_fixture(a, kube)
    if a.seed_only:
        return
    quiet(kube)
    for rep in range(1, a.repeats + 1):
        tag = f"{a.label}-idle-{rep}"
        before, la0 = metrics(kube), loadavg()
        r = run_reaper(env, logs, tag, None, a.concurrency)
        after = metrics(kube)
        record(Path(a.out), {"step": "idle", "label": a.label, "who": "reaper", "rep": rep,
                             "retainedJobs": fixture["jobs"], "retainedPods": fixture["pods"],
                             "runningPods": running, **r,
                             "apiserver": metrics_delta(before, after),
                             "loadavgBefore": la0, "loadavgAfter": loadavg()})
        if r["deleted"]:
            log("WARNING: the idle run deleted something (fixture aged past a TTL?)")
    if not a.keep:
        drop_idle_fixture(a, kube)


# Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB.
LAMBDA_MB_PER_VCPU = 1769
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1 cpu controller


def cpu_quota_group(memory_mb: int) -> Path:
    """A cgroup (v1) whose CFS quota is Lambda's CPU share at `memory_mb`."""
    if not (CGROUP_CPU / "cpu.cfs_quota_us").exists():
        raise SystemExit(f"{CGROUP_CPU} has no cpu.cfs_quota_us: needs a writable cgroup v1 "
                         "cpu controller")
    group = CGROUP_CPU / f"eks-reaper-bench-{memory_mb}mb"
    group.mkdir(exist_ok=True)
    period = 100_000
    (group / "cpu.cfs_period_us").write_text(str(period))
    (group / "cpu.cfs_quota_us").write_text(str(round(period * memory_mb / LAMBDA_MB_PER_VCPU)))
    return group


def lambda_cpu_wrapper(memory_mb: int) -> list[str]:
    """A command prefix that runs the command inside the quota group of `memory_mb`."""
    procs = cpu_quota_group(memory_mb) / "cgroup.procs"
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs)]


def step_lambda_cpu(a: argparse.Namespace) -> None:
    """The idle run with the CPU Lambda would give each memory size (a CFS quota of
    memory/1,769 vCPU on this machine's cores): how long a scheduled run takes per size."""
    env = load_env()
    kube = admin(env)
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    fixture, running = idle_fixture(a, kube)
    quiet(kube)
    sizes = [int(x) for x in a.sizes.split(",")]
    for rep in range(1, a.repeats + 1):
        for mb in sizes:  # interleaved, so drift hits every size alike
            tag = f"{a.label}-lambda-cpu-{mb}-{rep}"
            la0 = loadavg()
            r = run_reaper(env, logs, tag, None, a.concurrency, wrapper=lambda_cpu_wrapper(mb))
            record(Path(a.out), {"step": "lambda-cpu", "label": a.label, "who": "reaper",
                                 "rep": rep, "memoryMB": mb,
                                 "cpuShare": round(mb / LAMBDA_MB_PER_VCPU, 4),
                                 "retainedJobs": fixture["jobs"], "runningPods": running, **r,
                                 "loadavgBefore": la0, "loadavgAfter": loadavg()})
    if not a.keep:
        drop_idle_fixture(a, kube)


def step_package(a: argparse.Namespace) -> None:
    zip_path = TARGET / "lambda/eks-reaper/bootstrap.zip"
    built = None
    if a.build or not zip_path.exists():
        t0 = time.monotonic()
        subprocess.check_call(["nice", str(ROOT / "scripts/package")], stdout=sys.stderr)
        built = round(time.monotonic() - t0)
    boot = TARGET / "aarch64-unknown-linux-gnu/release/eks-reaper"  # zipped as `bootstrap`
    rel = REAPER_BIN
    file_out = subprocess.run(["file", "-b", str(boot)], capture_output=True, text=True).stdout
    listing = subprocess.run(["unzip", "-l", str(zip_path)], capture_output=True,
                             text=True).stdout
    record(Path(a.out), {"step": "package", "zipBytes": zip_path.stat().st_size,
                         "zipListing": listing.strip().splitlines()[-3:],
                         "bootstrapBytes": boot.stat().st_size if boot.exists() else None,
                         "bootstrapFile": file_out.strip()[:120],
                         "x86ReleaseBytes": rel.stat().st_size if rel.exists() else None,
                         "zipMtime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(zip_path.stat().st_mtime)),
                         "buildSeconds": built, "command": "scripts/package"})


def step_init(a: argparse.Namespace) -> None:
    """Cold starts of the x86_64 release binary under the Lambda RIE. The RIE starts the
    runtime process at the first invocation; its rapid core logs `INIT REPORT(durationMs: X)`
    = from the start of the init phase (before it starts the bootstrap process) until the
    runtime's first `GET /runtime/invocation/next` (INIT RTDONE): Lambda's INIT phase. (The
    RIE's own `Init Duration` in the REPORT line is not that: it reads ~0.02 ms.) One fresh
    RIE, hence one fresh runtime process, per sample."""
    env = load_env()
    rie = subprocess.check_output([str(ROOT / "testbed/lambda-rie/build.sh")], text=True).strip()
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    e = reaper_env(env)
    e.update({"REAPER_CLUSTERS": env["TESTBED_CLUSTER"], "REAPER_METRICS_SINK": "none",
              "REAPER_NAMESPACES": "bench-init-empty", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
              "AWS_LAMBDA_FUNCTION_TIMEOUT": "60", "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    inits, durations = [], []
    import urllib.request
    for i in range(a.samples):
        p1, p2 = free_ports(2)
        lf = logs / f"init-{i}.log"
        with lf.open("w") as out:
            proc = subprocess.Popen([rie, "--runtime-interface-emulator-address",
                                     f"127.0.0.1:{p1}", "--runtime-api-address",
                                     f"127.0.0.1:{p2}", str(REAPER_BIN)], env=e,
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", p1), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            req = urllib.request.Request(
                f"http://127.0.0.1:{p1}/2015-03-31/functions/function/invocations", data=b"{}")
            body = urllib.request.urlopen(req, timeout=60).read()
            time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        text = lf.read_text()
        m = re.search(r"INIT REPORT\(durationMs: ([\d.]+)\)", text)
        d = re.search(r"\tDuration: ([\d.]+) ms", text)
        if not m:
            raise SystemExit(f"no INIT REPORT in {lf}:\n{text[-2000:]}")
        inits.append(round(float(m.group(1)), 2))
        durations.append(float(d.group(1)) if d else None)
        status = json.loads(body).get("status") if body.startswith(b"{") else body[:80]
        log(f"init sample {i}: {inits[-1]} ms (invoke {durations[-1]} ms, status {status})")
    record(Path(a.out), {"step": "init", "binary": str(REAPER_BIN),
                         "binaryBytes": REAPER_BIN.stat().st_size, "samples": inits,
                         "medianInitMs": statistics.median(inits), "minInitMs": min(inits),
                         "maxInitMs": max(inits), "invokeMs": durations,
                         "loadavg": loadavg(),
                         "command": f"aws-lambda-rie --runtime-interface-emulator-address "
                                    f"127.0.0.1:P1 --runtime-api-address 127.0.0.1:P2 "
                                    f"{REAPER_BIN}; POST .../invocations '{{}}'"})


# ---- summary -----------------------------------------------------------------------------

def med(rows: list[JSON], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def step_summary(a: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(a.out).read_text().splitlines() if line.strip()]
    drains = [r for r in rows if r["step"] in ("drain", "ttl")]
    for label in sorted({r["label"] for r in drains}):
        group = [r for r in drains if r["label"] == label]
        print(f"\n### {label}: N={group[0]['n']} Jobs, pods per Job: {group[0]['podsPerJob']}\n")
        print("| contender | runs | wall s (median) | deletes/s (median) | all runs deletes/s "
              "| peak RSS MB | requests | 429s | pods gone after s |")
        print("|---|---|---|---|---|---|---|---|---|")
        rates = {}
        order = ("reaper", "floor", "kubectl", "ttl-controller")
        contenders = sorted({r["who"] for r in group},
                            key=lambda w: (order.index(w) if w in order else 0.5, w))
        for who in contenders:
            g = [r for r in group if r["who"] == who]
            rates[who] = med(g, "deletesPerSecond")
            if who.startswith("reaper"):
                print(f"<!-- {who} binaries: {sorted({str(r.get('binary')) for r in g})} -->")
            rss = med(g, "maxRssKB")
            print(f"| {who} | {len(g)} | {med(g, 'wallSeconds')} | {rates[who]} | "
                  f"{', '.join(str(r['deletesPerSecond']) for r in g)} | "
                  f"{'' if rss is None else round(rss / 1024, 1)} | "
                  f"{med(g, 'requests') if who != 'ttl-controller' else ''} | "
                  f"{med(g, 'throttled') if who != 'ttl-controller' else ''} | "
                  f"{med(g, 'podsGoneAfterSeconds')} |")
        for mine in [w for w in contenders if w.startswith("reaper") and rates[w]]:
            print()
            for who, v in rates.items():
                if who != mine and v:
                    print(f"- {mine} ÷ {who}: {rates[mine] / v:.2f}× (medians)")
            # Side by side: the same round's floor run, round by round.
            pairs = [(r["deletesPerSecond"], f["deletesPerSecond"])
                     for r in group if r["who"] == mine
                     for f in group if f["who"] == "floor" and f.get("rep") == r.get("rep")]
            if pairs:
                ratios = [round(x / y, 2) for x, y in pairs if y]
                print(f"- {mine} ÷ floor, round by round: {ratios}, median "
                      f"{statistics.median(ratios):.2f}×")
        for on in [w for w in contenders if w.endswith(":policy-on")]:
            off = on.removesuffix(":policy-on") + ":policy-off"
            walls = {(r["who"], r.get("rep")): r["wallSeconds"] for r in group}
            pairs = [(walls[(on, rep)], walls[(off, rep)]) for (w, rep) in walls
                     if w == on and (off, rep) in walls]
            if pairs:
                ratios = [round(x / y, 3) for x, y in pairs if y]
                wall_on = med([r for r in group if r["who"] == on], "wallSeconds")
                wall_off = med([r for r in group if r["who"] == off], "wallSeconds")
                print(f"\n- {on} ÷ {off}, wall time, round by round: {ratios}, median "
                      f"{statistics.median(ratios):.3f}×; median wall {wall_on} s vs "
                      f"{wall_off} s ({wall_on / wall_off:.3f}×)")
        loads = [x for r in group for x in (r.get("loadavgBefore") or [None])[:1] if x]
        if loads:
            print(f"- 1-min load average before runs: {min(loads)}–{max(loads)} (2 cores)")
    peers.summary(rows)
    cost.summary(rows)
    cost.lists_summary(rows)
    idle_rows = [r for r in rows if r["step"] == "idle"]
    for label in sorted({r["label"] for r in idle_rows}):
        idle = [r for r in idle_rows if r["label"] == label]
        f = idle[0]
        print(f"\n### {label}: {f['retainedJobs']} retained Jobs, {f['retainedPods']} finished "
              f"pods, {f['runningPods']} running pods\n")
        print("| run | wall s | CPU s | requests | deleted | LIST bytes jobs | LIST bytes pods "
              "| RSS MB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in idle:
            lb = r["apiserver"]["listBytes"]
            print(f"| {r['rep']} | {r['wallSeconds']} | {r['cpuSeconds']} | {r['requests']} | "
                  f"{r['deleted']} | {lb.get('jobs')} | {lb.get('pods')} | "
                  f"{round(r['maxRssKB'] / 1024, 1)} |")
        print(f"\nmedian wall {med(idle, 'wallSeconds')} s, binary {f.get('binary')}")
    sized = [r for r in rows if r["step"] == "lambda-cpu"]
    if sized:
        f = sized[0]
        print(f"\n### idle run at Lambda's CPU share per memory size ({f['retainedJobs']} "
              f"retained Jobs, {f['runningPods']} running pods)\n")
        print("| memory MB | vCPU share | runs | wall s (median) | all runs | CPU s (median) "
              "| GB-s per run (median) |")
        print("|---|---|---|---|---|---|---|")
        for mb in sorted({r["memoryMB"] for r in sized}):
            g = [r for r in sized if r["memoryMB"] == mb]
            wall = med(g, "wallSeconds")
            print(f"| {mb} | {g[0]['cpuShare']} | {len(g)} | {wall} | "
                  f"{', '.join(str(r['wallSeconds']) for r in g)} | {med(g, 'cpuSeconds')} | "
                  f"{round(wall * mb / 1024, 2)} |")
    for r in rows:
        if r["step"] in ("package", "init"):
            print(f"\n{r['step']}: " + json.dumps({k: v for k, v in r.items()
                                                  if k not in ("step",)}))



# ---- the reaper's priority level and a workload's latency ---------------------------------

APF_WORKLOAD_NS = "bench-apf-workload"


def workload_session(env: JSON, kube: Kube) -> Session:
    """A ServiceAccount allowed to create, read and delete ConfigMaps in its namespace: a
    workload client (service accounts are matched by the `service-accounts` FlowSchema, in
    the `workload-low` level), with a token from the TokenRequest API."""
    ns = APF_WORKLOAD_NS
    kube.ensure_namespace(ns)
    kube.wait_for_pod_admission(ns)
    for api, plural, body in (
        ("v1", "serviceaccounts", {"metadata": {"name": "workload"}}),
        ("rbac.authorization.k8s.io/v1", "roles", {
            "metadata": {"name": "workload"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                       "verbs": ["create", "get", "delete"]}]}),
        ("rbac.authorization.k8s.io/v1", "rolebindings", {
            "metadata": {"name": "workload"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "workload"},
            "subjects": [{"kind": "ServiceAccount", "name": "workload", "namespace": ns}]}),
    ):
        try:
            kube.create(api, plural, body, namespace=ns)
        except Exception as e:  # noqa: BLE001 - already there from an earlier run
            if "AlreadyExists" not in str(e) and "already exists" not in str(e):
                raise
    token = kube.create("v1", "serviceaccounts", {"spec": {"expirationSeconds": 3600}},
                        namespace=ns, name="workload", subresource="token")["status"]["token"]
    s = Session()
    s.trust_env = False
    s.verify = env["TESTBED_CA_FILE"]
    s.headers["Authorization"] = f"Bearer {token}"
    return s


class WorkloadProbe:
    """Creates and reads back one ConfigMap every 1/rate s (each timed), in a thread, until
    stopped; `latencies(t0, t1)` gives the request latencies started in [t0, t1)."""

    def __init__(self, env: JSON, session: Session, rate: float):
        self.api, self.s, self.period = env["TESTBED_APISERVER"], session, 1.0 / rate
        self.samples: list[tuple[float, float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        base = f"{self.api}/api/v1/namespaces/{APF_WORKLOAD_NS}/configmaps"
        i = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            name = f"probe-{i}"
            for method, url, body in (("POST", base, {"metadata": {"name": name},
                                                      "data": {"k": "v"}}),
                                      ("GET", f"{base}/{name}", None),
                                      ("DELETE", f"{base}/{name}", None)):
                t = time.monotonic()
                try:
                    code = self.s.request(method, url, json=body, timeout=30).status_code
                except Exception:  # noqa: BLE001 - a timeout is a sample too
                    code = 0
                self.samples.append((t, time.monotonic() - t, code))
            i += 1
            # A steady rate: after a slow round, the next starts on schedule from now, with no
            # burst to catch up.
            next_at = max(next_at + self.period, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))

    def latencies(self, t0: float, t1: float) -> JSON:
        window = [(d, c) for t, d, c in self.samples if t0 <= t < t1]
        ms = sorted(d * 1000 for d, _ in window)
        if not ms:
            return {"requests": 0}
        def pct(p: float) -> float:
            return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1)
        return {"requests": len(ms), "p50Ms": pct(0.50), "p99Ms": pct(0.99),
                "maxMs": round(ms[-1], 1),
                "errors": sum(1 for _, c in window if not 200 <= c < 300)}


def set_flowschema(env: JSON, kube: Kube, on: bool) -> float:
    """Applies / removes the reaper's FlowSchema and level; returns the seconds until the
    apiserver classifies the reaper's requests accordingly."""
    verb = ["apply"] if on else ["delete", "--ignore-not-found"]
    # The schema being removed, to see the apiserver stop using it.
    removed = ("", "") if on else flowcontrol.uids(kube.session, env["TESTBED_APISERVER"])
    subprocess.run(["kubectl", *verb, "-f", str(ROOT / flowcontrol.FLOWCONTROL_FILE)],
                   env=dict(os.environ, KUBECONFIG=env["KUBECONFIG"]), check=True,
                   capture_output=True, text=True, timeout=60)
    reaper = reaper_session(env)
    if on:
        return flowcontrol.wait_classified(kube.session, reaper, env["TESTBED_APISERVER"])
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if flowcontrol.classified(reaper, env["TESTBED_APISERVER"])[0] != removed[0]:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise SystemExit("the reaper's FlowSchema is still in use 60 s after its removal")


def step_apf(a: argparse.Namespace) -> None:
    env = load_env()
    kube = admin(env)
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    probe = WorkloadProbe(env, workload_session(env, kube), a.rate)
    probe.thread.start()
    try:
        for rep in range(1, a.repeats + 1):
            t0 = time.monotonic()
            time.sleep(a.idle)
            idle = probe.latencies(t0, time.monotonic())
            record(Path(a.out), {"step": "apf", "label": a.label, "rep": rep, "phase": "idle",
                                 "workload": idle, "loadavg": loadavg()})
            for flowschema in (False, True) if rep % 2 else (True, False):
                ns = f"bench-{a.label}-apf-{'on' if flowschema else 'off'}-{rep}"
                fixture = seed(kube, ns, a.count, "none")
                quiet(kube)
                switched = set_flowschema(env, kube, flowschema)
                t0 = time.monotonic()
                r = run_reaper(env, logs, f"{a.label}-apf-{rep}-{flowschema}", ns,
                               a.concurrency)
                during = probe.latencies(t0, time.monotonic())
                record(Path(a.out), {"step": "apf", "label": a.label, "rep": rep,
                                     "phase": "drain", "flowSchema": flowschema,
                                     "switchSeconds": round(switched, 2), **fixture,
                                     "workload": during, "reaper": r, "loadavg": loadavg()})
                kube.delete("v1", "namespaces", ns, missing_ok=True)
    finally:
        probe.stop.set()
        probe.thread.join(timeout=60)
        set_flowschema(env, kube, True)
        workload.delete_namespace(kube, APF_WORKLOAD_NS, wait=120)

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/results.jsonl"))
    ap.add_argument("--logs", default="/tmp/eks-reaper-bench/logs")
    sub = ap.add_subparsers(dest="step", required=True)
    d = sub.add_parser("drain")
    d.add_argument("--label", required=True)
    d.add_argument("--count", type=int, default=10000)
    d.add_argument("--pods", choices=["none", "direct"], default="direct")
    d.add_argument("--repeats", type=int, default=3)
    d.add_argument("--kubectl-repeats", type=int, default=1)
    d.add_argument("--memory-mb", type=int, default=None,
                   help="run eks-reaper with Lambda's CPU share at this memory size "
                        "(see lambda-cpu)")
    d.add_argument("--kubectl-time-limit", type=float, default=None,
                   help="stop kubectl after this many seconds; its rate is then measured "
                        "over that window (deleted so far / time)")
    d.add_argument("--contenders", default="reaper,floor,kubectl",
                   help="comma list of reaper, reaper-X (BENCH_REAPER_BIN_X), floor, kubectl; "
                        "a reaper contender may end in :policy-on or :policy-off")
    d.add_argument("--alternate-order", action="store_true",
                   help="run the contenders in reverse order in every other round")
    d.add_argument("--concurrency", type=int, default=16)
    d.add_argument("--cluster-wide", action="store_true",
                   help="run eks-reaper without --namespaces (nothing else may be seeded)")
    d.add_argument("--keep", action="store_true", help="keep the drained namespaces")
    o = sub.add_parser("one")
    o.add_argument("--label", required=True)
    o.add_argument("--who", choices=["reaper", "floor", "kubectl"], required=True)
    o.add_argument("--namespace", required=True)
    o.add_argument("--rep", type=int, default=1)
    o.add_argument("--pods", choices=["none", "direct"], default="direct")
    o.add_argument("--concurrency", type=int, default=16)
    o.add_argument("--cluster-wide", action="store_true")
    o.add_argument("--keep", action="store_true")
    o.add_argument("--seed-note", default="pre-seeded with testbed.workload bulk")
    o.add_argument("--kubectl-time-limit", type=float, default=None)
    t = sub.add_parser("ttl")
    t.add_argument("--label", required=True)
    t.add_argument("--count", type=int, default=10000)
    t.add_argument("--pods", choices=["none", "direct"], default="direct")
    t.add_argument("--seed-rate", type=float, default=60.0, help="expected Jobs/s seeding")
    t.add_argument("--timeout", type=float, default=3600)
    i = sub.add_parser("idle")
    i.add_argument("--label", default="idle")
    i.add_argument("--count", type=int, default=10000)
    i.add_argument("--pods", choices=["none", "direct"], default="direct")
    i.add_argument("--running-pods", type=int, default=5000)
    i.add_argument("--repeats", type=int, default=5)
    i.add_argument("--concurrency", type=int, default=16)
    i.add_argument("--keep", action="store_true")
    i.add_argument("--seed-only", action="store_true")
    c = sub.add_parser("lambda-cpu")
    c.add_argument("--label", default="idle")
    c.add_argument("--count", type=int, default=10000)
    c.add_argument("--pods", choices=["none", "direct"], default="direct")
    c.add_argument("--running-pods", type=int, default=5000)
    c.add_argument("--sizes", default="128,256,512,1024,1769", help="Lambda memory sizes, MB")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--concurrency", type=int, default=16)
    c.add_argument("--keep", action="store_true")
    p = sub.add_parser("package")
    p.add_argument("--build", action="store_true")
    n = sub.add_parser("init")
    n.add_argument("--samples", type=int, default=10)
    f = sub.add_parser("apf")
    f.add_argument("--label", default="apf")
    f.add_argument("--count", type=int, default=10000)
    f.add_argument("--rate", type=float, default=10.0, help="workload rounds per second "
                   "(create, get, delete a ConfigMap)")
    f.add_argument("--idle", type=float, default=20.0, help="seconds of idle baseline")
    f.add_argument("--repeats", type=int, default=2)
    f.add_argument("--concurrency", type=int, default=16)
    peers.add_parser(sub)
    cost.add_parser(sub)
    cost.add_lists_parser(sub)
    sub.add_parser("summary")
    a = ap.parse_args(argv)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    {"drain": step_drain, "one": step_one, "ttl": step_ttl, "idle": step_idle,
     "lambda-cpu": step_lambda_cpu, "package": step_package,
     "init": step_init, "apf": step_apf, "summary": step_summary,
     "peers": lambda a: peers.step_peers(a, sys.modules[__name__]),
     "cost": lambda a: cost.step_cost(a, sys.modules[__name__]),
     "cost-lists": lambda a: cost.step_lists(a, sys.modules[__name__])}[a.step](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
