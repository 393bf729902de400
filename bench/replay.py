"""Replays the outage: a time-compressed bursty Fargate day on the testbed, three arms.

    python bench/replay.py --binary PATH --rie PATH --out docs/replay [--smoke]

Run by `scripts/replay`, which builds the binary and the RIE and brings up a testbed with
three Fargate subnets. The story, scaled (BENCHMARKS.md "Replay" has the table): a workflow
engine runs short Jobs in a Fargate namespace, a burst at the top of every hour over a
steady trickle, some failing; every finished pod keeps its subnet IP until deleted.

- arm `a`, no cleaner: the Fargate subnets fill up; the exhaustion moment is recorded.
- arm `b`, eks-reaper on its schedule: the real binary behind AWS's Lambda Runtime Interface
  Emulator, invoked every scaled 5 minutes with its default retentions scaled by the same
  factor. Free IPs must never reach zero; low-headroom mode must be on exactly when the
  tightest subnet is under the threshold.
- arm `c`, eks-reaper that stalls: as `b` until the stall, then the same function is
  invoked with `{"dryRun": true}` (it reads the subnets and forecasts, deletes nothing).
  The forecast alarm's condition (IpExhaustionHours under ForecastThresholdHours, two
  consecutive runs) must come before the free-percent alarm's and before exhaustion.

Safety is asserted across the whole replay (exit 1 otherwise): a watch on the namespace's
Jobs and pods sees every deletion; no Job without a terminal condition and no pod not
Succeeded/Failed may ever be marked for deletion, and a failed Job may go only after its
(scaled) retention.

Output: `samples.jsonl` (one line per sample: arm, scaled hours, free IPs per subnet and in
total, the report's forecast / low-headroom / deletion fields) and `summary.json` (per arm
results, alarm moments, margins, forecast accuracy before/after) under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed import aws  # noqa: E402
from testbed.kube import ApiError, Kube, parse_rfc3339  # noqa: E402
from testbed.state import load_env, trust_only_the_testbed_ca  # noqa: E402
from testbed.workload import EXIT_CODE, RUN_LABEL, RUN_SECONDS, job_manifest  # noqa: E402

# ---- the story and its scaling -----------------------------------------------------------

#: The story: three /20 subnets, ~500 Jobs an hour.
STORY_IPS = 3 * (2 ** 12 - 5)
STORY_JOBS_PER_HOUR = 500
#: template.yaml defaults the alarms are compared with.
FORECAST_THRESHOLD_HOURS = 6.0  # ForecastThresholdHours, 2 consecutive runs
FREE_PERCENT_THRESHOLD = 10.0  # SubnetFreePercentThreshold, 1 run
CLUSTER_IPS_THRESHOLD = 500  # ClusterAvailableIpsThreshold (AbsoluteIpAlarms, off by default)
SUBNET_IPS_THRESHOLD = 100  # SubnetAvailableIpsThreshold (AbsoluteIpAlarms)
LOW_HEADROOM_FRACTION = 0.10  # REAPER_LOW_HEADROOM_FRACTION default
SCHEDULE_MINUTES = 5  # rate(5 minutes)


@dataclass
class Scale:
    """Real seconds per scaled hour, and the load per scaled hour."""

    seconds_per_hour: float = 6.0
    burst: int = 5  # Jobs at the top of every hour, spread over `burst_minutes`
    burst_minutes: float = 2.0
    trickle: int = 2  # Jobs spread evenly over the hour
    fail_every: int = 8  # every 8th Job fails
    run_minutes: tuple[float, float] = (2.0, 6.0)  # a Job's pod runs this long (scaled)

    def real(self, minutes: float) -> float:
        """Real seconds of `minutes` scaled minutes."""
        return minutes * self.seconds_per_hour / 60.0

    def duration(self, minutes: float) -> str:
        """`minutes` scaled minutes as a REAPER_* duration (milliseconds)."""
        return f"{round(self.real(minutes) * 1000)}ms"

    @property
    def factor(self) -> float:
        """How many scaled seconds one real second is."""
        return 3600.0 / self.seconds_per_hour

    def jobs_per_hour(self) -> int:
        return self.burst + self.trickle

    def schedule(self, hours: float) -> list[tuple[float, int]]:
        """(scaled minute, Job index) for every Job of the first `hours` scaled hours."""
        out = []
        n = 0
        for h in range(int(hours) + 1):
            for i in range(self.burst):
                out.append((h * 60 + i * self.burst_minutes / self.burst, n))
                n += 1
            step = 60.0 / self.trickle
            for i in range(self.trickle):
                out.append((h * 60 + step / 2 + i * step, n))
                n += 1
        return sorted(m for m in out if m[0] < hours * 60)

    def reaper_settings(self) -> dict[str, str]:
        """The defaults of src/config/options.rs, scaled: retentions, forecast window."""
        return {
            "REAPER_SUCCEEDED_JOB_TTL": self.duration(15),
            "REAPER_FAILED_JOB_TTL": self.duration(24 * 60),
            "REAPER_FARGATE_POD_TTL": self.duration(15),
            "REAPER_BARE_POD_TTL": self.duration(60),
            "REAPER_LOW_HEADROOM_FARGATE_TTL": self.duration(1),
            "REAPER_FORECAST_WINDOW": self.duration(15),
        }


# ---- the function behind the RIE ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Function:
    """eks-reaper as a Lambda function behind the Runtime Interface Emulator."""

    def __init__(self, rie: str, binary: str, env: dict[str, str], log: Path):
        import requests

        self.port = free_port()
        self.session = requests.Session()
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [rie, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{free_port()}", binary],
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the RIE did not listen within 20 s")

    def invoke(self, event: dict) -> dict:
        r = self.session.post(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            json=event, timeout=150)
        body = r.json()
        if "errorType" in body:
            raise RuntimeError(f"invocation failed: {body}")
        return body

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- safety ------------------------------------------------------------------------------

def terminal_condition(job: dict) -> tuple[str, float] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"], parse_rfc3339(c["lastTransitionTime"])
    return None


class SafetyWatch:
    """Watches the arm's Jobs and pods; every deletion is checked against the rules."""

    def __init__(self, kube: Kube, namespace: str, selector: str, failed_ttl: float):
        self.kube, self.namespace, self.selector = kube, namespace, selector
        self.failed_ttl = failed_ttl
        self.stop_event = threading.Event()
        self.violations: list[str] = []
        self.deleted = {"jobs": 0, "pods": 0, "failedJobs": 0}
        self.failed_job_ages: list[float] = []  # seconds from Failed to deletion
        self.seen: set[tuple[str, str]] = set()
        #: pod uid -> creationTimestamp (epoch seconds, whole seconds as the API gives it)
        #: and when its deletion was seen (None while it exists): the old estimator's input.
        self.pods: dict[str, list] = {}
        self.threads = []
        for plural, version in (("jobs", "batch/v1"), ("pods", "v1")):
            _, rv = self.kube.list_all(version, plural, namespace, label_selector=selector)
            t = threading.Thread(target=self._run, args=(version, plural, rv), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, version: str, plural: str, rv: str) -> None:
        for typ, obj in self.kube.watch(version, plural, self.namespace, resource_version=rv,
                                        label_selector=self.selector, stop=self.stop_event,
                                        timeout_seconds=30):
            meta = obj.get("metadata", {})
            if plural == "pods" and meta.get("uid") not in self.pods:
                self.pods[meta["uid"]] = [parse_rfc3339(meta["creationTimestamp"]), None]
            if typ != "DELETED" and not meta.get("deletionTimestamp"):
                continue
            if plural == "pods":
                self.pods[meta["uid"]][1] = self.pods[meta["uid"]][1] or time.time()
            key = (plural, meta.get("uid", ""))
            if key in self.seen:
                continue
            self.seen.add(key)
            self.deleted[plural] += 1
            name = f"{plural[:-1]} {meta.get('name')}"
            if plural == "pods":
                phase = (obj.get("status") or {}).get("phase")
                if phase not in ("Succeeded", "Failed"):
                    self.violations.append(f"{name} deleted in phase {phase}")
                continue
            term = terminal_condition(obj)
            if term is None:
                self.violations.append(f"{name} deleted while not finished")
            elif term[0] == "Failed":
                age = time.time() - term[1]
                self.deleted["failedJobs"] += 1
                self.failed_job_ages.append(age)
                if age < self.failed_ttl:
                    self.violations.append(
                        f"{name} (failed) deleted {age:.1f} s after failing, "
                        f"retention {self.failed_ttl:.1f} s")

    def close(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(40)


# ---- one arm -----------------------------------------------------------------------------

@dataclass
class Arm:
    name: str
    hours: float  # longest run, scaled
    reaper: bool
    stall_at: float | None = None  # scaled hour after which the function only dry-runs
    stop_after_exhaustion: float | None = None  # scaled hours to go on past exhaustion
    samples: list[dict] = field(default_factory=list)


class Replay:
    def __init__(self, args: argparse.Namespace):
        trust_only_the_testbed_ca()
        self.env = load_env()
        if self.env is None:
            raise SystemExit("replay: the testbed is not up (scripts/replay brings it up)")
        self.args = args
        self.scale = Scale(seconds_per_hour=args.seconds_per_hour)
        self.kube = Kube.from_kubeconfig(self.env["KUBECONFIG"])
        self.ec2 = aws.client("ec2", self.env["AWS_ENDPOINT_URL"])
        self.namespace = self.env["TESTBED_FARGATE_NAMESPACE"]
        self.fargate_subnets = self.env["TESTBED_FARGATE_SUBNETS"].split(",")
        self.all_subnets = self.env["TESTBED_SUBNETS"].split(",")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.samples_path = self.out / ("samples-smoke.jsonl" if args.smoke else "samples.jsonl")
        self.samples_path.write_text("")
        self.violations: list[str] = []
        self.capacity = {s["SubnetId"]: 2 ** (32 - int(s["CidrBlock"].split("/")[1])) - 5
                         for s in self.describe()}

    # -- reads --

    def describe(self) -> list[dict]:
        return self.ec2.describe_subnets(SubnetIds=self.all_subnets)["Subnets"]

    def free(self) -> dict[str, int]:
        return {s["SubnetId"]: s["AvailableIpAddressCount"] for s in self.describe()}

    def lambda_env(self) -> dict[str, str]:
        env = {k: self.env[k] for k in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                                        "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ACCESS_KEY_ID",
                                        "AWS_SECRET_ACCESS_KEY")}
        env.update({
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_FUNCTION_NAME": "eks-reaper",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "120",
            "REAPER_CLUSTERS": self.env["TESTBED_CLUSTER"],
            "REAPER_NAMESPACES": self.namespace,
            # The alarm conditions are evaluated here from the report's figures (the same
            # ones the metrics carry), so no metrics are published.
            "REAPER_METRICS_SINK": "none",
        })
        env.update(self.scale.reaper_settings())
        return env

    # -- load --

    def generate(self, arm: Arm, run_id: str, t0: float, stop: threading.Event,
                 created: list[float]) -> None:
        rng = random.Random(20261130)
        lo, hi = self.scale.run_minutes
        for minute, n in self.scale.schedule(arm.hours):
            delay = t0 + self.scale.real(minute) - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            if stop.is_set():
                return
            fails = n % self.scale.fail_every == self.scale.fail_every - 1
            run_seconds = round(self.scale.real(rng.uniform(lo, hi)), 3)
            body = job_manifest(
                f"replay-{arm.name}-{n:05d}", self.namespace,
                run_seconds=run_seconds, exit_code=1 if fails else 0,
                labels={RUN_LABEL: run_id, "replay/arm": arm.name})
            body["spec"]["template"]["metadata"]["annotations"].update(
                {RUN_SECONDS: str(run_seconds), EXIT_CODE: "1" if fails else "0"})
            try:
                self.kube.create("batch/v1", "jobs", body, namespace=self.namespace)
                created.append(time.monotonic())
            except ApiError as e:
                print(f"replay: create job {n}: {e}", file=sys.stderr)

    # -- the arm --

    def run_arm(self, arm: Arm, function: Function | None) -> dict:
        run_id = f"replay-{arm.name}-{int(time.time())}"
        selector = f"{RUN_LABEL}={run_id}"
        failed_ttl = self.scale.real(24 * 60)
        watch = SafetyWatch(self.kube, self.namespace, selector, failed_ttl)
        stop = threading.Event()
        created: list[float] = []
        t0 = time.monotonic()
        gen = threading.Thread(target=self.generate, args=(arm, run_id, t0, stop, created),
                               daemon=True)
        gen.start()
        interval = self.scale.real(SCHEDULE_MINUTES)
        exhausted_at = None
        tick = 0
        print(f"replay: arm {arm.name} ({arm.hours} scaled h max)", file=sys.stderr)
        while True:
            due = t0 + tick * interval
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # A run still going when the next one is due delays it (the function's
            # reserved concurrency is 1); runs missed meanwhile are dropped, not caught up.
            tick = max(tick + 1, int((time.monotonic() - t0) / interval) + 1)
            hours = (time.monotonic() - t0) / self.scale.seconds_per_hour
            if hours > arm.hours:
                break
            sample: dict = {"arm": arm.name}
            stalled = arm.stall_at is not None and hours >= arm.stall_at
            if function is not None:
                event = {"dryRun": True} if stalled else {}
                started = time.monotonic()
                report = function.invoke(event)
                sample["invokeMs"] = round((time.monotonic() - started) * 1000)
                sample.update(self.report_fields(report))
                sample["beforeHours"] = self.before_estimator(
                    watch, time.time(), sample["reportTotalAvailable"])
                sample["stalled"] = stalled
            # The sample's time is when the run ended (its forecast's now) and the free
            # addresses are read, not when it was due.
            hours = (time.monotonic() - t0) / self.scale.seconds_per_hour
            sample["t"] = round(hours, 4)
            sample["jobsCreated"] = len(created)
            free = self.free()
            sample["free"] = {s: free[s] for s in self.fargate_subnets}
            sample["freeFargate"] = sum(free[s] for s in self.fargate_subnets)
            sample["freeWatched"] = sum(free.values())
            # Jobs whose pod does not hold an address yet: the testbed's lag (the stand-in
            # gives addresses one at a time), which delays the exhaustion.
            sample["jobsWithoutIp"] = (len(created) - watch.deleted["jobs"]
                                       - (sum(self.capacity[s] for s in self.fargate_subnets)
                                          - sample["freeFargate"]))
            sample["minFreePercent"] = round(min(
                100.0 * free[s] / self.capacity[s] for s in self.all_subnets), 3)
            arm.samples.append(sample)
            with self.samples_path.open("a") as f:
                f.write(json.dumps(sample) + "\n")
            if sample["freeFargate"] == 0 and exhausted_at is None:
                exhausted_at = hours
                print(f"replay: arm {arm.name}: exhausted at {hours:.2f} scaled h",
                      file=sys.stderr)
            if (exhausted_at is not None and arm.stop_after_exhaustion is not None
                    and hours >= exhausted_at + arm.stop_after_exhaustion):
                break
        stop.set()
        gen.join(30)
        watch.close()
        self.violations += [f"arm {arm.name}: {v}" for v in watch.violations]
        result = {
            "arm": arm.name,
            "scaledHours": arm.samples[-1]["t"] if arm.samples else 0,
            "realSeconds": round(time.monotonic() - t0, 1),
            "samples": len(arm.samples),
            "jobsCreated": len(created),
            "exhaustedAt": round(exhausted_at, 3) if exhausted_at is not None else None,
            "minFreeFargate": min(s["freeFargate"] for s in arm.samples),
            "maxJobsWithoutIpBeforeExhaustion": max(
                (s["jobsWithoutIp"] for s in arm.samples
                 if exhausted_at is None or s["t"] < exhausted_at), default=None),
            "deletionsSeen": watch.deleted,
            "failedJobMinAgeScaledHours": (
                round(min(watch.failed_job_ages) / self.scale.seconds_per_hour, 3)
                if watch.failed_job_ages else None),
            "safetyViolations": watch.violations,
        }
        if function is not None:
            result["invokeMsMedian"] = statistics.median(s["invokeMs"] for s in arm.samples)
            result["intervalScaledMinutesMedian"] = round(statistics.median(
                (b["t"] - a["t"]) * 60 for a, b in zip(arm.samples, arm.samples[1:])), 2)
        self.clean(run_id)
        return result

    def before_estimator(self, watch: SafetyWatch, now: float, available: int) -> float | None:
        """The estimator this replay replaced, on the same pods (scaled hours): every watched
        subnet's free addresses over the pods stamped less than the window ago (strictly,
        whole seconds as given), scaled to an hour; `None` without such a pod."""
        window = self.scale.real(15)
        n = sum(1 for created, deleted in list(watch.pods.values())
                if (deleted is None or deleted > now) and -300 <= now - created < window)
        if n == 0:
            return None
        return available / (n * 3600.0 / window) * self.scale.factor

    def report_fields(self, report: dict) -> dict:
        c = report["clusters"][0]
        if c.get("status") != "ok":
            raise RuntimeError(f"reaper run not ok: {c}")
        f = c.get("forecast") or {}
        sub = c.get("subnets") or {}
        hours = f.get("hoursToExhaustion")
        tight = (sub.get("tightest") or {}).get("freeFraction")
        return {
            "forecastHours": None if hours is None else hours * self.scale.factor,
            "forecastAvailable": f.get("available"),
            "podsInWindow": f.get("podsInWindow"),
            "podsInLongWindow": f.get("podsInLongWindow"),
            "podsInExtendedWindow": f.get("podsInExtendedWindow"),
            "windowSeconds": f.get("windowSeconds"),
            "reportTotalAvailable": sub.get("totalAvailable"),
            "tightestFreeFraction": tight,
            "lowHeadroom": c.get("lowHeadroom"),
            "dryRun": c.get("dryRun"),
            "jobsDeleted": c["jobs"]["deleted"],
            "podsDeleted": c["pods"]["deleted"],
            "fargatePodsDeleted": c["pods"].get("fargateDeleted"),
        }

    def clean(self, run_id: str) -> None:
        """Deletes the arm's Jobs and pods and waits for every Fargate address to be back."""
        selector = f"{RUN_LABEL}={run_id}"
        self.kube.delete_collection("batch/v1", "jobs", self.namespace, label_selector=selector,
                                    propagation_policy="Background")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pods, _ = self.kube.list_all("v1", "pods", self.namespace, label_selector=selector)
            for p in pods:
                self.kube.delete("v1", "pods", p["metadata"]["name"], self.namespace,
                                 grace_period_seconds=0, missing_ok=True)
            free = self.free()
            if not pods and all(free[s] == self.capacity[s] for s in self.fargate_subnets):
                return
            time.sleep(1)
        raise RuntimeError(f"arm {run_id}: Fargate addresses not all back after cleaning")


