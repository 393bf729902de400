"""`scripts/testbed` itself: a second, throw-away testbed in its own state dir is brought
up twice (idempotent), reports its status, and leaves no process behind — after `down`,
and after its supervisor is SIGKILLed (children die with it via PR_SET_PDEATHSIG)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "testbed"


KNOBS = ("EKS_REAPER_TESTBED_MAX_REQUESTS_INFLIGHT", "EKS_REAPER_TESTBED_MAX_MUTATING_REQUESTS_INFLIGHT",
         "EKS_REAPER_TESTBED_TTL_CONTROLLER", "EKS_REAPER_TESTBED_FARGATE_PREFIX",
         "EKS_REAPER_TESTBED_APISERVER_ARGS")


def run_testbed(state: Path, *args: str, check: bool = True, **knobs: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(knobs, EKS_REAPER_TESTBED=str(state))
    out = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)
    if check and out.returncode != 0:
        pytest.fail(f"scripts/testbed {' '.join(args)} rc={out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def processes_of(state: Path) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{state}/" in cmd or f"--state {state} " in cmd:
            found.append(f"{d.name}: {cmd[:120]}")
    return found


@pytest.fixture
def state(tmp_path_factory):
    st = tmp_path_factory.mktemp("lifecycle") / "tb"
    yield st
    run_testbed(st, "down", check=False)


def test_up_is_idempotent_and_down_leaves_nothing(state):
    assert run_testbed(state, "status", check=False).returncode == 3
    first = run_testbed(state, "up").stdout
    assert f"source {state}/env.sh" in first
    assert "kubeconfig:" in first and "moto:" in first
    env = json.loads((state / "env.json").read_text())
    pid = int(env["TESTBED_SUPERVISOR_PID"])
    assert len(processes_of(state)) >= 5  # supervisor, authenticator, etcd, apiserver, kcm
    again = run_testbed(state, "up").stdout
    assert f"supervisor pid {pid}" in again
    # A running testbed with other settings is not silently reused.
    other = run_testbed(state, "up", check=False, EKS_REAPER_TESTBED_TTL_CONTROLLER="1")
    assert other.returncode == 1 and "other settings" in other.stderr
    assert run_testbed(state, "status").stdout.startswith("up")
    assert "export KUBECONFIG=" in run_testbed(state, "env").stdout
    run_testbed(state, "down")
    assert run_testbed(state, "status", check=False).returncode == 3
    assert processes_of(state) == []
    assert not Path(f"/proc/{pid}").exists()


def test_killed_supervisor_takes_its_children_along(state):
    run_testbed(state, "up")
    pid = int(json.loads((state / "env.json").read_text())["TESTBED_SUPERVISOR_PID"])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while processes_of(state):
        assert time.monotonic() < deadline, processes_of(state)
        time.sleep(0.2)
    assert run_testbed(state, "status", check=False).returncode == 3
