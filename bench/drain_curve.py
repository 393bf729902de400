"""The drain's rate against a workload's latency, one setting of the limit at a time.

    bench/drain_curve.py run --label curve --count 8000 --rate 20 --repeats 3 \\
        --settings off,1.5,2,3,ceiling=1,ceiling=2,ceiling=4
    bench/drain_curve.py summary [--label curve]

`run`: on the testbed as it is up, a workload client (a ServiceAccount, the `apf` step's:
bench/run.py `WorkloadProbe`) creates, reads and deletes a ConfigMap `--rate` times a
second throughout. Each round seeds one namespace of `--count` finished Jobs (no pods) per
setting, waits for the controllers to settle, measures the workload idle for `--idle`
seconds, then drains the namespaces one after the other with the release binary, one
setting each, and measures the workload idle again. Every other round runs the settings in
reverse order. A setting is

  off          REAPER_DRAIN_LATENCY_TARGET=off under the ceiling `--ceiling`
  X            REAPER_DRAIN_LATENCY_TARGET=X under the ceiling `--ceiling`
  ceiling=N    off under the ceiling N (the plain ceiling, as a fixed bound)

Each drain's row: its rate (deletions / wall seconds of the binary), the workload's
p50/p99 during the drain and the round's idle p50/p99 (both idle windows of the round
together), the apiserver's and etcd's CPU seconds over the drain (utime + stime from /proc,
as bench/cost.py reads them) and the limit the report says it settled at, with its
baseline. Nothing runs between the drains but the workload and the controllers.

`summary`: per label, the Markdown table for BENCHMARKS.md, medians over the rounds.

Rows go to bench/results/results.jsonl (`step: drain-curve`), as bench/run.py's do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
from run import JSON, ROOT, cost  # noqa: E402


def setting_args(setting: str, ceiling: int) -> tuple[int, list[str]]:
    """The ceiling and the extra flags of a setting (`off`, a factor, `ceiling=N`)."""
    if setting.startswith("ceiling="):
        return int(setting.removeprefix("ceiling=")), ["--drain-latency-target", "off"]
    return ceiling, ["--drain-latency-target", setting]


def combined(probe: run.WorkloadProbe, windows: list[tuple[float, float]]) -> JSON:
    """The workload's latencies over several windows taken together."""
    samples = probe.samples
    probe.samples = [s for s in samples if any(t0 <= s[0] < t1 for t0, t1 in windows)]
    try:
        return probe.latencies(float("-inf"), float("inf"))
    finally:
        probe.samples = samples


def drain(a: argparse.Namespace, env: JSON, probe: run.WorkloadProbe, pids: dict[str, int],
          setting: str, ns: str, rep: int) -> JSON:
    logs = Path(a.logs)
    ceiling, extra = setting_args(setting, a.ceiling)
    tag = f"{a.label}-{setting}-{rep}"
    run.log(f"{tag}: draining {ns} (ceiling {ceiling}, {' '.join(extra)})")
    cpu0, t0 = cost.cpu_seconds(pids), time.monotonic()
    r = run.run_reaper(env, logs, tag, ns, ceiling, extra)
    t1, cpu1 = time.monotonic(), cost.cpu_seconds(pids)
    report = json.loads((logs / f"{tag}.json").read_text() or "{}")
    concurrency = (report.get("clusters") or [{}])[0].get("concurrency") or {}
    cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1}
    return {"setting": setting, "ceiling": ceiling, "namespace": ns,
            "workload": probe.latencies(t0, t1), "window": (t0, t1),
            "apiserverCpuSeconds": cpu["kube-apiserver"], "etcdCpuSeconds": cpu["etcd"],
            "controllerManagerCpuSeconds": cpu["kube-controller-manager"],
            "concurrency": concurrency, "reaper": r}


def idle_window(a: argparse.Namespace) -> tuple[float, float]:
    t0 = time.monotonic()
    time.sleep(a.idle)
    return t0, time.monotonic()


