"""Adaptive concurrency against fixed concurrency, and CPU per deletion, on the testbed.

    bench/adaptive.py run --label adaptive-default --count 10000 --repeats 2
    bench/adaptive.py summary

`run`: on the testbed as it is up (its apiserver's seats are recorded with every row),
each round drains N finished Jobs (no pods) once per contender, each on a freshly seeded
namespace: the raw concurrent DELETE loop (examples/raw_floor.rs) at each fixed
`--fixed` concurrency, and eks-reaper (release binary) with its adaptive limit under the
ceiling `--ceiling`. Every other round runs the contenders in reverse order. 429s are
counted by the apiserver (`apiserver_request_total{code="429"}` deltas over the run, all
clients) and by each contender. CPU seconds are `/usr/bin/time -v` user + system.

`summary`: per label, the Markdown table for BENCHMARKS.md (medians over rounds, the
reaper's settled concurrency and its range, CPU-s per 1,000 deletions), and the reaper's
rate over the best fixed floor's, round by round.

Rows go to bench/results/results.jsonl (`step: adaptive`), as bench/run.py's do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402
    JSON, ROOT, admin, count, load_env, loadavg, log, metrics, metrics_delta, quiet, record,
    run_floor, run_reaper, seed,
)


def throttled_by_apiserver(delta: JSON) -> int:
    """429 answers to DELETE jobs in an apiserver metrics delta."""
    return sum(n for k, n in delta["requests"].items()
               if k.startswith("DELETE jobs 429"))


def drain(a: argparse.Namespace, env: JSON, kube, who: str, concurrency: int, rep: int) -> None:
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    ns = f"bench-{a.label}-{who}-{concurrency}-{rep}"
    fixture = seed(kube, ns, a.count, "none")
    quiet(kube)
    n = count(kube, "batch/v1", "jobs", ns)
    tag = f"{a.label}-{who}-{concurrency}-{rep}"
    before, la0 = metrics(kube), loadavg()
    log(f"{tag}: {who} at {concurrency} draining {n} Jobs in {ns}")
    if who == "reaper":
        r = run_reaper(env, logs, tag, ns, concurrency)
        report = json.loads((logs / f"{tag}.json").read_text() or "{}")
        r["adaptive"] = (report.get("clusters") or [{}])[0].get("concurrency")
    else:
        r = run_floor(env, logs, tag, ns, concurrency)
    after = metrics(kube)
    delta = metrics_delta(before, after, resources=("jobs",))
    record(Path(a.out), {
        "step": "adaptive", "label": a.label, "who": who, "rep": rep, "namespace": ns,
        "n": n, "concurrency": concurrency,
        "seats": {"maxRequestsInflight": env.get("TESTBED_MAX_REQUESTS_INFLIGHT"),
                  "maxMutatingRequestsInflight":
                      env.get("TESTBED_MAX_MUTATING_REQUESTS_INFLIGHT")},
        **fixture, **r, "jobsLeft": count(kube, "batch/v1", "jobs", ns),
        "apiserver": delta, "apiserver429": throttled_by_apiserver(delta),
        "loadavgBefore": la0, "loadavgAfter": loadavg()})
    kube.delete("v1", "namespaces", ns, missing_ok=True)


def step_run(a: argparse.Namespace) -> None:
    env = load_env()
    kube = admin(env)
    contenders = [("floor", c) for c in a.fixed] + [("reaper", a.ceiling)]
    for rep in range(1, a.repeats + 1):
        order = contenders[::-1] if rep % 2 == 0 else contenders
        for who, concurrency in order:
            drain(a, env, kube, who, concurrency, rep)


def med(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else float("nan")


def step_summary(a: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(a.out).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("step") == "adaptive"]
    for label in sorted({r["label"] for r in rows}):
        group = [r for r in rows if r["label"] == label]
        seats = group[0]["seats"]
        print(f"\n### {label}: {group[0]['n']} Jobs, apiserver seats "
              f"{seats['maxRequestsInflight']} + {seats['maxMutatingRequestsInflight']}, "
              f"{len({r['rep'] for r in group})} round(s)\n")
        print("| contender | rounds | deletes/s (median) | each round | 429s (apiserver) "
              "| 429s (client) | wall s | CPU s | CPU-s per 1,000 deletions | settled (min–max) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        keys = sorted({(r["who"], r["concurrency"]) for r in group},
                      key=lambda k: (k[0] == "reaper", k[1]))
        rates: dict[tuple[str, int], float] = {}
        for who, c in keys:
            g = sorted((r for r in group if (r["who"], r["concurrency"]) == (who, c)),
                       key=lambda r: r["rep"])
            rates[(who, c)] = med([r["deletesPerSecond"] for r in g])
            per_k = [r["cpuSeconds"] / r["deleted"] * 1000 for r in g if r.get("deleted")]
            name = f"raw floor, fixed {c}" if who == "floor" else f"eks-reaper, adaptive ≤ {c}"
            adaptive = "–"
            if who == "reaper":
                adaptive = ", ".join(f"{x['settled']} ({x['min']}–{x['max']})"
                                     for x in (r.get("adaptive") or {} for r in g) if x)
            print(f"| {name} | {len(g)} | {rates[(who, c)]} | "
                  f"{', '.join(str(r['deletesPerSecond']) for r in g)} | "
                  f"{', '.join(str(r['apiserver429']) for r in g)} | "
                  f"{', '.join(str(r.get('throttled')) for r in g)} | "
                  f"{med([r['wallSeconds'] for r in g])} | {med([r['cpuSeconds'] for r in g])} | "
                  f"{round(statistics.median(per_k), 3) if per_k else '–'} | {adaptive} |")
        floors = {k: v for k, v in rates.items() if k[0] == "floor"}
        if not floors:
            continue
        best = max(floors, key=floors.get)
        print(f"\n- best fixed floor: concurrency {best[1]}, {floors[best]}/s (median)")
        for (who, c), rate in rates.items():
            if who != "reaper":
                continue
            per_round = []
            for r in (r for r in group if (r["who"], r["concurrency"]) == (who, c)):
                f = [x for x in group if (x["who"], x["concurrency"]) == best
                     and x["rep"] == r["rep"]]
                if f:
                    per_round.append(round(r["deletesPerSecond"] / f[0]["deletesPerSecond"], 2))
            print(f"- eks-reaper (≤ {c}) ÷ best fixed floor: medians {rate / floors[best]:.2f}×; "
                  f"round by round {per_round}")
        loads = [r["loadavgBefore"][0] for r in group]
        print(f"- 1-min load average before runs: {min(loads)}–{max(loads)} (2 cores)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/adaptive.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/results.jsonl"))
    ap.add_argument("--logs", default="/tmp/eks-reaper-bench/logs")
    sub = ap.add_subparsers(dest="step", required=True)
    r = sub.add_parser("run")
    r.add_argument("--label", required=True)
    r.add_argument("--count", type=int, default=10000)
    r.add_argument("--repeats", type=int, default=2)
    r.add_argument("--fixed", type=lambda s: [int(x) for x in s.split(",")],
                   default=[8, 16, 32, 64], help="the raw floor's fixed concurrencies")
    r.add_argument("--ceiling", type=int, default=64, help="eks-reaper's --concurrency")
    sub.add_parser("summary")
    a = ap.parse_args(argv)
    {"run": step_run, "summary": step_summary}[a.step](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
