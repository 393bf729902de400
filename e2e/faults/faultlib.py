"""Helpers for the fault-matrix tests: run the real eks-reaper binary (CLI or Lambda under
AWS's Runtime Interface Emulator), seed a namespace with objects that are due and objects
that must survive, and compare the report with what the apiserver shows afterwards.

Nothing here talks to the product's code: the binary is a black box driven by its
documented configuration (REAPER_* variables, flags, the Lambda event).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import requests

from testbed.fargate.kubelet import KUBELET
from testbed.fargate.nodes import EC2_NODE
from testbed.kube import ApiError, Kube, now_rfc3339
from testbed.tokens import token_for
from testbed.ports import free_port, free_ports
from testbed.workload import (BULK_MANAGER, RUN_LABEL, bulk_finished, finished_job_status,
                              job_manifest, pod_manifest, terminated_pod_status)

JSON = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
KEEP_ANNOTATION = "eks-reaper/keep"  # docs/concepts.md: explicit opt-out on the object
TWO_DAYS = 2 * 86400.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class SafetyError(Exception):
    """A wrong deletion or a report that does not match the apiserver: a named error type,
    so a failing case says which of the four checks broke."""


class ScenarioNotReached(Exception):
    """The fault could not be produced as intended: the test proves nothing, so it fails
    with this instead of passing."""


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise ScenarioNotReached(msg)


def safe(cond: bool, msg: str) -> None:
    if not cond:
        raise SafetyError(msg)


# ---- the binary ------------------------------------------------------------------------

def cache_dir() -> Path:
    """Same rule as scripts/lib/common.sh."""
    if os.environ.get("EKS_REAPER_CACHE"):
        return Path(os.environ["EKS_REAPER_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "eks-reaper"


def reaper_binary() -> Path:
    """The debug build (`source scripts/lib/common.sh; cargo build --bin eks-reaper`), or
    $EKS_REAPER_BIN."""
    if os.environ.get("EKS_REAPER_BIN"):
        return Path(os.environ["EKS_REAPER_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or cache_dir() / "target")
    return target / "debug" / "eks-reaper"


def build_reaper() -> Path:
    """`cargo build --locked --bin eks-reaper` (a no-op when up to date), so the tests never
    run a stale binary; skipped when $EKS_REAPER_BIN names one."""
    if not os.environ.get("EKS_REAPER_BIN"):
        env = {**os.environ, "CARGO_TARGET_DIR": str(reaper_binary().parents[1])}
        out = subprocess.run(["cargo", "build", "--locked", "--bin", "eks-reaper"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"cargo build failed:\n{out.stderr[-4000:]}")
    return reaper_binary()


@functools.lru_cache(maxsize=1)
def rie_binary() -> Path:
    """AWS's Lambda Runtime Interface Emulator, built (once, cached) by testbed/lambda-rie."""
    out = subprocess.run([str(ROOT / "testbed/lambda-rie/build.sh")], check=True,
                         capture_output=True, text=True, timeout=900)
    return Path(out.stdout.strip().splitlines()[-1])


# Testbed keys the product reads (standard AWS variables); nothing else leaks in.
AWS_KEYS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH")


