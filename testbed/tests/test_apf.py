"""API Priority and Fairness is on: a throttled user gets real 429s with Retry-After."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
import requests

from testbed.throttle import throttle_user
from testbed.tokens import token_for

JOBS = "/apis/batch/v1/jobs?limit=500"


def session(env, identity="reaper") -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = env["TESTBED_CA_FILE"]
    s.headers["Authorization"] = f"Bearer {token_for(env, identity)}"
    return s


def hammer(env, api, t, threads=48, want_429=5, seconds=60):
    """Concurrent GETs by the reaper until `want_429` rejections (and some 200s) are seen."""
    stop = threading.Event()
    codes: dict[int, int] = {}
    retry_after: list[str] = []
    foreign: list[str] = []
    lock = threading.Lock()

    def worker():
        s = session(env)
        while not stop.is_set():
            r = s.get(f"{api}{JOBS}", timeout=30)
            with lock:
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                if r.status_code == 429:
                    retry_after.append(r.headers.get("Retry-After", ""))
                    if not t.matches(r):
                        foreign.append(r.headers.get("X-Kubernetes-PF-FlowSchema-UID", ""))

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futs = [pool.submit(worker) for _ in range(threads)]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (codes.get(429, 0) >= want_429 and codes.get(200)):
            time.sleep(0.1)
        stop.set()
        for f in futs:
            f.result()
    return codes, retry_after, foreign


@pytest.mark.parametrize("shares", [0, 1])
def test_throttled_user_gets_429_with_retry_after_under_load(env, api, shares):
    """shares=1: 3 seats with default limits; shares=0: one request at a time (APF still
    admits a request when nothing of that level is executing)."""
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=shares) as t:
        codes, retry_after, foreign = hammer(env, api, t)
    assert codes.get(429, 0) >= 5, codes
    assert codes.get(200, 0) > 0, codes
    assert set(codes) <= {200, 429}, codes
    assert not foreign, "429s classified by another FlowSchema"
    assert all(ra.isdigit() and 1 <= int(ra) <= 32 for ra in retry_after), retry_after[:10]


def test_throttle_targets_only_its_user_and_goes_away(env, admin, api):
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=0) as t:
        r = session(env).get(f"{api}{JOBS}", timeout=10)
        assert r.status_code == 200 and t.matches(r)
        for identity_session in (admin, session(env, "norbac")):
            r = identity_session.get(f"{api}{JOBS}", timeout=10)
            assert r.status_code in (200, 403) and not t.matches(r)
    # Once deleted, APF stops classifying the reaper into it (within a few seconds).
    deadline = time.monotonic() + 30
    while t.matches(session(env).get(f"{api}{JOBS}", timeout=10)):
        assert time.monotonic() < deadline, "throttle still in force after deletion"
        time.sleep(0.2)
