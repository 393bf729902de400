"""The soak's invariant checker: what a Kubernetes watch saw deleted, and what each run of
eks-reaper said it did, against the rules every deletion must obey.

It knows nothing of the reaper's code. Each object the soak's workload creates carries
`CLASS_LABEL` (its Job's pods inherit it through the pod template), and the rules below say,
per class, when a deletion is wrong:

| class | rule |
|---|---|
| `keep`, `native-ttl`, `foreign-job`, `protected-ns`, `optout-ns`, `foreign-pod`, `argo` | never deleted |
| every Job | deleted only with a `Complete=True` or `Failed=True` condition |
| every pod | deleted only in phase `Succeeded` or `Failed` |
| `plain` / `cron` Job | not before its finish + the succeeded / failed retention |
| `ttl` Job | not before its finish + `TTL_ANNOTATION_SECONDS` |
| `cron` failed Job | not while it is its CronJob's newest failed Job (keep-last 1) |
| pod of a Job, not Fargate | only after its Job (the garbage collector's cascade) |
| Fargate pod of a Job, bare Fargate pod | not before its finish + the low-headroom Fargate retention (the shortest any mode allows) |
| `engine` pod (KPO, Digdag) | not before its finish + the engine grace |
| `bare` pod | not before its finish + the bare-pod retention |

A run is *untruthful* when its cluster is reported `ok` and: the report's deletion counts
differ from its own "deleted" log lines, or a logged deletion never happened, or (listing
complete) it says it saw fewer Jobs than existed in scope for the whole run, or more than
existed at any moment of it. Across the soak, every Job or bare pod the watch saw deleted
must have been logged as deleted by some run, except at most as many as the runs counted
as unsure (a DELETE whose answer was lost).

Times are wall-clock seconds (`time.time()`): the reaper, the testbed and the watch share
the machine's clock. `bench/test_soak_check.py` plants each kind of failure and checks it is
caught.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

CLASS_LABEL = "soak.eks-reaper/class"
FARGATE_LABEL = "eks.amazonaws.com/fargate-profile"
NEVER = {"keep", "native-ttl", "foreign-job", "protected-ns", "optout-ns", "foreign-pod",
         "argo"}
#: Outcomes a run counts when it cannot know whether a DELETE it sent was applied.
UNSURE_ERRORS = ("unreachable", "timedOut")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def job_terminal(job: dict) -> tuple[str, float] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"], parse_time(c.get("lastTransitionTime")) or 0.0
    return None


def pod_finish(pod: dict) -> float | None:
    """Latest container termination or condition transition, else the start time."""
    st = pod.get("status") or {}
    times = []
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in st.get(key) or []:
            t = ((cs.get("state") or {}).get("terminated") or {}).get("finishedAt")
            if t:
                times.append(parse_time(t))
    times += [parse_time(c.get("lastTransitionTime")) for c in st.get("conditions") or []
              if c.get("lastTransitionTime")]
    if times:
        return max(times)
    return parse_time(st.get("startTime"))


@dataclasses.dataclass
class Retentions:
    """The reaper's settings the soak runs with, in real seconds."""

    succeeded: float
    failed: float
    bare: float
    fargate_floor: float  # the low-headroom Fargate retention: no Fargate pod goes sooner
    engine_grace: float
    ttl_annotation: float


@dataclasses.dataclass
class Life:
    """One object the watch saw."""

    kind: str  # "job" / "pod"
    namespace: str
    name: str
    uid: str
    cls: str
    first_seen: float
    owner_job: str | None = None  # uid of the controlling Job (pods)
    cronjob: str | None = None  # uid of the controlling CronJob (Jobs)
    finished: tuple[str, float] | None = None  # ("Complete"/"Failed"/phase, finish time)
    finished_seen: float | None = None
    deleted_at: float | None = None
    last: dict | None = None


@dataclasses.dataclass
class RunRecord:
    """One invocation (or the overlapping CLI run) as the driver saw it."""

    name: str
    t0: float
    t1: float
    timeout: float
    report: dict | None
    failed: bool  # the invocation failed (errorType) or gave no report
    logged: list[tuple[str, str, str]]  # ("job"/"pod", namespace, name) per "deleted" line
    aws_up: bool = True  # EKS, EC2 and CloudWatch answered normally during the whole run
    subnet_metrics: int | None = None  # MinSubnetFreePercent datapoints this run published
    faults: tuple[str, ...] = ()
    timed_out: bool = False  # the emulator answered with its timeout error

    @property
    def cluster(self) -> dict | None:
        if not self.report or not self.report.get("clusters"):
            return None
        return self.report["clusters"][0]