def reaper_env(env: JSON, extra: dict[str, str | None] | None = None,
               json_logs: bool = True) -> dict[str, str]:
    """A clean environment for the binary: the testbed's AWS settings, JSON logs, and
    `extra` (a None value removes the variable). No REAPER_* from the caller's shell."""
    out = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "RUST_LOG": "info", "AWS_EC2_METADATA_DISABLED": "true"}
    for k in AWS_KEYS:
        if k in env:
            out[k] = env[k]
    if json_logs:
        out["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
    for k, v in (extra or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@dataclasses.dataclass
class Run:
    """One finished CLI run."""

    args: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> JSON | None:
        """The JSON report on stdout (`--output json`), if any."""
        text = self.stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None

    @property
    def cluster(self) -> JSON:
        """The first (only) cluster entry of the report."""
        safe(self.report is not None, f"no JSON report on stdout:\n{self.describe()}")
        return self.report["clusters"][0]

    @property
    def logs(self) -> list[JSON]:
        return parse_logs(self.stderr)

    def tail(self, n: int = 40) -> str:
        return "\n".join(ANSI.sub("", self.stderr).splitlines()[-n:])

    def describe(self) -> str:
        return (f"eks-reaper {' '.join(self.args)} -> rc={self.rc} in {self.seconds:.1f}s\n"
                f"stdout:\n{self.stdout[-3000:]}\nstderr (tail):\n{self.tail()}")


def parse_logs(text: str) -> list[JSON]:
    """JSON log lines (AWS_LAMBDA_LOG_FORMAT=JSON) as dicts; other lines as {"raw": line}."""
    out = []
    for line in ANSI.sub("", text).splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            out.append(obj if isinstance(obj, dict) else {"raw": line})
        except json.JSONDecodeError:
            out.append({"raw": line})
    return out


def log_message(entry: JSON) -> str:
    return str((entry.get("fields") or {}).get("message") or entry.get("raw") or "")


def find_logs(logs: list[JSON], pattern: str, level: str | None = None,
              fields: tuple[str, ...] = ()) -> list[JSON]:
    """Log entries whose message, or one of the named `fields` (e.g. "error"), matches
    `pattern` (regex, case-insensitive); `level` keeps only that level (WARN, ERROR...).
    Object names are random hex, so free-text search over every field is avoided."""
    rx = re.compile(pattern, re.I)
    out = []
    for e in logs:
        if level and str(e.get("level", "")).upper() != level.upper():
            continue
        texts = [log_message(e)] + [str((e.get("fields") or {}).get(f, "")) for f in fields]
        if any(rx.search(t) for t in texts):
            out.append(e)
    return out


def summary_report(text: str) -> JSON | None:
    """The report carried by the run's `eks-reaper run summary` log line (JSON logs), for
    runs whose report is not returned (a failed Lambda invocation)."""
    for e in reversed(parse_logs(text)):
        if log_message(e) == "eks-reaper run summary" and "report" in (e.get("fields") or {}):
            report = e["fields"]["report"]
            return report if isinstance(report, dict) else None
    return None


def cluster_dimensions(env: JSON, cluster: str | None = None) -> list[JSON]:
    """The dimensions of a cluster's metrics: its name, Region and account (`self`: the
    reaper's own, no role assumed), the testbed cluster's unless `cluster` is given."""
    return [{"Name": "ClusterName", "Value": cluster or env["TESTBED_CLUSTER"]},
            {"Name": "Region", "Value": env["AWS_REGION"]},
            {"Name": "Account", "Value": "self"}]


def cli_args(cluster: str, namespace: str | None, *more: str) -> list[str]:
    args = ["run", "--cluster", cluster, "--output", "json"]
    if namespace:
        args += ["--namespaces", namespace]
    return args + list(more)


def start_cli(env: JSON, args: list[str], extra_env: dict[str, str | None] | None = None,
              json_logs: bool = True) -> subprocess.Popen:
    """Starts the CLI; stdout/stderr go to temp files (no pipe can fill up)."""
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen([str(reaper_binary()), *args], stdout=out, stderr=err,
                         env=reaper_env(env, extra_env, json_logs), cwd=str(ROOT))
    p._faults = (out, err, time.monotonic(), args)  # type: ignore[attr-defined]
    return p


def finish_cli(p: subprocess.Popen, timeout: float = 180) -> Run:
    out, err, t0, args = p._faults  # type: ignore[attr-defined]
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = -9
    seconds = time.monotonic() - t0
    out.seek(0)
    err.seek(0)
    run = Run(args, rc, out.read(), err.read(), seconds)
    out.close()
    err.close()
    return run


def run_cli(env: JSON, args: list[str], extra_env: dict[str, str | None] | None = None,
            timeout: float = 180, json_logs: bool = True) -> Run:
    return finish_cli(start_cli(env, args, extra_env, json_logs), timeout)


def stderr_so_far(p: subprocess.Popen) -> str:
    """What the running CLI has written to stderr so far (a file, see start_cli)."""
    with open(f"/proc/{p.pid}/fd/2") as f:
        return f.read()


@contextlib.contextmanager
def paused(p: subprocess.Popen, after: str, timeout: float = 30) -> Iterator[None]:
    """Waits until the running CLI has logged `after`, stops it (SIGSTOP) for the body of
    the block, then lets it go on (SIGCONT)."""
    wait_until(lambda: after in stderr_so_far(p) or p.poll() is not None, timeout, 0.002,
               f"reaper to log {after!r}")
    require(p.poll() is None, "the run ended before it could be paused")
    os.kill(p.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(p.pid, signal.SIGCONT)


# ---- the Lambda entry point under the Runtime Interface Emulator -------------------------

@dataclasses.dataclass
class Invocation:
    status: int
    body: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            return None

    @property
    def failed(self) -> bool:
        """The RIE answers a function error with {"errorType", "errorMessage"}."""
        j = self.json
        return isinstance(j, dict) and "errorType" in j


class LambdaRie:
    """`aws-lambda-rie` running the binary as a Lambda function (AWS_LAMBDA_RUNTIME_API set
    by the emulator). Both the invoke port and the Runtime API port are picked free, so
    several emulators can run on one machine."""

    def __init__(self, env: JSON, extra_env: dict[str, str | None] | None = None,
                 timeout_seconds: int = 120):
        self.env = env
        self.extra = {"AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_seconds), **(extra_env or {})}
        self.port, self.api_port = free_ports(2)
        self.log = tempfile.NamedTemporaryFile(mode="w+", prefix="faults-rie-", suffix=".log")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LambdaRie":
        cmd = [str(rie_binary()),
               "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
               "--runtime-api-address", f"127.0.0.1:{self.api_port}",
               str(reaper_binary())]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=reaper_env(self.env, self.extra), cwd=str(ROOT),
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"aws-lambda-rie did not start:\n{self.output()}")

    def invoke(self, payload: str | bytes | Any, timeout: float = 180) -> Invocation:
        data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        r = requests.post(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=data, timeout=timeout)
        return Invocation(r.status_code, r.text)

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- seeding a namespace -----------------------------------------------------------------

@dataclasses.dataclass
class Seed:
    """What a test put in its namespace: due objects (the reaper should delete them under
    the default retentions) and objects it must never delete."""

    namespace: str
    due_jobs: dict[str, str] = dataclasses.field(default_factory=dict)   # name -> uid
    due_pods: dict[str, str] = dataclasses.field(default_factory=dict)
    keep_jobs: dict[str, str] = dataclasses.field(default_factory=dict)
    keep_pods: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def jobs(self) -> int:
        return len(self.due_jobs) + len(self.keep_jobs)


def _job(kube: Kube, ns: str, name: str, *, finished_ago: float | None, succeeded: bool = True,
         annotations: dict[str, str] | None = None, suspend: bool = False,
         ttl: int | None = None, labels: dict[str, str] | None = None) -> JSON:
    body = job_manifest(name, ns, run_seconds=0, labels=labels, annotations=annotations,
                        managed_by=BULK_MANAGER, ttl_seconds_after_finished=ttl)
    if suspend:
        body["spec"]["suspend"] = True
    job = kube.create("batch/v1", "jobs", body, namespace=ns)
    if finished_ago is not None:
        finish = now_rfc3339(-finished_ago)
        start = now_rfc3339(-finished_ago - 30)
        job = kube.patch_status("batch/v1", "jobs", name,
                                {"status": finished_job_status(succeeded, start, finish)}, ns)
    return job


def _bare_pod(kube: Kube, ns: str, name: str, *, phase: str, finished_ago: float = 0.0,
              annotations: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> JSON:
    """A pod with no owner, bound to the testbed's EC2-like node; the Fargate stand-in
    keeps off it (KUBELET=none) and the status is written here."""
    ann = {KUBELET: "none", **(annotations or {})}
    pod = kube.create("v1", "pods", pod_manifest(name, ns, node=EC2_NODE, labels=labels,
                                                 annotations=ann), namespace=ns)
    if phase == "Running":
        start = now_rfc3339(-60)
        status = {"phase": "Running", "startTime": start, "hostIP": "10.0.0.10",
                  "conditions": [{"type": "Ready", "status": "True",
                                  "lastTransitionTime": start}]}
    else:
        status = terminated_pod_status(pod, phase == "Succeeded",
                                       now_rfc3339(-finished_ago - 30), now_rfc3339(-finished_ago))
    return kube.patch_status("v1", "pods", name, {"status": status}, ns,
                             patch_type="application/strategic-merge-patch+json")


def seed(kube: Kube, ns: str, *, due_jobs: int = 20, due_pods: int = 3,
         keep: bool = True, workers: int = 48) -> Seed:
    """Fills `ns`:

    due (under the default retentions: succeeded 15m, failed 24h, bare pods 1h):
      `due_jobs` Jobs finished two days ago (10 % failed), `due_pods` bare pods that
      finished two days ago;
    keep (eks-reaper must never delete these):
      Jobs finished a minute ago, an unfinished Job, a suspended Job, an opted-out Job
      finished two days ago, a Job with ttlSecondsAfterFinished (the native controller's),
      a running bare pod, an opted-out finished bare pod, a bare pod finished a minute ago.
    """
    kube.ensure_namespace(ns)
    kube.wait_for_pod_admission(ns)
    s = Seed(ns)
    run = secrets.token_hex(3)
    if due_jobs:
        r = bulk_finished(kube, count=due_jobs, namespace=ns, age_seconds=TWO_DAYS,
                          prefix="due", run_id=run, workers=workers)
        require(r.failed == 0, f"seeding failed: {r.errors}")
        for j in kube.list("batch/v1", "jobs", ns, label_selector=f"{RUN_LABEL}={run}"):
            s.due_jobs[j["metadata"]["name"]] = j["metadata"]["uid"]
        require(len(s.due_jobs) == due_jobs, f"seeded {len(s.due_jobs)} of {due_jobs} jobs")
    for i in range(due_pods):
        p = _bare_pod(kube, ns, f"due-bare-{i:03d}", phase="Succeeded", finished_ago=TWO_DAYS)
        s.due_pods[p["metadata"]["name"]] = p["metadata"]["uid"]
    if not keep:
        return s
    keep_jobs = [
        ("keep-recent-0", dict(finished_ago=60.0)),
        ("keep-recent-1", dict(finished_ago=60.0, succeeded=False)),
        ("keep-unfinished", dict(finished_ago=None)),
        ("keep-suspended", dict(finished_ago=None, suspend=True)),
        ("keep-opted-out", dict(finished_ago=TWO_DAYS, annotations={KEEP_ANNOTATION: "true"})),
        ("keep-native-ttl", dict(finished_ago=TWO_DAYS, ttl=30 * 86400)),
    ]
    for name, kw in keep_jobs:
        s.keep_jobs[name] = _job(kube, ns, name, **kw)["metadata"]["uid"]
    keep_pods = [
        ("keep-running", dict(phase="Running")),
        ("keep-bare-opted-out", dict(phase="Failed", finished_ago=TWO_DAYS,
                                     annotations={KEEP_ANNOTATION: "true"})),
        ("keep-bare-recent", dict(phase="Succeeded", finished_ago=60.0)),
    ]
    for name, kw in keep_pods:
        s.keep_pods[name] = _bare_pod(kube, ns, name, **kw)["metadata"]["uid"]
    return s


@dataclasses.dataclass
class Observed:
    """What the apiserver shows after a run."""

    jobs: dict[str, str]   # uid -> name, present and not being deleted
    pods: dict[str, str]
    seed: Seed

    @property
    def due_jobs_deleted(self) -> int:
        return sum(1 for uid in self.seed.due_jobs.values() if uid not in self.jobs)

    @property
    def due_pods_deleted(self) -> int:
        return sum(1 for uid in self.seed.due_pods.values() if uid not in self.pods)

    @property
    def due_left(self) -> int:
        return (len(self.seed.due_jobs) - self.due_jobs_deleted
                + len(self.seed.due_pods) - self.due_pods_deleted)


def observe(kube: Kube, s: Seed) -> Observed:
    def present(api: str, plural: str) -> dict[str, str]:
        return {o["metadata"]["uid"]: o["metadata"]["name"]
                for o in kube.list(api, plural, s.namespace)
                if not o["metadata"].get("deletionTimestamp")}
    return Observed(present("batch/v1", "jobs"), present("v1", "pods"), s)


def assert_nothing_wrong_deleted(kube: Kube, s: Seed) -> Observed:
    """Every object the seed marked `keep` is still there, untouched (same uid, not being
    deleted). Returns the observation for count checks."""
    o = observe(kube, s)
    gone_jobs = sorted(n for n, uid in s.keep_jobs.items() if uid not in o.jobs)
    gone_pods = sorted(n for n, uid in s.keep_pods.items() if uid not in o.pods)
    safe(not gone_jobs and not gone_pods,
         f"eks-reaper deleted objects it must keep: jobs={gone_jobs} pods={gone_pods}")
    return o


def assert_nothing_deleted(kube: Kube, s: Seed) -> Observed:
    """Not one object of the seed is gone (a run that must stop before deleting)."""
    o = assert_nothing_wrong_deleted(kube, s)
    safe(o.due_jobs_deleted == 0 and o.due_pods_deleted == 0,
         f"nothing may be deleted, but {o.due_jobs_deleted} jobs and {o.due_pods_deleted} "
         "pods are gone")
    return o


def assert_counts_match(cluster: JSON, o: Observed, *, complete: bool = True) -> None:
    """The report's deletion counts are what the apiserver shows: every due object that is
    gone was counted deleted once, and (for a complete listing) every due object is
    accounted for as deleted, already gone, conflict, backlog or error."""
    safe(cluster["jobs"]["deleted"] == o.due_jobs_deleted,
         f"report says {cluster['jobs']['deleted']} jobs deleted, apiserver shows "
         f"{o.due_jobs_deleted} of {len(o.seed.due_jobs)} due jobs gone")
    safe(cluster["pods"]["deleted"] == o.due_pods_deleted,
         f"report says {cluster['pods']['deleted']} pods deleted, apiserver shows "
         f"{o.due_pods_deleted} of {len(o.seed.due_pods)} due pods gone")
    if complete:
        accounted = (cluster["jobs"]["deleted"] + cluster["pods"]["deleted"]
                     + cluster["alreadyGone"] + cluster["conflicts"] + cluster["backlog"]
                     + sum(cluster["errors"].values()))
        due = len(o.seed.due_jobs) + len(o.seed.due_pods)
        safe(accounted == due,
             f"{due} due objects but the report accounts for {accounted}: {cluster}")


# ---- access entries (the authenticator's table) ---------------------------------------------

@contextlib.contextmanager
def access_entries(env: JSON) -> Iterator[JSON]:
    """Yields the access-entries table as a dict; the test edits it and writes it with
    `commit_access_entries(env, table)` (the webhook re-reads it on every review). The
    original file is restored on exit, whatever happens."""
    path = Path(env["TESTBED_ACCESS_ENTRIES"])
    original = path.read_text()
    try:
        yield json.loads(original)
    finally:
        _write_atomic(path, original)


def commit_access_entries(env: JSON, table: JSON) -> None:
    _write_atomic(Path(env["TESTBED_ACCESS_ENTRIES"]), json.dumps(table, indent=2))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ---- endpoints that fail: down, hung, or switchable -------------------------------------

class Endpoint:
    """A TCP endpoint on loopback in front of `target` (host:port) whose behaviour can be
    switched while clients use it: `pass` forwards each connection, `down` resets it at
    once (the client sees the connection refused or reset), `hung` accepts it and then reads
    nothing, answers nothing and closes nothing until the mode changes or the endpoint
    stops. A mode applies to connections accepted from then on; switching to `pass` also
    releases the held ones (closed, as a server that comes back would). Close with `stop()`
    or use it as a context manager."""

    def __init__(self, target: str | None = None, mode: str = "pass"):
        self.target = target
        self.mode = mode
        self.accepted = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(128)
        self.srv.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def set(self, mode: str) -> None:
        assert mode in ("pass", "down", "hung"), mode
        self.mode = mode
        if mode == "pass":
            self._release()

    def _release(self) -> None:
        with self.lock:
            held, self.held = self.held, []
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self.mode
            if mode == "hung":
                with self.lock:
                    self.held.append(conn)
            elif mode == "down" or self.target is None:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        host, port = self.target.rsplit(":", 1)
        try:
            up = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            conn.close()
            return
        up.settimeout(None)
        conn.settimeout(None)

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for x in (a, b):
                    with contextlib.suppress(OSError):
                        x.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join()
        up.close()
        conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self._release()
        self.srv.close()

    def __enter__(self) -> "Endpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def hung_endpoint() -> Iterator[Endpoint]:
    """A TCP listener on loopback that accepts every connection, reads nothing, answers
    nothing and closes nothing until the block ends (`.url`, `.accepted`)."""
    with Endpoint(mode="hung") as ep:
        yield ep


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connection refused."""
    return f"http://127.0.0.1:{free_port()}"


# ---- an admission policy that refuses the reaper's deletions ----------------------------

ADMISSION = "admissionregistration.k8s.io/v1"
PROTECTED_LABEL = "faults.eks-reaper/protected"


def guard_policy(kube: Kube, env: dict, namespace: str | list[str], reason: str | None) -> str:
    """Creates a ValidatingAdmissionPolicy refusing the reaper's DELETE of Jobs and pods
    labelled PROTECTED_LABEL in `namespace` (one or several), and its binding; returns their
    name. With `reason` (e.g. "Forbidden") it answers 403, without 422 `Invalid`."""
    namespaces = [namespace] if isinstance(namespace, str) else list(namespace)
    name = f"faults-guard-{secrets.token_hex(3)}"
    validation = {
        "expression": f"!has(oldObject.metadata.labels) || "
                      f"!('{PROTECTED_LABEL}' in oldObject.metadata.labels)",
        "message": "protected by the faults guard",
    }
    if reason:
        validation["reason"] = reason
    kube.create(ADMISSION, "validatingadmissionpolicies", {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["DELETE"],
                 "resources": ["jobs"]},
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"],
                 "resources": ["pods"]},
            ]},
            "matchConditions": [{
                "name": "reaper-only",
                "expression": f"'{env['TESTBED_REAPER_GROUP']}' in request.userInfo.groups",
            }],
            "validations": [validation],
        }})
    kube.create(ADMISSION, "validatingadmissionpolicybindings", {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In",
                "values": namespaces}]}},
        }})
    return name


def wait_until_in_force(env: dict, kube: Kube, namespace: str, policy: str,
                        status: int) -> None:
    """The apiserver loads new policies asynchronously: probe with a server-side dry-run
    DELETE, as the reaper, of a protected pod that just finished (so no other policy
    refuses it, and the reaper keeps it: it is inside its retention) until `policy`
    refuses it."""
    probe = "guard-probe"
    _bare_pod(kube, namespace, probe, phase="Succeeded", labels={PROTECTED_LABEL: "true"})
    reaper = Kube(env["TESTBED_APISERVER"], ca=env["TESTBED_CA_FILE"], token=token_for(env))
    path = f"/api/v1/namespaces/{namespace}/pods/{probe}"
    seen: list[int] = []

    def refused() -> bool:
        try:
            # With a body, DELETE reads its options (dryRun included) from the body alone.
            reaper.request("DELETE", path, body={"apiVersion": "v1", "kind": "DeleteOptions",
                                                 "dryRun": ["All"]})
            seen.append(200)
            return False
        except ApiError as e:
            seen.append(e.status)
            return e.status == status and f"'{policy}'" in e.message

    try:
        wait_until(refused, 30, 0.25, "the admission policy in force")
    except TimeoutError as e:
        raise ScenarioNotReached(f"policy never refused the probe: {seen[:3]}...{seen[-3:]}") from e
    finally:
        reaper.close()


# ---- misc ------------------------------------------------------------------------------------

def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached in {timeout}s")


def delete_quietly(kube: Kube, api: str, plural: str, name: str, ns: str | None = None) -> None:
    try:
        kube.delete(api, plural, name, ns, missing_ok=True)
    except (ApiError, requests.RequestException):
        pass


class Background(threading.Thread):
    """Runs `fn` in a thread and re-raises its exception on `join_result()`."""

    def __init__(self, fn, *a, **kw):
        super().__init__(daemon=True)
        self.fn, self.a, self.kw = fn, a, kw
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn(*self.a, **self.kw)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self.error = e

    def join_result(self, timeout: float = 120) -> Any:
        self.join(timeout)
        if self.error:
            raise self.error
        return self.result


# ---- etcd compaction (through etcd's v3 HTTP/JSON gateway; no etcdctl) -------------------------

def _b64(s: str) -> str:
    import base64
    return base64.b64encode(s.encode()).decode()


def compact_etcd(env: JSON) -> int:
    """Compacts etcd at its current revision the way kube-apiserver's own compactor does:
    `compact_rev_key` (watched by every apiserver) is set to the revision, then the
    keyspace is compacted there. Returns the revision."""
    etcd = env["TESTBED_ETCD"]
    r = requests.post(f"{etcd}/v3/kv/put", json={"key": _b64("compact_rev_key"),
                                                  "value": _b64("0")}, timeout=10)
    r.raise_for_status()
    rev = int(r.json()["header"]["revision"])
    r = requests.post(f"{etcd}/v3/kv/put", json={"key": _b64("compact_rev_key"),
                                                  "value": _b64(str(rev))}, timeout=10)
    r.raise_for_status()
    r = requests.post(f"{etcd}/v3/kv/compaction", json={"revision": str(rev), "physical": True},
                      timeout=30)
    r.raise_for_status()
    return rev
