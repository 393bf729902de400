"""Plots the replay: free Fargate IPs over scaled time for the three arms, with the alarm
conditions and the exhaustion marked.

    python bench/replay_plot.py SAMPLES.jsonl SUMMARY.json OUT.png

Runs in the plotting venv (bench/replay-plot-requirements.txt); reads only the files
bench/replay.py wrote.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"a": "tab:red", "b": "tab:green", "c": "tab:blue"}
LABELS = {
    "a": "a: no cleaner",
    "b": "b: eks-reaper every 5 min",
    "c": "c: eks-reaper stalls (then dry runs)",
}


def main(samples_path: str, summary_path: str, out: str) -> None:
    series: dict[str, list[dict]] = {}
    with open(samples_path) as f:
        for line in f:
            s = json.loads(line)
            series.setdefault(s["arm"], []).append(s)
    summary = json.load(open(summary_path))
    arms = summary["arms"]
    capacity = summary["scale"]["fargateCapacity"]

    fig, (ax, fx) = plt.subplots(2, 1, figsize=(11, 8), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    for arm, samples in sorted(series.items()):
        ax.plot([s["t"] for s in samples], [s["freeFargate"] for s in samples],
                color=COLOURS[arm], label=LABELS[arm], linewidth=1.4)
    ax.axhline(capacity * 0.10, color="grey", linestyle=":", linewidth=1)
    ax.text(5, capacity * 0.10 + 2, "10 % free (free-percent alarm, low-headroom mode)",
            color="grey", fontsize=8)

    def mark(arm: str, key: str, text: str, style: str, y: float) -> None:
        at = arms.get(arm, {}).get(key)
        if at is None:
            return
        ax.axvline(at, color=COLOURS[arm], linestyle=style, linewidth=1)
        ax.annotate(f"{text}\n{at:.1f} h", xy=(at, y), xytext=(4, 0),
                    textcoords="offset points", fontsize=8, color=COLOURS[arm])

    mark("a", "exhaustedAt", "a: IPs exhausted", "-", capacity * 0.55)
    mark("c", "stallAt", "c: cleaner stalls", "--", capacity * 0.8)
    mark("c", "forecastAlarmConditionAt", "c: forecast alarm\n(< 6 h, 2 runs)", "-.",
         capacity * 0.75)
    mark("c", "freePercentAlarmConditionAt", "c: free-percent\nalarm (< 10 %)", ":",
         capacity * 0.4)
    mark("c", "exhaustedAt", "c: IPs exhausted", "-", capacity * 0.2)
    ax.set_ylabel("free IPs in the 3 Fargate subnets")
    ax.set_ylim(0, capacity * 1.05)
    ax.legend(loc="center left", fontsize=9)
    ax.set_title(f"Replay: bursty Fargate day, 1 scaled hour = "
                 f"{summary['scale']['secondsPerScaledHour']:g} s real, "
                 f"{capacity} IPs, {summary['scale']['burstJobsPerHour']}+"
                 f"{summary['scale']['trickleJobsPerHour']} Jobs per hour")

    c = series.get("c", [])
    stalled = [s for s in c if s.get("stalled") and s.get("forecastHours") is not None]
    ex = arms.get("c", {}).get("exhaustedAt")
    if stalled and ex is not None:
        t = [s["t"] for s in stalled if s["t"] < ex]
        fx.plot(t, [s["forecastHours"] for s in stalled if s["t"] < ex], color="tab:blue",
                linewidth=1, label="c: forecast (max of 15-min, 1-h and 75-min rates)")
        before = [s["beforeHours"] if s.get("beforeHours") is not None else float("nan")
                  for s in stalled if s["t"] < ex]
        fx.plot(t, before, color="tab:orange", linewidth=0.8, alpha=0.8,
                label="c: before (15-min rate alone, all watched subnets)")
        fx.plot(t, [ex - x for x in t], color="black", linestyle="--", linewidth=1,
                label="hours actually left")
        fx.axhline(6, color="grey", linestyle=":", linewidth=1)
        fx.set_yscale("log")
        fx.set_ylim(0.05, 200)
        fx.set_ylabel("hours to exhaustion (scaled)")
        fx.legend(loc="upper right", fontsize=8)
    fx.set_xlabel("scaled hours since the start of the arm")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:4])