class Checker:
    def __init__(self, retentions: Retentions, out_of_scope: set[str]):
        self.r = retentions
        self.out_of_scope = out_of_scope  # namespaces the reaper never lists
        self.lives: dict[str, Life] = {}
        # Names are unique within a soak, but a cluster may still hold an earlier soak's.
        self.by_name: dict[tuple[str, str, str], list[Life]] = defaultdict(list)
        self.wrong: list[str] = []
        self.untruthful: list[str] = []
        self.over_deadline: list[str] = []
        self.metric_gaps: list[str] = []
        self.runs: list[RunRecord] = []
        self.pending_pods: list[Life] = []  # pod deletions to check once the Jobs' are known

    # ---- the watch ----------------------------------------------------------------------

    def observe(self, kind: str, typ: str, obj: dict, at: float) -> None:
        """One watch event (`kind` "job"/"pod"; typ ADDED/MODIFIED/DELETED) seen at `at`."""
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        cls = (meta.get("labels") or {}).get(CLASS_LABEL)
        if not uid or not cls:
            return
        life = self.lives.get(uid)
        if life is None:
            life = Life(kind, meta.get("namespace", ""), meta.get("name", ""), uid, cls, at)
            for ref in meta.get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Job":
                    life.owner_job = ref.get("uid")
                if ref.get("controller") and ref.get("kind") == "CronJob":
                    life.cronjob = ref.get("uid")
            self.lives[uid] = life
            self.by_name[(kind, life.namespace, life.name)].append(life)
        if life.deleted_at is not None:
            return
        if "status" in obj:  # a relist's synthesised DELETED carries no status
            life.last = obj
            self._note_finish(life, obj, at)
        if typ == "DELETED" or meta.get("deletionTimestamp"):
            life.deleted_at = at
            self._check_deletion(life, life.last or obj)

    def _note_finish(self, life: Life, obj: dict, at: float) -> None:
        if life.finished is not None:
            return
        if life.kind == "job":
            term = job_terminal(obj)
            if term:
                life.finished, life.finished_seen = term, at
        else:
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                life.finished, life.finished_seen = (phase, pod_finish(obj) or at), at

    def _age_check(self, life: Life, minimum: float, what: str) -> None:
        age = life.deleted_at - life.finished[1]
        if age < minimum:
            self.wrong.append(f"{life.kind} {life.namespace}/{life.name} ({life.cls}) deleted "
                              f"{age:.1f} s after finishing, {what} {minimum:.1f} s")

    def _check_deletion(self, life: Life, obj: dict) -> None:
        where = f"{life.kind} {life.namespace}/{life.name} ({life.cls})"
        if life.cls in NEVER:
            self.wrong.append(f"{where} deleted: its class is never deleted")
            return
        if life.finished is None:
            state = ("not finished" if life.kind == "job"
                     else f"in phase {(obj.get('status') or {}).get('phase')}")
            self.wrong.append(f"{where} deleted {state}")
            return
        if life.kind == "job":
            self._check_job(life)
        else:
            self.pending_pods.append(life)

    def _check_job(self, life: Life) -> None:
        failed = life.finished[0] == "Failed"
        if life.cls == "ttl":
            self._age_check(life, self.r.ttl_annotation, "eks-reaper/ttl")
        else:
            self._age_check(life, self.r.failed if failed else self.r.succeeded,
                            "failed retention" if failed else "succeeded retention")
        if life.cronjob and failed:
            newer = [o for o in self.lives.values()
                     if o.kind == "job" and o.cronjob == life.cronjob and o is not life
                     and o.finished and o.finished[0] == "Failed"
                     and (o.finished[1], o.uid) > (life.finished[1], life.uid)
                     and o.deleted_at is None]
            if not newer:
                self.wrong.append(f"job {life.namespace}/{life.name} deleted while the newest "
                                  f"failed Job of its CronJob (keep-last 1)")

    def _check_pod(self, life: Life) -> None:
        labels = ((life.last or {}).get("metadata") or {}).get("labels") or {}
        fargate = FARGATE_LABEL in labels
        if life.owner_job:
            job = self.lives.get(life.owner_job)
            cascade = (job is not None and job.deleted_at is not None
                       and job.deleted_at <= life.deleted_at + 10.0)
            if cascade:
                return
            if not fargate:
                self.wrong.append(f"pod {life.namespace}/{life.name} ({life.cls}) of a Job "
                                  f"deleted before its Job")
                return
            self._age_check(life, self.r.fargate_floor, "low-headroom Fargate retention")
        elif life.cls == "engine":
            self._age_check(life, self.r.engine_grace, "engine grace")
        elif fargate:
            self._age_check(life, self.r.fargate_floor, "low-headroom Fargate retention")
        else:
            self._age_check(life, self.r.bare, "bare-pod retention")

    # ---- the runs -----------------------------------------------------------------------

    def run(self, rec: RunRecord) -> None:
        self.runs.append(rec)
        if rec.timed_out or rec.t1 - rec.t0 > rec.timeout + 1.0:
            self.over_deadline.append(f"{rec.name}: {rec.t1 - rec.t0:.1f} s, timeout "
                                      f"{rec.timeout:.0f} s")

    def _check_run(self, rec: RunRecord) -> None:
        c = rec.cluster
        if c is None or c.get("status") != "ok":
            return
        problems = []
        jobs_logged = sum(1 for k, _, _ in rec.logged if k == "job")
        pods_logged = sum(1 for k, _, _ in rec.logged if k == "pod")
        if (c["jobs"]["deleted"], c["pods"]["deleted"]) != (jobs_logged, pods_logged):
            problems.append(f"reports {c['jobs']['deleted']} jobs / {c['pods']['deleted']} pods "
                            f"deleted, logged {jobs_logged} / {pods_logged}")
        for kind, ns, name in rec.logged:
            lives = self.by_name.get((kind, ns, name)) or []
            if lives and all(x.deleted_at is None for x in lives):
                problems.append(f"logged {kind} {ns}/{name} deleted; it was not")
        if c.get("listingComplete"):
            in_scope = [x for x in self.lives.values()
                        if x.kind == "job" and x.namespace not in self.out_of_scope]
            throughout = sum(1 for x in in_scope if x.first_seen < rec.t0
                             and (x.deleted_at is None or x.deleted_at > rec.t1))
            anytime = sum(1 for x in in_scope if x.first_seen <= rec.t1 + 2.0
                          and (x.deleted_at is None or x.deleted_at >= rec.t0 - 2.0))
            seen = c["jobs"]["seen"]
            if not throughout <= seen <= anytime:
                problems.append(f"saw {seen} jobs; {throughout} existed throughout the run, "
                                f"{anytime} at some moment of it")
        if problems:
            self.untruthful.append(f"{rec.name}: " + "; ".join(problems))

    def _check_metrics(self, rec: RunRecord) -> None:
        if rec.name.startswith("overlap") or not rec.aws_up or rec.subnet_metrics is None:
            return
        if rec.subnet_metrics < 1:
            self.metric_gaps.append(f"{rec.name}: no subnet metric while EKS, EC2 and "
                                    f"CloudWatch were up")

    def finish(self) -> dict:
        """Runs the checks that need the whole history; returns the verdict's counts."""
        for life in self.pending_pods:
            self._check_pod(life)
        self.pending_pods = []
        for rec in self.runs:
            self._check_run(rec)
            self._check_metrics(rec)
        claimed = {(k, ns, n) for rec in self.runs for k, ns, n in rec.logged}
        unsure = sum((rec.cluster or {}).get("errors", {}).get(e, 0)
                     for rec in self.runs for e in UNSURE_ERRORS)
        unclaimed = [x for x in self.lives.values() if x.deleted_at is not None
                     and (x.kind == "job" or x.owner_job is None)
                     and (x.kind, x.namespace, x.name) not in claimed]
        if len(unclaimed) > unsure:
            names = ", ".join(f"{x.kind} {x.namespace}/{x.name}" for x in unclaimed[:5])
            self.untruthful.append(f"{len(unclaimed)} deletions no run logged, {unsure} unsure "
                                   f"outcomes reported: {names}")
        return {"wrongDeletions": len(self.wrong), "untruthfulReports": len(self.untruthful),
                "runsOverDeadline": len(self.over_deadline),
                "ipMetricsGaps": len(self.metric_gaps),
                "unclaimedDeletions": len(unclaimed), "unsureOutcomes": unsure}

    def deletions_by_class(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for x in self.lives.values():
            if x.deleted_at is not None:
                out[f"{x.kind}/{x.cls}"] += 1
        return dict(sorted(out.items()))

    def overdue(self, now: float, slack: float) -> list[str]:
        """Objects of the plain classes still present `slack` seconds past their retention:
        the backlog that should have drained."""
        out = []
        for x in self.lives.values():
            if x.deleted_at is not None or x.finished is None or x.cls not in ("plain", "bare"):
                continue
            if x.kind == "job":
                keep = self.r.failed if x.finished[0] == "Failed" else self.r.succeeded
            elif x.owner_job:
                continue  # goes with its Job, or as a Fargate pod: not bounded here
            else:
                keep = self.r.bare
            if now - x.finished[1] > keep + slack:
                out.append(f"{x.kind} {x.namespace}/{x.name}")
        return out