def step_run(a: argparse.Namespace) -> None:
    env = run.load_env()
    kube = run.admin(env)
    state = os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed")
    pids = cost.control_plane_pids(state)
    Path(a.logs).mkdir(parents=True, exist_ok=True)
    settings = a.settings.split(",")
    for s in settings:
        setting_args(s, a.ceiling)  # a bad setting fails before anything is seeded
    probe = run.WorkloadProbe(env, run.workload_session(env, kube), a.rate)
    probe.thread.start()
    try:
        for rep in range(1, a.repeats + 1):
            order = settings if rep % 2 else settings[::-1]
            namespaces = {s: f"bench-{a.label}-{s.replace('=', '-').replace('.', '-')}-{rep}"
                          for s in order}
            fixtures = {s: run.seed(kube, ns, a.count, "none") for s, ns in namespaces.items()}
            run.quiet(kube)
            idle = [idle_window(a)]
            rows = []
            for s in order:
                rows.append(drain(a, env, probe, pids, s, namespaces[s], rep))
                time.sleep(a.gap)
            idle.append(idle_window(a))
            base = combined(probe, idle)
            for position, row in enumerate(rows):
                run.record(Path(a.out), {
                    "step": "drain-curve", "label": a.label, "rep": rep,
                    "position": position, "count": a.count, "rate": a.rate,
                    **fixtures[row["setting"]], **{k: v for k, v in row.items()
                                                   if k != "window"},
                    "idle": base, "loadavg": run.loadavg()})
            for ns in namespaces.values():
                kube.delete("v1", "namespaces", ns, missing_ok=True)
    finally:
        probe.stop.set()
        probe.thread.join(timeout=60)
        run.workload.delete_namespace(kube, run.APF_WORKLOAD_NS, wait=120)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def step_summary(a: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(a.out).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] == "drain-curve"
            and (a.label is None or r["label"] == a.label)]
    for label in sorted({r["label"] for r in rows}):
        group = [r for r in rows if r["label"] == label]
        settings = list(dict.fromkeys(r["setting"] for r in group if r["rep"] == 1))
        idle = {r["rep"]: r["idle"] for r in group}
        print(f"\n### drain-curve {label} ({group[0]['count']} Jobs per drain, "
              f"{len(idle)} rounds, workload {group[0]['rate']} rounds/s)\n")
        print("idle workload, per round: " + "; ".join(
            f"round {rep}: p50 {i['p50Ms']} ms, p99 {i['p99Ms']} ms ({i['requests']} requests)"
            for rep, i in sorted(idle.items())) + "\n")
        print("| setting | ceiling | deletions/s | workload p50 | workload p99 | p99 ÷ idle p99 "
              "| apiserver CPU s | per 1,000 deletions | etcd CPU s | settled (min–max) "
              "| baseline ms | latency decreases | 429s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in settings:
            rs = [r for r in group if r["setting"] == s]
            rate = med([r["reaper"]["deletesPerSecond"] for r in rs])
            p50 = med([r["workload"]["p50Ms"] for r in rs])
            p99 = med([r["workload"]["p99Ms"] for r in rs])
            ratio = med([r["workload"]["p99Ms"] / r["idle"]["p99Ms"] for r in rs])
            api = med([r["apiserverCpuSeconds"] for r in rs])
            per = med([1000 * r["apiserverCpuSeconds"] / max(r["reaper"]["deleted"], 1)
                       for r in rs])
            etcd = med([r["etcdCpuSeconds"] for r in rs])
            settled = ", ".join(f"{r['concurrency'].get('settled')} ({r['concurrency'].get('min')}"
                                f"–{r['concurrency'].get('max')})" for r in rs)
            baseline = ", ".join(str(r["concurrency"].get("baselineMs")) for r in rs)
            decreases = ", ".join(str(r["concurrency"].get("decreasesLatency")) for r in rs)
            throttled = ", ".join(str(r["reaper"].get("throttled")) for r in rs)
            print(f"| {s} | {rs[0]['ceiling']} | {rate:.0f} | {p50:.1f} ms | {p99:.1f} ms "
                  f"| {ratio:.1f}× | {api:.2f} | {per:.2f} | {etcd:.2f} | {settled} "
                  f"| {baseline} | {decreases} | {throttled} |")
        print("\nEach round, p99 ÷ idle p99: " + "; ".join(
            f"{s}: " + ", ".join(f"{r['workload']['p99Ms'] / r['idle']['p99Ms']:.1f}×"
                                 for r in group if r["setting"] == s) for s in settings))
        loads = [x for r in group for x in r["loadavg"][:1]]
        print(f"1-min load average after the rounds: {min(loads)}–{max(loads)} (2 cores)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/drain_curve.py",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/results.jsonl"))
    ap.add_argument("--logs", default="/tmp/eks-reaper-bench/logs")
    sub = ap.add_subparsers(dest="step", required=True)
    r = sub.add_parser("run")
    r.add_argument("--label", default="drain-curve")
    r.add_argument("--count", type=int, default=8000, help="finished Jobs per drain")
    r.add_argument("--settings", default="off,1.5,2,3,ceiling=1,ceiling=2,ceiling=4")
    r.add_argument("--ceiling", type=int, default=16,
                   help="REAPER_CONCURRENCY for `off` and the factors (the default's)")
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--rate", type=float, default=20.0, help="workload rounds per second "
                   "(create, get, delete a ConfigMap)")
    r.add_argument("--idle", type=float, default=15.0,
                   help="seconds of each of the round's two idle windows")
    r.add_argument("--gap", type=float, default=3.0, help="seconds between two drains")
    s = sub.add_parser("summary")
    s.add_argument("--label", default=None)
    a = ap.parse_args(argv)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    {"run": step_run, "summary": step_summary}[a.step](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
