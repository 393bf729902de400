"""The soak: eks-reaper on its schedule, time-compressed, for a scaled day of faults.

    python bench/soak.py --binary PATH --seed N [--hours 24] [--seconds-per-hour 72]

Run by `scripts/soak`, which builds the binary and brings up a testbed of its own. The
function runs as in the replay (`bench/replay.py`): the real binary behind AWS's Lambda
Runtime Interface Emulator, invoked every scaled 5 minutes, its retentions scaled by the
same factor; a run still going when the next is due delays it, missed ticks are dropped.
Meanwhile `bench/soak_inject.py` keeps creating Jobs and pods of every kind the policy must
tell apart and injects faults at seeded random times, until `--quiet-hours` before the end;
the last hours are fault-free, so the backlog the faults left must drain.

A Kubernetes watch on every Job and pod the workload made feeds `bench/soak_check.py`,
which checks each deletion as it is seen and each run's report afterwards. The EKS, EC2 and
CloudWatch endpoints the function uses are switchable proxies in front of moto (down: reset;
hung: accepted, never answered). After each invocation moto's CloudWatch is read for the
subnet metric that run published.

Prints one Markdown table (and writes `--out`, JSON with the detail); exit 1 when an
invariant fails: wrong deletions, untruthful reports, runs over their deadline, IP metrics
gaps must all be 0, the backlog must drain within `DRAIN_RUNS` runs of the last fault, and
no plain object may be left past its retention at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak_check import CLASS_LABEL, Checker, Retentions, RunRecord  # noqa: E402
from bench.soak_inject import (EC2_NS, EXCLUDED_NS, OPTOUT_NS,  # noqa: E402
                               FAULTS, Injector, Scale, Workload, prepare)
from e2e.faults import faultlib as fl  # noqa: E402
from testbed import aws  # noqa: E402
from testbed.kube import Kube  # noqa: E402
from testbed.state import load_env, trust_only_the_testbed_ca  # noqa: E402

SCHEDULE_MINUTES = 5  # rate(5 minutes)
FUNCTION_TIMEOUT = 30  # real seconds: AWS_LAMBDA_FUNCTION_TIMEOUT
#: REAPER_DEADLINE_MARGIN: the default 30 s is sized for AWS's round trips and a function
#: timeout of minutes; on loopback 10 s of a 30 s timeout leaves the same room.
DEADLINE_MARGIN = "10s"
TTL_ANNOTATION_MINUTES = 180  # the `ttl` class's eks-reaper/ttl, scaled
DRAIN_RUNS = 5
SUBNET_METRIC = "MinSubnetFreePercent"


def settings(scale: Scale, metrics_ns: str) -> dict[str, str]:
    """The defaults of src/config/options.rs, scaled, plus the soak's scope."""
    return {
        "REAPER_SUCCEEDED_JOB_TTL": scale.duration(15),
        "REAPER_FAILED_JOB_TTL": scale.duration(24 * 60),
        "REAPER_FARGATE_POD_TTL": scale.duration(15),
        "REAPER_BARE_POD_TTL": scale.duration(60),
        "REAPER_LOW_HEADROOM_FARGATE_TTL": scale.duration(1),
        "REAPER_ENGINE_POD_GRACE": scale.duration(5),
        "REAPER_FORECAST_WINDOW": scale.duration(15),
        "REAPER_EXCLUDE_NAMESPACES": EXCLUDED_NS,
        # Lists of several pages, so an expired continue token can hit one.
        "REAPER_PAGE_SIZE": "5",
        "REAPER_METRICS_NAMESPACE": metrics_ns,
        "REAPER_DEADLINE_MARGIN": DEADLINE_MARGIN,
    }


def retentions(scale: Scale) -> Retentions:
    return Retentions(succeeded=scale.real(15), failed=scale.real(24 * 60),
                      bare=scale.real(60), fargate_floor=scale.real(1),
                      engine_grace=scale.real(5),
                      ttl_annotation=scale.real(TTL_ANNOTATION_MINUTES))