# ---- analysis ----------------------------------------------------------------------------

def first_run(samples: list[dict], cond, consecutive: int = 1) -> float | None:
    """Scaled hour of the first sample where `cond` held for `consecutive` samples in a row."""
    streak = 0
    for s in samples:
        streak = streak + 1 if cond(s) else 0
        if streak >= consecutive:
            return s["t"]
    return None


def estimators(s: dict, scale: Scale) -> dict[str, float | None]:
    """Hours to exhaustion (scaled) by three estimators at one sample: `before` (every
    watched subnet, the 15-minute window alone, whole-second stamps taken as exact: the
    estimator before this change, recomputed on the pods the watch saw), `poolShort`
    (the binary's short-window count alone, on the Fargate subnets) and `after` (what
    the binary reported: Fargate subnets, the largest of the short, long and extended
    windows' rates)."""
    # The report's windowSeconds is whole seconds; the scaled window is not.
    window_h = scale.real(15) / 3600.0
    short_rate = s["podsInWindow"] / window_h if s.get("podsInWindow") else 0
    return {"before": s.get("beforeHours"),
            "poolShort": (s["forecastAvailable"] / short_rate * scale.factor
                          if short_rate else None),
            "after": s.get("forecastHours")}


def accuracy(samples: list[dict], exhausted_at: float, scale: Scale) -> dict:
    """Errors of each estimator at the stalled runs, against the real exhaustion."""
    out = {}
    for name in ("before", "poolShort", "after"):
        far, late, late_h, missing = [], [], [], 0
        for s in samples:
            if not s.get("stalled") or s["t"] >= exhausted_at:
                continue
            actual = exhausted_at - s["t"]
            f = estimators(s, scale)[name]
            if f is None:
                missing += 1
                continue
            if actual > 1.0:
                far.append(abs(f - actual) / actual * 100)
            if actual <= 2.0:
                late.append(max(0.0, f - actual) / actual * 100)
                late_h.append(max(0.0, f - actual))
        out[name] = {
            "runsMoreThan1hBefore": len(far),
            "medianApePercent": round(statistics.median(far), 1) if far else None,
            "worstApePercent": round(max(far), 1) if far else None,
            "runsInLast2h": len(late),
            "worstLatenessPercentLast2h": round(max(late), 1) if late else None,
            "worstLatenessHoursLast2h": round(max(late_h), 3) if late_h else None,
            "runsWithoutForecast": missing,
        }
    return out