class Watch:
    """Every Job and pod with the class label, cluster-wide, into the checker."""

    def __init__(self, kube: Kube, checker: Checker, lock: threading.Lock):
        self.stop = threading.Event()
        self.threads = []
        for kind, api, plural in (("job", "batch/v1", "jobs"), ("pod", "v1", "pods")):
            def run(kind=kind, api=api, plural=plural):
                for typ, obj in kube.informer(api, plural, label_selector=CLASS_LABEL,
                                              stop=self.stop, timeout_seconds=60):
                    if typ == "SYNCED":
                        continue
                    with lock:
                        checker.observe(kind, typ, obj, time.time())
            t = threading.Thread(target=run, daemon=True)
            t.start()
            self.threads.append(t)

    def close(self) -> None:
        self.stop.set()


def function_pid(fn: fl.LambdaRie) -> int:
    """The function's process: the emulator's child running the binary."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == fn.proc.pid:
            return int(entry.name)
    raise RuntimeError("the emulator has no child process")


def logged_deletions(text: str) -> list[tuple[str, str, str]]:
    out = []
    for e in fl.parse_logs(text):
        f = e.get("fields") or {}
        if f.get("message") == "deleted" and not f.get("server_dry_run"):
            out.append((str(f.get("kind")), str(f.get("namespace")), str(f.get("name"))))
    return out


class Soak:
    def __init__(self, args: argparse.Namespace):
        trust_only_the_testbed_ca()
        self.env = load_env()
        if self.env is None:
            raise SystemExit("soak: the testbed is not up (scripts/soak brings it up)")
        self.args = args
        self.scale = Scale(args.seconds_per_hour)
        self.kube = Kube.from_kubeconfig(self.env["KUBECONFIG"])
        self.metrics_ns = f"EKSReaperSoak/{args.seed}-{int(time.time())}"
        self.cw = aws.client("cloudwatch", self.env["TESTBED_MOTO_URL"],
                             region=self.env["AWS_REGION"])
        self.lock = threading.Lock()
        # REAPER_NAMESPACES is unset: the reaper lists Jobs cluster-wide, protected and
        # excluded namespaces included (kept, and counted as seen).
        self.checker = Checker(retentions(self.scale), out_of_scope=set())
        moto = urlparse(self.env["AWS_ENDPOINT_URL"]).netloc
        bridge = urlparse(self.env["AWS_ENDPOINT_URL_CLOUDWATCH"]).netloc
        self.endpoints = {"eks": fl.Endpoint(moto), "ec2": fl.Endpoint(moto),
                          "cloudwatch": fl.Endpoint(bridge)}
        self.overlap_next = threading.Event()
        self.in_flight = threading.Event()
        self.records: list[RunRecord] = []
        self.current: tuple[fl.LambdaRie | None, str, int] = (None, "/dev/null", 0)
        self.tokens_rejected = 0  # "token rejected (401)" lines: expired tokens re-signed
        self.started = time.time()

    def function_env(self) -> dict[str, str]:
        # "due for deletion" (debug) tells the 410 fault that a run is between pages.
        env = {"REAPER_CLUSTERS": self.env["TESTBED_CLUSTER"],
               "RUST_LOG": "info,eks_reaper::prune::scan=debug",
               "AWS_ENDPOINT_URL_EKS": self.endpoints["eks"].url,
               "AWS_ENDPOINT_URL_EC2": self.endpoints["ec2"].url,
               "AWS_ENDPOINT_URL_CLOUDWATCH": self.endpoints["cloudwatch"].url}
        env.update(settings(self.scale, self.metrics_ns))
        return env

    def in_flight_function(self) -> tuple[int, str, int]:
        """(pid, log path, offset of this invocation's output) of the function."""
        fn, log, offset = self.current
        return function_pid(fn), log, offset

    def subnet_datapoints(self) -> int | None:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            out = self.cw.get_metric_statistics(
                Namespace=self.metrics_ns, MetricName=SUBNET_METRIC,
                Dimensions=fl.cluster_dimensions(self.env),
                StartTime=now - dt.timedelta(days=1), EndTime=now + dt.timedelta(days=1),
                Period=86400, Statistics=["SampleCount"])
        except Exception:  # noqa: BLE001 - moto itself is never faulted; unknown then
            return None
        return int(sum(p["SampleCount"] for p in out["Datapoints"]))

    # ---- one tick ---------------------------------------------------------------------

    def invoke(self, fn: fl.LambdaRie, tick: int, injector: Injector) -> None:
        before = self.subnet_datapoints()
        offset = os.path.getsize(fn.log.name)
        self.current = (fn, fn.log.name, offset)
        overlap = None
        if self.overlap_next.is_set():
            self.overlap_next.clear()
            overlap = fl.start_cli(self.env, ["run", "--output", "json"],
                                   {**self.function_env(), "REAPER_METRICS_SINK": "none"})
            ot0 = time.time()
        t0 = time.time()
        self.in_flight.set()
        timed_out, failed, report = False, False, None
        try:
            inv = fn.invoke({}, timeout=FUNCTION_TIMEOUT + 30)
            body = inv.json
            failed = inv.failed or not isinstance(body, dict)
            if failed:
                timed_out = "timed out" in inv.body.lower()
                print(f"soak: invocation {tick} failed: {inv.body[:500]}", file=sys.stderr)
            else:
                report = body
        except Exception as e:  # noqa: BLE001 - the emulator did not answer in time
            failed, timed_out = True, True
            print(f"soak: invocation {tick}: {e}", file=sys.stderr)
        finally:
            self.in_flight.clear()
        t1 = time.time()
        fn.log.flush()
        with open(fn.log.name) as f:
            f.seek(offset)
            text = f.read()
        if report is None:
            report = fl.summary_report(text)
        self.tokens_rejected += text.count("token rejected (401)")
        after = self.subnet_datapoints()
        aws_down = injector.active(t0 - 1, t1, tuple(k for k in FAULTS if k.split("-")[0] in
                                                     ("eks", "ec2", "cloudwatch")))
        rec = RunRecord(f"run {tick}", t0, t1, FUNCTION_TIMEOUT, report, failed,
                        logged_deletions(text), aws_up=not aws_down,
                        subnet_metrics=(after - before if None not in (before, after) else None),
                        faults=tuple(injector.active(t0, t1)), timed_out=timed_out)
        self.record(rec)
        if overlap is not None:
            run = fl.finish_cli(overlap, timeout=FUNCTION_TIMEOUT + 30)
            self.record(RunRecord(f"overlap with run {tick}", ot0, ot0 + run.seconds,
                                  FUNCTION_TIMEOUT, run.report, run.rc not in (0, 1),
                                  logged_deletions(run.stderr), aws_up=False))

    def record(self, rec: RunRecord) -> None:
        with self.lock:
            self.checker.run(rec)
        self.records.append(rec)
        c = rec.cluster or {}
        print(f"soak: {rec.name}: {rec.t1 - rec.t0:.1f} s status={c.get('status')} "
              f"deleted={c.get('jobs', {}).get('deleted')}/{c.get('pods', {}).get('deleted')} "
              f"backlog={c.get('backlog')} errors={c.get('errors')} faults={list(rec.faults)}"
              + (f" error={c.get('error')}" if c.get("error") else ""),
              file=sys.stderr)

    # ---- the whole soak ---------------------------------------------------------------

    def run(self) -> dict:
        a = self.args
        started = time.monotonic()
        owners = prepare(self.kube, self.env["TESTBED_FARGATE_NAMESPACE"])
        watch = Watch(self.kube, self.checker, self.lock)
        print(f"soak: namespaces and owners ready in {time.monotonic() - started:.0f} s; "
              f"seed {a.seed}, {a.hours} scaled h at {a.seconds_per_hour} s each",
              file=sys.stderr)
        workload = Workload(self.kube, self.scale, a.seed, self.env["TESTBED_FARGATE_NAMESPACE"],
                            owners, a.objects_per_hour, TTL_ANNOTATION_MINUTES)
        injector = Injector(self.env, self.kube, a.seed, self.endpoints,
                            [EC2_NS, OPTOUT_NS, self.env["TESTBED_FARGATE_NAMESPACE"]],
                            a.fault_gap_minutes * self.scale.seconds_per_hour / 60,
                            self.in_flight, self.overlap_next.set, self.in_flight_function,
                            tuple(a.faults.split(",")) if a.faults else FAULTS)
        stop = threading.Event()
        t0 = time.monotonic()
        hour = self.scale.seconds_per_hour
        fault_end = t0 + (a.hours - a.quiet_hours) * hour
        threads = [threading.Thread(target=workload.loop, args=(stop,), daemon=True),
                   threading.Thread(target=injector.loop,
                                    args=(t0 + a.fault_start_hours * hour, fault_end, stop),
                                    daemon=True)]
        for t in threads:
            t.start()
        interval = self.scale.real(SCHEDULE_MINUTES)
        tick = 0
        with fl.LambdaRie(self.env, self.function_env(), timeout_seconds=FUNCTION_TIMEOUT) as fn:
            while True:
                wait = t0 + tick * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                tick = max(tick + 1, int((time.monotonic() - t0) / interval) + 1)
                if time.monotonic() - t0 > a.hours * hour:
                    break
                self.invoke(fn, tick, injector)
            log = Path(self.env["TESTBED_LOGS"]) / f"soak-{a.seed}-function.log"
            log.write_text(fn.output())
            print(f"soak: the function's output is in {log}", file=sys.stderr)
        stop.set()
        for t in threads:
            t.join(120)
        time.sleep(5)  # the watch catches up
        watch.close()
        with self.lock:
            verdict = self.checker.finish()
            overdue = self.checker.overdue(time.time(), slack=3 * interval)
        return self.summary(verdict, overdue, workload, injector, time.monotonic() - t0)

    def drain(self, injector: Injector) -> tuple[int | None, float | None]:
        """Runs after the last fault ended until one finished with nothing left behind
        (status ok, no backlog, no errors); and that fault's end (wall clock)."""
        ends = [f.end for f in injector.log if f.end is not None]
        if not ends:
            return 0, None
        last = max(ends)
        after = [r for r in self.records if r.t0 > last and not r.name.startswith("overlap")]
        for i, r in enumerate(after, 1):
            c = r.cluster or {}
            if c.get("status") == "ok" and c.get("backlog") == 0 and not c.get("errors"):
                return i, last
        return None, last

    def summary(self, verdict: dict, overdue: list[str], workload: Workload,
                injector: Injector, real_seconds: float) -> dict:
        drained, _ = self.drain(injector)
        lambda_runs = [r for r in self.records if not r.name.startswith("overlap")]
        offered = Counter(f.kind for f in injector.log if f.error is None)
        failed_inject = Counter(f.kind for f in injector.log if f.error is not None)
        hit = Counter(k for r in lambda_runs for k in set(r.faults))
        statuses = Counter((r.cluster or {}).get("status", "no report") for r in lambda_runs)
        problems = []
        for key in ("wrongDeletions", "untruthfulReports", "runsOverDeadline", "ipMetricsGaps"):
            if verdict[key]:
                problems.append(f"{key}: {verdict[key]}")
        if drained is None or drained > DRAIN_RUNS:
            problems.append(f"backlog not drained within {DRAIN_RUNS} runs of the last fault "
                            f"({drained})")
        if overdue:
            problems.append(f"{len(overdue)} plain objects left past their retention: "
                            f"{overdue[:5]}")
        return {
            "seed": self.args.seed, "scaledHours": self.args.hours,
            "secondsPerScaledHour": self.scale.seconds_per_hour,
            "realMinutes": round(real_seconds / 60, 1),
            "runs": len(lambda_runs), "overlappingCliRuns": len(self.records) - len(lambda_runs),
            "runStatuses": dict(statuses),
            "faultsInjected": dict(sorted(offered.items())),
            "faultsNotInjected": dict(failed_inject),
            "runsDuringFault": dict(sorted(hit.items())),
            "listRestarts410": sum((r.cluster or {}).get("listRestarts", 0) for r in self.records),
            "throttled429": sum((r.cluster or {}).get("throttled", 0) for r in self.records),
            "tokensRejected401": self.tokens_rejected,
            "admissionDenied": sum((r.cluster or {}).get("errors", {}).get("admissionDenied", 0)
                                   for r in self.records),
            "objectsCreated": dict(sorted(workload.created.items())),
            "createErrors": workload.create_errors,
            "deletionsSeen": self.checker.deletions_by_class(),
            **verdict,
            "drainedWithinRuns": drained,
            "overdueAtEnd": len(overdue),
            "maxRunSeconds": round(max((r.t1 - r.t0 for r in lambda_runs), default=0), 1),
            "details": {"wrong": self.checker.wrong, "untruthful": self.checker.untruthful,
                        "overDeadline": self.checker.over_deadline,
                        "metricGaps": self.checker.metric_gaps, "overdue": overdue[:50],
                        "faults": [vars(f) for f in injector.log]},
            "problems": problems,
        }


def table(s: dict) -> str:
    rows = [
        ("runs (scheduled invocations)", f"{s['runs']} ({s['runStatuses']}); "
                                         f"+{s['overlappingCliRuns']} overlapping CLI runs"),
        ("faults injected by kind", ", ".join(f"{k} {v}" for k, v in s["faultsInjected"].items())),
        ("runs that met a fault, by kind", ", ".join(f"{k} {v}" for k, v in
                                                     s["runsDuringFault"].items())),
        ("429s / 410 list restarts / admission refusals / 401s met",
         f"{s['throttled429']} / {s['listRestarts410']} / {s['admissionDenied']} / "
         f"{s['tokensRejected401']}"),
        ("objects created (create errors)", f"{sum(s['objectsCreated'].values())} "
                                            f"({s['createErrors']})"),
        ("deletions seen by the watch", str(sum(s["deletionsSeen"].values()))),
        ("**wrong deletions**", str(s["wrongDeletions"])),
        ("**untruthful reports**", str(s["untruthfulReports"])),
        ("**runs over their deadline**", f"{s['runsOverDeadline']} (longest "
                                          f"{s['maxRunSeconds']} s, timeout {FUNCTION_TIMEOUT} s)"),
        ("**backlog after the faults stop**", f"drained within {s['drainedWithinRuns']} run(s); "
                                              f"{s['overdueAtEnd']} objects overdue at the end"),
        ("**IP metrics gaps**", str(s["ipMetricsGaps"])),
    ]
    out = ["| figure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True, help="the eks-reaper binary (bootstrap)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--hours", type=float, default=24.0, help="scaled hours (default 24)")
    p.add_argument("--seconds-per-hour", type=float, default=72.0,
                   help="real seconds per scaled hour (default 72: 24 h in ~29 min)")
    p.add_argument("--quiet-hours", type=float, default=3.0,
                   help="fault-free scaled hours at the end (default 3)")
    p.add_argument("--fault-start-hours", type=float, default=0.5)
    p.add_argument("--fault-gap-minutes", type=float, default=25.0,
                   help="mean scaled minutes between faults (default 25)")
    p.add_argument("--objects-per-hour", type=float, default=30.0,
                   help="objects the workload creates per scaled hour (default 30)")
    p.add_argument("--faults", help=f"only these fault kinds (comma list of {', '.join(FAULTS)})")
    p.add_argument("--out", help="write the JSON summary here")
    args = p.parse_args()
    os.environ["EKS_REAPER_BIN"] = args.binary
    soak = Soak(args)
    try:
        s = soak.run()
    finally:
        for ep in soak.endpoints.values():
            ep.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(s, indent=2) + "\n")
    print(json.dumps({k: v for k, v in s.items() if k != "details"}, indent=2), file=sys.stderr)
    print(table(s))
    for line in s["problems"]:
        print(f"soak: FAIL {line}", file=sys.stderr)
    for kind in ("wrong", "untruthful", "overDeadline", "metricGaps"):
        for line in s["details"][kind][:20]:
            print(f"soak: {kind}: {line}", file=sys.stderr)
    return 1 if s["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