def analyse(arms: dict[str, Arm], results: dict[str, dict], scale: Scale, capacity: int) -> dict:
    ratio = capacity / STORY_IPS
    cluster_abs = CLUSTER_IPS_THRESHOLD * ratio
    subnet_abs = SUBNET_IPS_THRESHOLD * ratio
    problems = []
    a, b, c = (results.get(k) for k in "abc")
    if a is not None and a["exhaustedAt"] is None:
        problems.append("arm a: the subnets never ran out without a cleaner")
    if b is not None:
        if b["minFreeFargate"] == 0:
            problems.append("arm b: free IPs reached zero with the reaper running")
        wrong = [s["t"] for s in arms["b"].samples
                 if s["lowHeadroom"] != (s["tightestFreeFraction"] < LOW_HEADROOM_FRACTION)]
        b["lowHeadroomRuns"] = sum(1 for s in arms["b"].samples if s["lowHeadroom"])
        b["lowHeadroomMismatches"] = wrong
        if wrong:
            problems.append(f"arm b: low-headroom mode disagreed with the subnets at {wrong}")
        b["forecastAlarmConditionAt"] = first_run(
            arms["b"].samples, lambda s: (s["forecastHours"] or 1e9) < FORECAST_THRESHOLD_HOURS, 2)
        b["freePercentAlarmConditionAt"] = first_run(
            arms["b"].samples, lambda s: s["minFreePercent"] < FREE_PERCENT_THRESHOLD)
    if c is not None:
        samples = arms["c"].samples
        after = [s for s in samples if s.get("stalled")]
        c["stallAt"] = arms["c"].stall_at
        c["forecastAlarmConditionAt"] = first_run(
            after, lambda s: (s["forecastHours"] or 1e9) < FORECAST_THRESHOLD_HOURS, 2)
        c["freePercentAlarmConditionAt"] = first_run(
            after, lambda s: s["minFreePercent"] < FREE_PERCENT_THRESHOLD)
        c["clusterIpsAlarmConditionAt"] = first_run(
            after, lambda s: s["freeWatched"] < cluster_abs)
        c["subnetIpsAlarmConditionAt"] = first_run(
            after, lambda s: min(s["free"].values()) < subnet_abs)
        c["lowHeadroomReportedAt"] = first_run(after, lambda s: bool(s["lowHeadroom"]))
        wrong = [s["t"] for s in samples
                 if s["lowHeadroom"] != (s["tightestFreeFraction"] < LOW_HEADROOM_FRACTION)]
        c["lowHeadroomMismatches"] = wrong
        if wrong:
            problems.append(f"arm c: low-headroom mode disagreed with the subnets at {wrong}")
        fa, fp, ex = c["forecastAlarmConditionAt"], c["freePercentAlarmConditionAt"], c["exhaustedAt"]
        if fa is None or ex is None:
            problems.append(f"arm c: forecast alarm condition at {fa}, exhaustion at {ex}")
        else:
            c["forecastAlarmBeforeExhaustionHours"] = round(ex - fa, 3)
            if fp is not None:
                c["forecastAlarmBeforeFreePercentAlarmHours"] = round(fp - fa, 3)
            if fp is not None and fa >= fp:
                problems.append(f"arm c: forecast alarm condition ({fa}) not before the "
                                f"free-percent one ({fp})")
            if fa >= ex:
                problems.append(f"arm c: forecast alarm condition ({fa}) not before exhaustion ({ex})")
        if fp is not None and ex is not None:
            c["freePercentAlarmBeforeExhaustionHours"] = round(ex - fp, 3)
        if ex is not None:
            c["accuracy"] = accuracy(samples, ex, scale)
    return {"absoluteThresholdsScaled": {"cluster": round(cluster_abs, 2),
                                         "subnet": round(subnet_abs, 2)},
            "problems": problems}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True, help="the eks-reaper binary (bootstrap)")
    p.add_argument("--rie", required=True, help="the aws-lambda-rie binary")
    p.add_argument("--out", default=str(ROOT / "docs/replay"))
    p.add_argument("--seconds-per-hour", type=float, default=6.0,
                   help="real seconds per scaled hour (default 6: a day in 144 s)")
    p.add_argument("--arms", default="a,b,c")
    p.add_argument("--hours", type=float, default=27.0, help="arm b's length, scaled hours")
    p.add_argument("--stall-at", type=float, default=2.0, help="arm c's stall, scaled hour")
    p.add_argument("--smoke", action="store_true",
                   help="a short run: arm b for 3 scaled hours, no exhaustion expected")
    args = p.parse_args()
    replay = Replay(args)
    scale = replay.scale
    print(f"replay: {scale.seconds_per_hour} s per scaled hour; Fargate capacity "
          f"{sum(replay.capacity[s] for s in replay.fargate_subnets)} IPs; "
          f"{scale.jobs_per_hour()} Jobs per scaled hour", file=sys.stderr)
    if args.smoke:
        plan = [Arm("b", 3.0, reaper=True)]
    else:
        limit = 1.3 * sum(replay.capacity[s] for s in replay.fargate_subnets) / scale.jobs_per_hour()
        plan = {
            "a": Arm("a", limit, reaper=False, stop_after_exhaustion=0.5),
            "b": Arm("b", args.hours, reaper=True),
            "c": Arm("c", args.stall_at + limit, reaper=True, stall_at=args.stall_at,
                     stop_after_exhaustion=0.5),
        }
        plan = [plan[k] for k in args.arms.split(",")]
    results: dict[str, dict] = {}
    arms: dict[str, Arm] = {}
    logs = Path(replay.env["TESTBED_LOGS"])
    for arm in plan:
        function = None
        if arm.reaper:
            function = Function(args.rie, args.binary, replay.lambda_env(),
                                logs / f"replay-{arm.name}.log")
        try:
            results[arm.name] = replay.run_arm(arm, function)
        finally:
            if function is not None:
                function.stop()
        arms[arm.name] = arm
        print(f"replay: arm {arm.name}: {json.dumps(results[arm.name])}", file=sys.stderr)
    capacity = sum(replay.capacity[s] for s in replay.fargate_subnets)
    verdict = analyse(arms, results, scale, capacity)
    summary = {
        "scale": {"secondsPerScaledHour": scale.seconds_per_hour, "factor": scale.factor,
                  "burstJobsPerHour": scale.burst, "trickleJobsPerHour": scale.trickle,
                  "failEvery": scale.fail_every, "runMinutes": scale.run_minutes,
                  "fargateCapacity": sum(replay.capacity[s] for s in replay.fargate_subnets),
                  "reaperSettings": scale.reaper_settings(),
                  "scheduleRealSeconds": scale.real(SCHEDULE_MINUTES)},
        "arms": results,
        **verdict,
        "safetyViolations": replay.violations,
    }
    name = "summary-smoke.json" if args.smoke else "summary.json"
    (replay.out / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    failed = replay.violations + verdict["problems"]
    for line in failed:
        print(f"replay: FAIL {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
